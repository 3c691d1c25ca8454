//! The one error type of the store crate and its conversion into DataFusion's.

use datafusion::error::DataFusionError;

use crate::policy::Denied;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A location or store that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The location or an object-store option is wrong; raised at planning time.
    #[error("{0}")]
    Config(String),
    /// The server's access policy refused a location, an option or a host.
    #[error(transparent)]
    Denied(Denied),
}

impl StoreError {
    pub fn config(msg: impl Into<String>) -> Self {
        Self::Config(msg.into())
    }
}

impl From<StoreError> for DataFusionError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Config(msg) => DataFusionError::Plan(msg),
            StoreError::Denied(d) => DataFusionError::External(Box::new(d)),
        }
    }
}
