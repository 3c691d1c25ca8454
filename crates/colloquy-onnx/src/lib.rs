//! ONNX models as SQL functions.
//!
//! ```sql
//! CREATE FUNCTION toxicity(TEXT) RETURNS FLOAT LANGUAGE ONNX AS 's3://models/toxicity.onnx';
//! CREATE FUNCTION embed(TEXT) RETURNS FLOAT[384] LANGUAGE ONNX AS 'models/minilm/model.onnx';
//! SELECT toxicity(text), embed(text) FROM messages;
//! SELECT * FROM onnx_models();
//! DROP FUNCTION toxicity;
//! ```
//!
//! The declared return type selects the answer: a string type the label, a floating type the top
//! probability (or the single score of a regression/binary model), a list of floats the probability
//! vector, the logits or the mean-pooled sentence embedding. ONNX Runtime is loaded at run time
//! (`runtime`), never linked or downloaded at build time.

pub mod embedder;
pub mod error;
pub mod factory;
pub mod model;
pub mod registry;
pub mod runtime;
pub mod udf;

use std::sync::Arc;

use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::SessionContext;

pub use embedder::RegistryEmbedder;
pub use error::OnnxError;
pub use factory::{OnnxFunctionFactory, load_bytes, load_url};
pub use registry::{
    ModelLedger, ModelLedgerView, ModelOwner, ModelRegistry, ModelVersion, OnnxModelsFunc,
};

/// Lets the session being built create ONNX functions; returns the registry to pass to [`register`].
pub fn with_factory(builder: SessionStateBuilder) -> (SessionStateBuilder, Arc<ModelRegistry>) {
    let registry = Arc::new(ModelRegistry::default());
    let builder = builder.with_function_factory(Some(Arc::new(OnnxFunctionFactory::new(
        Arc::clone(&registry),
    ))));
    (builder, registry)
}

/// Registers `onnx_models()` and `onnx_model_history()` over the session's registry.
pub fn register(ctx: &SessionContext, registry: Arc<ModelRegistry>) {
    ctx.register_udtf(
        "onnx_model_history",
        Arc::new(registry::OnnxModelHistoryFunc::new(Arc::clone(&registry))),
    );
    ctx.register_udtf("onnx_models", Arc::new(OnnxModelsFunc::new(registry)));
}

/// The registry's sentence encoders, for `intent(text, labels)` (see `colloquy_udfs::Providers`).
pub fn embedder(registry: Arc<ModelRegistry>) -> Arc<dyn colloquy_udfs::SentenceEmbedder> {
    Arc::new(RegistryEmbedder::new(registry))
}
