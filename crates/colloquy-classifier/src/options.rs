//! The options string of `train_classifier(text, label, 'epochs=20, min_df=2, oos_threshold=0.5')`.

use crate::error::{ClassifierError, Result};

/// Training settings; [`Options::parse`] reads them from `key=value` pairs separated by commas.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Word n-gram lengths, inclusive (`word_ngrams=1-2`); `0-0` turns words off.
    pub word_ngrams: (usize, usize),
    /// Character n-gram lengths, inclusive (`char_ngrams=2-5`); `0-0` turns characters off.
    pub char_ngrams: (usize, usize),
    /// An n-gram must occur in at least this many texts to become a feature.
    pub min_df: u32,
    /// At most this many word n-grams (the most frequent) become features.
    pub max_word_features: usize,
    /// At most this many character n-grams (the most frequent) become features.
    pub max_char_features: usize,
    pub epochs: usize,
    pub learning_rate: f32,
    /// Below this top probability the model answers `oos_label` instead of a class.
    pub oos_threshold: Option<f32>,
    pub oos_label: String,
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            word_ngrams: (1, 2),
            char_ngrams: (2, 5),
            min_df: 1,
            max_word_features: 20_000,
            max_char_features: 40_000,
            epochs: 6,
            learning_rate: 0.05,
            oos_threshold: None,
            oos_label: "oos".into(),
            seed: 1,
        }
    }
}

const KEYS: &str = "word_ngrams, char_ngrams, min_df, max_word_features, max_char_features, epochs, learning_rate, oos_threshold, oos_label, seed";

impl Options {
    /// Reads `key=value` pairs separated by commas; unknown keys and bad values are errors that name them.
    pub fn parse(text: &str) -> Result<Self> {
        let mut o = Self::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((key, value)) = part.split_once('=') else {
                return Err(ClassifierError::Option(format!(
                    "'{part}' is not key=value (keys: {KEYS})"
                )));
            };
            let (key, value) = (key.trim().to_ascii_lowercase(), value.trim());
            let bad =
                |what: &str| ClassifierError::Option(format!("{key}={value}: expected {what}"));
            let number = |what: &str| value.parse::<f64>().map_err(|_| bad(what));
            match key.as_str() {
                "word_ngrams" => {
                    o.word_ngrams = range(value).ok_or_else(|| bad("a range like 1-2"))?
                }
                "char_ngrams" => {
                    o.char_ngrams = range(value).ok_or_else(|| bad("a range like 2-5"))?
                }
                "min_df" => o.min_df = value.parse().map_err(|_| bad("a whole number"))?,
                "max_word_features" => {
                    o.max_word_features = value.parse().map_err(|_| bad("a whole number"))?
                }
                "max_char_features" => {
                    o.max_char_features = value.parse().map_err(|_| bad("a whole number"))?
                }
                "epochs" => match value.parse() {
                    Ok(n) if n > 0 => o.epochs = n,
                    _ => return Err(bad("a whole number above 0")),
                },
                "learning_rate" => match number("a number above 0")? {
                    x if x > 0.0 && x.is_finite() => o.learning_rate = x as f32,
                    _ => return Err(bad("a number above 0")),
                },
                "oos_threshold" => match number("a probability between 0 and 1")? {
                    x if (0.0..=1.0).contains(&x) => {
                        o.oos_threshold = (x > 0.0).then_some(x as f32)
                    }
                    _ => return Err(bad("a probability between 0 and 1")),
                },
                "oos_label" if !value.is_empty() => o.oos_label = value.to_string(),
                "oos_label" => return Err(bad("a non-empty label")),
                "seed" => o.seed = value.parse().map_err(|_| bad("a whole number"))?,
                _ => {
                    return Err(ClassifierError::Option(format!(
                        "unknown option '{key}' (keys: {KEYS})"
                    )));
                }
            }
        }
        for (name, (lo, hi)) in [
            ("word_ngrams", o.word_ngrams),
            ("char_ngrams", o.char_ngrams),
        ] {
            if lo > hi || hi > 8 || (lo == 0 && hi != 0) {
                return Err(ClassifierError::Option(format!(
                    "{name}={lo}-{hi}: expected lengths from 1 to 8, the smaller first (0-0 turns it off)"
                )));
            }
        }
        if o.word_ngrams.1 == 0 && o.char_ngrams.1 == 0 {
            return Err(ClassifierError::Option(
                "word_ngrams and char_ngrams are both off: nothing to learn from".into(),
            ));
        }
        Ok(o)
    }

    /// The options as `parse` reads them, for the model's metadata.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "word_ngrams={}-{}, char_ngrams={}-{}, min_df={}, max_word_features={}, max_char_features={}, epochs={}, learning_rate={}, seed={}",
            self.word_ngrams.0,
            self.word_ngrams.1,
            self.char_ngrams.0,
            self.char_ngrams.1,
            self.min_df,
            self.max_word_features,
            self.max_char_features,
            self.epochs,
            self.learning_rate,
            self.seed
        );
        if let Some(t) = self.oos_threshold {
            s.push_str(&format!(
                ", oos_threshold={t}, oos_label={}",
                self.oos_label
            ));
        }
        s
    }
}

/// `2-5` or a single length `3`.
fn range(value: &str) -> Option<(usize, usize)> {
    match value.split_once('-') {
        Some((a, b)) => Some((a.trim().parse().ok()?, b.trim().parse().ok()?)),
        None => value.parse().ok().map(|n| (n, n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let o = Options::parse("epochs=3, char_ngrams=3-4, oos_threshold=0.4,oos_label=other")
            .expect("valid in this test");
        assert_eq!(
            (o.epochs, o.char_ngrams, o.oos_threshold),
            (3, (3, 4), Some(0.4))
        );
        assert_eq!(o.oos_label, "other");
        assert_eq!(
            Options::parse("").expect("valid in this test"),
            Options::default()
        );
        for bad in [
            "epochs=0",
            "colour=red",
            "min_df",
            "char_ngrams=5-2",
            "oos_threshold=2",
            "word_ngrams=0-0,char_ngrams=0-0",
        ] {
            let e = Options::parse(bad)
                .expect_err("must be rejected")
                .to_string();
            assert!(e.starts_with("train_classifier options:"), "{bad}: {e}");
        }
        assert_eq!(
            Options::parse(&Options::default().describe()).expect("valid in this test"),
            Options::default()
        );
    }
}
