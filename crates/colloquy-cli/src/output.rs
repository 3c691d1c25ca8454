//! Result printing: aligned tables for people, CSV (with a header) and JSON for programs.

use std::io::Write;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::util::pretty::pretty_format_batches;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
    Ndjson,
}

/// Tables are aligned over the whole result, so they are buffered; CSV and NDJSON stream batch by batch.
pub struct Printer {
    format: OutputFormat,
    schema: SchemaRef,
    buffered: Vec<RecordBatch>,
    rows: usize,
    started: bool,
}

impl Printer {
    pub fn new(format: OutputFormat, schema: SchemaRef) -> Self {
        Self {
            format,
            schema,
            buffered: Vec::new(),
            rows: 0,
            started: false,
        }
    }

    pub fn push(&mut self, batch: RecordBatch, out: &mut impl Write) -> anyhow::Result<()> {
        self.rows += batch.num_rows();
        match self.format {
            OutputFormat::Table | OutputFormat::Json => self.buffered.push(batch),
            OutputFormat::Csv => {
                let mut w = datafusion::arrow::csv::WriterBuilder::new()
                    .with_header(!self.started)
                    .build(&mut *out);
                w.write(&batch)?;
                self.started = true;
            }
            OutputFormat::Ndjson => {
                let mut w = datafusion::arrow::json::LineDelimitedWriter::new(&mut *out);
                w.write(&batch)?;
                w.finish()?;
            }
        }
        Ok(())
    }

    pub fn finish(self, out: &mut impl Write) -> anyhow::Result<()> {
        match self.format {
            OutputFormat::Table => {
                if self.schema.fields().is_empty() {
                    return Ok(());
                }
                let empty = RecordBatch::new_empty(self.schema.clone());
                let batches = if self.buffered.is_empty() {
                    vec![empty]
                } else {
                    self.buffered
                };
                writeln!(out, "{}", pretty_format_batches(&batches)?)?;
                writeln!(
                    out,
                    "{} row{}",
                    self.rows,
                    if self.rows == 1 { "" } else { "s" }
                )?;
            }
            OutputFormat::Csv => {
                if !self.started && !self.schema.fields().is_empty() {
                    let header: Vec<String> = self
                        .schema
                        .fields()
                        .iter()
                        .map(|f| csv_quote(f.name()))
                        .collect();
                    writeln!(out, "{}", header.join(","))?;
                }
            }
            OutputFormat::Json => {
                let mut w = datafusion::arrow::json::ArrayWriter::new(&mut *out);
                let refs: Vec<&RecordBatch> = self.buffered.iter().collect();
                w.write_batches(&refs)?;
                w.finish()?;
                if self.buffered.iter().all(|b| b.num_rows() == 0) {
                    write!(out, "[]")?;
                }
                writeln!(out)?;
            }
            OutputFormat::Ndjson => {}
        }
        Ok(())
    }
}

fn csv_quote(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
