//! Where parsers put messages and bad records: batches go downstream, bad records fail or are logged.

use datafusion::arrow::array::RecordBatch;

use crate::error::{ArchiveError, Result};
use crate::message::Message;
use crate::options::OnError;
use crate::schema::{BATCH_ROWS, MessageBatchBuilder};

/// A record that could not be read, as `archive_errors()` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordIssue {
    pub source: String,
    pub line: u64,
    pub column: Option<u64>,
    pub reason: String,
}

/// Collects one scan unit's messages into batches and applies the `on_error` policy.
pub struct Sink<'a> {
    source: String,
    on_error: OnError,
    builder: MessageBatchBuilder,
    emit: &'a mut (dyn FnMut(RecordBatch) -> Result<()> + Send),
    pub issues: Vec<RecordIssue>,
    pub rows: u64,
}

impl<'a> Sink<'a> {
    pub fn new(
        source: impl Into<String>,
        on_error: OnError,
        emit: &'a mut (dyn FnMut(RecordBatch) -> Result<()> + Send),
    ) -> Self {
        Self {
            source: source.into(),
            on_error,
            builder: MessageBatchBuilder::default(),
            emit,
            issues: Vec::new(),
            rows: 0,
        }
    }

    /// The object URL (and `#entry` inside a container) that rows and errors are attributed to.
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn set_source(&mut self, source: impl Into<String>) -> Result<()> {
        // Rows keep the source they were read from: flush before switching.
        self.flush()?;
        self.source = source.into();
        Ok(())
    }

    pub fn push(&mut self, m: Message) -> Result<()> {
        self.builder.append(&m, &self.source);
        self.rows += 1;
        if self.builder.len() >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    /// Reports a record that cannot be read: an error with `on_error 'fail'`, logged with `'skip'`.
    pub fn bad_record(
        &mut self,
        line: u64,
        column: Option<u64>,
        reason: impl Into<String>,
    ) -> Result<()> {
        let reason = reason.into();
        match self.on_error {
            OnError::Fail => Err(ArchiveError::Record {
                source_url: self.source.clone(),
                line,
                column,
                reason,
            }),
            OnError::Skip => {
                self.issues.push(RecordIssue {
                    source: self.source.clone(),
                    line,
                    column,
                    reason,
                });
                Ok(())
            }
        }
    }

    /// Reports an object that cannot be read at all (line 0).
    pub fn bad_object(&mut self, reason: impl Into<String>) -> Result<()> {
        let reason = reason.into();
        match self.on_error {
            OnError::Fail => Err(ArchiveError::object(self.source.clone(), reason)),
            OnError::Skip => {
                self.issues.push(RecordIssue {
                    source: self.source.clone(),
                    line: 0,
                    column: None,
                    reason,
                });
                Ok(())
            }
        }
    }

    pub fn flush(&mut self) -> Result<()> {
        if !self.builder.is_empty() {
            let batch = self.builder.finish();
            (self.emit)(batch)?;
        }
        Ok(())
    }
}
