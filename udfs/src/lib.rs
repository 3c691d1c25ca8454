//! colloquy's SQL text functions, one file per function, all registered by [`register_all`].
//!
//! The detectors and models behind them are plain Rust modules (`pii/`) with no DataFusion dependency, so
//! that they can be tested, benchmarked and fuzzed on their own.

pub mod pii;

mod pii_types;
mod redact_pii;
mod strings;

use std::sync::Arc;

use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::SessionContext;

pub use pii_types::PiiTypes;
pub use redact_pii::RedactPii;

/// Every scalar function of this crate.
pub fn scalar_functions() -> Vec<Arc<ScalarUDF>> {
    vec![
        Arc::new(ScalarUDF::new_from_impl(RedactPii::new())),
        Arc::new(ScalarUDF::new_from_impl(PiiTypes::new())),
    ]
}

/// Registers every text function with the session.
pub fn register_all(ctx: &SessionContext) {
    for f in scalar_functions() {
        ctx.register_udf(f.as_ref().clone());
    }
}
