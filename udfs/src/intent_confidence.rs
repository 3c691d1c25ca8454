//! `intent_confidence(text)`: the probability of the best intent label.

use std::sync::LazyLock;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    Volatility,
};

use colloquy_textmodels::Scratch;
use colloquy_textmodels::builtin;

use crate::scoring::{coerce_one_text, model_error, text_to_f64};

const NAME: &str = "intent_confidence";

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct IntentConfidenceFunc {
    signature: Signature,
}

impl IntentConfidenceFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl Default for IntentConfidenceFunc {
    fn default() -> Self {
        Self::new()
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DocSection { include: true, label: "Text functions", description: None },
        "The model's probability, between 0 and 1, of the most likely intent label (before the 'none' threshold is applied): when intent() says 'none' because nothing fitted well enough, this is how well the best label fitted. NULL for NULL.",
        "intent_confidence(text)",
    )
    .with_argument("text", "A customer message.")
    .with_sql_example("SELECT intent_confidence('I want my money back for order 5521') > 0.5;\n-- true")
    .with_related_udf("intent")
    .build()
});

impl ScalarUDFImpl for IntentConfidenceFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        coerce_one_text(NAME, arg_types)
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let model = builtin::intent().map_err(model_error)?;
        let mut scratch = Scratch::pooled(model.model());
        let mut probs = Vec::new();
        text_to_f64(&args.args, args.number_rows, |text| {
            Some(f64::from(
                model.classify(text, &mut scratch, &mut probs).confidence,
            ))
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
