//! The sentence-embedding models behind `intent(text, labels)`: the session's registered ONNX functions that
//! return embeddings. The function itself (label lists, cosine, the answer) lives in colloquy-udfs.

use std::sync::Arc;

use datafusion::common::{Result, exec_err};

use colloquy_udfs::SentenceEmbedder;

use crate::model::{Answers, OnnxModel};
use crate::registry::ModelRegistry;

const NAME: &str = "intent";

/// Embeds with one of the registry's sentence encoders.
#[derive(Debug)]
pub struct RegistryEmbedder {
    registry: Arc<ModelRegistry>,
}

impl RegistryEmbedder {
    pub fn new(registry: Arc<ModelRegistry>) -> Self {
        Self { registry }
    }

    /// The encoder named by `colloquy.intent.embedding_model`, else the only one registered.
    fn encoder(&self, setting: &str) -> Result<Arc<OnnxModel>> {
        let encoders: Vec<Arc<OnnxModel>> = self
            .registry
            .live()
            .into_iter()
            .map(|(m, _)| m)
            .filter(|m| m.is_sentence_encoder())
            .collect();
        if !setting.is_empty() {
            return match encoders
                .into_iter()
                .find(|m| m.name == setting.to_ascii_lowercase())
            {
                Some(m) => Ok(m),
                None => exec_err!(
                    "{NAME}(text, labels): colloquy.intent.embedding_model is '{setting}', but no sentence-embedding function of that name is registered (CREATE FUNCTION {setting}(TEXT) RETURNS FLOAT[] LANGUAGE ONNX AS '<transformer .onnx with tokenizer.json beside it>')"
                ),
            };
        }
        match encoders.len() {
            1 => Ok(Arc::clone(&encoders[0])),
            0 => exec_err!(
                "{NAME}(text, labels) needs a sentence-embedding model: register one first, e.g. CREATE FUNCTION embed(TEXT) RETURNS FLOAT[] LANGUAGE ONNX AS 'models/minilm/model.onnx' (tokenizer.json beside it)"
            ),
            _ => {
                let names: Vec<&str> = encoders.iter().map(|m| m.name.as_str()).collect();
                exec_err!(
                    "{NAME}(text, labels): several sentence-embedding functions are registered ({}); choose one with SET colloquy.intent.embedding_model = '<name>'",
                    names.join(", ")
                )
            }
        }
    }
}

impl SentenceEmbedder for RegistryEmbedder {
    fn embed(&self, setting: &str, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let model = self.encoder(setting)?;
        match model.run(texts)? {
            Answers::Vectors(v) => Ok(v),
            _ => exec_err!(
                "{NAME}(text, labels): {} did not return embeddings",
                model.name
            ),
        }
    }
}
