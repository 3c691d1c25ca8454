//! Embeddings (a `FLOAT[]` column such as `embed(text)` from a registered ONNX encoder): a bottom-k sample of
//! distinct vectors by content hash, then the same domain-classifier test as text — a logistic regression
//! learns to tell reference vectors from current ones and its ROC AUC on a held-out half is the score.
//! This is the test Evidently applies to embeddings by default ("model" method).

use std::collections::BTreeMap;

use colloquy_textmodels::hash::checksum;
use datafusion::common::{Result, exec_err};

use super::codec::{Reader, Writer};
use super::domain::{DomainTest, Halves, halves, roc_auc};

/// Distinct vectors kept per side.
pub const SAMPLE_SIZE: usize = 1_024;
/// Longest vector accepted (sentence encoders give 384–4,096).
const MAX_DIM: usize = 8_192;

#[derive(Default, Debug, Clone)]
pub struct EmbeddingSample {
    pub count: u64,
    dim: usize,
    items: BTreeMap<u64, Vec<f32>>,
}

impl EmbeddingSample {
    pub fn add(&mut self, v: &[f32]) -> Result<()> {
        if v.is_empty() {
            return Ok(());
        }
        if self.dim == 0 {
            if v.len() > MAX_DIM {
                return exec_err!(
                    "drift(): embeddings of {} values are longer than {MAX_DIM}",
                    v.len()
                );
            }
            self.dim = v.len();
        } else if v.len() != self.dim {
            return exec_err!(
                "drift(): embeddings of different lengths ({} and {}) cannot be compared",
                self.dim,
                v.len()
            );
        }
        self.count += 1;
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        let h = checksum(&bytes);
        if self.items.len() >= SAMPLE_SIZE
            && self
                .items
                .last_key_value()
                .is_some_and(|(&max, _)| h >= max)
        {
            return Ok(());
        }
        self.items.entry(h).or_insert_with(|| v.to_vec());
        if self.items.len() > SAMPLE_SIZE {
            self.items.pop_last();
        }
        Ok(())
    }

    pub fn merge(&mut self, other: &Self) -> Result<()> {
        if self.dim != 0 && other.dim != 0 && self.dim != other.dim {
            return exec_err!(
                "drift(): embeddings of different lengths ({} and {}) cannot be compared",
                self.dim,
                other.dim
            );
        }
        self.dim = self.dim.max(other.dim);
        self.count += other.count;
        for (h, v) in &other.items {
            self.items.entry(*h).or_insert_with(|| v.clone());
        }
        while self.items.len() > SAMPLE_SIZE {
            self.items.pop_last();
        }
        Ok(())
    }

    pub fn bytes(&self) -> usize {
        48 + self.items.len() * (self.dim * 4 + 48)
    }

    pub fn write(&self, w: &mut Writer) {
        w.u64(self.count);
        w.u32(self.dim as u32);
        w.u32(self.items.len() as u32);
        for (h, v) in &self.items {
            w.u64(*h);
            for x in v {
                w.u32(x.to_bits());
            }
        }
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self> {
        let count = r.u64()?;
        let dim = r.u32()? as usize;
        if dim > MAX_DIM {
            return exec_err!("drift(): corrupt partial state (embedding length {dim})");
        }
        let n = r.u32()?;
        let mut items = BTreeMap::new();
        for _ in 0..n {
            let h = r.u64()?;
            let v = (0..dim)
                .map(|_| r.u32().map(f32::from_bits))
                .collect::<Result<Vec<_>>>()?;
            items.insert(h, v);
        }
        Ok(Self { count, dim, items })
    }
}

/// Logistic regression on half of each sample (reference 0, current 1); ROC AUC on the other half. `None`
/// when either held-out half has fewer than 5 vectors.
pub fn domain_classifier(
    reference: &EmbeddingSample,
    current: &EmbeddingSample,
) -> Option<DomainTest> {
    let dim = reference.dim.max(current.dim);
    let mut items = Vec::new();
    for (sample, y) in [(reference, false), (current, true)] {
        for (&h, v) in &sample.items {
            items.push((h, v.as_slice(), y));
        }
    }
    let Halves {
        train,
        test,
        held_out,
        class_weights: (w_pos, w_neg),
    } = halves(items)?;
    let n = train.len().max(1) as f32;
    // Centre on the training mean so that the bias does not have to learn the common direction.
    let mut mean = vec![0.0f32; dim];
    for (v, _) in &train {
        for (m, x) in mean.iter_mut().zip(v.iter()) {
            *m += x / n;
        }
    }
    let mut weights = vec![0.0f32; dim];
    let mut bias = 0.0f32;
    let scale = (dim as f32).sqrt();
    for epoch in 0..10 {
        let lr = 0.5 / (1.0 + epoch as f32);
        for (v, y) in &train {
            let z = bias
                + v.iter()
                    .zip(&mean)
                    .zip(&weights)
                    .map(|((x, m), w)| (x - m) * w)
                    .sum::<f32>()
                    * scale;
            let p = 1.0 / (1.0 + (-z).exp());
            let g = (p - y) * if *y > 0.5 { w_pos } else { w_neg };
            bias -= lr * g * 0.1;
            for ((w, x), m) in weights.iter_mut().zip(v.iter()).zip(&mean) {
                *w -= lr * g * (x - m) * scale / dim as f32;
            }
        }
    }
    let mut scored: Vec<(f32, bool)> = test
        .iter()
        .map(|(v, y)| {
            (
                v.iter()
                    .zip(&mean)
                    .zip(&weights)
                    .map(|((x, m), w)| (x - m) * w)
                    .sum::<f32>(),
                *y,
            )
        })
        .collect();
    Some(DomainTest {
        auc: roc_auc(&mut scored),
        held_out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(shift: f32, seed: u64, n: usize) -> EmbeddingSample {
        let mut s = EmbeddingSample::default();
        let mut x = seed | 1;
        for _ in 0..n {
            let v: Vec<f32> = (0..16)
                .map(|d| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x % 1000) as f32 / 1000.0 - 0.5 + if d == 3 { shift } else { 0.0 }
                })
                .collect();
            s.add(&v).expect("valid in this test");
        }
        s
    }

    #[test]
    fn a_shifted_dimension_is_found_and_the_same_distribution_is_not() {
        let a = sample(0.0, 1, 600);
        let moved = domain_classifier(&a, &sample(0.3, 2, 600)).expect("valid in this test");
        assert!(moved.auc > 0.75, "{}", moved.auc);
        let same = domain_classifier(&a, &sample(0.0, 3, 600)).expect("valid in this test");
        assert!((same.auc - 0.5).abs() < 0.08, "{}", same.auc);
    }

    #[test]
    fn lengths_must_agree_and_state_round_trips() {
        let mut s = sample(0.0, 1, 10);
        assert!(
            s.add(&[1.0, 2.0])
                .expect_err("must be rejected")
                .to_string()
                .contains("different lengths")
        );
        let mut w = Writer::default();
        s.write(&mut w);
        let back = EmbeddingSample::read(&mut Reader::new(&w.0)).expect("valid in this test");
        assert_eq!((back.count, back.dim, back.items.len()), (s.count, 16, 10));
        assert_eq!(back.items, s.items);
    }
}
