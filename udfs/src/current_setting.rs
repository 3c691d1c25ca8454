//! `current_setting(name)`: the value of a session setting as text, as in PostgreSQL.
//!
//! The analytics views read their parameters through it (`colloquy.analytics.fcr_window_days`, …), so a
//! `SET` changes what the views compute without recreating them: views are planned again per query, and
//! the setting is read from the session that runs the query.

use std::sync::LazyLock;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::{ConfigEntry, ConfigOptions, ExtensionOptions};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    Volatility,
};

use crate::options::ColloquyOptions;

const NAME: &str = "current_setting";

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CurrentSettingFunc {
    signature: Signature,
}

impl CurrentSettingFunc {
    pub fn new() -> Self {
        Self {
            // Stable: one value per query, which the planner may fold into a constant.
            signature: Signature::exact(vec![DataType::Utf8], Volatility::Stable),
        }
    }
}

impl Default for CurrentSettingFunc {
    fn default() -> Self {
        Self::new()
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DocSection {
            include: true,
            label: "Other functions",
            description: None,
        },
        "The current value of a session setting (as SHOW prints it) as text; NULL for a setting that has no value. Errors for a name that is not a setting.",
        "current_setting(name)",
    )
    .with_argument(
        "name",
        "The full name of the setting, e.g. 'colloquy.analytics.fcr_window_days' or 'datafusion.execution.batch_size'.",
    )
    .with_sql_example(
        "SET colloquy.analytics.fcr_window_days = 3;\nSELECT current_setting('colloquy.analytics.fcr_window_days');\n-- 3",
    )
    .build()
});

/// The value of `name`, or an error that lists the colloquy settings when there is no such setting.
fn lookup(config: &ConfigOptions, name: &str) -> Result<Option<String>> {
    let wanted = name.trim().to_ascii_lowercase();
    // colloquy's settings list their keys without the `colloquy.` prefix.
    let ours: Vec<ConfigEntry> = config
        .extensions
        .get::<ColloquyOptions>()
        .map(|o| o.entries())
        .unwrap_or_default();
    let found = match wanted.strip_prefix("colloquy.") {
        Some(key) => ours.iter().find(|e| e.key == key).map(|e| e.value.clone()),
        None => config
            .entries()
            .into_iter()
            .find(|e| e.key == wanted)
            .map(|e| e.value),
    };
    match found {
        Some(value) => Ok(value),
        None => {
            let names: Vec<String> = ours.iter().map(|e| format!("colloquy.{}", e.key)).collect();
            plan_err!(
                "{NAME}(): there is no setting '{name}' (colloquy's settings: {})",
                names.join(", ")
            )
        }
    }
}

impl ScalarUDFImpl for CurrentSettingFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let config = &args.config_options;
        match &args.args[0] {
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(name))) => Ok(ColumnarValue::Scalar(
                ScalarValue::Utf8(lookup(config, name)?),
            )),
            ColumnarValue::Scalar(ScalarValue::Utf8(None)) => {
                Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)))
            }
            _ => exec_err!("{NAME}(): the setting name must be a constant string"),
        }
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}
