//! JSON Lines / NDJSON message logs (web chat, SMS gateways, bots): one JSON object per line, fields mapped
//! to the message schema by name (see `fields.rs`), nested fields by dotted path (`column.sender_name`
//! `'from.name'`).

use std::borrow::Cow;

use super::fields::{Mapping, Value, file_stem};
use super::flat_json::{self, Json};
use super::{ExportFormat, ParseCtx, Probe};
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

/// JSON Lines / NDJSON logs.
pub struct Jsonl;

impl ExportFormat for Jsonl {
    fn name(&self) -> &'static str {
        "jsonl"
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["ndjson", "json_lines", "jsonlines"]
    }

    fn extensions(&self) -> &'static [&'static str] {
        &["jsonl", "ndjson"]
    }

    /// After the whole-document formats: a minified document is one line of JSON too.
    fn sniff(&self, probe: &Probe<'_>) -> bool {
        matches!(probe.ext, "json" | "log" | "txt" | "") && sniff(probe.text)
    }

    fn channel(&self) -> Option<&'static str> {
        None
    }

    fn parse(&self, data: &[u8], ctx: &ParseCtx<'_>, sink: &mut Sink<'_>) -> Result<()> {
        parse(data, ctx, sink)
    }

    fn splits_by_line(&self) -> bool {
        true
    }

    fn samples(&self) -> &'static [&'static str] {
        &["jsonl/webchat.jsonl", "jsonl/custom.ndjson"]
    }
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
    // Checking the whole object as UTF-8 once lets each line parse as text; parsing bytes made serde_json
    // check every string again (9% of a JSONL scan). Invalid UTF-8 falls back to bytes, which reports
    // the bad line and column.
    let text = std::str::from_utf8(data).ok();
    let lines: Box<dyn Iterator<Item = (&[u8], Option<&str>)>> = match text {
        Some(t) => Box::new(t.split('\n').map(|l| (l.as_bytes(), Some(l)))),
        None => Box::new(data.split(|&b| b == b'\n').map(|l| (l, None))),
    };
    for (idx, (raw, as_text)) in lines.enumerate() {
        let line = idx as u64 + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let parsed = match as_text {
            Some(t) => flat_json::from_str(t.strip_suffix('\r').unwrap_or(t)),
            None => flat_json::from_slice(raw),
        };
        let record = match parsed {
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
        // Field names are resolved on the first record, and the ones it lacks on later records.
        let m = match &mut mapping {
            Some(m) => {
                if m.incomplete() {
                    m.complete(|f| lookup(&record, f).is_some());
                }
                m
            }
            None => mapping.insert(Mapping::resolve(ctx, |f| lookup(&record, f).is_some())),
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;
    use crate::options::{ArchiveOptions, OnError};

    /// The texts read, and the (line, column) of each skipped record.
    type Outcome = (Vec<Option<String>>, Vec<(u64, Option<u64>)>);

    /// Parses `data` with errors skipped.
    fn run(data: &[u8]) -> Outcome {
        let options = ArchiveOptions {
            on_error: OnError::Skip,
            ..ArchiveOptions::default()
        };
        let mut texts = Vec::new();
        let mut emit = |m: Message, _: &str| {
            texts.push(m.text);
            Ok(())
        };
        let mut sink = Sink::new("memory:///log.jsonl", options.on_error, &mut emit);
        let ctx = ParseCtx {
            options: &options,
            name: "log.jsonl",
            container: None,
            default_channel: None,
            format_name: "jsonl",
        };
        parse(data, &ctx, &mut sink).expect("skip mode does not fail");
        let issues = sink.issues.iter().map(|i| (i.line, i.column)).collect();
        drop(sink);
        (texts, issues)
    }

    #[test]
    fn text_and_bytes_paths_agree() {
        // Valid UTF-8 takes the text path; one invalid byte anywhere sends the whole object down the byte
        // path. Both must read the same records and name the same bad line.
        let good = "{\"text\":\"olá\"}\r\n{\"text\":\"broken}\n\n{\"text\":\"✓\"}\n";
        let (texts, issues) = run(good.as_bytes());
        assert_eq!(texts, [Some("olá".to_string()), Some("✓".to_string())]);
        assert_eq!(issues, [(2, Some(16))]);

        let mut bad = good.as_bytes().to_vec();
        bad.extend_from_slice(b"{\"text\":\"\xff\"}\n");
        let (texts, issues) = run(&bad);
        assert_eq!(texts, [Some("olá".to_string()), Some("✓".to_string())]);
        assert_eq!(issues.len(), 2);
        assert_eq!(issues[0], (2, Some(16)));
        assert_eq!(issues[1].0, 5);
    }
}
