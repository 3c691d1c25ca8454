//! The one error type of the archive crate and its conversion into DataFusion's.

use datafusion::error::DataFusionError;

pub type Result<T, E = ArchiveError> = std::result::Result<T, E>;

/// Everything that can go wrong while finding, opening or parsing an archive.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// A user-supplied option or argument is wrong; raised at planning time.
    #[error("{0}")]
    Config(String),
    /// An object could not be listed or read.
    #[error("{source_url}: {reason}")]
    Object { source_url: String, reason: String },
    #[error(transparent)]
    Format(#[from] colloquy_formats::FormatError),
    #[error("object store error: {0}")]
    Store(#[from] object_store::Error),
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
    /// The server's access policy refused a location, a write or a host.
    #[error(transparent)]
    Denied(colloquy_store::Denied),
}

impl ArchiveError {
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

impl From<colloquy_store::StoreError> for ArchiveError {
    fn from(e: colloquy_store::StoreError) -> Self {
        match e {
            colloquy_store::StoreError::Config(msg) => Self::Config(msg),
            colloquy_store::StoreError::Denied(d) => Self::Denied(d),
        }
    }
}

impl From<ArchiveError> for DataFusionError {
    fn from(e: ArchiveError) -> Self {
        match e {
            ArchiveError::Config(msg)
            | ArchiveError::Format(colloquy_formats::FormatError::Config(msg)) => {
                DataFusionError::Plan(msg)
            }
            ArchiveError::DataFusion(e) => e,
            ArchiveError::Store(e) => DataFusionError::ObjectStore(Box::new(e)),
            ArchiveError::Denied(d) => DataFusionError::External(Box::new(d)),
            other => DataFusionError::Execution(other.to_string()),
        }
    }
}
