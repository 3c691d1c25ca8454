//! The crate's one error type.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum LiveError {
    /// The request is wrong; the message names what and where (line, field).
    #[error("{0}")]
    BadRequest(String),
    /// A token or webhook signature is missing or does not verify.
    #[error("{0}")]
    Unauthorized(String),
    /// The store could not make the messages durable: nothing of the request was acknowledged.
    #[error("live store: {0}")]
    Store(String),
}

impl LiveError {
    /// The HTTP status a client gets for this error.
    pub fn status(&self) -> u16 {
        match self {
            LiveError::BadRequest(_) => 400,
            LiveError::Unauthorized(_) => 401,
            LiveError::Store(_) => 503,
        }
    }
}

impl From<std::io::Error> for LiveError {
    fn from(e: std::io::Error) -> Self {
        LiveError::Store(e.to_string())
    }
}

pub type Result<T, E = LiveError> = std::result::Result<T, E>;
