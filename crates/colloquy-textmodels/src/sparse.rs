//! Sparse feature rows, `(feature, value)` pairs: what the trainer ([`crate::train`]) fits and both kinds
//! of model score, the hashed built-in models and colloquy-classifier's TF-IDF rows.

/// Sorts `row` by feature and adds up the values of a feature listed more than once, in order (the first
/// value, plus the second, ...): a feature that occurs twice counts twice.
pub fn sum_duplicates(row: &mut Vec<(u32, f32)>) {
    row.sort_unstable_by_key(|&(f, _)| f);
    row.dedup_by(|next, kept| {
        let same = next.0 == kept.0;
        if same {
            kept.1 += next.1;
        }
        same
    });
}

/// Scales `row` to unit Euclidean length (a row of zeros stays as it is).
pub fn l2_normalise(row: &mut [(u32, f32)]) {
    let norm = row.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        for (_, v) in row {
            *v /= norm;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_add_up_in_feature_order() {
        let mut row = vec![(7, 1.0), (2, 0.5), (7, 2.0), (2, 0.25), (3, 1.0)];
        sum_duplicates(&mut row);
        assert_eq!(row, [(2, 0.75), (3, 1.0), (7, 3.0)]);
        let mut empty = Vec::new();
        sum_duplicates(&mut empty);
        assert!(empty.is_empty());
    }

    #[test]
    fn unit_length() {
        let mut row = vec![(0, 3.0), (5, 4.0)];
        l2_normalise(&mut row);
        assert_eq!(row, [(0, 0.6), (5, 0.8)]);
        let mut zeros = vec![(1, 0.0)];
        l2_normalise(&mut zeros);
        assert_eq!(zeros, [(1, 0.0)]);
    }
}
