//! A polarity lexicon read as a handful of features: how many positive and negative lexicon words a
//! message has, and their signed sum after negation, intensifiers and "but".
//!
//! Why: in a bag of hashed n-grams a word's polarity is one feature among 70, and the labelled tweets
//! teach it only for the words they happen to contain. A lexicon sum is one feature that every message
//! with a known polar word shares, so a few thousand tweets are enough to weigh it, and words the tweets
//! never show still count (benches/research_sentiment/REPORT.md: the sum moved the English tweet sets by
//! 0.04–0.05 macro-F1 where a lexicon used as starting weights moved nothing).
//!
//! The table is stored in the model file: 2^16 polarities (×10, as `i8`) indexed by the word's hash, so it
//! costs one read per word and 64 KB, and holds no word text.

use crate::features::{NEGATION_WORDS, is_negation, word_list};
use crate::hash::FeatureHash;
use crate::tokens::Tokens;

/// Entries of the table: `2^LEXICON_BITS`.
pub const LEXICON_BITS: u32 = 16;
/// The feature family of the lexicon features (see `features.rs` for the others).
const LEX: u8 = 9;
/// The hash family of a word's table entry.
const LEX_WORD: u8 = 10;
/// Polar words read per message; a longer message's later ones are ignored.
const MAX_POLAR: usize = 32;

/// Word classes of [`Lexicon::classes`], as bits.
const NEGATOR: u8 = 1;
const CONTRAST: u8 = 2;
const INTENSIFIER: u8 = 4;

/// One word's entry: see [`Lexicon::entry_of`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WordEntry {
    polarity: i8,
    class: u8,
}

/// Word → polarity in [-12.7, 12.7], one tenth resolution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lexicon {
    table: Vec<i8>,
    /// Per entry, which of the negation, contrast and intensifier word lists have a word there: one read
    /// per word tells the rare words that need an exact test from the rest (matching every word against
    /// ~100 strings cost a quarter of sentiment()'s time).
    classes: Vec<u8>,
}

impl Default for Lexicon {
    fn default() -> Self {
        Self::with_table(vec![0; 1 << LEXICON_BITS])
    }
}

impl Lexicon {
    /// A lexicon from its stored table; `None` unless it has exactly `2^LEXICON_BITS` entries.
    pub fn from_table(table: Vec<i8>) -> Option<Self> {
        (table.len() == 1 << LEXICON_BITS).then(|| Self::with_table(table))
    }

    fn with_table(table: Vec<i8>) -> Self {
        let mut classes = vec![0u8; table.len()];
        for (words, class) in [
            (NEGATION_WORDS, NEGATOR),
            (NEGATORS, NEGATOR),
            (CONTRASTS, CONTRAST),
            (INTENSIFIERS, INTENSIFIER),
        ] {
            for w in words {
                classes[entry(w)] |= class;
            }
        }
        Self { table, classes }
    }

    pub fn table(&self) -> &[i8] {
        &self.table
    }

    /// Sets the polarity of `word` (already normalised by [`Tokens`]). A word set twice, or two words that
    /// share an entry, keep the mean.
    pub fn set(&mut self, word: &str, polarity: f32) {
        let slot = &mut self.table[entry(word)];
        let v = (polarity * 10.0).round().clamp(-127.0, 127.0) as i8;
        *slot = if *slot == 0 {
            v
        } else {
            ((i16::from(*slot) + i16::from(v)) / 2) as i8
        };
    }

    pub fn polarity(&self, word: &str) -> f32 {
        f32::from(self.table[entry(word)]) / 10.0
    }

