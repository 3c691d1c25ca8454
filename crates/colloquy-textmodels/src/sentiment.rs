//! Sentiment: negative / neutral / positive probabilities, a score in [-1, 1], and an honest "unknown" for
//! text in a language the model was not trained on.

use crate::model::{LinearModel, ModelError, Scratch, argmax, softmax};

#[derive(Debug)]
pub struct SentimentModel {
    model: LinearModel,
    neg: usize,
    neu: usize,
    pos: usize,
    /// Below this share of known words, and with no emoji or emoticon to go on, the text is "unknown".
    min_known: f32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Polarity {
    Negative,
    Neutral,
    Positive,
}

impl Polarity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Negative => "negative",
            Self::Neutral => "neutral",
            Self::Positive => "positive",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sentiment {
    /// P(positive) − P(negative).
    pub score: f32,
    pub label: Polarity,
    /// The probability of `label`.
    pub confidence: f32,
}

impl SentimentModel {
    pub fn new(model: LinearModel) -> Result<Self, ModelError> {
        let idx = |name: &str| {
            model.label_index(name).ok_or_else(|| ModelError(format!("sentiment model has no '{name}' label")))
        };
        let (neg, neu, pos) = (idx("neg")?, idx("neu")?, idx("pos")?);
        let min_known = model.param("min_known", 0.3);
        Ok(Self { model, neg, neu, pos, min_known })
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        Self::new(LinearModel::from_bytes(bytes)?)
    }

    pub fn model(&self) -> &LinearModel {
        &self.model
    }

    /// Scores `text`; `None` when there is nothing the model can read: no words it knows well enough and
    /// no emoji or emoticons.
    pub fn score(&self, text: &str, scratch: &mut Scratch, probs: &mut Vec<f32>) -> Option<Sentiment> {
        scratch.tokens.read(text);
        let t = &scratch.tokens;
        let has_signals = !t.symbols.is_empty() || !t.emoticons.is_empty();
        if !has_signals && (t.is_empty() || self.model.known_share(t) < self.min_known) {
            return None;
        }
        if self.model.logits_of_tokens(scratch, probs) == 0 {
            return None;
        }
        softmax(probs, None);
        let (best, confidence) = argmax(probs);
        let label = if best == self.neg {
            Polarity::Negative
        } else if best == self.pos {
            Polarity::Positive
        } else {
            debug_assert_eq!(best, self.neu);
            Polarity::Neutral
        };
        Some(Sentiment { score: probs[self.pos] - probs[self.neg], label, confidence })
    }
}
