//! Vocabulary, TF-IDF rows and the softmax regression fitted over them.

use std::collections::{BTreeSet, HashMap};

// The n-gram maps are looked up ~250 times per text: foldhash instead of SipHash (no untrusted keys can
// degrade them into anything worse than slow training).
type FastMap<K, V> = foldhash::HashMap<K, V>;
use std::time::Instant;

use colloquy_textmodels::model::{argmax, softmax};
use colloquy_textmodels::sparse::{l2_normalise, sum_duplicates};
use colloquy_textmodels::train::{AdaGrad, Example, TrainConfig, Trained, train as fit};

use crate::error::{ClassifierError, Result};
use crate::features::{Branch, Featurizer, Scratch, key_len};
use crate::options::Options;

/// The n-grams of one tokenizer that became features, in the order of the ONNX pool (by length, then by
/// key), with their inverse document frequencies.
#[derive(Debug, Clone, Default)]
pub struct Vocabulary {
    pub keys: Vec<String>,
    pub idf: Vec<f32>,
    index: FastMap<String, u32>,
}

impl Vocabulary {
    pub(crate) fn new(keys: Vec<String>, idf: Vec<f32>) -> Self {
        let index = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), i as u32))
            .collect();
        Self { keys, idf, index }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// A trained classifier: features, weights and labels.
#[derive(Debug, Clone)]
pub struct Classifier {
    pub labels: Vec<String>,
    pub options: Options,
    pub words: Vocabulary,
    pub chars: Vocabulary,
    /// `features × labels`, one row per feature (words first, then characters).
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
    pub report: TrainReport,
    featurizer: Featurizer,
}

/// What training saw and how long it took.
#[derive(Debug, Clone, Default)]
pub struct TrainReport {
    pub rows: usize,
    pub skipped_rows: usize,
    pub featurize_seconds: f64,
    pub fit_seconds: f64,
    /// Mean cross-entropy over the training rows in the last epoch.
    pub final_loss: f64,
}

/// A text's n-gram ids with their counts, per tokenizer (words, characters), and its label.
type CountedDoc = ([Vec<(u32, u32)>; 2], u32);

