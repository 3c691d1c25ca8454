//! The SQL function of one registered model: text in, the declared type out, inference once per Arrow
//! batch.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, FixedSizeListBuilder, Float32Builder, Float64Builder, GenericListBuilder,
    OffsetSizeTrait, StringBuilder,
};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use colloquy_udfs::strings::{coerce_text, text_values};

use crate::model::{Answers, OnnxModel};

/// A model registered with `CREATE FUNCTION ... LANGUAGE ONNX`.
#[derive(Debug)]
pub struct OnnxFunc {
    model: Arc<OnnxModel>,
    return_type: DataType,
    signature: Signature,
}

impl OnnxFunc {
    pub fn new(model: Arc<OnnxModel>, return_type: DataType) -> Self {
        Self {
            model,
            return_type,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }

    pub fn model(&self) -> &Arc<OnnxModel> {
        &self.model
    }

    /// The type `CREATE FUNCTION ... RETURNS` declared.
    pub fn declared_type(&self) -> &DataType {
        &self.return_type
    }
}

// Two functions are the same when they serve the same model file under the same name and type.
impl PartialEq for OnnxFunc {
    fn eq(&self, other: &Self) -> bool {
        self.model.name == other.model.name
            && self.model.checksum == other.model.checksum
            && self.return_type == other.return_type
    }
}

impl Eq for OnnxFunc {}

impl Hash for OnnxFunc {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.model.name.hash(state);
        self.model.checksum.hash(state);
        self.return_type.hash(state);
    }
}

impl ScalarUDFImpl for OnnxFunc {
    fn name(&self) -> &str {
        &self.model.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [t] => Ok(vec![coerce_text(&self.model.name, 1, t)?]),
            _ => plan_err!(
                "{}() takes one text argument (the model {}); got {}",
                self.model.name,
                self.model.source,
                arg_types.len()
            ),
        }
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(self.return_type.clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let [arg] = args.args.as_slice() else {
            return exec_err!("{}() takes one argument", self.model.name);
        };
        let array = arg.to_array(n)?;
        let values = text_values(&array)?;
        let present: Vec<bool> = values.iter().map(Option::is_some).collect();
        let texts: Vec<&str> = values.into_iter().flatten().collect();
        let answers = self.model.run(&texts)?;
        let out = build(&self.return_type, &answers, &present)?;
        Ok(ColumnarValue::Array(out))
    }
}

/// The output column: one answer per present text, NULL where the input was NULL.
fn build(t: &DataType, answers: &Answers, present: &[bool]) -> Result<ArrayRef> {
    let mut next = 0usize;
    let mut take = || {
        let i = next;
        next += 1;
        i
    };
    Ok(match (t, answers) {
        (DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8, Answers::Labels(l)) => {
            let mut b = StringBuilder::new();
            for &p in present {
                if p {
                    b.append_value(&l[take()]);
                } else {
                    b.append_null();
                }
            }
            let a: ArrayRef = Arc::new(b.finish());
            datafusion::arrow::compute::cast(&a, t)?
        }
        (DataType::Float32 | DataType::Float64, Answers::Scores(s)) => {
            let mut b = Float64Builder::new();
            for &p in present {
                if p {
                    b.append_value(s[take()]);
                } else {
                    b.append_null();
                }
            }
            let a: ArrayRef = Arc::new(b.finish());
            datafusion::arrow::compute::cast(&a, t)?
        }
        (
            DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(_, _),
            Answers::Vectors(v),
        ) => {
            let mut rows: Vec<Option<&Vec<f32>>> = Vec::with_capacity(present.len());
            for &p in present {
                rows.push(p.then(|| &v[take()]));
            }
            let list: ArrayRef = match t {
                DataType::FixedSizeList(_, size) => {
                    let mut b = FixedSizeListBuilder::new(Float32Builder::new(), *size);
                    for r in rows {
                        match r {
                            Some(r) if r.len() == *size as usize => {
                                b.values().append_slice(r);
                                b.append(true);
                            }
                            Some(r) => {
                                return exec_err!(
                                    "the model gave {} values where FLOAT[{size}] was declared",
                                    r.len()
                                );
                            }
                            None => {
                                b.values().append_nulls(*size as usize);
                                b.append(false);
                            }
                        }
                    }
                    Arc::new(b.finish())
                }
                DataType::LargeList(_) => variable_list::<i64>(&rows),
                _ => variable_list::<i32>(&rows),
            };
            // The declared element type and field (name, nullability) win.
            datafusion::arrow::compute::cast(&list, t)?
        }
        _ => {
            return exec_err!(
                "internal: the model's answers do not match the declared type {t} ({})",
                f_kind(answers)
            );
        }
    })
}

/// A `List` or `LargeList` of the vectors, NULL where there is none.
fn variable_list<O: OffsetSizeTrait>(rows: &[Option<&Vec<f32>>]) -> ArrayRef {
    let mut b = GenericListBuilder::<O, _>::new(Float32Builder::new());
    for r in rows {
        match r {
            Some(r) => {
                b.values().append_slice(r);
                b.append(true);
            }
            None => b.append(false),
        }
    }
    Arc::new(b.finish())
}

fn f_kind(a: &Answers) -> &'static str {
    match a {
        Answers::Labels(_) => "labels",
        Answers::Scores(_) => "scores",
        Answers::Vectors(_) => "vectors",
    }
}
