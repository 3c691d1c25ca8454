//! What the model-backed functions share: argument checking, reading the session settings, and turning a
//! per-text scorer into an Arrow column.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Builder, StringBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::{DataFusionError, Result, exec_err, plan_err};
use datafusion::logical_expr::ColumnarValue;

use colloquy_textmodels::ModelError;

use crate::options::ColloquyOptions;
use crate::strings::{apply_to_text, coerce_text, constant_text, for_each_text};

/// A shipped model that does not load is a broken build, not bad input.
pub fn model_error(e: ModelError) -> DataFusionError {
    DataFusionError::Internal(format!("built-in model: {e}"))
}

/// Checks `f(text [, option])` where the option is text.
pub fn coerce_text_and_option(
    function: &str,
    option: &str,
    arg_types: &[DataType],
) -> Result<Vec<DataType>> {
    match arg_types {
        [text] => Ok(vec![coerce_text(function, 1, text)?]),
        [text, opt] => Ok(vec![
            coerce_text(function, 1, text)?,
            coerce_text(function, 2, opt)?,
        ]),
        _ => plan_err!(
            "{function}() takes the text and, optionally, {option}; got {} arguments",
            arg_types.len()
        ),
    }
}

/// Checks `f(text)`.
pub fn coerce_one_text(function: &str, arg_types: &[DataType]) -> Result<Vec<DataType>> {
    match arg_types {
        [text] => Ok(vec![coerce_text(function, 1, text)?]),
        _ => plan_err!(
            "{function}() takes one text argument; got {}",
            arg_types.len()
        ),
    }
}

/// The language candidates: the constant second argument if given, else the session setting.
pub fn language_candidates(
    function: &str,
    args: &[ColumnarValue],
    config: &ConfigOptions,
) -> Result<Option<Vec<bool>>> {
    let list = match args.get(1) {
        Some(arg) => match constant_text(function, 2, arg)? {
            Some(list) => list,
            None => return exec_err!("{function}(): the candidate languages must not be NULL"),
        },
        None => config
            .extensions
            .get::<ColloquyOptions>()
            .map(|o| o.language.candidates.clone())
            .unwrap_or_default(),
    };
    let detector = colloquy_textmodels::builtin::language().map_err(model_error)?;
    detector
        .candidates(&list)
        .or_else(|e| exec_err!("{function}(): {e}"))
}

/// The intent threshold: the session setting, else the one chosen in training.
pub fn intent_threshold(function: &str, config: &ConfigOptions, trained: f32) -> Result<f32> {
    match config
        .extensions
        .get::<ColloquyOptions>()
        .and_then(|o| o.intent.threshold)
    {
        Some(t) if (0.0..=1.0).contains(&t) => Ok(t as f32),
        Some(t) => {
            exec_err!("{function}(): colloquy.intent.threshold must be between 0 and 1, got {t}")
        }
        None => Ok(trained),
    }
}

/// A Float64 column from a scorer of each text (NULL text → NULL).
pub fn text_to_f64(
    args: &[ColumnarValue],
    rows: usize,
    mut f: impl FnMut(&str) -> Option<f64>,
) -> Result<ColumnarValue> {
    apply_to_text(args, rows, |text| {
        let mut b = Float64Builder::with_capacity(text.len());
        for_each_text(text, |v| b.append_option(v.and_then(&mut f)))?;
        Ok(Arc::new(b.finish()) as ArrayRef)
    })
}

/// A Utf8 column from a labeller of each text (NULL text → NULL).
pub fn text_to_label<'m>(
    args: &[ColumnarValue],
    rows: usize,
    mut f: impl FnMut(&str) -> Option<&'m str>,
) -> Result<ColumnarValue> {
    apply_to_text(args, rows, |text| {
        let mut b = StringBuilder::with_capacity(text.len(), text.len() * 8);
        for_each_text(text, |v| b.append_option(v.and_then(&mut f)))?;
        Ok(Arc::new(b.finish()) as ArrayRef)
    })
}
