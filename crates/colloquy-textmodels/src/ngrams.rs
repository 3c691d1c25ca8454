//! Which runs of units (characters, words) are n-grams: one enumerator for the hashed character n-grams
//! of the built-in models ([`crate::features`]) and colloquy-classifier's word and character n-grams.

/// Every n-gram `[start, end)` of `min..=max` units among `units`, by start, then by length. A `min` of 0
/// counts as 1.
pub fn spans(units: usize, min: usize, max: usize) -> Spans {
    let min = min.max(1);
    Spans {
        units,
        min,
        max,
        start: 0,
        len: min,
    }
}

/// The iterator of [`spans`].
#[derive(Clone, Debug)]
pub struct Spans {
    units: usize,
    min: usize,
    max: usize,
    start: usize,
    len: usize,
}

impl Iterator for Spans {
    type Item = (usize, usize);

    #[inline]
    fn next(&mut self) -> Option<(usize, usize)> {
        while self.start < self.units {
            let end = self.start + self.len;
            if self.len <= self.max && end <= self.units {
                self.len += 1;
                return Some((self.start, end));
            }
            self.start += 1;
            self.len = self.min;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_start_then_length() {
        let all: Vec<_> = spans(4, 2, 3).collect();
        assert_eq!(all, [(0, 2), (0, 3), (1, 3), (1, 4), (2, 4)]);
        assert_eq!(spans(3, 0, 1).collect::<Vec<_>>(), [(0, 1), (1, 2), (2, 3)]);
        assert_eq!(spans(2, 3, 5).count(), 0);
        assert_eq!(spans(0, 1, 5).count(), 0);
        assert_eq!(spans(5, 1, 0).count(), 0);
    }

    #[test]
    fn matches_the_nested_loops() {
        for units in 0..9 {
            for min in 1..5 {
                for max in 0..7 {
                    let mut want = Vec::new();
                    for s in 0..units {
                        for n in min..=max {
                            if s + n > units {
                                break;
                            }
                            want.push((s, s + n));
                        }
                    }
                    assert_eq!(spans(units, min, max).collect::<Vec<_>>(), want);
                }
            }
        }
    }
}
