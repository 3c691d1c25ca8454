//! colloquy's built-in text models, with no dependencies: the chat tokenizer, hashed features, the i8
//! model format and its scorer, the trainer, and the three shipped models (language, sentiment, intent).
//!
//! Training and scoring share this crate so that a model is always scored with the features it was
//! trained on: the softmax trainer is [`train`], the recipes that build the shipped models are
//! [`recipes`], and the `train-models` binary (driven by `scripts/models/train.sh`) is their command line.
//! The trainer, [`sparse`] rows and [`ngrams`] are also colloquy-classifier's.

pub mod features;
pub mod hash;
pub mod lexicon;
pub mod model;
pub mod ngrams;
pub mod recipes;
pub mod sparse;
pub mod tokens;
pub mod train;

pub use features::FeatureSpec;
pub use lexicon::Lexicon;
pub use model::{CacheId, LinearModel, ModelError, Scratch};
pub use tokens::Tokens;

pub mod intent;
pub mod language;
pub mod sentiment;

pub use intent::{Intent, IntentModel};
pub use language::{Detection, LanguageDetector};
pub use sentiment::{Polarity, Sentiment, SentimentModel};
pub mod builtin;
