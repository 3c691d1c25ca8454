//! Training: multinomial logistic regression over sparse rows by AdaGrad SGD, and quantisation to the i8
//! model format.
//!
//! The one softmax trainer of the workspace: the built-in models fit it over hashed features
//! ([`Example::new`], driven by [`crate::recipes`]) and colloquy-classifier over TF-IDF rows. It lives
//! in this crate, next to the features and the scorer, so that training reads features through exactly
//! the code that scores them. The two users differ only in how AdaGrad sizes steps ([`AdaGrad`]).

use crate::features::FeatureSpec;
use crate::lexicon::Lexicon;
use crate::model::softmax;
use crate::sparse::sum_duplicates;
use crate::tokens::Tokens;

/// One training row: its sparse features `(feature, value)`, its label and its weight.
#[derive(Clone, Debug)]
pub struct Example {
    pub features: Vec<(u32, f32)>,
    pub label: u32,
    pub weight: f32,
}

impl Example {
    /// Featurises `text` with the hashed features of `spec`, values scaled so that the row adds up the
    /// same way the scorer does (`count / sqrt(total)`); `None` when it has no features at all.
    pub fn new(
        spec: &FeatureSpec,
        tokens: &mut Tokens,
        text: &str,
        label: u32,
        weight: f32,
    ) -> Option<Self> {
        Self::with_lexicon(spec, None, tokens, text, label, weight)
    }

    /// [`Self::new`] for a model that also reads `lexicon`'s features ([`LinearModel::lexicon`]).
    ///
    /// [`LinearModel::lexicon`]: crate::LinearModel::lexicon
    pub fn with_lexicon(
        spec: &FeatureSpec,
        lexicon: Option<&Lexicon>,
        tokens: &mut Tokens,
        text: &str,
        label: u32,
        weight: f32,
    ) -> Option<Self> {
        tokens.read(text);
        let mut buckets = Vec::new();
        spec.features(tokens, &mut buckets);
        if let Some(lexicon) = lexicon {
            lexicon.features(tokens, spec.bits, &mut buckets);
        }
        if buckets.is_empty() {
            return None;
        }
        let norm = 1.0 / (buckets.len() as f32).sqrt();
        let mut features: Vec<(u32, f32)> = buckets.into_iter().map(|b| (b, norm)).collect();
        sum_duplicates(&mut features);
        Some(Self {
            features,
            label,
            weight,
        })
    }
}

/// How AdaGrad sizes the step of each weight.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AdaGrad {
    /// One squared-gradient sum per weight (feature × label), with an L2 penalty on the weights an example
    /// touches: the built-in models.
    PerWeight { l2: f32 },
    /// One sum per feature, shared by its labels' weights and fed the mean of their squared gradients,
    /// without a penalty: colloquy-classifier's. The accumulator is one number per feature rather than one
    /// per weight, and the update two passes over the touched rows.
    PerFeature,
}

#[derive(Clone, Copy, Debug)]
pub struct TrainConfig {
    pub epochs: usize,
    pub learning_rate: f32,
    pub adagrad: AdaGrad,
    /// The shuffling seed (`seed | 1` seeds the xorshift generator of [`shuffle`]).
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 8,
            learning_rate: 0.5,
            adagrad: AdaGrad::PerWeight { l2: 1e-6 },
            seed: 7,
        }
    }
}

/// f32 weights (`features × labels`, row per feature) and biases.
pub struct Trained {
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
}

