//! `redact_pii(text [, types])`: the text with personal data replaced by typed placeholders.

use std::sync::LazyLock;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    Volatility,
};

use crate::pii::{PiiSet, redact};
use crate::strings::{apply_to_text, coerce_text, constant_text, map_text};

const NAME: &str = "redact_pii";

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RedactPii {
    signature: Signature,
}

impl RedactPii {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl Default for RedactPii {
    fn default() -> Self {
        Self::new()
    }
}

/// The types named by a constant argument, or all of them.
pub(crate) fn chosen_types(function: &str, args: &[ColumnarValue]) -> Result<PiiSet> {
    let Some(arg) = args.get(1) else {
        return Ok(PiiSet::ALL);
    };
    match constant_text(function, 2, arg)? {
        None => exec_err!("{function}(): the list of types must not be NULL"),
        Some(list) => list
            .parse::<PiiSet>()
            .or_else(|e| exec_err!("{function}(): {e}")),
    }
}

pub(crate) fn coerce_pii_args(function: &str, arg_types: &[DataType]) -> Result<Vec<DataType>> {
    match arg_types {
        [text] => Ok(vec![coerce_text(function, 1, text)?]),
        [text, types] => Ok(vec![
            coerce_text(function, 1, text)?,
            coerce_text(function, 2, types)?,
        ]),
        _ => plan_err!(
            "{function}() takes the text and, optionally, the types to look for, e.g. {function}(text, 'email,phone'); got {} arguments",
            arg_types.len()
        ),
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DocSection {
            include: true,
            label: "Text functions",
            description: None,
        },
        "Replaces personal data in the text with typed placeholders: e-mail addresses (<EMAIL>), phone numbers in national and international formats (<PHONE>), payment card numbers that pass the Luhn check (<CARD>), IBANs that pass the ISO 13616 checksum (<IBAN>) and IPv4/IPv6 addresses (<IP>). NULL in, NULL out.",
        "redact_pii(text [, types])",
    )
    .with_argument("text", "The text to redact.")
    .with_argument(
        "types",
        "Optional constant: a comma-separated list of the types to redact, from email, phone, card, iban, ip (or all).",
    )
    .with_sql_example(
        "SELECT redact_pii('Mail me at ana@example.com or call +44 20 7946 0958');\n-- Mail me at <EMAIL> or call <PHONE>\nSELECT redact_pii('ana@example.com, +44 20 7946 0958', 'email');\n-- <EMAIL>, +44 20 7946 0958",
    )
    .with_related_udf("pii_types")
    .build()
});

impl ScalarUDFImpl for RedactPii {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        coerce_pii_args(NAME, arg_types)
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        // The text keeps its encoding (Utf8, LargeUtf8 or Utf8View).
        Ok(match arg_types.first() {
            Some(t @ (DataType::LargeUtf8 | DataType::Utf8View)) => t.clone(),
            _ => DataType::Utf8,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let kinds = chosen_types(NAME, &args.args)?;
        apply_to_text(&args.args, args.number_rows, |text| {
            map_text(text, |s| redact(s, kinds))
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
