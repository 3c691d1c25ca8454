//! What the text functions share: which argument types count as text, and walking a text column whatever
//! its Arrow encoding.

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::ColumnarValue;

/// The type a text argument is coerced to: string types stay as they are, dictionaries of strings are
/// unpacked, NULL becomes Utf8; anything else is a planning error naming the function and the argument.
pub fn coerce_text(function: &str, position: usize, t: &DataType) -> Result<DataType> {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Ok(t.clone()),
        DataType::Null => Ok(DataType::Utf8),
        DataType::Dictionary(_, value) if is_text(value) => Ok(value.as_ref().clone()),
        other => plan_err!(
            "{function}(): argument {position} must be text (Utf8, LargeUtf8, Utf8View or a dictionary of them), got {other}"
        ),
    }
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// A string type, or a dictionary of strings: what a text argument may be before coercion.
pub fn is_text_type(t: &DataType) -> bool {
    is_text(t) || matches!(t, DataType::Dictionary(_, v) if is_text(v))
}

/// [`is_text_type`], or NULL (an untyped NULL literal, taken as Utf8).
pub fn is_text_or_null(t: &DataType) -> bool {
    is_text_type(t) || t.is_null()
}

/// Calls `f` with every value of a text array, in order (`None` for NULL).
pub fn for_each_text(array: &ArrayRef, mut f: impl FnMut(Option<&str>)) -> Result<()> {
    match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().iter().for_each(&mut f),
        DataType::LargeUtf8 => array.as_string::<i64>().iter().for_each(&mut f),
        DataType::Utf8View => array.as_string_view().iter().for_each(&mut f),
        DataType::Null => (0..array.len()).for_each(|_| f(None)),
        other => return exec_err!("expected a text column, got {other}"),
    }
    Ok(())
}

/// The values of a text array, borrowed from it (`None` for NULL): for callers that need them all at once.
pub fn text_values(array: &ArrayRef) -> Result<Vec<Option<&str>>> {
    Ok(match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().iter().collect(),
        DataType::LargeUtf8 => array.as_string::<i64>().iter().collect(),
        DataType::Utf8View => array.as_string_view().iter().collect(),
        DataType::Null => vec![None; array.len()],
        other => return exec_err!("expected a text column, got {other}"),
    })
}

/// A constant text argument (such as a list of types), or an error naming the function and the argument.
pub fn constant_text(
    function: &str,
    position: usize,
    value: &ColumnarValue,
) -> Result<Option<String>> {
    match value {
        ColumnarValue::Scalar(
            ScalarValue::Utf8(s) | ScalarValue::LargeUtf8(s) | ScalarValue::Utf8View(s),
        ) => Ok(s.clone()),
        ColumnarValue::Scalar(ScalarValue::Null) => Ok(None),
        ColumnarValue::Scalar(ScalarValue::Dictionary(_, inner)) => constant_text(
            function,
            position,
            &ColumnarValue::Scalar(inner.as_ref().clone()),
        ),
        _ => exec_err!("{function}(): argument {position} must be a constant string"),
    }
}

/// Builds a text column of the same Arrow type as the input, from values computed row by row.
pub fn map_text<'a>(
    array: &'a ArrayRef,
    mut f: impl FnMut(&'a str) -> std::borrow::Cow<'a, str>,
) -> Result<ArrayRef> {
    use datafusion::arrow::array::{LargeStringBuilder, StringBuilder, StringViewBuilder};
    use std::sync::Arc;

    let len = array.len();
    Ok(match array.data_type() {
        DataType::Utf8 => {
            let mut b = StringBuilder::with_capacity(len, len * 32);
            array
                .as_string::<i32>()
                .iter()
                .for_each(|v| b.append_option(v.map(&mut f)));
            Arc::new(b.finish())
        }
        DataType::LargeUtf8 => {
            let mut b = LargeStringBuilder::with_capacity(len, len * 32);
            array
                .as_string::<i64>()
                .iter()
                .for_each(|v| b.append_option(v.map(&mut f)));
            Arc::new(b.finish())
        }
        DataType::Utf8View => {
            let mut b = StringViewBuilder::with_capacity(len);
            array
                .as_string_view()
                .iter()
                .for_each(|v| b.append_option(v.map(&mut f)));
            Arc::new(b.finish())
        }
        DataType::Null => Arc::new(datafusion::arrow::array::StringArray::new_null(len)),
        other => return exec_err!("expected a text column, got {other}"),
    })
}

/// Runs a column kernel over the first argument: a scalar in gives a scalar out, so that constant
/// folding and `SELECT f('literal')` keep working.
pub fn apply_to_text(
    args: &[ColumnarValue],
    rows: usize,
    kernel: impl FnOnce(&ArrayRef) -> Result<ArrayRef>,
) -> Result<ColumnarValue> {
    let Some(first) = args.first() else {
        return exec_err!("a text function was called without its text argument");
    };
    let scalar = matches!(first, ColumnarValue::Scalar(_));
    let text = first.to_array(rows)?;
    let out = kernel(&text)?;
    if scalar {
        return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?));
    }
    Ok(ColumnarValue::Array(out))
}
