//! What `intent(text, labels)` needs from a sentence-embedding model, without this crate knowing where the
//! model comes from (colloquy-onnx provides it from the session's `CREATE FUNCTION ... LANGUAGE ONNX`).

use std::fmt::Debug;

use datafusion::common::Result;

/// Embeds texts with a sentence-embedding model chosen by the session.
pub trait SentenceEmbedder: Send + Sync + Debug {
    /// The vectors of `texts`, unit length, from the model named by `setting`
    /// (`colloquy.intent.embedding_model`), or the only model there is when `setting` is empty. The error
    /// says which model is missing or ambiguous and how to register or choose one.
    fn embed(&self, setting: &str, texts: &[&str]) -> Result<Vec<Vec<f32>>>;
}
