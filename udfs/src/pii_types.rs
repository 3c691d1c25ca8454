//! `pii_types(text [, types])`: which kinds of personal data the text holds, as a list.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{ArrayRef, ListBuilder, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    Volatility,
};

use crate::pii::kinds_found;
use crate::redact_pii::{chosen_types, coerce_pii_args};
use crate::strings::{apply_to_text, for_each_text};

const NAME: &str = "pii_types";

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PiiTypes {
    signature: Signature,
}

impl PiiTypes {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl Default for PiiTypes {
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
        "The kinds of personal data found in the text, each once, in the order they first appear: 'email', 'phone', 'card', 'iban', 'ip'. An empty list when there is none; NULL in, NULL out. Finds exactly what redact_pii() replaces.",
        "pii_types(text [, types])",
    )
    .with_argument("text", "The text to inspect.")
    .with_argument(
        "types",
        "Optional constant: a comma-separated list of the types to look for, from email, phone, card, iban, ip (or all).",
    )
    .with_sql_example(
        "SELECT pii_types('call +1-202-555-0143 or write to bo@example.org');\n-- [phone, email]",
    )
    .with_related_udf("redact_pii")
    .build()
});

fn item_field() -> Arc<Field> {
    Arc::new(Field::new("item", DataType::Utf8, true))
}

impl ScalarUDFImpl for PiiTypes {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        coerce_pii_args(NAME, arg_types)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::List(item_field()))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let kinds = chosen_types(NAME, &args.args)?;
        apply_to_text(&args.args, args.number_rows, |text| {
            let mut out = ListBuilder::new(StringBuilder::new()).with_field(item_field());
            for_each_text(text, |v| match v {
                None => out.append_null(),
                Some(s) => {
                    for k in kinds_found(s, kinds) {
                        out.values().append_value(k.sql_name());
                    }
                    out.append(true);
                }
            })?;
            Ok(Arc::new(out.finish()) as ArrayRef)
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
