//! Free text: a bottom-k sample of distinct texts by content hash (so the sample is the same however rows
//! are partitioned, and merging keeps the k smallest hashes), each kept as its first words. At the end a
//! small classifier learns to tell reference texts from current ones — the domain-classifier test that
//! Evidently uses — and its ROC AUC on a held-out half is the drift score.

use std::collections::BTreeMap;

use foldhash::HashMap;

use colloquy_textmodels::Tokens;
use colloquy_textmodels::hash::{FeatureHash, checksum};
use datafusion::common::Result;

use super::codec::{Reader, Writer};
use super::domain::{DomainTest, Halves, halves, roc_auc};

/// Distinct texts kept per side.
pub const SAMPLE_SIZE: usize = 2_048;
/// Words kept per text.
const WORDS_PER_TEXT: usize = 32;
const FEATURE_BITS: u32 = 16;

#[derive(Default, Debug, Clone)]
pub struct TextSample {
    pub count: u64,
    /// Content hash → its first words, joined by single spaces (words never hold whitespace). One string
    /// per text, not one per word: allocating and freeing words was a fifth of a drift query.
    items: BTreeMap<u64, String>,
    /// [`Self::bytes`], kept up to date: DataFusion asks for an accumulator's size after every batch,
    /// and summing 2,048 samples each time was a few percent of a drift query.
    held: usize,
}

/// What one sampled text holds in memory, as [`TextSample::bytes`] counts it.
fn item_bytes(words: &str) -> usize {
    48 + words.len()
}

/// The words of a sampled text (words never hold whitespace). Split by a loop over bytes: the words are a
/// few bytes, less than the memchr of `split(' ')` pays for (memchr was 7% of a drift query).
fn words_of(joined: &str) -> impl Iterator<Item = &str> {
    joined.split_ascii_whitespace()
}

impl TextSample {
    pub fn add(&mut self, text: &str, tokens: &mut Tokens) {
        self.count += 1;
        let h = checksum(text.as_bytes());
        if self.items.len() >= SAMPLE_SIZE
            && self
                .items
                .last_key_value()
                .is_some_and(|(&max, _)| h >= max)
        {
            return;
        }
        if self.items.contains_key(&h) {
            return;
        }
        tokens.read(text);
        let mut words = String::new();
        for (i, w) in tokens.words().take(WORDS_PER_TEXT).enumerate() {
            if i > 0 {
                words.push(' ');
            }
            words.push_str(w);
        }
        self.held += item_bytes(&words);
        self.items.insert(h, words);
        self.trim();
    }

    /// Drops the largest hashes beyond the sample size.
    fn trim(&mut self) {
        while self.items.len() > SAMPLE_SIZE {
            if let Some((_, words)) = self.items.pop_last() {
                self.held -= item_bytes(&words);
            }
        }
    }

    pub fn merge(&mut self, other: &Self) {
        self.count += other.count;
        for (h, w) in &other.items {
            if let std::collections::btree_map::Entry::Vacant(e) = self.items.entry(*h) {
                self.held += item_bytes(w);
                e.insert(w.clone());
            }
        }
        self.trim();
    }

    #[cfg(test)]
    pub fn sampled(&self) -> usize {
        self.items.len()
    }

    pub fn bytes(&self) -> usize {
        32 + self.held
    }

    pub fn write(&self, w: &mut Writer) {
        w.u64(self.count);
        w.u32(self.items.len() as u32);
        for (h, words) in &self.items {
            w.u64(*h);
            w.str(words);
        }
    }

    pub fn read(r: &mut Reader<'_>) -> Result<Self> {
        let count = r.u64()?;
        let n = r.u32()?;
        let mut items = BTreeMap::new();
        let mut held = 0;
        for _ in 0..n {
            let h = r.u64()?;
            let words = r.str()?;
            held += item_bytes(&words);
            items.insert(h, words);
        }
        Ok(Self { count, items, held })
    }
}

