//! `language_confidence(text [, candidates])`: how sure language() is, as a probability.

use std::sync::LazyLock;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    Volatility,
};

use colloquy_textmodels::Scratch;
use colloquy_textmodels::builtin;

use crate::language::CANDIDATES_DOC;
use crate::scoring::{coerce_text_and_option, language_candidates, model_error, text_to_f64};

const NAME: &str = "language_confidence";

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct LanguageConfidenceFunc {
    signature: Signature,
}

impl LanguageConfidenceFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl Default for LanguageConfidenceFunc {
    fn default() -> Self {
        Self::new()
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DocSection { include: true, label: "Text functions", description: None },
        "The probability, between 0 and 1, of the language language() returns for the same arguments, among the candidate languages. NULL where language() is NULL. Filter on it to keep only confident answers.",
        "language_confidence(text [, candidates])",
    )
    .with_argument("text", "The text to identify.")
    .with_argument("candidates", CANDIDATES_DOC)
    .with_sql_example("SELECT language_confidence('thanks a lot') > 0.9;\n-- true")
    .with_related_udf("language")
    .build()
});

impl ScalarUDFImpl for LanguageConfidenceFunc {
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
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let detector = builtin::language().map_err(model_error)?;
        let mask = language_candidates(NAME, &args.args, &args.config_options)?;
        let mut scratch = Scratch::pooled(detector.model());
        let mut probs = Vec::new();
        text_to_f64(&args.args, args.number_rows, |text| {
            let d = detector.detect(text, mask.as_deref(), &mut scratch, &mut probs)?;
            Some(f64::from(d.confidence))
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
