//! Records skipped under `on_error 'skip'`, kept per table so that `archive_errors()` can list them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use datafusion::arrow::array::{RecordBatch, StringBuilder, UInt64Builder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::sink::RecordIssue;

/// At most this many skipped records are kept per table (the count goes on).
const KEEP_PER_TABLE: usize = 10_000;

#[derive(Debug, Default)]
struct TableIssues {
    issues: Vec<RecordIssue>,
    dropped: u64,
}

/// Shared between the table providers of one session and the `archive_errors()` function.
#[derive(Debug, Clone, Default)]
pub struct ErrorLog(Arc<Mutex<BTreeMap<String, TableIssues>>>);

impl ErrorLog {
    /// Starts a new scan of `table`: its earlier issues are replaced by this scan's.
    pub fn begin(&self, table: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(table.to_string(), TableIssues::default());
    }

    pub fn extend(&self, table: &str, issues: Vec<RecordIssue>) {
        if issues.is_empty() {
            return;
        }
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = map.entry(table.to_string()).or_default();
        for i in issues {
            if entry.issues.len() < KEEP_PER_TABLE {
                entry.issues.push(i);
            } else {
                entry.dropped += 1;
            }
        }
    }

    pub fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("table_name", DataType::Utf8, false),
            Field::new("source", DataType::Utf8, false),
            Field::new("line", DataType::UInt64, false),
            Field::new("column", DataType::UInt64, true),
            Field::new("reason", DataType::Utf8, false),
        ]))
    }

    pub fn to_batch(&self) -> RecordBatch {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut t, mut s, mut l, mut c, mut r) = (
            StringBuilder::new(),
            StringBuilder::new(),
            UInt64Builder::new(),
            UInt64Builder::new(),
            StringBuilder::new(),
        );
        for (table, ti) in map.iter() {
            for i in &ti.issues {
                t.append_value(table);
                s.append_value(&i.source);
                l.append_value(i.line);
                c.append_option(i.column);
                r.append_value(&i.reason);
            }
            if ti.dropped > 0 {
                t.append_value(table);
                s.append_value("");
                l.append_value(0);
                c.append_null();
                r.append_value(format!("{} more skipped records not listed", ti.dropped));
            }
        }
        RecordBatch::try_new(
            Self::schema(),
            vec![
                Arc::new(t.finish()),
                Arc::new(s.finish()),
                Arc::new(l.finish()),
                Arc::new(c.finish()),
                Arc::new(r.finish()),
            ],
        )
        .expect("columns match the archive_errors schema")
    }
}
