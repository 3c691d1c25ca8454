//! Helpers for the formats that export one JSON document (Telegram, Discord, Messenger, Teams).

use serde_json::Value as Json;

use crate::sink::Sink;

/// Parses a whole JSON document (into `serde_json::Value` or the borrowing `flat_json::Json`), reporting a
/// syntax error with its line and column.
pub fn parse_document<'a, T: serde::Deserialize<'a>>(
    data: &'a [u8],
    sink: &mut Sink<'_>,
) -> crate::error::Result<Option<T>> {
    match serde_json::from_slice::<T>(super::strip_bom(data)) {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            sink.bad_record(
                e.line() as u64,
                Some(e.column() as u64),
                format!("invalid JSON: {e}"),
            )?;
            Ok(None)
        }
    }
}

pub fn str_of<'a>(v: &'a Json, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Json::as_str).filter(|s| !s.is_empty())
}

/// A string or number field as text (ids are numbers in some exports and strings in others).
pub fn text_of(v: &Json, key: &str) -> Option<String> {
    match v.get(key)? {
        Json::String(s) if !s.is_empty() => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The first present key of each object in the array at `list` (attachment names, file names...).
pub fn names_in(v: &Json, list: &str, keys: &[&str]) -> Vec<String> {
    v.get(list)
        .and_then(Json::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|x| keys.iter().find_map(|k| str_of(x, k)))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}
