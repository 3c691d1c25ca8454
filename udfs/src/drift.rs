//! `drift(value, is_current [, kind])`: does `value` differ between the reference rows (`is_current` false)
//! and the current rows (`is_current` true)? An aggregate with bounded, mergeable state, so it runs under
//! `GROUP BY channel, week` over any number of rows and partitions.

use std::any::Any;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Float32Type, Float64Type};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, DocSection, Documentation, Signature, Volatility,
};
use datafusion::physical_expr::expressions::Literal;

use colloquy_textmodels::Tokens;

use crate::drift_state::{Kind, Reader, Side, Verdict, Writer, verdict};
use crate::strings::is_text_type;

const NAME: &str = "drift";

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DriftFunc {
    signature: Signature,
}

impl DriftFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl Default for DriftFunc {
    fn default() -> Self {
        Self::new()
    }
}

fn result_fields() -> Fields {
    Fields::from(vec![
        Field::new("score", DataType::Float64, true),
        Field::new("threshold", DataType::Float64, true),
        Field::new("p_value", DataType::Float64, true),
        Field::new("drifted", DataType::Boolean, false),
        Field::new("method", DataType::Utf8, false),
        Field::new("reference_rows", DataType::Int64, false),
        Field::new("current_rows", DataType::Int64, false),
        Field::new(
            "top_terms",
            DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
            false,
        ),
    ])
}

fn is_numeric(t: &DataType) -> bool {
    t.is_numeric() || matches!(t, DataType::Boolean)
}

/// An embedding: a list of floating-point numbers.
fn is_vector(t: &DataType) -> bool {
    match t {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            matches!(
                f.data_type(),
                DataType::Float16 | DataType::Float32 | DataType::Float64
            )
        }
        _ => false,
    }
}

fn vector_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Float32, true)))
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DocSection { include: true, label: "Text functions", description: None },
        "Compares the values of the reference rows (is_current false) with those of the current rows (is_current true) and says whether their distribution drifted. Returns a struct: score, threshold, p_value, drifted, method, reference_rows, current_rows, top_terms. Numbers: Kolmogorov-Smirnov (p < 0.05) up to 1,000 rows a side, else the Wasserstein distance in reference standard deviations (drift at 0.1). Categories: chi-square (p < 0.05) up to 1,000 rows a side, else the Jensen-Shannon distance (drift at 0.1); top_terms lists the categories whose share moved most (+ rose, - fell). Text: a classifier trained to tell the sides apart on a 2,048-text sample of each; its ROC AUC on held-out texts is the score (drift above 0.55 past 1,000 rows a side, else above the 1% significance level); top_terms lists the words that explain the change most: ranked by their term of the symmetric KL divergence between the sides' document frequencies (shares smoothed towards the pooled share), so words frequent on both sides rank below words that came or went with the change. Embeddings (FLOAT[]): the same domain-classifier test on a 1,024-vector sample of each side. Rows where value or is_current is NULL are skipped. The state per group is bounded (at most 2,048 texts, 4,096 categories or a 1% histogram a side), so it works under GROUP BY over any number of rows.",
        "drift(value, is_current [, kind])",
    )
    .with_argument("value", "Text, a number, a category, or an embedding (FLOAT[], e.g. from a registered ONNX encoder).")
    .with_argument("is_current", "Boolean: true for the rows of the period under test, false for the reference period.")
    .with_argument("kind", "Optional constant 'text', 'numeric', 'categorical' or 'embedding'. Default: numbers are numeric, strings are text, FLOAT[] embeddings are embedding.")
    .with_sql_example("SELECT channel, drift(text, ts >= TIMESTAMP '2026-10-01')['drifted'] FROM messages GROUP BY channel;\nSELECT drift(intent(text), week = 42, 'categorical')['top_terms'] FROM m;")
    .build()
});

