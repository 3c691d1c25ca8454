//! Session settings of the text functions: `SET colloquy.language.candidates = 'en,es,fr'` and
//! `SET colloquy.intent.threshold = 0.6`.

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
    }
}

extensions_options! {
    /// colloquy's settings, under the `colloquy.` prefix.
    pub struct ColloquyOptions {
        /// language() settings.
        pub language: LanguageOptions, default = LanguageOptions::default()
        /// intent() settings.
        pub intent: IntentOptions, default = IntentOptions::default()
    }
}

impl ConfigExtension for ColloquyOptions {
    const PREFIX: &'static str = "colloquy";
}