/// Trains a classifier on `texts` and their `labels` (same length; pairs with an empty label are skipped).
pub fn train(texts: &[&str], labels: &[&str], options: &Options) -> Result<Classifier> {
    if texts.len() != labels.len() {
        return Err(ClassifierError::Data(format!(
            "{} texts but {} labels",
            texts.len(),
            labels.len()
        )));
    }
    let started = Instant::now();
    let classes: Vec<String> = labels
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| l.to_string())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if classes.len() < 2 {
        return Err(ClassifierError::Data(format!(
            "needs rows of at least two different labels, got {} labelled rows with {} label(s){}",
            labels.iter().filter(|l| !l.is_empty()).count(),
            classes.len(),
            classes
                .first()
                .map(|c| format!(" ('{c}')"))
                .unwrap_or_default()
        )));
    }
    let class_of: HashMap<&str, u32> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i as u32))
        .collect();
    let grams = Featurizer::new(options.word_ngrams, options.char_ngrams);

    // Pass 1: every n-gram gets an id; each text keeps its ids with counts; document frequencies.
    let mut interned: [FastMap<String, u32>; 2] = Default::default();
    let mut df: [Vec<u32>; 2] = Default::default();
    let mut docs: Vec<CountedDoc> = Vec::with_capacity(texts.len());
    let mut scratch = Scratch::default();
    let mut ids: [Vec<u32>; 2] = Default::default();
    let mut skipped = 0;
    for (text, label) in texts.iter().zip(labels) {
        let Some(&label) = class_of.get(label) else {
            skipped += 1;
            continue;
        };
        ids[0].clear();
        ids[1].clear();
        grams.grams(text, &mut scratch, |branch, key| {
            let b = branch as usize;
            let id = match interned[b].get(key) {
                Some(&id) => id,
                None => {
                    let id = interned[b].len() as u32;
                    interned[b].insert(key.to_string(), id);
                    df[b].push(0);
                    id
                }
            };
            ids[b].push(id);
        });
        let mut counted: [Vec<(u32, u32)>; 2] = Default::default();
        for b in 0..2 {
            ids[b].sort_unstable();
            for &id in &ids[b] {
                match counted[b].last_mut() {
                    Some((last, n)) if *last == id => *n += 1,
                    _ => {
                        counted[b].push((id, 1));
                        df[b][id as usize] += 1;
                    }
                }
            }
        }
        docs.push((counted, label));
    }
    let n_docs = docs.len();

    // The features: frequent enough, the most frequent first, then in pool order.
    let mut vocab: [Vocabulary; 2] = Default::default();
    let mut feature_of: [Vec<u32>; 2] = Default::default();
    for (b, (branch, limit)) in [
        (Branch::Word, options.max_word_features),
        (Branch::Char, options.max_char_features),
    ]
    .into_iter()
    .enumerate()
    {
        let mut keys: Vec<(&String, u32)> = interned[b]
            .iter()
            .map(|(k, &id)| (k, id))
            .filter(|&(_, id)| df[b][id as usize] >= options.min_df)
            .collect();
        keys.sort_unstable_by(|a, c| {
            df[b][c.1 as usize]
                .cmp(&df[b][a.1 as usize])
                .then(a.0.cmp(c.0))
        });
        keys.truncate(limit);
        keys.sort_unstable_by(|a, c| {
            key_len(branch, a.0)
                .cmp(&key_len(branch, c.0))
                .then(a.0.cmp(c.0))
        });
        feature_of[b] = vec![u32::MAX; interned[b].len()];
        let mut names = Vec::with_capacity(keys.len());
        let mut idf = Vec::with_capacity(keys.len());
        for (i, (key, id)) in keys.into_iter().enumerate() {
            feature_of[b][id as usize] = i as u32;
            names.push(key.clone());
            // scikit-learn's smoothed idf, so that the features mean what its users expect.
            idf.push(
                ((1.0 + n_docs as f64) / (1.0 + f64::from(df[b][id as usize]))).ln() as f32 + 1.0,
            );
        }
        vocab[b] = Vocabulary::new(names, idf);
    }
    drop(interned);
    let offset = vocab[0].len() as u32;
    // One training row per text: sparse TF-IDF features, each tokenizer's part L2-normalised.
    let rows: Vec<Example> = docs
        .into_iter()
        .map(|(counted, label)| {
            let mut features = Vec::new();
            for b in 0..2 {
                let from = features.len();
                for &(id, count) in &counted[b] {
                    let f = feature_of[b][id as usize];
                    if f != u32::MAX {
                        let shift = if b == 0 { 0 } else { offset };
                        features.push((f + shift, count as f32 * vocab[b].idf[f as usize]));
                    }
                }
                l2_normalise(&mut features[from..]);
            }
            Example {
                features,
                label,
                weight: 1.0,
            }
        })
        .collect();
    let featurize_seconds = started.elapsed().as_secs_f64();

    let fit_started = Instant::now();
    let n_features = vocab[0].len() + vocab[1].len();
    // The seed option spread over all 64 bits: xorshift starts poorly from a state with few bits set.
    let config = TrainConfig {
        epochs: options.epochs,
        learning_rate: options.learning_rate,
        adagrad: AdaGrad::PerFeature,
        seed: options.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15),
    };
    let mut final_loss = 0.0;
    let Trained { weights, bias } = fit(
        n_features,
        classes.len(),
        &rows,
        &config,
        None,
        |_, loss| final_loss = loss,
    );
    let [words, chars] = vocab;
    let featurizer = Featurizer::new(options.word_ngrams, options.char_ngrams);
    Ok(Classifier {
        labels: classes,
        options: options.clone(),
        words,
        chars,
        weights,
        bias,
        featurizer,
        report: TrainReport {
            rows: rows.len(),
            skipped_rows: skipped,
            featurize_seconds,
            fit_seconds: fit_started.elapsed().as_secs_f64(),
            final_loss,
        },
    })
}

impl Classifier {
    /// Puts together a classifier from its parts (as read back from its ONNX graph).
    pub(crate) fn from_parts(
        labels: Vec<String>,
        options: Options,
        words: Vocabulary,
        chars: Vocabulary,
        weights: Vec<f32>,
        bias: Vec<f32>,
    ) -> Self {
        let featurizer = Featurizer::new(options.word_ngrams, options.char_ngrams);
        Self {
            labels,
            options,
            words,
            chars,
            weights,
            bias,
            report: TrainReport::default(),
            featurizer,
        }
    }

    /// Class probabilities for `text`, in the order of [`Classifier::labels`].
    pub fn probabilities(&self, text: &str) -> Vec<f32> {
        let mut out = Vec::new();
        self.probabilities_into(text, &mut Scratch::default(), &mut out);
        out
    }

