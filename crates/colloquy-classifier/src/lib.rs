//! Text classifiers trained from labelled rows, the engine behind SQL's `train_classifier(text, label
//! [, options])`.
//!
//! The model is the one a scikit-learn user would reach for first — TF-IDF over word 1–2-grams and
//! character 2–5-grams, then multinomial logistic regression — trained here by AdaGrad SGD over sparse
//! rows, which is what makes it an order of magnitude faster to train than L-BFGS over the same features.
//! The result is written as a standard ONNX graph (StringNormalizer, Tokenizer, TfIdfVectorizer,
//! Normalizer, LinearClassifier), so the model runs in colloquy's `LANGUAGE ONNX` functions and in any
//! ONNX Runtime, and [`Classifier::predict`] gives the same answer in Rust.
//!
//! The softmax trainer, the sparse-row helpers and the n-gram enumerator are colloquy-textmodels', shared
//! with the built-in models. The tokenizer stays here: it is the one ONNX Runtime's StringNormalizer and
//! Tokenizer apply to the exported graph, not the chat tokenizer of the built-in models.

mod error;
mod features;
mod onnx;
mod options;
mod train;

pub use error::{ClassifierError, Result};
pub use features::{CHAR_PATTERN_DOC, Scratch, WORD_PATTERN};
pub use options::Options;
pub use train::{Classifier, TrainReport, train};