impl AggregateUDFImpl for DriftFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let (value, flag) = match arg_types {
            [v, f] | [v, f, _] => (v, f),
            _ => {
                return plan_err!(
                    "{NAME}() takes (value, is_current [, kind]), e.g. drift(text, week = 42); got {} arguments",
                    arg_types.len()
                );
            }
        };
        let value = if is_numeric(value) {
            DataType::Float64
        } else if is_text_type(value) || value.is_null() {
            // Strings stay in their own encoding (Parquet reads Utf8View): casting every text to Utf8
            // would copy the column before the sample keeps a few thousand of them.
            crate::strings::coerce_text(NAME, 1, value)?
        } else if is_vector(value) {
            vector_type()
        } else {
            return plan_err!(
                "{NAME}(): argument 1 must be text, a number, a category (string) or an embedding (FLOAT[]), got {value}"
            );
        };
        if !matches!(flag, DataType::Boolean | DataType::Null) {
            return plan_err!("{NAME}(): argument 2 (is_current) must be a boolean, got {flag}");
        }
        let mut out = vec![value, DataType::Boolean];
        if let Some(kind) = arg_types.get(2) {
            if !(is_text_type(kind) || kind.is_null()) {
                return plan_err!(
                    "{NAME}(): argument 3 (kind) must be 'text', 'numeric' or 'categorical', got {kind}"
                );
            }
            out.push(DataType::Utf8);
        }
        Ok(out)
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(result_fields()))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[state]", args.name),
            DataType::Binary,
            true,
        ))])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let value_type = args
            .expr_fields
            .first()
            .map(|f| f.data_type().clone())
            .unwrap_or(DataType::Utf8);
        let default = if value_type == DataType::Float64 {
            Kind::Numeric
        } else if is_vector(&value_type) {
            Kind::Embedding
        } else {
            Kind::Text
        };
        let kind = match args.exprs.get(2) {
            None => default,
            Some(e) => {
                let any: &dyn Any = e.as_ref();
                let Some(lit) = any.downcast_ref::<Literal>() else {
                    return plan_err!("{NAME}(): argument 3 (kind) must be a constant");
                };
                let text = match lit.value() {
                    ScalarValue::Utf8(Some(s))
                    | ScalarValue::LargeUtf8(Some(s))
                    | ScalarValue::Utf8View(Some(s)) => s.clone(),
                    other => {
                        return plan_err!(
                            "{NAME}(): argument 3 (kind) must be 'text', 'numeric' or 'categorical', got {other}"
                        );
                    }
                };
                match Kind::parse(&text) {
                    Some(k) if (k == Kind::Embedding) != is_vector(&value_type) => {
                        return plan_err!(
                            "{NAME}(): kind '{text}' does not fit a value of type {value_type} (embeddings are FLOAT[] and take kind 'embedding')"
                        );
                    }
                    Some(Kind::Numeric) if value_type != DataType::Float64 => {
                        return plan_err!(
                            "{NAME}(): kind 'numeric' needs a number, got {value_type}"
                        );
                    }
                    Some(k) => k,
                    None => {
                        return plan_err!(
                            "{NAME}(): unknown kind '{text}': use 'text', 'numeric', 'categorical' or 'embedding'"
                        );
                    }
                }
            }
        };
        Ok(Box::new(DriftAccumulator::new(kind)))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

#[derive(Debug)]
struct DriftAccumulator {
    kind: Kind,
    reference: Side,
    current: Side,
    tokens: Tokens,
}

impl DriftAccumulator {
    fn new(kind: Kind) -> Self {
        Self {
            kind,
            reference: Side::new(kind),
            current: Side::new(kind),
            tokens: Tokens::new(),
        }
    }
}

fn numbers_as_strings(kind: Kind, values: &ArrayRef) -> Result<Option<ArrayRef>> {
    // A number column asked to be categorical: its values become category names.
    if kind == Kind::Categorical && values.data_type() == &DataType::Float64 {
        let cast = datafusion::arrow::compute::cast(values, &DataType::Utf8)?;
        return Ok(Some(cast));
    }
    Ok(None)
}

