//! Training: multinomial logistic regression over hashed features, by AdaGrad SGD, then quantisation to the
//! i8 model format. Lives in the library, not only in the trainer binary, so that training reads features
//! through exactly the code that scores them.

use crate::features::FeatureSpec;
use crate::model::softmax;
use crate::tokens::Tokens;

/// One training text as sparse features: `(bucket, value)` with values scaled so that the row adds up the
/// same way the scorer does (`count / sqrt(total)`).
#[derive(Clone, Debug)]
pub struct Example {
    pub features: Vec<(u32, f32)>,
    pub label: u16,
    pub weight: f32,
}

impl Example {
    /// Featurises `text`; `None` when it has no features at all.
    pub fn new(
        spec: &FeatureSpec,
        tokens: &mut Tokens,
        text: &str,
        label: u16,
        weight: f32,
    ) -> Option<Self> {
        tokens.read(text);
        let mut buckets = Vec::new();
        spec.features(tokens, &mut buckets);
        if buckets.is_empty() {
            return None;
        }
        let norm = 1.0 / (buckets.len() as f32).sqrt();
        buckets.sort_unstable();
        let mut features: Vec<(u32, f32)> = Vec::with_capacity(buckets.len());
        for b in buckets {
            match features.last_mut() {
                Some((last, v)) if *last == b => *v += norm,
                _ => features.push((b, norm)),
            }
        }
        Some(Self {
            features,
            label,
            weight,
        })
    }
}

#[derive(Clone, Copy, Debug)]
pub struct TrainConfig {
    pub epochs: usize,
    pub learning_rate: f32,
    /// L2 penalty applied to the weights an example touches.
    pub l2: f32,
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 8,
            learning_rate: 0.5,
            l2: 1e-6,
            seed: 7,
        }
    }
}

/// f32 weights (`2^bits × labels`, row per bucket) and biases.
pub struct Trained {
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
}

/// Fits the model. `init` optionally starts the weights from a prior (same layout as the result).
pub fn train(
    spec: &FeatureSpec,
    n_labels: usize,
    examples: &[Example],
    config: &TrainConfig,
    init: Option<Vec<f32>>,
    mut progress: impl FnMut(usize, f64),
) -> Trained {
    let rows = 1usize << spec.bits;
    let l = n_labels;
    let mut w = init.unwrap_or_else(|| vec![0.0; rows * l]);
    assert_eq!(w.len(), rows * l, "prior has the wrong size");
    let mut g2 = vec![0.0f32; rows * l];
    let mut bias = vec![0.0f32; l];
    let mut bias_g2 = vec![0.0f32; l];
    let mut order: Vec<usize> = (0..examples.len()).collect();
    let mut rng = config.seed | 1;
    let mut p = vec![0.0f32; l];
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
            let y = usize::from(ex.label);
            loss -= f64::from(p[y].max(1e-12).ln() * ex.weight);
            // Gradient of the cross-entropy: p - onehot(y).
            p[y] -= 1.0;
            for pj in p.iter_mut() {
                *pj *= ex.weight;
            }
            let lr = config.learning_rate;
            for j in 0..l {
                let g = p[j];
                bias_g2[j] += g * g;
                bias[j] -= lr * g / (bias_g2[j].sqrt() + 1e-6);
            }
            for &(b, v) in &ex.features {
                let base = b as usize * l;
                let row = &mut w[base..base + l];
                let acc = &mut g2[base..base + l];
                for j in 0..l {
                    let g = p[j] * v + config.l2 * row[j];
                    acc[j] += g * g;
                    row[j] -= lr * g / (acc[j].sqrt() + 1e-6);
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
        let trained = train(&spec, 2, &ex, &cfg, None, |_, _| {});
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
