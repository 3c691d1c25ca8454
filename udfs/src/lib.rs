//! colloquy's SQL text functions, one file per function, all registered by [`register_all`].
//!
//! The detectors and models behind them are plain Rust modules (`pii/`) with no DataFusion dependency, so
//! that they can be tested, benchmarked and fuzzed on their own.

pub mod options;
pub mod pii;

mod classification_report;
mod concat_in_order;
mod confusion_matrix;
mod current_setting;
mod drift;
mod drift_state;
pub mod embedding;
mod intent;
mod intent_confidence;
mod intent_scores;
mod label_counts;
mod language;
mod language_confidence;
mod pii_types;
mod redact_pii;
mod scoring;
mod sentiment;
mod sentiment_label;
mod sessionize;
pub mod strings;
mod train_classifier;

use std::sync::Arc;

use datafusion::logical_expr::{AggregateUDF, ScalarUDF, WindowUDF};
use datafusion::prelude::SessionContext;

pub use classification_report::ClassificationReportFunc;
pub use concat_in_order::ConcatInOrderFunc;
pub use confusion_matrix::ConfusionMatrixFunc;
pub use current_setting::CurrentSettingFunc;
pub use drift::DriftFunc;
pub use embedding::SentenceEmbedder;
pub use intent::IntentFunc;
pub use intent_confidence::IntentConfidenceFunc;
pub use intent_scores::IntentScoresFunc;
pub use language::LanguageFunc;
pub use language_confidence::LanguageConfidenceFunc;
pub use options::ColloquyOptions;
pub use pii_types::PiiTypes;
pub use redact_pii::RedactPii;
pub use sentiment::SentimentFunc;
pub use sentiment_label::SentimentLabelFunc;
pub use sessionize::SessionizeFunc;
pub use train_classifier::TrainClassifierFunc;

/// What functions of this crate take from outside it. The default has none: `intent(text, labels)` then
/// says that the session has no sentence-embedding models.
#[derive(Debug, Default, Clone)]
pub struct Providers {
    /// The sentence-embedding models of `intent(text, labels)` (colloquy-onnx's registry).
    pub embedder: Option<Arc<dyn SentenceEmbedder>>,
}

/// Every scalar function of this crate, without providers.
pub fn scalar_functions() -> Vec<Arc<ScalarUDF>> {
    scalar_functions_with(&Providers::default())
}

/// Every scalar function of this crate, using `providers`.
pub fn scalar_functions_with(providers: &Providers) -> Vec<Arc<ScalarUDF>> {
    let intent = match &providers.embedder {
        Some(e) => IntentFunc::with_embedder(Arc::clone(e)),
        None => IntentFunc::new(),
    };
    vec![
        Arc::new(ScalarUDF::new_from_impl(RedactPii::new())),
        Arc::new(ScalarUDF::new_from_impl(PiiTypes::new())),
        Arc::new(ScalarUDF::new_from_impl(LanguageFunc::new())),
        Arc::new(ScalarUDF::new_from_impl(LanguageConfidenceFunc::new())),
        Arc::new(ScalarUDF::new_from_impl(SentimentFunc::new())),
        Arc::new(ScalarUDF::new_from_impl(SentimentLabelFunc::new())),
        Arc::new(ScalarUDF::new_from_impl(intent)),
        Arc::new(ScalarUDF::new_from_impl(IntentConfidenceFunc::new())),
        Arc::new(ScalarUDF::new_from_impl(IntentScoresFunc::new())),
        Arc::new(ScalarUDF::new_from_impl(CurrentSettingFunc::new())),
    ]
}

/// Every aggregate function of this crate.
pub fn aggregate_functions() -> Vec<Arc<AggregateUDF>> {
    vec![
        Arc::new(AggregateUDF::new_from_impl(DriftFunc::new())),
        Arc::new(AggregateUDF::new_from_impl(TrainClassifierFunc::new())),
        Arc::new(AggregateUDF::new_from_impl(ClassificationReportFunc::new())),
        Arc::new(AggregateUDF::new_from_impl(ConfusionMatrixFunc::new())),
        Arc::new(AggregateUDF::new_from_impl(ConcatInOrderFunc::new())),
    ]
}

/// Every window function of this crate.
pub fn window_functions() -> Vec<Arc<WindowUDF>> {
    vec![Arc::new(WindowUDF::new_from_impl(SessionizeFunc::new()))]
}

/// Registers every text function with the session, without providers.
pub fn register_all(ctx: &SessionContext) {
    register_all_with(ctx, &Providers::default());
}

/// Registers every text function with the session, using `providers`.
pub fn register_all_with(ctx: &SessionContext, providers: &Providers) {
    for f in scalar_functions_with(providers) {
        ctx.register_udf(f.as_ref().clone());
    }
    for f in aggregate_functions() {
        ctx.register_udaf(f.as_ref().clone());
    }
    for f in window_functions() {
        ctx.register_udwf(f.as_ref().clone());
    }
}
