//! The one mapping from errors to gRPC status codes. Every handler returns [`Error`]; tonic sees a
//! [`Status`] whose code tells the client what to do and whose message a person can act on.

use arrow_flight::error::FlightError;
use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;
use tonic::{Code, Status};

/// gRPC carries the message in a header: keep it short.
const MAX_MESSAGE: usize = 4_000;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
    #[error(transparent)]
    Arrow(#[from] ArrowError),
    #[error(transparent)]
    Flight(#[from] FlightError),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    ResourceExhausted(String),
    #[error("{0}")]
    Unimplemented(String),
    #[error("{0}")]
    Cancelled(String),
    #[error("{0}")]
    DeadlineExceeded(String),
    #[error("{0}")]
    Internal(String),
    /// The server cannot do it now (a store that cannot write); the client may retry.
    #[error("{0}")]
    Unavailable(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(msg: impl Into<String>) -> Self {
        Self::InvalidArgument(msg.into())
    }

    /// The gRPC code of this error.
    pub fn code(&self) -> Code {
        match self {
            Self::DataFusion(e) => datafusion_code(e),
            Self::Arrow(e) => arrow_code(e),
            Self::Flight(e) => match e {
                FlightError::Arrow(a) => arrow_code(a),
                FlightError::Tonic(status) => status.code(),
                FlightError::DecodeError(_) | FlightError::ProtocolError(_) => {
                    Code::InvalidArgument
                }
                FlightError::NotYetImplemented(_) => Code::Unimplemented,
                _ => Code::Internal,
            },
            Self::InvalidArgument(_) => Code::InvalidArgument,
            Self::NotFound(_) => Code::NotFound,
            Self::Unauthenticated(_) => Code::Unauthenticated,
            Self::PermissionDenied(_) => Code::PermissionDenied,
            Self::ResourceExhausted(_) => Code::ResourceExhausted,
            Self::Unimplemented(_) => Code::Unimplemented,
            Self::Cancelled(_) => Code::Cancelled,
            Self::DeadlineExceeded(_) => Code::DeadlineExceeded,
            Self::Internal(_) => Code::Internal,
            Self::Unavailable(_) => Code::Unavailable,
        }
    }
}

fn arrow_code(e: &ArrowError) -> Code {
    match e {
        ArrowError::ExternalError(inner) => match inner.downcast_ref::<DataFusionError>() {
            Some(df) => datafusion_code(df),
            None => Code::Internal,
        },
        ArrowError::CastError(_)
        | ArrowError::ParseError(_)
        | ArrowError::InvalidArgumentError(_)
        | ArrowError::SchemaError(_)
        | ArrowError::ComputeError(_)
        | ArrowError::DivideByZero
        | ArrowError::ArithmeticOverflow(_)
        | ArrowError::JsonError(_)
        | ArrowError::CsvError(_) => Code::InvalidArgument,
        ArrowError::MemoryError(_) => Code::ResourceExhausted,
        ArrowError::IoError(..) => Code::Unavailable,
        _ => Code::Internal,
    }
}

fn datafusion_code(e: &DataFusionError) -> Code {
    match e {
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
            datafusion_code(inner)
        }
        DataFusionError::Shared(inner) => datafusion_code(inner),
        DataFusionError::Collection(errors) => {
            errors.first().map_or(Code::Internal, datafusion_code)
        }
        DataFusionError::ArrowError(inner, _) => arrow_code(inner),
        DataFusionError::SQL(..) | DataFusionError::Plan(_) | DataFusionError::Configuration(_) => {
            if is_missing_object(e) {
                Code::NotFound
            } else {
                Code::InvalidArgument
            }
        }
        DataFusionError::SchemaError(..) => {
            if is_missing_object(e) {
                Code::NotFound
            } else {
                Code::InvalidArgument
            }
        }
        DataFusionError::Execution(_) => Code::InvalidArgument,
        DataFusionError::NotImplemented(_) => Code::Unimplemented,
        DataFusionError::ResourcesExhausted(_) => Code::ResourceExhausted,
        DataFusionError::ObjectStore(inner) => {
            if matches!(**inner, object_store::Error::PermissionDenied { .. }) {
                Code::PermissionDenied
            } else if inner.to_string().contains("not found") {
                Code::NotFound
            } else {
                Code::Unavailable
            }
        }
        DataFusionError::IoError(_) => Code::Unavailable,
        DataFusionError::External(inner) => {
            if inner.is::<colloquy::store::Denied>() {
                return Code::PermissionDenied;
            }
            match inner.downcast_ref::<DataFusionError>() {
                Some(df) => datafusion_code(df),
                None => Code::Internal,
            }
        }
        DataFusionError::ExecutionJoin(_) => Code::Internal,
        DataFusionError::Substrait(_) => Code::InvalidArgument,
        DataFusionError::ParquetError(_) => Code::InvalidArgument,
        DataFusionError::Internal(_) => Code::Internal,
        // A variant added by a later DataFusion: an internal error until it is mapped.
        #[allow(unreachable_patterns)]
        _ => Code::Internal,
    }
}

fn is_missing_object(e: &DataFusionError) -> bool {
    let text = e.to_string();
    text.contains("not found") || text.contains("does not exist")
}

/// The message without Rust debug noise, cut to what fits in a header.
fn message(e: &Error) -> String {
    let mut text = match e {
        Error::DataFusion(df) => df.strip_backtrace(),
        Error::Flight(FlightError::Tonic(status)) => status.message().to_owned(),
        other => other.to_string(),
    };
    if text.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        Status::new(e.code(), message(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        let plan = Error::from(DataFusionError::Plan("bad".into()));
        assert_eq!(plan.code(), Code::InvalidArgument);
        let missing = Error::from(DataFusionError::Plan("table 'x' not found".into()));
        assert_eq!(missing.code(), Code::NotFound);
        let mem = Error::from(DataFusionError::ResourcesExhausted("pool".into()));
        assert_eq!(mem.code(), Code::ResourceExhausted);
        let ctx = Error::from(DataFusionError::Context(
            "q".into(),
            Box::new(DataFusionError::NotImplemented("x".into())),
        ));
        assert_eq!(ctx.code(), Code::Unimplemented);
        let long = Status::from(Error::invalid("x".repeat(10_000)));
        assert!(long.message().len() < 4_100);
    }
}
