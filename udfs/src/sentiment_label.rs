//! `sentiment_label(text)`: 'positive', 'neutral' or 'negative', NULL for text the model cannot read.

use std::sync::LazyLock;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    Volatility,
};

use colloquy_textmodels::Scratch;
use colloquy_textmodels::builtin;

use crate::scoring::{coerce_one_text, model_error, text_to_label};
use crate::sentiment::UNKNOWN_DOC;

const NAME: &str = "sentiment_label";

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SentimentLabelFunc {
    signature: Signature,
}

impl SentimentLabelFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl Default for SentimentLabelFunc {
    fn default() -> Self {
        Self::new()
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DocSection {
            include: true,
            label: "Text functions",
            description: None,
        },
        format!(
            "The most likely of 'positive', 'neutral' and 'negative' for the text. {UNKNOWN_DOC}"
        ),
        "sentiment_label(text)",
    )
    .with_argument("text", "The text to classify.")
    .with_sql_example("SELECT sentiment_label('worst service ever, still no refund');\n-- negative")
    .with_related_udf("sentiment")
    .build()
});

impl ScalarUDFImpl for SentimentLabelFunc {
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
        let model = builtin::sentiment().map_err(model_error)?;
        let languages = builtin::language().map_err(model_error)?;
        let mut scratch = Scratch::pooled(model.model());
        let mut language_scratch = Scratch::pooled(languages.model());
        let mut probs = Vec::new();
        text_to_label(&args.args, args.number_rows, |text| {
            model
                .score_with(
                    text,
                    &mut scratch,
                    &mut probs,
                    Some((languages, &mut *language_scratch)),
                )
                .map(|s| s.label.as_str())
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