/// Appends the feature buckets of a sampled text (its words and word pairs) to `out`.
fn features(words: &str, out: &mut Vec<u32>) {
    let mut previous: Option<&str> = None;
    for w in words_of(words) {
        let mut h = FeatureHash::new(1);
        h.bytes(w.as_bytes());
        out.push(h.bucket(FEATURE_BITS));
        if let Some(p) = previous {
            let mut h = FeatureHash::new(2);
            h.bytes(p.as_bytes());
            h.byte(0);
            h.bytes(w.as_bytes());
            out.push(h.bucket(FEATURE_BITS));
        }
        previous = Some(w);
    }
}

/// Trains a logistic regression on half of each sample to tell reference (0) from current (1), and returns
/// its ROC AUC on the other half. `None` when either half has fewer than 5 texts.
pub fn domain_classifier(reference: &TextSample, current: &TextSample) -> Option<DomainTest> {
    // Features are computed once per text, not once per epoch, into one buffer (not a vector per text:
    // an allocation and a copy each); each item is its range there.
    let mut buckets: Vec<u32> = Vec::new();
    let mut items = Vec::new();
    for (sample, y) in [(reference, false), (current, true)] {
        for (&h, words) in &sample.items {
            let start = buckets.len();
            features(words, &mut buckets);
            items.push((h, start..buckets.len(), y));
        }
    }
    let Halves {
        train,
        test,
        held_out,
        class_weights: (w_pos, w_neg),
    } = halves(items)?;
    let mut weights = vec![0.0f32; 1 << FEATURE_BITS];
    let mut bias = 0.0f32;
    for epoch in 0..5 {
        let lr = 0.5 / (1.0 + epoch as f32);
        for (range, y) in &train {
            let f = &buckets[range.clone()];
            if f.is_empty() {
                continue;
            }
            let norm = 1.0 / (f.len() as f32).sqrt();
            let z = bias + f.iter().map(|&b| weights[b as usize]).sum::<f32>() * norm;
            let p = 1.0 / (1.0 + (-z).exp());
            let g = (p - y) * if *y > 0.5 { w_pos } else { w_neg };
            bias -= lr * g * 0.1;
            for &b in f {
                weights[b as usize] -= lr * g * norm;
            }
        }
    }
    let mut scored: Vec<(f32, bool)> = test
        .iter()
        .map(|(range, y)| {
            let f = &buckets[range.clone()];
            let norm = if f.is_empty() {
                0.0
            } else {
                1.0 / (f.len() as f32).sqrt()
            };
            (
                f.iter().map(|&b| weights[b as usize]).sum::<f32>() * norm,
                *y,
            )
        })
        .collect();
    Some(DomainTest {
        auc: roc_auc(&mut scored),
        held_out,
    })
}

/// How many texts of the pooled sample each side's word share is smoothed with in [`moved_terms`].
const PRIOR_TEXTS: f64 = 20.0;