    /// How many words have a polarity.
    pub fn len(&self) -> usize {
        self.table.iter().filter(|&&v| v != 0).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What the features read of one word: its polarity (×10) and its classes (negator, contrast,
    /// intensifier). The same for every occurrence of the word, so a scorer may cache it per word.
    pub fn entry_of(&self, word: &str) -> WordEntry {
        let e = entry(word);
        let class = match self.classes[e] {
            0 => 0,
            c => word_class(word) & c,
        };
        WordEntry {
            polarity: self.table[e],
            class,
        }
    }

    /// [`Self::features_of`] with each word's entry looked up here.
    pub fn features(&self, tokens: &Tokens, bits: u32, out: &mut Vec<u32>) {
        let entries: Vec<WordEntry> = tokens.words().map(|w| self.entry_of(w)).collect();
        self.features_of(&entries, tokens, bits, out);
    }

    /// Appends the lexicon features of `tokens` to `out`, as buckets among `2^bits`:
    /// - `LP` / `LN` once per positive / negative word (at most three times each);
    /// - `LS<n>`: the sum of the polarities, rounded and clamped to −4..4, where a word in a negation's
    ///   scope (up to the next clause break or "but") counts negatively, a word after an intensifier 1.5
    ///   times, and in a message with "but" the words after it 1.5 times and those before it half;
    /// - `LS!+` / `LS!-` when the message has `!` and the sum is not 0.
    ///
    /// `entries` holds [`Self::entry_of`] of each word of `tokens`, in order.
    pub fn features_of(
        &self,
        entries: &[WordEntry],
        tokens: &Tokens,
        bits: u32,
        out: &mut Vec<u32>,
    ) {
        // One pass: the polar words' values after negation and intensifiers, summed apart before and
        // after the first contrast word.
        let (mut before, mut after, mut pos, mut neg) = (0.0f32, 0.0f32, 0u32, 0u32);
        let mut seen_contrast = false;
        let mut negating = false;
        let mut intensified = false;
        let mut polar = 0;
        for (i, &WordEntry { polarity: p, class }) in entries.iter().enumerate() {
            if tokens.break_before(i) || class & CONTRAST != 0 {
                negating = false;
            }
            if p != 0 && polar < MAX_POLAR {
                polar += 1;
                let mut v = f32::from(p) / 10.0;
                if negating && class & NEGATOR == 0 {
                    v = -v;
                }
                if intensified {
                    v *= 1.5;
                }
                if seen_contrast {
                    after += v;
                } else {
                    before += v;
                }
                if v > 0.0 {
                    pos += 1;
                } else {
                    neg += 1;
                }
            }
            seen_contrast |= class & CONTRAST != 0;
            negating |= class & NEGATOR != 0;
            intensified = class & INTENSIFIER != 0;
        }
        // In a message with "but", what follows it counts more than what came before.
        let sum = if seen_contrast {
            0.5 * before + 1.5 * after
        } else {
            before
        };
        let tag = |t: &[u8], out: &mut Vec<u32>| {
            let mut h = FeatureHash::new(LEX);
            h.bytes(t);
            out.push(h.bucket(bits));
        };
        for _ in 0..pos.min(3) {
            tag(b"LP", out);
        }
        for _ in 0..neg.min(3) {
            tag(b"LN", out);
        }
        let s = sum.round().clamp(-4.0, 4.0) as i8;
        tag(&[b'L', b'S', s as u8], out);
        if tokens.exclamations > 0 && s != 0 {
            tag(if s > 0 { b"LS!+" } else { b"LS!-" }, out);
        }
    }
}

fn entry(word: &str) -> usize {
    let mut h = FeatureHash::new(LEX_WORD);
    h.bytes(word.as_bytes());
    h.bucket(LEXICON_BITS) as usize
}

word_list!(
    /// Negating words besides those of the n-gram features ([`NEGATION_WORDS`]).
    NEGATORS,
    is_other_negator,
    [
        "without",
        "aren",
        "arent",
        "weren't",
        "werent",
        "hadn't",
        "hadnt",
        "couldnt",
        "wouldnt",
        "shouldnt",
        "havent",
        "hasnt",
        "aint",
        "mustn't",
        "mustnt",
        "needn't",
        "neednt",
        "mightn't",
        "daren't",
        "shan't",
        "oughtn't",
    ]
);

/// The classes of `word`, tested exactly (only for words whose entry a class word shares).
fn word_class(word: &str) -> u8 {
    let mut c = 0;
    if is_negation(word) || is_other_negator(word) {
        c |= NEGATOR;
    }
    if is_contrast(word) {
        c |= CONTRAST;
    }
    if is_intensifier(word) {
        c |= INTENSIFIER;
    }
    c
}

word_list!(
    /// Words that turn a message around: what follows them weighs more than what came before.
    CONTRASTS,
    is_contrast,
    [
        "but",
        "however",
        "yet",
        "although",
        "though",
        "pero",
        "mais",
        "aber",
        "ma",
        "mas",
        "لكن",
        "lekin",
        "magar",
        "लेकिन",
        "मगर",
    ]
);

word_list!(
    /// Words that strengthen the word after them ("very good").
    INTENSIFIERS,
    is_intensifier,
    [
        "very good",
        "very",
        "really",
        "so",
        "too",
        "extremely",
        "totally",
        "absolutely",
        "super",
        "incredibly",
        "completely",
        "utterly",
        "highly",
        "truly",
        "most",
        "such",
        "quite",
        "hugely",
        "especially",
        "remarkably",
        "seriously",
        "insanely",
        "ridiculously",
        "damn",
        "fucking",
        "freaking",
        "hella",
        "soo",
        "deeply",
        "muy",
        "tan",
        "très",
        "trop",
        "sehr",
        "echt",
        "molto",
        "troppo",
        "muito",
        "bahut",
        "bohot",
        "बहुत",
        "جدا",
    ]
);

#[cfg(test)]
mod tests {
    use super::*;

    fn lexicon() -> Lexicon {
        let mut l = Lexicon::default();
        l.set("good", 1.0);
        l.set("great", 1.5);
        l.set("bad", -1.2);
        l.set("no", -0.6);
        l
    }

    /// The `LS` sum of `text`, found by matching the buckets of every possible tag.
    fn sum_tag(lex: &Lexicon, text: &str) -> i8 {
        let mut t = Tokens::new();
        t.read(text);
        let mut out = Vec::new();
        lex.features(&t, 20, &mut out);
        (-4i8..=4)
            .find(|&s| {
                let mut h = FeatureHash::new(LEX);
                h.bytes(&[b'L', b'S', s as u8]);
                out.contains(&h.bucket(20))
            })
            .expect("one LS tag")
    }

    #[test]
    fn table_round_trips_and_averages() {
        let mut l = lexicon();
        assert_eq!(l.polarity("good"), 1.0);
        assert_eq!(l.polarity("unknown"), 0.0);
        l.set("good", 2.0);
        assert_eq!(l.polarity("good"), 1.5);
        assert_eq!(l.len(), 4);
        let back = Lexicon::from_table(l.table().to_vec()).expect("right size");
        assert_eq!(back, l);
        assert!(Lexicon::from_table(vec![0; 10]).is_none());
    }

    #[test]
    fn negation_intensifiers_and_contrast() {
        let l = lexicon();
        assert_eq!(sum_tag(&l, "good"), 1);
        assert_eq!(sum_tag(&l, "not good"), -1);
        // The scope runs past three words, to the clause end.
        assert_eq!(sum_tag(&l, "it is not at all a good one"), -1);
        assert_eq!(sum_tag(&l, "not now, good"), 1);
        assert_eq!(sum_tag(&l, "don't think it was great"), -2);
        // 1.5 × 1.5 = 2.25.
        assert_eq!(sum_tag(&l, "very great"), 2);
        assert_eq!(sum_tag(&l, "very very great"), 2);
        // bad ×0.5, great ×1.5: −0.6 + 2.25 = 1.65.
        assert_eq!(sum_tag(&l, "bad but great"), 2);
        assert_eq!(sum_tag(&l, "great but bad"), -1);
        // "no" is polar itself, and never negated.
        assert_eq!(sum_tag(&l, "no no no no no no no no"), -4);
        assert_eq!(sum_tag(&l, "nothing here"), 0);
        // Every list reaches the class table: a negator of each list, an intensifier, a contrast word.
        assert_eq!(sum_tag(&l, "weren't good"), -1);
        assert_eq!(sum_tag(&l, "nunca great"), -2);
        assert_eq!(sum_tag(&l, "muy great"), 2);
        assert_eq!(sum_tag(&l, "great pero bad"), -1);
        assert_eq!(sum_tag(&l, ""), 0);
    }

    #[test]
    fn counts_and_exclamations() {
        let l = lexicon();
        let feats = |text: &str| {
            let mut t = Tokens::new();
            t.read(text);
            let mut out = Vec::new();
            l.features(&t, 20, &mut out);
            out
        };
        // LP LP LS2.
        assert_eq!(feats("good good").len(), 3);
        // LP×3 (capped) LS4 LS!+.
        assert_eq!(feats("good good great great!").len(), 5);
        assert_eq!(feats("nothing").len(), 1);
    }
}
