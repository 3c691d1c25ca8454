//! JSON Lines / NDJSON message logs (web chat, SMS gateways, bots): one JSON object per line, fields mapped
//! to the message schema by name (see `fields.rs`), nested fields by dotted path (`column.sender_name`
//! `'from.name'`).

use std::borrow::Cow;

use super::ParseCtx;
use super::fields::{Mapping, Value, file_stem};
use super::flat_json::{self, Json};
use crate::error::Result;
use crate::sink::Sink;
use crate::time::truncate;

fn lookup<'v, 'a>(obj: &'v Json<'a>, path: &str) -> Option<&'v Json<'a>> {
    if let Some(v) = obj.get(path) {
        return Some(v);
    }
    let mut cur = obj;
    for part in path.split('.') {
        cur = cur.get(part)?;
    }
    Some(cur)
}

fn to_value<'v>(v: &'v Json<'_>) -> Option<Value<'v>> {
    Some(match v {
        Json::Null => return None,
        Json::Str(s) => Value::Str(Cow::Borrowed(s)),
        Json::Int(i) => Value::Int(*i),
        Json::Float(x) => Value::Number(*x),
        Json::Bool(b) => Value::Str(Cow::Owned(b.to_string())),
        Json::Array(items) => Value::List(
            items
                .iter()
                .filter_map(|i| match i {
                    Json::Str(s) => Some(s.to_string()),
                    Json::Object(_) => ["name", "filename", "file_name", "url", "type"]
                        .iter()
                        .find_map(|k| i.get(k).and_then(Json::as_str).map(str::to_string)),
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
        .is_some_and(|l| flat_json::from_slice(l.trim().as_bytes()).is_ok_and(|v| v.is_object()))
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
        let record = match flat_json::from_slice(raw) {
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
