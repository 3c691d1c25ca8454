//! Session settings of the text functions: `SET colloquy.language.candidates = 'en,es,fr'` and
//! `SET colloquy.intent.threshold = 0.6`, and those of the analytics views
//! (`SET colloquy.analytics.fcr_window_days = 3`).

use datafusion::common::config::ConfigExtension;
use datafusion::common::{config_namespace, extensions_options};

config_namespace! {
    /// Settings of language().
    pub struct LanguageOptions {
        /// Comma-separated ISO 639-1 codes that language() chooses among (empty: every language it knows).
        pub candidates: String, default = String::new()
    }
}

config_namespace! {
    /// Settings of intent().
    pub struct IntentOptions {
        /// Top probability below which intent() answers 'none' (empty: the threshold chosen in training).
        pub threshold: Option<f64>, default = None
        /// The registered sentence-embedding function (CREATE FUNCTION ... RETURNS FLOAT[] LANGUAGE ONNX)
        /// that intent(text, [labels]) uses for zero-shot classification (empty: the only one registered).
        pub embedding_model: String, default = String::new()
    }
}

config_namespace! {
    /// Settings of the conversation-analytics views in `sql/views/` (read through `current_setting()`).
    pub struct AnalyticsOptions {
        /// Minutes of silence after which the next message in a chat starts a new conversation.
        pub conversation_gap_minutes: u64, default = 120
        /// Days within which a customer coming back about the same intent means the first conversation
        /// did not resolve it (first-contact resolution).
        pub fcr_window_days: u64, default = 7
        /// Sentiment below which a customer message counts toward a routing alert (routing_alerts).
        pub alert_threshold: f64, default = -0.3
    }
}

config_namespace! {
    /// Settings of functions created with CREATE FUNCTION ... LANGUAGE ONNX.
    pub struct OnnxOptions {
        /// ONNX Runtime threads per inference session (queries already run one session per partition).
        pub intra_threads: usize, default = 1
    }
}

extensions_options! {
    /// colloquy's settings, under the `colloquy.` prefix.
    pub struct ColloquyOptions {
        /// language() settings.
        pub language: LanguageOptions, default = LanguageOptions::default()
        /// intent() settings.
        pub intent: IntentOptions, default = IntentOptions::default()
        /// Settings of the analytics views.
        pub analytics: AnalyticsOptions, default = AnalyticsOptions::default()
        /// Settings of ONNX model functions.
        pub onnx: OnnxOptions, default = OnnxOptions::default()
    }
}

impl ConfigExtension for ColloquyOptions {
    const PREFIX: &'static str = "colloquy";
}