/// The words that explain the change most (see the score below), as `+word` (more frequent now) or
/// `-word` (less frequent), at most `k`.
pub fn moved_terms(reference: &TextSample, current: &TextSample, k: usize) -> Vec<String> {
    // One hash map (foldhash: SipHash was a tenth of the query) counting both sides, not ordered maps:
    // comparing strings in B-trees was the largest cost of a drift query, and two maps plus their union
    // were a seventh of it. A word counts once per text: each entry remembers the last text that counted
    // it, which saves a set (or a sort) per text. The order of the answer comes from the total sort below.
    let mut df: HashMap<&str, ([u32; 2], usize)> = HashMap::default();
    let mut text = 0usize;
    for (side, sample) in [reference, current].into_iter().enumerate() {
        for words in sample.items.values() {
            text += 1;
            for w in words_of(words) {
                let (counts, last) = df.entry(w).or_insert(([0, 0], 0));
                if *last != text {
                    *last = text;
                    counts[side] += 1;
                }
            }
        }
    }
    let (na, nb) = (
        reference.items.len().max(1) as f64,
        current.items.len().max(1) as f64,
    );
    let mut moved: Vec<(f64, &str, bool)> = df
        .into_iter()
        .filter_map(|(w, ([ca, cb], _))| {
            if ca + cb < 3 {
                return None;
            }
            // How much the word explains the change: its term of the symmetric KL divergence between
            // the two sides' document frequencies, (q − p)·ln(q/p). A word frequent everywhere moves by a
            // few points with a ratio near 1 and scores little; a word that appears with the change
            // (a ratio of 10 or 100) leads. Each side's share is pulled towards the word's pooled share
            // by PRIOR_TEXTS texts, so a word seen a handful of times cannot lead on its ratio alone.
            let pooled = (ca + cb) as f64 / (na + nb);
            let p = (ca as f64 + PRIOR_TEXTS * pooled) / (na + PRIOR_TEXTS);
            let q = (cb as f64 + PRIOR_TEXTS * pooled) / (nb + PRIOR_TEXTS);
            Some(((q - p) * (q / p).ln(), w, q > p))
        })
        .collect();
    moved.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(y.1)));
    moved
        .into_iter()
        .take(k)
        .map(|(_, w, up)| format!("{}{w}", if up { '+' } else { '-' }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(texts: impl Iterator<Item = String>) -> TextSample {
        let mut s = TextSample::default();
        let mut t = Tokens::new();
        texts.for_each(|x| s.add(&x, &mut t));
        s
    }

    #[test]
    fn bottom_k_is_partition_independent() {
        let texts: Vec<String> = (0..6000)
            .map(|i| format!("message number {i} about things"))
            .collect();
        let whole = sample(texts.iter().cloned());
        let mut a = sample(texts.iter().step_by(2).cloned());
        let b = sample(texts.iter().skip(1).step_by(2).cloned());
        a.merge(&b);
        assert_eq!(a.count, 6000);
        assert_eq!(a.items, whole.items);
        assert_eq!(a.sampled(), SAMPLE_SIZE);
    }

    #[test]
    fn the_words_that_came_with_the_change_lead() {
        // The reference: 400 texts, "the" in 65% of them. The current side: "the" in 50%, and "courier"
        // (never seen before) in 10%. "the" moved more in absolute share, but "courier" explains the change.
        let reference = sample((0..400).map(|i| {
            if i % 20 < 13 {
                format!("where is the order {i}")
            } else {
                format!("where is my order {i}")
            }
        }));
        let current = sample((0..400).map(|i| match i % 10 {
            0 => format!("the courier lost order {i}"),
            1..5 => format!("where is the order {i}"),
            _ => format!("where is my order {i}"),
        }));
        let top = moved_terms(&reference, &current, 3);
        assert_eq!(top[0], "+courier", "{top:?}");
        assert!(top.contains(&"+lost".to_string()), "{top:?}");
    }

    #[test]
    fn size_is_kept_up_to_date() {
        let recount = |s: &TextSample| 32 + s.items.values().map(|w| item_bytes(w)).sum::<usize>();
        let mut a = sample((0..3000).map(|i| format!("text number {i} with some words")));
        assert_eq!(a.bytes(), recount(&a));
        let b = sample((0..500).map(|i| format!("another {i}")));
        a.merge(&b);
        assert_eq!(a.bytes(), recount(&a));
        let mut w = Writer::default();
        a.write(&mut w);
        let back = TextSample::read(&mut Reader::new(&w.0)).expect("reads back");
        assert_eq!(back.bytes(), a.bytes());
    }

    #[test]
    fn classifier_tells_different_texts_apart() {
        let a = sample((0..800).map(|i| format!("where is my order {i} it is late")));
        let b = sample((0..800).map(|i| format!("thanks for the great help {i} have a nice day")));
        let same = sample((0..800).map(|i| format!("where is my order {} it is late", i + 10_000)));
        let d = domain_classifier(&a, &b).expect("enough texts");
        assert!(d.auc > 0.95, "{}", d.auc);
        let n = domain_classifier(&a, &same).expect("enough texts");
        assert!(n.auc < 0.6, "{}", n.auc);
        let terms = moved_terms(&a, &b, 16);
        assert!(
            terms.contains(&"-order".to_owned()) && terms.contains(&"+thanks".to_owned()),
            "{terms:?}"
        );
    }

    #[test]
    fn auc_of_perfect_and_reversed() {
        let mut s = vec![(0.1, false), (0.2, false), (0.8, true), (0.9, true)];
        assert_eq!(roc_auc(&mut s), 1.0);
        let mut r = vec![(0.9, false), (0.8, false), (0.1, true), (0.2, true)];
        assert_eq!(roc_auc(&mut r), 0.0);
    }
}
