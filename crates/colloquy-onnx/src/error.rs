//! The crate's one error type, and its one conversion into DataFusion's.

use datafusion::error::DataFusionError;

#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// The ONNX Runtime library could not be found or loaded.
    #[error("{0}")]
    Runtime(String),
    /// The CREATE FUNCTION statement is not one colloquy can serve (language, arguments, return type).
    #[error("{0}")]
    Statement(String),
    /// The model (or its tokenizer) cannot be read, or does not fit the declared function.
    #[error("model {source_url}: {reason}")]
    Model { source_url: String, reason: String },
    /// Inference failed on some input.
    #[error("{function}(): {reason}")]
    Inference { function: String, reason: String },
    /// Reading the model from its object store failed.
    #[error("cannot read {url}: {reason}")]
    Fetch { url: String, reason: String },
}

impl OnnxError {
    pub fn model(source_url: &str, reason: impl std::fmt::Display) -> Self {
        Self::Model {
            source_url: source_url.to_string(),
            reason: reason.to_string(),
        }
    }
}

pub type Result<T, E = OnnxError> = std::result::Result<T, E>;

impl From<OnnxError> for DataFusionError {
    fn from(e: OnnxError) -> Self {
        match e {
            OnnxError::Statement(_) | OnnxError::Model { .. } => {
                DataFusionError::Plan(e.to_string())
            }
            OnnxError::Runtime(_) | OnnxError::Fetch { .. } => {
                DataFusionError::Execution(e.to_string())
            }
            OnnxError::Inference { .. } => DataFusionError::Execution(e.to_string()),
        }
    }
}
