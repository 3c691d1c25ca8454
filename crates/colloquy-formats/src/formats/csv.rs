//! CSV/TSV message logs with a header row (SMS exports, ticketing tools), mapped like JSONL by column name.

use std::borrow::Cow;

use super::fields::{Mapping, Value, file_stem};
use super::{ExportFormat, ParseCtx};
use crate::error::Result;
use crate::sink::Sink;

/// CSV and TSV logs with a header row.
pub struct Csv;

impl ExportFormat for Csv {
    fn name(&self) -> &'static str {
        "csv"
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["tsv"]
    }

    fn extensions(&self) -> &'static [&'static str] {
        &["csv", "tsv"]
    }

    fn channel(&self) -> Option<&'static str> {
        None
    }

    fn parse(&self, data: &[u8], ctx: &ParseCtx<'_>, sink: &mut Sink<'_>) -> Result<()> {
        parse(data, ctx, sink)
    }

    fn samples(&self) -> &'static [&'static str] {
        &["csv/sms.csv", "csv/sms_semicolon.tsv"]
    }
}

pub fn parse(data: &[u8], ctx: &ParseCtx<'_>, sink: &mut Sink<'_>) -> Result<()> {
    let data = super::strip_bom(data);
    let delimiter = if ctx.name.ends_with(".tsv") || ctx.name.contains(".tsv.") {
        b'\t'
    } else {
        ctx.options.delimiter
    };
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .flexible(false)
        .from_reader(data);
    let headers = match reader.headers() {
        Ok(h) => h.iter().map(|h| h.trim().to_string()).collect::<Vec<_>>(),
        Err(e) => return sink.bad_object(format!("cannot read the CSV header row: {e}")),
    };
    if headers.iter().all(String::is_empty) {
        return sink.bad_object("the CSV file has no header row");
    }
    let index = |f: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(f));
    let mapping = Mapping::resolve(ctx, |f| index(f).is_some());
    for col in ctx.options.columns.values() {
        if index(col).is_none() {
            return sink.bad_object(format!(
                "mapped column '{col}' is not in the CSV header ({})",
                headers.join(", ")
            ));
        }
    }
    let conversation = file_stem(ctx.name);
    let mut record = ::csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map_or(0, |p| p.line());
                let get = |f: &str| {
                    index(f)
                        .and_then(|i| record.get(i))
                        .filter(|v| !v.is_empty())
                        .map(|v| Value::Str(Cow::Borrowed(v)))
                };
                match mapping.message(ctx, &conversation, line, get) {
                    Ok(msg) => sink.push(msg)?,
                    Err((field, reason)) => {
                        sink.bad_record(line, None, format!("column '{field}': {reason}"))?
                    }
                }
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                let reason = match e.kind() {
                    ::csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => {
                        format!("expected {expected_len} fields, found {len}")
                    }
                    ::csv::ErrorKind::Utf8 { err, .. } => {
                        format!("invalid UTF-8 in field {}", err.field() + 1)
                    }
                    _ => e.to_string(),
                };
                sink.bad_record(line, None, reason)?;
                // The csv reader resynchronises at the next record.
            }
        }
    }
    Ok(())
}
