//! The one error type of this crate.

/// What went wrong while training or exporting a classifier.
#[derive(Debug, thiserror::Error)]
pub enum ClassifierError {
    /// An option string entry that is unknown or has a bad value.
    #[error("train_classifier options: {0}")]
    Option(String),
    /// Not enough labelled rows to learn anything.
    #[error("train_classifier: {0}")]
    Data(String),
}

pub type Result<T, E = ClassifierError> = std::result::Result<T, E>;
