//! The one error type of the format parsers.

pub type Result<T, E = FormatError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// A user-supplied option or argument is wrong; raised at planning time.
    #[error("{0}")]
    Config(String),
    /// A record inside an object could not be parsed.
    #[error("{source_url}:{line}{}: {reason}", column.map(|c| format!(":{c}")).unwrap_or_default())]
    Record {
        source_url: String,
        line: u64,
        column: Option<u64>,
        reason: String,
    },
    /// A whole object could not be used (unknown format, broken container, ...).
    #[error("{source_url}: {reason}")]
    Object { source_url: String, reason: String },
    /// Whatever receives the messages gave up (the query was cancelled, a batch could not be built).
    #[error("{0}")]
    Downstream(String),
}

impl FormatError {
    pub fn config(msg: impl Into<String>) -> Self {
        Self::Config(msg.into())
    }

    pub fn object(source_url: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Object {
            source_url: source_url.into(),
            reason: reason.into(),
        }
    }
}
