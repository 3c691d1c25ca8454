//! `intent(text)`: the customer-service request the message makes, or 'none'.

use std::sync::LazyLock;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    Volatility,
};

use colloquy_textmodels::Scratch;
use colloquy_textmodels::builtin;

use crate::scoring::{coerce_one_text, intent_threshold, model_error, text_to_label};

const NAME: &str = "intent";

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct IntentFunc {
    signature: Signature,
}

impl IntentFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl Default for IntentFunc {
    fn default() -> Self {
        Self::new()
    }
}

pub(crate) const TAXONOMY_DOC: &str = "Labels: track_order, delivery, shipping_address, place_order, change_order, cancel_order, billing, payment, refund, return, account, complaint, feedback, human_agent, and none for messages that make no request (greetings, thanks, small talk) or that no label fits with enough confidence (the threshold chosen in training, or the session setting colloquy.intent.threshold).";

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DocSection { include: true, label: "Text functions", description: None },
        format!("The customer-service intent of the message, from a model built into colloquy and trained on English support messages (with some Spanish, French, German, Portuguese and Italian). {TAXONOMY_DOC} NULL for NULL."),
        "intent(text)",
    )
    .with_argument("text", "A customer message.")
    .with_sql_example("SELECT intent('where is my package? it was due on monday');\n-- track_order\nSELECT intent('thanks, have a nice day!');\n-- none")
    .with_related_udf("intent_confidence")
    .with_related_udf("intent_scores")
    .build()
});

impl ScalarUDFImpl for IntentFunc {
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
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let model = builtin::intent().map_err(model_error)?;
        let threshold = intent_threshold(NAME, &args.config_options, model.threshold())?;
        let mut scratch = Scratch::pooled(model.model());
        let mut probs = Vec::new();
        text_to_label(&args.args, args.number_rows, |text| {
            let i = model.classify_with(text, threshold, &mut scratch, &mut probs);
            Some(model.labels()[i.label].as_str())
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
