//! `language(text [, candidates])`: the ISO 639-1 code of the text's language, or NULL when it cannot tell.

use std::sync::LazyLock;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    Volatility,
};

use colloquy_textmodels::Scratch;
use colloquy_textmodels::builtin;

use crate::scoring::{coerce_text_and_option, language_candidates, model_error, text_to_label};

const NAME: &str = "language";

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct LanguageFunc {
    signature: Signature,
}

impl LanguageFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl Default for LanguageFunc {
    fn default() -> Self {
        Self::new()
    }
}

pub(crate) const CANDIDATES_DOC: &str = "Optional constant: comma-separated ISO 639-1 codes to choose among, e.g. 'en,es,fr' (nb and nn mean no). Without it, the session setting colloquy.language.candidates applies, and when that is empty every language the model knows.";

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DocSection { include: true, label: "Text functions", description: None },
        "The language of the text as an ISO 639-1 code (Norwegian Bokmål and Nynorsk are both 'no'), from a character n-gram model built into colloquy that knows 33 languages and is trained on short chat text, including romanised Hindi and Latin-script Serbian. NULL for NULL, and for text with fewer than two letters (emoji, numbers, punctuation).",
        "language(text [, candidates])",
    )
    .with_argument("text", "The text to identify.")
    .with_argument("candidates", CANDIDATES_DOC)
    .with_sql_example(
        "SELECT language('¿Dónde está mi pedido?');\n-- es\nSELECT language('mera order kab aayega bhai');\n-- hi\nSELECT language('Hvor er pakken min?', 'da,no,sv');\n-- no",
    )
    .with_related_udf("language_confidence")
    .build()
});

impl ScalarUDFImpl for LanguageFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        coerce_text_and_option(
            NAME,
            "the candidate languages such as 'en,es,fr'",
            arg_types,
        )
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let detector = builtin::language().map_err(model_error)?;
        let mask = language_candidates(NAME, &args.args, &args.config_options)?;
        let mut scratch = Scratch::pooled(detector.model());
        let mut logits = Vec::new();
        text_to_label(&args.args, args.number_rows, |text| {
            let language =
                detector.language_of(text, mask.as_deref(), &mut scratch, &mut logits)?;
            Some(detector.codes()[language].as_str())
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