/// Fits the model over `n_features` features (`2^bits` buckets for a [`FeatureSpec`]). `init` optionally
/// starts the weights from a prior (same layout as the result). `progress` gets each epoch's mean
/// weighted cross-entropy.
pub fn train(
    n_features: usize,
    n_labels: usize,
    examples: &[Example],
    config: &TrainConfig,
    init: Option<Vec<f32>>,
    mut progress: impl FnMut(usize, f64),
) -> Trained {
    let l = n_labels;
    let mut w = init.unwrap_or_else(|| vec![0.0; n_features * l]);
    assert_eq!(w.len(), n_features * l, "prior has the wrong size");
    let per_weight = matches!(config.adagrad, AdaGrad::PerWeight { .. });
    let mut g2 = vec![
        0.0f32;
        if per_weight {
            n_features * l
        } else {
            n_features
        }
    ];
    let mut bias = vec![0.0f32; l];
    let mut bias_g2 = vec![0.0f32; l];
    let mut order: Vec<usize> = (0..examples.len()).collect();
    let mut rng = config.seed | 1;
    let mut p = vec![0.0f32; l];
    let lr = config.learning_rate;
    for epoch in 0..config.epochs {
        shuffle(&mut order, &mut rng);
        let mut loss = 0.0f64;
        for &i in &order {
            let ex = &examples[i];
            p.copy_from_slice(&bias);
            for &(b, v) in &ex.features {
                let row = &w[b as usize * l..][..l];
                for (pj, &wj) in p.iter_mut().zip(row) {
                    *pj += wj * v;
                }
            }
            softmax(&mut p, None);
            let y = ex.label as usize;
            loss -= f64::from(p[y].max(1e-12).ln() * ex.weight);
            // Gradient of the cross-entropy: p - onehot(y).
            p[y] -= 1.0;
            for pj in p.iter_mut() {
                *pj *= ex.weight;
            }
            for j in 0..l {
                let g = p[j];
                bias_g2[j] += g * g;
                bias[j] -= lr * g / (bias_g2[j].sqrt() + 1e-6);
            }
            match config.adagrad {
                AdaGrad::PerWeight { l2 } => {
                    for &(b, v) in &ex.features {
                        let base = b as usize * l;
                        let row = &mut w[base..base + l];
                        let acc = &mut g2[base..base + l];
                        for j in 0..l {
                            let g = p[j] * v + l2 * row[j];
                            acc[j] += g * g;
                            row[j] -= lr * g / (acc[j].sqrt() + 1e-6);
                        }
                    }
                }
                AdaGrad::PerFeature => {
                    let mean_g2 = p.iter().map(|g| g * g).sum::<f32>() / l as f32;
                    for &(f, v) in &ex.features {
                        let f = f as usize;
                        g2[f] += mean_g2 * v * v;
                        let step = lr / (g2[f].sqrt() + 1e-6);
                        for (wj, pj) in w[f * l..][..l].iter_mut().zip(&p) {
                            *wj -= step * pj * v;
                        }
                    }
                }
            }
        }
        progress(epoch, loss / examples.len().max(1) as f64);
    }
    Trained { weights: w, bias }
}

/// i8 weights and the scale that maps them back. The scale comes from the 99.99th percentile of the
/// absolute weights, not the maximum, so a handful of extreme weights do not flatten the rest to zero.
pub fn quantize(weights: &[f32]) -> (f32, Vec<i8>) {
    let mut abs: Vec<f32> = weights
        .iter()
        .map(|w| w.abs())
        .filter(|&a| a > 0.0)
        .collect();
    if abs.is_empty() {
        return (1.0, vec![0; weights.len()]);
    }
    let k = ((abs.len() as f64) * 0.9999) as usize;
    let k = k.min(abs.len() - 1);
    let (_, top, _) = abs.select_nth_unstable_by(k, f32::total_cmp);
    let scale = (*top / 127.0).max(f32::MIN_POSITIVE);
    let q = weights
        .iter()
        .map(|&w| (w / scale).round().clamp(-127.0, 127.0) as i8)
        .collect();
    (scale, q)
}

/// Fisher–Yates with xorshift64: deterministic across platforms and Rust releases.
pub fn shuffle<T>(items: &mut [T], state: &mut u64) {
    for i in (1..items.len()).rev() {
        let j = (next(state) % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

/// The next value of a xorshift64 generator (`state` must not be 0).
pub fn next(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LinearModel, Scratch, argmax};

    #[test]
    fn learns_a_separable_toy_task() {
        let spec = FeatureSpec {
            bits: 12,
            char_min: 2,
            char_max: 3,
            words: true,
            bigrams: false,
            negation: false,
            signals: false,
        };
        let data = [
            ("the cat sat on the mat", 0),
            ("a dog and the cat", 0),
            ("the house is red", 0),
            ("el gato está en la casa", 1),
            ("la casa es roja", 1),
            ("el perro y el gato", 1),
        ];
        let mut t = Tokens::new();
        let ex: Vec<_> = data
            .iter()
            .filter_map(|&(s, y)| Example::new(&spec, &mut t, s, y, 1.0))
            .collect();
        let cfg = TrainConfig {
            epochs: 30,
            ..TrainConfig::default()
        };
        let trained = train(1 << spec.bits, 2, &ex, &cfg, None, |_, _| {});
        let (scale, weights) = quantize(&trained.weights);
        let model = LinearModel {
            spec,
            labels: vec!["en".into(), "es".into()],
            scale,
            bias: trained.bias,
            weights,
            known_bits: 0,
            known: vec![],
            params: vec![],
            lexicon: None,
            cache_id: crate::model::CacheId::default(),
        };
        let mut s = Scratch::default();
        let mut logits = Vec::new();
        model.logits("the red cat", &mut s, &mut logits);
        assert_eq!(argmax(&logits).0, 0);
        model.logits("la casa roja", &mut s, &mut logits);
        assert_eq!(argmax(&logits).0, 1);
    }

    #[test]
    fn quantize_keeps_sign_and_order() {
        let (scale, q) = quantize(&[0.0, 1.0, -2.0, 0.5]);
        assert!(scale > 0.0);
        assert_eq!(q[0], 0);
        assert!(q[2] < 0 && q[1] > q[3]);
    }
}
