//! `intent_scores(text [, k])`: the k most likely intent labels with their probabilities.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{
    ArrayRef, Float64Builder, ListBuilder, StringBuilder, StructBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    Volatility,
};

use colloquy_textmodels::Scratch;
use colloquy_textmodels::builtin;

use crate::intent::TAXONOMY_DOC;
use crate::scoring::model_error;
use crate::strings::{apply_to_text, coerce_text, for_each_text};

const NAME: &str = "intent_scores";
const DEFAULT_K: usize = 3;

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct IntentScoresFunc {
    signature: Signature,
}

impl IntentScoresFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl Default for IntentScoresFunc {
    fn default() -> Self {
        Self::new()
    }
}

fn entry_fields() -> Fields {
    Fields::from(vec![
        Field::new("label", DataType::Utf8, false),
        Field::new("score", DataType::Float64, false),
    ])
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DocSection { include: true, label: "Text functions", description: None },
        format!("The k most likely intent labels of the message (3 by default), best first, as a list of {{label, score}} structs with the model's probabilities (no 'none' threshold is applied). {TAXONOMY_DOC}"),
        "intent_scores(text [, k])",
    )
    .with_argument("text", "A customer message.")
    .with_argument("k", "Optional constant: how many labels, from 1 to 15.")
    .with_sql_example("SELECT intent_scores('I was charged twice, please refund one', 2)[1]['label'];\n-- billing")
    .with_related_udf("intent")
    .build()
});

impl ScalarUDFImpl for IntentScoresFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [text] => Ok(vec![coerce_text(NAME, 1, text)?]),
            [text, k] if k.is_integer() || k.is_null() => {
                Ok(vec![coerce_text(NAME, 1, text)?, DataType::Int64])
            }
            [_, other] => plan_err!("{NAME}(): argument 2 (k) must be an integer, got {other}"),
            _ => plan_err!(
                "{NAME}() takes the text and, optionally, k; got {} arguments",
                arg_types.len()
            ),
        }
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::List(Arc::new(Field::new_list_field(
            DataType::Struct(entry_fields()),
            true,
        ))))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let model = builtin::intent().map_err(model_error)?;
        let n = model.labels().len();
        let k = match args.args.get(1) {
            None => DEFAULT_K,
            Some(ColumnarValue::Scalar(ScalarValue::Int64(Some(k))))
                if (1..=n as i64).contains(k) =>
            {
                *k as usize
            }
            Some(ColumnarValue::Scalar(ScalarValue::Int64(Some(k)))) => {
                return exec_err!("{NAME}(): k must be between 1 and {n}, got {k}");
            }
            Some(_) => return exec_err!("{NAME}(): k must be a constant integer"),
        };
        let mut scratch = Scratch::pooled(model.model());
        let mut probs = Vec::new();
        let mut order: Vec<usize> = Vec::with_capacity(n);
        apply_to_text(&args.args, args.number_rows, |text| {
            let entry = StructBuilder::new(
                entry_fields(),
                vec![
                    Box::new(StringBuilder::new()),
                    Box::new(Float64Builder::new()),
                ],
            );
            let mut list = ListBuilder::new(entry).with_field(Arc::new(Field::new_list_field(
                DataType::Struct(entry_fields()),
                true,
            )));
            for_each_text(text, |v| {
                let Some(v) = v else {
                    list.append(false);
                    return;
                };
                model.classify(v, &mut scratch, &mut probs);
                order.clear();
                order.extend(0..n);
                order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
                let entries = list.values();
                for &i in order.iter().take(k) {
                    if let Some(b) = entries.field_builder::<StringBuilder>(0) {
                        b.append_value(&model.labels()[i]);
                    }
                    if let Some(b) = entries.field_builder::<Float64Builder>(1) {
                        b.append_value(f64::from(probs[i]));
                    }
                    entries.append(true);
                }
                list.append(true);
            })?;
            Ok(Arc::new(list.finish()) as ArrayRef)
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
