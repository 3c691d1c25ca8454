//! `sentiment(text)`: a score from -1 (negative) to 1 (positive), NULL for text the model cannot read.

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

const NAME: &str = "sentiment";

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SentimentFunc {
    signature: Signature,
}

impl SentimentFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl Default for SentimentFunc {
    fn default() -> Self {
        Self::new()
    }
}

pub(crate) const UNKNOWN_DOC: &str = "The model is trained on English, Spanish, Portuguese, French, German, Italian, Arabic and Hindi (romanised Hinglish as written on social media; Hindi in Devanagari only through a small lexicon, so expect weak scores there). Text with fewer than half of its words known to the model goes through language(): when it is not one of those eight languages the result is NULL, not a neutral score the model could not back up.";

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DocSection { include: true, label: "Text functions", description: None },
        format!("The sentiment of the text from -1 (negative) to 1 (positive): the model's probability of positive minus its probability of negative. {UNKNOWN_DOC}"),
        "sentiment(text)",
    )
    .with_argument("text", "The text to score.")
    .with_sql_example("SELECT sentiment('thank you so much, this is great!') > 0.5;\n-- true\nSELECT sentiment('esto es una estafa, nadie me responde') < 0;\n-- true")
    .with_related_udf("sentiment_label")
    .build()
});

impl ScalarUDFImpl for SentimentFunc {
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
        let model = builtin::sentiment().map_err(model_error)?;
        let languages = builtin::language().map_err(model_error)?;
        let mut scratch = Scratch::pooled(model.model());
        let mut language_scratch = Scratch::pooled(languages.model());
        let mut probs = Vec::new();
        text_to_f64(&args.args, args.number_rows, |text| {
            model
                .score_with(
                    text,
                    &mut scratch,
                    &mut probs,
                    Some((languages, &mut *language_scratch)),
                )
                .map(|s| f64::from(s.score))
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
