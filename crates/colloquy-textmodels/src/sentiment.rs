//! Sentiment: negative / neutral / positive probabilities, a score in [-1, 1], and an honest "unknown" for
//! text in a language the model was not trained on.

use crate::language::LanguageDetector;
use crate::model::{LinearModel, ModelError, Scratch, argmax, softmax};

/// The languages the sentiment model is trained on.
pub const SENTIMENT_LANGUAGES: &[&str] = &["ar", "de", "en", "es", "fr", "hi", "it", "pt"];

#[derive(Debug)]
pub struct SentimentModel {
    model: LinearModel,
    neg: usize,
    neu: usize,
    pos: usize,
    /// At or above this share of words seen in training, the text is read as is; below it, the language
    /// detector decides whether the text is in a language the model knows.
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
            model
                .label_index(name)
                .ok_or_else(|| ModelError(format!("sentiment model has no '{name}' label")))
        };
        let (neg, neu, pos) = (idx("neg")?, idx("neu")?, idx("pos")?);
        let min_known = model.param("min_known", 0.5);
        Ok(Self {
            model,
            neg,
            neu,
            pos,
            min_known,
        })
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        Self::new(LinearModel::from_bytes(bytes)?)
    }

    pub fn model(&self) -> &LinearModel {
        &self.model
    }

    /// [`Self::score_with`] without a language detector.
    pub fn score(
        &self,
        text: &str,
        scratch: &mut Scratch,
        probs: &mut Vec<f32>,
    ) -> Option<Sentiment> {
        self.score_with(text, scratch, probs, None)
    }

    /// Scores `text`; `None` when the text is not in a language the model knows, or has nothing to read.
    ///
    /// Most text in a known language has at least half of its words in the training vocabulary and is
    /// scored at once. Text below that share goes through `languages` (a second scratch is used for it):
    /// scored if it is one of [`SENTIMENT_LANGUAGES`], else `None`. Without a detector, such text is `None`
    /// unless it carries emoji or emoticons.
    pub fn score_with(
        &self,
        text: &str,
        scratch: &mut Scratch,
        probs: &mut Vec<f32>,
        languages: Option<(&LanguageDetector, &mut Scratch)>,
    ) -> Option<Sentiment> {
        scratch.tokens.read(text);
        let t = &scratch.tokens;
        let has_signals = !t.symbols.is_empty() || !t.emoticons.is_empty();
        if t.is_empty() && !has_signals {
            return None;
        }
        // Scored first: the scorer counts the known words on the way (its word cache remembers them).
        let read = self.model.logits_of_tokens(scratch, probs);
        if !scratch.tokens.is_empty() && self.model.known_share(scratch) < self.min_known {
            let known_language = match languages {
                Some((detector, lang_scratch)) => {
                    let mut lang_logits = Vec::new();
                    detector
                        .language_of(text, None, lang_scratch, &mut lang_logits)
                        .is_some_and(|l| {
                            SENTIMENT_LANGUAGES.contains(&detector.codes()[l].as_str())
                        })
                }
                None => false,
            };
            if !known_language && !has_signals {
                return None;
            }
        }
        if read == 0 {
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
        Some(Sentiment {
            score: probs[self.pos] - probs[self.neg],
            label,
            confidence,
        })
    }
}