    /// [`Classifier::probabilities`] into `out`, with reusable scratch space for scoring many texts.
    pub fn probabilities_into(&self, text: &str, scratch: &mut Scratch, out: &mut Vec<f32>) {
        // The buffers move out of the scratch space for the call: `grams` needs the rest of it.
        let mut parts = std::mem::take(&mut scratch.parts);
        for part in &mut parts {
            part.clear();
        }
        self.featurizer.grams(text, scratch, |branch, key| {
            let b = branch as usize;
            let vocab = if b == 0 { &self.words } else { &self.chars };
            if let Some(&f) = vocab.index.get(key) {
                parts[b].push((f, vocab.idf[f as usize]));
            }
        });
        let c = self.labels.len();
        out.clear();
        out.extend_from_slice(&self.bias);
        for (b, part) in parts.iter_mut().enumerate() {
            // Repeated n-grams add up before the norm, as counts do in training and in ONNX.
            sum_duplicates(part);
            l2_normalise(part);
            let shift = if b == 0 { 0 } else { self.words.len() };
            for &(f, v) in part.iter() {
                for (pj, wj) in out
                    .iter_mut()
                    .zip(&self.weights[(f as usize + shift) * c..][..c])
                {
                    *pj += wj * v;
                }
            }
        }
        softmax(out, None);
        scratch.parts = parts;
    }

    /// The answer for probabilities `p`: the top label, or the out-of-scope label below the threshold.
    pub fn label_for(&self, p: &[f32]) -> &str {
        let (best, top) = argmax(p);
        match self.options.oos_threshold {
            Some(t) if top < t => &self.options.oos_label,
            _ => &self.labels[best],
        }
    }

    /// The predicted label of `text`, the out-of-scope label when the top probability is below the
    /// threshold.
    pub fn predict(&self, text: &str) -> &str {
        let p = self.probabilities(text);
        self.label_for(&p)
    }

    /// A classifier written by [`Classifier::to_onnx`], read back from its ONNX bytes; `None` for any
    /// other model.
    pub fn from_onnx(bytes: &[u8]) -> Option<Self> {
        crate::onnx::import(bytes)
    }

    /// The model as ONNX bytes.
    pub fn to_onnx(&self) -> Vec<u8> {
        crate::onnx::export(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> (Vec<&'static str>, Vec<&'static str>) {
        let rows = [
            ("where is my parcel", "shipping"),
            ("my parcel has not arrived", "shipping"),
            ("tracking number for my delivery", "shipping"),
            ("delivery is late again", "shipping"),
            ("I was charged twice", "billing"),
            ("refund the double charge", "billing"),
            ("wrong amount on my invoice", "billing"),
            ("invoice shows a charge I do not know", "billing"),
        ];
        rows.iter().map(|&(t, l)| (t, l)).unzip()
    }

    #[test]
    fn learns_the_training_rows_and_generalises_a_little() {
        let (texts, labels) = data();
        let o = Options::parse("epochs=30, learning_rate=0.5").expect("valid in this test");
        let m = train(&texts, &labels, &o).expect("valid in this test");
        assert_eq!(m.labels, ["billing", "shipping"]);
        for (t, l) in texts.iter().zip(&labels) {
            assert_eq!(m.predict(t), *l, "{t}");
        }
        assert_eq!(m.predict("is my parcel late?"), "shipping");
        assert_eq!(m.predict("a charge on the invoice"), "billing");
        let p = m.probabilities("");
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert_eq!(m.report.rows, 8);
    }

    #[test]
    fn too_few_labels_is_a_clear_error() {
        let e = train(&["a", "b"], &["x", "x"], &Options::default())
            .expect_err("must be rejected")
            .to_string();
        assert!(
            e.contains("at least two different labels") && e.contains("'x'"),
            "{e}"
        );
        let e = train(&["a"], &["x", "y"], &Options::default())
            .expect_err("must be rejected")
            .to_string();
        assert!(e.contains("1 texts but 2 labels"), "{e}");
    }

    #[test]
    fn the_onnx_bytes_read_back_to_the_same_classifier() {
        let (texts, labels) = data();
        let o = Options::parse("epochs=30, learning_rate=0.5, oos_threshold=0.6")
            .expect("valid in this test");
        let m = train(&texts, &labels, &o).expect("valid in this test");
        let back = Classifier::from_onnx(&m.to_onnx()).expect("a colloquy model");
        assert_eq!((&back.labels, &back.options), (&m.labels, &m.options));
        assert_eq!(back.words.keys, m.words.keys);
        assert_eq!(back.chars.keys, m.chars.keys);
        for t in [
            "where is my parcel",
            "double charge on the invoice",
            "",
            "zzz",
        ] {
            assert_eq!(back.probabilities(t), m.probabilities(t), "{t}");
            assert_eq!(back.predict(t), m.predict(t));
        }
        assert!(Classifier::from_onnx(b"not a model").is_none());
    }

    #[test]
    fn out_of_scope_below_the_threshold() {
        let (texts, labels) = data();
        let o =
            Options::parse("epochs=30, learning_rate=0.5, oos_threshold=0.99, oos_label=unknown")
                .expect("valid in this test");
        let m = train(&texts, &labels, &o).expect("valid in this test");
        assert_eq!(m.predict("qqq zzz"), "unknown");
    }
}
