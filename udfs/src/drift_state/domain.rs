//! The domain-classifier test shared by text and embeddings: split each side's sample into a training and
//! a held-out half, let a classifier learn to tell the sides apart, and score it by ROC AUC on the held-out
//! half (0.5: it cannot tell them apart).

/// The result of the domain-classifier test.
pub struct DomainTest {
    pub auc: f64,
    /// Items of each side in the held-out half.
    pub held_out: (usize, usize),
}

/// The two halves of the samples, ready for training.
pub struct Halves<T> {
    /// Items with their target (1 current, 0 reference), in a fixed interleaved order.
    pub train: Vec<(T, f32)>,
    pub test: Vec<(T, bool)>,
    pub held_out: (usize, usize),
    /// Weights of current and reference training items, so that unequal sample sizes do not bias scores.
    pub class_weights: (f32, f32),
}

/// Splits `(content hash, item, is_current)` items by a bit of the hash, so the split is as deterministic
/// as the samples. `None` when either held-out side has fewer than 5 items.
pub fn halves<T>(items: Vec<(u64, T, bool)>) -> Option<Halves<T>> {
    let mut train: Vec<(u64, T, bool)> = Vec::new();
    let mut test: Vec<(T, bool)> = Vec::new();
    for (h, item, y) in items {
        if (h >> 29) & 1 == 1 {
            test.push((item, y));
        } else {
            train.push((h, item, y));
        }
    }
    let held_out = (
        test.iter().filter(|t| !t.1).count(),
        test.iter().filter(|t| t.1).count(),
    );
    if held_out.0 < 5 || held_out.1 < 5 {
        return None;
    }
    // Interleave the two sides in a fixed pseudo-random order: by content hash (an item in both samples
    // has the same hash; the side breaks the tie).
    train.sort_by_key(|(h, _, y)| (h.rotate_left(17), *y));
    let n = train.len().max(1) as f32;
    let pos = train.iter().filter(|t| t.2).count() as f32;
    let class_weights = (n / (2.0 * pos.max(1.0)), n / (2.0 * (n - pos).max(1.0)));
    Some(Halves {
        train: train
            .into_iter()
            .map(|(_, item, y)| (item, if y { 1.0 } else { 0.0 }))
            .collect(),
        test,
        held_out,
        class_weights,
    })
}

/// ROC AUC by the rank-sum formula, ties given their average rank.
pub fn roc_auc(scored: &mut [(f32, bool)]) -> f64 {
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut rank_sum, mut i) = (0.0f64, 0);
    while i < scored.len() {
        let mut j = i;
        while j + 1 < scored.len() && scored[j + 1].0 == scored[i].0 {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += avg * scored[i..=j].iter().filter(|s| s.1).count() as f64;
        i = j + 1;
    }
    let pos = scored.iter().filter(|s| s.1).count() as f64;
    let neg = scored.len() as f64 - pos;
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}
