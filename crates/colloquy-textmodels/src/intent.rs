//! Intent: the customer-service taxonomy, with `none` for messages that carry no request or that the model
//! is not sure about.

use crate::model::{LinearModel, ModelError, Scratch, argmax, softmax};

#[derive(Debug)]
pub struct IntentModel {
    model: LinearModel,
    none: usize,
    /// Below this top probability the answer is `none`.
    threshold: f32,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Intent {
    pub label: usize,
    /// The model's probability of the label it would pick. For a `none` given because no label reached the
    /// threshold, it is that best label's probability.
    pub confidence: f32,
}

impl IntentModel {
    pub fn new(model: LinearModel) -> Result<Self, ModelError> {
        let none = model
            .label_index("none")
            .ok_or_else(|| ModelError("intent model has no 'none' label".into()))?;
        let threshold = model.param("threshold", 0.5);
        Ok(Self {
            model,
            none,
            threshold,
        })
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        Self::new(LinearModel::from_bytes(bytes)?)
    }

    pub fn labels(&self) -> &[String] {
        &self.model.labels
    }

    pub fn model(&self) -> &LinearModel {
        &self.model
    }

    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// The intent of `text` with a given threshold; `probs` receives every label's probability.
    pub fn classify_with(
        &self,
        text: &str,
        threshold: f32,
        scratch: &mut Scratch,
        probs: &mut Vec<f32>,
    ) -> Intent {
        if self.model.logits(text, scratch, probs) == 0 {
            probs.iter_mut().for_each(|p| *p = 0.0);
            probs[self.none] = 1.0;
            return Intent {
                label: self.none,
                confidence: 1.0,
            };
        }
        softmax(probs, None);
        let (best, confidence) = argmax(probs);
        let label = if confidence < threshold {
            self.none
        } else {
            best
        };
        Intent { label, confidence }
    }

    pub fn classify(&self, text: &str, scratch: &mut Scratch, probs: &mut Vec<f32>) -> Intent {
        self.classify_with(text, self.threshold, scratch, probs)
    }
}
