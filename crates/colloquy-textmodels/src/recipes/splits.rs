//! The recipes' deterministic choices: which cross-validation fold a row is in, which word windows of a
//! text train the language model, and which requests the intent model also sees wrapped in small talk.
//! None of them draws from the OS or from `std`'s randomised hashing: the same data gives the same model.
//! (The train, development and test splits themselves are made by `scripts/models/prepare_data.py`.)

use crate::hash::checksum;
use crate::train::next;

/// The cross-validation fold (of `folds`) of the row at index `i`: a fixed stride over the rows, so the
/// folds are near equal in size and do not follow the file's order.
pub fn cv_fold(i: usize, folds: usize) -> usize {
    (i * 7919 + 13) % folds
}

/// A window of 1 to `max_window` consecutive words of `words`, drawn from the xorshift state `rng`:
/// its length and the words joined by spaces. `words` must hold at least `max_window` words.
pub fn word_window(words: &[&str], max_window: u64, rng: &mut u64) -> (usize, String) {
    let n = 1 + (next(rng) % max_window) as usize;
    let start = (next(rng) % (words.len() - n + 1) as u64) as usize;
    (n, words[start..start + n].join(" "))
}

/// Whether a request `text` is also trained wrapped in small talk, decided by its checksum so that a row
/// keeps its choice whatever else changes: with `share` of the requests, `Some((row, before))`, the
/// small-talk row to use (an index below `small_talk`) and whether it goes before the request.
pub fn small_talk_mix(text: &str, share: f32, small_talk: usize) -> Option<(usize, bool)> {
    let draw = checksum(text.as_bytes());
    (small_talk > 0 && ((draw % 10_000) as f32) < share * 10_000.0)
        .then(|| ((draw >> 20) as usize % small_talk, draw >> 60 & 1 == 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_are_fixed_and_balanced() {
        let folds: Vec<usize> = (0..1000).map(|i| cv_fold(i, 5)).collect();
        assert_eq!(folds[..6], [3, 2, 1, 0, 4, 3]);
        for k in 0..5 {
            assert_eq!(folds.iter().filter(|&&f| f == k).count(), 200);
        }
    }

    #[test]
    fn windows_repeat_for_a_seed() {
        let words = ["a", "b", "c", "d", "e"];
        let draw = |seed: u64| {
            let mut rng = seed;
            (0..20)
                .map(|_| word_window(&words, 3, &mut rng))
                .collect::<Vec<_>>()
        };
        let first = draw(0x9e37_79b9_7f4a_7c15);
        assert_eq!(first, draw(0x9e37_79b9_7f4a_7c15));
        assert_ne!(first, draw(7));
        for (n, w) in &first {
            assert!((1..=3).contains(n));
            assert_eq!(w.split(' ').count(), *n);
            assert!("a b c d e".contains(w.as_str()), "{w}");
        }
    }

    #[test]
    fn small_talk_follows_the_text() {
        let texts: Vec<String> = (0..1000).map(|i| format!("where is order {i}")).collect();
        let picks: Vec<_> = texts.iter().map(|t| small_talk_mix(t, 0.5, 7)).collect();
        let again: Vec<_> = texts.iter().map(|t| small_talk_mix(t, 0.5, 7)).collect();
        assert_eq!(picks, again);
        let mixed = picks.iter().flatten().count();
        assert!((400..600).contains(&mixed), "{mixed}");
        assert!(picks.iter().flatten().all(|&(row, _)| row < 7));
        assert!(picks.iter().flatten().any(|p| p.1) && picks.iter().flatten().any(|p| !p.1));
        assert!(texts.iter().all(|t| small_talk_mix(t, 1.0, 7).is_some()));
        assert!(texts.iter().all(|t| small_talk_mix(t, 0.0, 7).is_none()));
        assert!(small_talk_mix("anything", 1.0, 0).is_none());
    }
}