impl Accumulator for DriftAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let (Some(v), Some(flag)) = (values.first(), values.get(1)) else {
            return exec_err!("{NAME}() expects two arguments");
        };
        let flag = flag.as_boolean();
        let converted = numbers_as_strings(self.kind, v)?;
        let v = converted.as_ref().unwrap_or(v);
        match v.data_type() {
            DataType::List(_) => {
                let lists = v.as_list::<i32>();
                for i in 0..lists.len() {
                    if lists.is_null(i) || flag.is_null(i) {
                        continue;
                    }
                    let values = lists.value(i);
                    let Some(floats) = values.as_primitive_opt::<Float32Type>() else {
                        return exec_err!("{NAME}(): embeddings must be FLOAT[]");
                    };
                    if floats.null_count() > 0 {
                        continue;
                    }
                    let side = if flag.value(i) {
                        &mut self.current
                    } else {
                        &mut self.reference
                    };
                    side.add_vector(floats.values())?;
                }
            }
            DataType::Float64 => {
                let nums = v.as_primitive::<Float64Type>();
                for i in 0..nums.len() {
                    if nums.is_null(i) || flag.is_null(i) {
                        continue;
                    }
                    let side = if flag.value(i) {
                        &mut self.current
                    } else {
                        &mut self.reference
                    };
                    side.add_f64(nums.value(i));
                }
            }
            _ => {
                let tokens = &mut self.tokens;
                let (reference, current) = (&mut self.reference, &mut self.current);
                let mut i = 0;
                crate::strings::for_each_text(v, |s| {
                    if let Some(s) = s
                        && !flag.is_null(i)
                    {
                        let side = if flag.value(i) {
                            &mut *current
                        } else {
                            &mut *reference
                        };
                        side.add_str(s, tokens);
                    }
                    i += 1;
                })?;
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let mut w = Writer::default();
        w.u8(self.kind.tag());
        self.reference.write(&mut w);
        self.current.write(&mut w);
        Ok(vec![ScalarValue::Binary(Some(w.0))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let Some(states) = states.first() else {
            return Ok(());
        };
        let Some(bytes) = states.as_any().downcast_ref::<BinaryArray>() else {
            return exec_err!("{NAME}(): partial state is not binary");
        };
        for b in bytes.iter().flatten() {
            let mut r = Reader::new(b);
            let tag = r.u8()?;
            if tag != self.kind.tag() {
                return exec_err!("{NAME}(): partial state of another kind");
            }
            let reference = Side::read(self.kind, &mut r)?;
            let current = Side::read(self.kind, &mut r)?;
            self.reference.merge(&reference)?;
            self.current.merge(&current)?;
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        verdict_to_scalar(&verdict(&self.reference, &self.current))
    }

    fn size(&self) -> usize {
        size_of::<Self>() + self.reference.bytes() + self.current.bytes()
    }
}

fn verdict_to_scalar(v: &Verdict) -> Result<ScalarValue> {
    use datafusion::arrow::array::{
        BooleanArray, Float64Array, Int64Array, ListArray, StringArray, StructArray,
    };
    let terms = StringArray::from(v.top_terms.clone());
    let list = ListArray::try_new(
        Arc::new(Field::new_list_field(DataType::Utf8, true)),
        datafusion::arrow::buffer::OffsetBuffer::from_lengths([terms.len()]),
        Arc::new(terms),
        None,
    )?;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Float64Array::from(vec![v.score])),
        Arc::new(Float64Array::from(vec![v.threshold])),
        Arc::new(Float64Array::from(vec![v.p_value])),
        Arc::new(BooleanArray::from(vec![v.drifted])),
        Arc::new(StringArray::from(vec![v.method])),
        Arc::new(Int64Array::from(vec![v.reference_rows as i64])),
        Arc::new(Int64Array::from(vec![v.current_rows as i64])),
        Arc::new(list),
    ];
    let s = StructArray::try_new(result_fields(), columns, None)?;
    Ok(ScalarValue::Struct(Arc::new(s)))
}
