//! Where parsers put messages and bad records: messages go to the receiver, bad records fail or are
//! logged according to `on_error`.

use crate::error::{FormatError, Result};
use crate::message::Message;
use crate::options::OnError;

/// A record that could not be read, as `archive_errors()` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordIssue {
    pub source: String,
    pub line: u64,
    pub column: Option<u64>,
    pub reason: String,
}

/// The receiver of one scan unit's messages, each with the source it was read from.
pub type Emit<'a> = dyn FnMut(Message, &str) -> Result<()> + Send + 'a;

/// Applies the `on_error` policy and attributes rows and errors to their source.
pub struct Sink<'a> {
    source: String,
    on_error: OnError,
    emit: &'a mut Emit<'a>,
    pub issues: Vec<RecordIssue>,
    pub rows: u64,
}

impl<'a> Sink<'a> {
    pub fn new(source: impl Into<String>, on_error: OnError, emit: &'a mut Emit<'a>) -> Self {
        Self {
            source: source.into(),
            on_error,
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
        self.source = source.into();
        Ok(())
    }

    pub fn push(&mut self, m: Message) -> Result<()> {
        self.rows += 1;
        (self.emit)(m, &self.source)
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
            OnError::Fail => Err(FormatError::Record {
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
            OnError::Fail => Err(FormatError::object(self.source.clone(), reason)),
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
}
