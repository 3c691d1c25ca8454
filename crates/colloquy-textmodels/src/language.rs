//! Language identification: ISO 639-1 codes from a hashed character n-gram model.

use crate::model::{LinearModel, ModelError, Scratch, argmax, softmax};

/// Scores closer than this to the best one are a near tie for [`LanguageDetector::language_of`]: their
/// probabilities differ by a factor of at most e^-0.001, thousands of times float rounding.
const NEAR_TIE: f32 = 1e-3;

/// The candidate of the highest score (all when `candidates` is `None`): the language `softmax` then
/// `argmax` would pick, without the exponentials. Scores within float rounding of each other can have
/// equal probabilities, and then `argmax` answers the first of them; near ties, and scores that are not
/// finite, take that path, so the two never disagree (the scores become probabilities then).
fn best_candidate(logits: &mut [f32], candidates: Option<&[bool]>) -> usize {
    let on = |i: usize| candidates.is_none_or(|c| c[i]);
    let mut best: Option<(usize, f32)> = None;
    for (i, &v) in logits.iter().enumerate() {
        if on(i) && best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    // Every candidate masked off: `argmax` of all-zero probabilities answers the first language.
    let Some((best, top)) = best else {
        return 0;
    };
    let settled = top.is_finite()
        && logits
            .iter()
            .enumerate()
            .all(|(i, &v)| i == best || !on(i) || v < top - NEAR_TIE);
    if settled {
        return best;
    }
    softmax(logits, candidates);
    argmax(logits).0
}

/// The detector around a language model.
#[derive(Debug)]
pub struct LanguageDetector {
    model: LinearModel,
    /// Below this many letters a text is too short to tell.
    min_letters: u32,
}

/// A detected language: an index into [`LanguageDetector::codes`] and its probability among the candidates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detection {
    pub language: usize,
    pub confidence: f32,
}

impl LanguageDetector {
    pub fn new(model: LinearModel) -> Self {
        let min_letters = model.param("min_letters", 2.0) as u32;
        Self { model, min_letters }
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        LinearModel::from_bytes(bytes).map(Self::new)
    }

    /// The ISO 639-1 codes the model knows, in label order.
    pub fn codes(&self) -> &[String] {
        &self.model.labels
    }

    pub fn model(&self) -> &LinearModel {
        &self.model
    }

    /// A candidate mask from a list such as `"en, es,fr"`. An unknown code is an error that names it and
    /// lists the known ones; an empty list means every language.
    pub fn candidates(&self, list: &str) -> Result<Option<Vec<bool>>, String> {
        let mut mask = vec![false; self.codes().len()];
        let mut any = false;
        for code in list.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            let code = code.to_ascii_lowercase();
            // Bokmål and Nynorsk are reported as `no`; accept their own codes too.
            let code = if code == "nb" || code == "nn" {
                "no".to_owned()
            } else {
                code
            };
            match self.codes().iter().position(|c| *c == code) {
                Some(i) => {
                    mask[i] = true;
                    any = true;
                }
                None => {
                    return Err(format!(
                        "unknown language code '{code}' in the candidate list '{list}'; known codes: {}",
                        self.codes().join(",")
                    ));
                }
            }
        }
        Ok(any.then_some(mask))
    }

    /// [`Self::detect`]'s language without its confidence: the candidate of the highest score, which is
    /// the one of the highest probability (the softmax keeps the order), found without the exponentials
    /// and divisions the probabilities cost (a tenth of `language()`'s time). `logits` receives the raw
    /// scores, or the probabilities after a near tie.
    pub fn language_of(
        &self,
        text: &str,
        candidates: Option<&[bool]>,
        scratch: &mut Scratch,
        logits: &mut Vec<f32>,
    ) -> Option<usize> {
        if !self.scores(text, scratch, logits) {
            return None;
        }
        Some(best_candidate(logits, candidates))
    }

    /// The most likely language of `text` among `candidates` (all when `None`), or `None` when the text has
    /// too few letters to tell. `probs` receives the probability of every language.
    pub fn detect(
        &self,
        text: &str,
        candidates: Option<&[bool]>,
        scratch: &mut Scratch,
        probs: &mut Vec<f32>,
    ) -> Option<Detection> {
        if !self.scores(text, scratch, probs) {
            return None;
        }
        softmax(probs, candidates);
        let (language, confidence) = argmax(probs);
        Some(Detection {
            language,
            confidence,
        })
    }

    /// Every language's raw score of `text` into `logits`; false when the text has too few letters to tell.
    fn scores(&self, text: &str, scratch: &mut Scratch, logits: &mut Vec<f32>) -> bool {
        scratch.tokens.read(text);
        let t = &scratch.tokens;
        if t.letters + t.ideographs < self.min_letters {
            return false;
        }
        self.model.logits_of_tokens(scratch, logits);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `detect` answers from the same scores.
    fn by_softmax(logits: &[f32], candidates: Option<&[bool]>) -> usize {
        let mut p = logits.to_vec();
        softmax(&mut p, candidates);
        argmax(&p).0
    }

    #[test]
    fn best_candidate_answers_what_the_softmax_answers() {
        let all_off = [false, false, false];
        let second_off = [true, false, true];
        let cases: [&[f32]; 9] = [
            &[0.5, 2.0, 1.0],
            // exp(-1e-9) rounds to 1: equal probabilities, and the softmax answers the first of them.
            &[-1e-9, 0.0, -5.0],
            &[0.0, -1e-9, 0.0],
            &[3.0, 3.0 - 5e-4, -1.0],
            &[1.0, f32::NAN, 0.0],
            &[1.0, f32::INFINITY, 0.0],
            &[f32::NEG_INFINITY, f32::NEG_INFINITY, f32::NEG_INFINITY],
            &[20_000.0, 20_000.002, 0.0],
            &[-7.0, -7.5, -6.999],
        ];
        for logits in cases {
            for mask in [None, Some(&second_off[..]), Some(&all_off[..])] {
                let mut scores = logits.to_vec();
                assert_eq!(
                    best_candidate(&mut scores, mask),
                    by_softmax(logits, mask),
                    "{logits:?} {mask:?}"
                );
            }
        }
        // The near tie is what the fallback is for: the larger score is not the softmax's answer.
        assert_eq!(by_softmax(&[-1e-9, 0.0, -5.0], None), 0);
    }
}
