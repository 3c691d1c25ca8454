//! JSON Lines / NDJSON message logs (web chat, SMS gateways, bots): one JSON object per line, fields mapped
//! to the message schema by name (see `fields.rs`), nested fields by dotted path (`column.sender_name`
//! `'from.name'`).

use std::borrow::Cow;

use serde_json::Value as Json;

use super::ParseCtx;
use super::fields::{Mapping, Value, file_stem};
use crate::error::Result;
use crate::sink::Sink;
use crate::time::truncate;

fn lookup<'a>(obj: &'a Json, path: &str) -> Option<&'a Json> {
    if let Some(v) = obj.get(path) {
        return Some(v);
    }
    let mut cur = obj;
    for part in path.split('.') {
        cur = cur.get(part)?;
    }
    Some(cur)
}

fn to_value(v: &Json) -> Option<Value<'_>> {
    Some(match v {
        Json::Null => return None,
        Json::String(s) => Value::Str(Cow::Borrowed(s)),
        Json::Number(n) => Value::Number(n.as_f64()?),
        Json::Bool(b) => Value::Str(Cow::Owned(b.to_string())),
        Json::Array(items) => Value::List(
            items
                .iter()
                .filter_map(|i| match i {
                    Json::String(s) => Some(s.clone()),
                    Json::Object(o) => ["name", "filename", "file_name", "url", "type"]
                        .iter()
                        .find_map(|k| o.get(*k).and_then(Json::as_str).map(str::to_string)),
                    Json::Null => None,
                    other => Some(other.to_string()),
                })
                .collect(),
        ),
        Json::Object(_) => Value::Str(Cow::Owned(v.to_string())),
    })
}

/// Does this look like JSON Lines (an object on the first line)?
pub fn sniff(text: &str) -> bool {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| serde_json::from_str::<serde_json::Map<String, Json>>(l.trim()).is_ok())
}

pub fn parse(data: &[u8], ctx: &ParseCtx<'_>, sink: &mut Sink<'_>) -> Result<()> {
    let data = super::strip_bom(data);
    let conversation = file_stem(ctx.name);
    let mut mapping: Option<Mapping> = None;
    for (idx, raw) in data.split(|&b| b == b'\n').enumerate() {
        let line = idx as u64 + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let record: Json = match serde_json::from_slice(raw) {
            Ok(v) => v,
            Err(e) => {
                sink.bad_record(line, Some(e.column() as u64), format!("invalid JSON: {e}"))?;
                continue;
            }
        };
        if !record.is_object() {
            sink.bad_record(line, Some(1), "expected a JSON object per line")?;
            continue;
        }
        // Field names are resolved on the first record; later records may omit optional fields.
        let m =
            mapping.get_or_insert_with(|| Mapping::resolve(ctx, |f| lookup(&record, f).is_some()));
        match m.message(ctx, &conversation, line, |f| {
            lookup(&record, f).and_then(to_value)
        }) {
            Ok(msg) => sink.push(msg)?,
            Err((field, reason)) => sink.bad_record(
                line,
                None,
                format!("field '{}': {reason}", truncate(&field, 40)),
            )?,
        }
    }
    Ok(())
}
