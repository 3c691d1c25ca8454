//! Words → hashed feature buckets. A [`FeatureSpec`] is stored in every model file, so a model is always
//! scored with the features it was trained on.

use crate::hash::FeatureHash;
use crate::ngrams::spans;
use crate::tokens::{EMOTICONS, Tokens};

// Feature families: the first byte of each feature's hash.
const CHARS: u8 = 1;
const WORD: u8 = 2;
const BIGRAM: u8 = 3;
const NEGATED: u8 = 4;
const SYMBOL: u8 = 5;
const EMOTICON: u8 = 6;
const SIGNAL: u8 = 7;
const KNOWN: u8 = 8;
/// Longer words are read up to this many characters.
const MAX_WORD_CHARS: usize = 64;
/// Marks a word's start and end inside character n-grams; never part of a word.
const BOUNDARY: u8 = 0x01;

/// Which features a model reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeatureSpec {
    /// Buckets are `0..2^bits`.
    pub bits: u32,
    /// Character n-grams of each word padded with boundary marks, of these lengths (0 = none).
    pub char_min: u32,
    pub char_max: u32,
    /// Whole words.
    pub words: bool,
    /// Adjacent word pairs.
    pub bigrams: bool,
    /// Words within three after a negation word are features of their own ("not good" ≠ "good").
    pub negation: bool,
    /// Emoji, emoticons, `!`, `?`, shouting and elongation.
    pub signals: bool,
}

impl FeatureSpec {
    pub fn to_words(self) -> [u32; 7] {
        [
            self.bits,
            self.char_min,
            self.char_max,
            u32::from(self.words),
            u32::from(self.bigrams),
            u32::from(self.negation),
            u32::from(self.signals),
        ]
    }

    pub fn from_words(w: [u32; 7]) -> Self {
        Self {
            bits: w[0],
            char_min: w[1],
            char_max: w[2],
            words: w[3] != 0,
            bigrams: w[4] != 0,
            negation: w[5] != 0,
            signals: w[6] != 0,
        }
    }

    /// Appends the buckets of `tokens` to `out` (a feature that occurs twice is listed twice).
    pub fn features(&self, tokens: &Tokens, out: &mut Vec<u32>) {
        let bits = self.bits;
        let mut negated_left = 0u32;
        for (i, word) in tokens.words().enumerate() {
            if self.char_max > 0 {
                char_ngrams(word, self.char_min, self.char_max, bits, out);
            }
            if self.words {
                let family = if negated_left > 0 { NEGATED } else { WORD };
                out.push(hash_str(family, word).bucket(bits));
            }
            if self.bigrams && i > 0 {
                let mut h = hash_str(BIGRAM, tokens.word(i - 1));
                h.byte(0);
                h.bytes(word.as_bytes());
                out.push(h.bucket(bits));
            }
            if self.negation {
                if is_negation(word) {
                    negated_left = 3;
                } else {
                    negated_left = negated_left.saturating_sub(1);
                }
            }
        }
        self.signal_features(tokens, out);
    }

    /// The features of emoji, emoticons, `!`, `?`, shouting and elongation (when the spec reads them).
    fn signal_features(&self, tokens: &Tokens, out: &mut Vec<u32>) {
        let bits = self.bits;
        if self.signals {
            for &c in &tokens.symbols {
                let mut h = FeatureHash::new(SYMBOL);
                h.char(c);
                out.push(h.bucket(bits));
            }
            for &e in &tokens.emoticons {
                out.push(hash_str(EMOTICON, EMOTICONS[usize::from(e)]).bucket(bits));
            }
            let signal = |name: &str, n: u32, out: &mut Vec<u32>| {
                for _ in 0..n.min(3) {
                    out.push(hash_str(SIGNAL, name).bucket(bits));
                }
            };
            signal("!", tokens.exclamations, out);
            signal("?", tokens.questions, out);
            signal("SHOUT", tokens.shouted, out);
            signal("LONG", tokens.elongated, out);
        }
    }
}

impl FeatureSpec {
    /// The features of one word that depend on it alone: its character n-grams, and the whole word unless
    /// a negation before it can change that feature. A scorer may sum their rows once per distinct word.
    pub fn word_features(&self, word: &str, out: &mut Vec<u32>) {
        if self.char_max > 0 {
            char_ngrams(word, self.char_min, self.char_max, self.bits, out);
        }
        if self.words && !self.negation {
            out.push(hash_str(WORD, word).bucket(self.bits));
        }
    }

    /// The features of [`Self::features`] that [`Self::word_features`] leaves out: word pairs, signals, and
    /// whole words when negation applies. With `word_features` of every word, the same multiset.
    pub fn context_features(&self, tokens: &Tokens, out: &mut Vec<u32>) {
        let rest = Self {
            char_max: 0,
            words: self.words && self.negation,
            ..*self
        };
        rest.features(tokens, out);
    }

    /// Whether a scorer should keep each word's [`WordContext`] for [`Self::context_features_of`]: where
    /// negation makes whole words context features (`sentiment()`: +6% side by side). For word pairs
    /// alone (`intent()`) keeping them made no difference, and would cost 200 KB of word cache.
    pub fn reads_word_context(&self) -> bool {
        self.negation
    }

    /// What `word` brings to [`Self::context_features`]: its whole-word buckets, the hash of a pair it
    /// starts so far, and whether it negates what follows. A scorer keeps it per distinct word, so that
    /// each word is not hashed again for every text (a tenth of `sentiment()`'s time).
    pub fn word_context(&self, word: &str) -> WordContext {
        let mut pair = hash_str(BIGRAM, word);
        pair.byte(0);
        WordContext {
            word: hash_str(WORD, word).bucket(self.bits),
            negated: hash_str(NEGATED, word).bucket(self.bits),
            pair,
            negation: is_negation(word),
        }
    }

    /// [`Self::context_features`] from the [`WordContext`] of each word (`contexts[i]` of word `i`): the
    /// same features in the same order.
    pub fn context_features_of(
        &self,
        tokens: &Tokens,
        contexts: &[WordContext],
        out: &mut Vec<u32>,
    ) {
        let whole_words = self.words && self.negation;
        let mut negated_left = 0u32;
        for (i, (word, c)) in tokens.words().zip(contexts).enumerate() {
            if whole_words {
                out.push(if negated_left > 0 { c.negated } else { c.word });
            }
            if self.bigrams && i > 0 {
                let mut h = contexts[i - 1].pair;
                h.bytes(word.as_bytes());
                out.push(h.bucket(self.bits));
            }
            if self.negation {
                if c.negation {
                    negated_left = 3;
                } else {
                    negated_left = negated_left.saturating_sub(1);
                }
            }
        }
        self.signal_features(tokens, out);
    }
}

/// What one word brings to [`FeatureSpec::context_features`] ([`FeatureSpec::word_context`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct WordContext {
    word: u32,
    negated: u32,
    pair: FeatureHash,
    negation: bool,
}

/// The bucket of the whole-word feature of `word` (already normalised), or of its negated form.
pub fn word_bucket(word: &str, negated: bool, bits: u32) -> u32 {
    hash_str(if negated { NEGATED } else { WORD }, word).bucket(bits)
}

/// The bucket of the feature of an emoji or other symbol.
pub fn symbol_bucket(c: char, bits: u32) -> u32 {
    let mut h = FeatureHash::new(SYMBOL);
    h.char(c);
    h.bucket(bits)
}

/// The bucket of a word among `2^bits` in the "known words" family, apart from model features.
pub fn known_word_bucket(word: &str, bits: u32) -> u32 {
    hash_str(KNOWN, word).bucket(bits)
}

fn hash_str(family: u8, s: &str) -> FeatureHash {
    let mut h = FeatureHash::new(family);
    h.bytes(s.as_bytes());
    h
}

/// All n-grams of `_word_` of lengths `min..=max` (the lone boundary mark excluded), each hashed in one pass
/// from its first character.
fn char_ngrams(word: &str, min: u32, max: u32, bits: u32, out: &mut Vec<u32>) {
    if word.is_ascii() {
        ascii_char_ngrams(word.as_bytes(), min, max, bits, out);
    } else {
        utf8_char_ngrams(word, min, max, bits, out);
    }
}

/// [`char_ngrams`] of an ASCII word: a character is a byte, so the n-grams are read from the word itself
/// with the boundary marks around it implied, without the padded copy and the table of character starts
/// (most chat words are ASCII; the copy and the tables were a tenth of intent()'s time). Same hashes as
/// [`utf8_char_ngrams`], byte for byte.
fn ascii_char_ngrams(word: &[u8], min: u32, max: u32, bits: u32, out: &mut Vec<u32>) {
    let word = &word[..word.len().min(MAX_WORD_CHARS)];
    let units = word.len() + 2;
    let unit = |u: usize| {
        if u == 0 || u == units - 1 {
            BOUNDARY
        } else {
            word[u - 1]
        }
    };
    let max = max as usize;
    out.reserve(units * max);
    for s in 0..units {
        let mut h = FeatureHash::new(CHARS);
        for n in 1..=max.min(units - s) {
            h.byte(unit(s + n - 1));
            if n as u32 >= min && !(n == 1 && unit(s) == BOUNDARY) {
                out.push(h.bucket(bits));
            }
        }
    }
}

fn utf8_char_ngrams(word: &str, min: u32, max: u32, bits: u32, out: &mut Vec<u32>) {
    // A 64-letter "word" is a hash, a URL remnant or a run of CJK text: its first 64 letters tell enough.
    let word = word
        .char_indices()
        .nth(MAX_WORD_CHARS)
        .map_or(word, |(i, _)| &word[..i]);
    let bytes = word.as_bytes();
    let mut padded = [0u8; 4 * MAX_WORD_CHARS + 2];
    padded[0] = BOUNDARY;
    padded[1..=bytes.len()].copy_from_slice(bytes);
    padded[bytes.len() + 1] = BOUNDARY;
    let padded = &padded[..bytes.len() + 2];
    let mut starts = [0usize; MAX_WORD_CHARS + 3];
    let mut n_starts = 0;
    for (i, &b) in padded.iter().enumerate() {
        // UTF-8 continuation bytes are 0b10xx_xxxx.
        if b & 0xC0 != 0x80 {
            starts[n_starts] = i;
            n_starts += 1;
        }
    }
    starts[n_starts] = padded.len();
    // From length 1, shorter than `min` included: each n-gram's hash extends the one before it.
    let mut h = FeatureHash::new(CHARS);
    for (s, e) in spans(n_starts, 1, max as usize) {
        let n = e - s;
        if n == 1 {
            h = FeatureHash::new(CHARS);
        }
        h.bytes(&padded[starts[e - 1]..starts[e]]);
        if n as u32 >= min && !(n == 1 && padded[starts[s]] == BOUNDARY) {
            out.push(h.bucket(bits));
        }
    }
}

/// A list of words as a slice (to build tables from) and as a test (`matches!`, which compiles to
/// inline comparisons: a slice's `contains` calls `memcmp` per entry, an eighth of sentiment()'s time).
macro_rules! word_list {
    ($(#[$doc:meta])* $list:ident, $test:ident, [$($w:literal),* $(,)?]) => {
        $(#[$doc])*
        pub(crate) const $list: &[&str] = &[$($w),*];

        $(#[$doc])*
        pub(crate) fn $test(word: &str) -> bool {
            matches!(word, $($w)|*)
        }
    };
}
pub(crate) use word_list;

word_list!(
    /// Words that negate what follows, in the languages the sentiment model is trained on.
    NEGATION_WORDS,
    is_negation,
    [
        "not",
        "no",
        "never",
        "nothing",
        "nobody",
        "none",
        "neither",
        "nor",
        "cannot",
        "don't",
        "dont",
        "doesn't",
        "doesnt",
        "didn't",
        "didnt",
        "isn't",
        "isnt",
        "wasn't",
        "wasnt",
        "aren't",
        "won't",
        "wont",
        "can't",
        "cant",
        "couldn't",
        "wouldn't",
        "shouldn't",
        "haven't",
        "hasn't",
        "ain't",
        "nunca",
        "nada",
        "nadie",
        "ni",
        "jamás",
        "tampoco",
        "não",
        "nao",
        "nem",
        "ninguém",
        "ne",
        "pas",
        "jamais",
        "rien",
        "personne",
        "nicht",
        "kein",
        "keine",
        "keinen",
        "keiner",
        "nie",
        "niemals",
        "nichts",
        "non",
        "mai",
        "niente",
        "nessuno",
        "لا",
        "ما",
        "لم",
        "لن",
        "ليس",
        "مش",
        "مو",
        "nahi",
        "nahin",
        "nhi",
        "nai",
        "mat",
        "नहीं",
        "नही",
        "मत",
        "न",
    ]
);

#[cfg(test)]
mod tests {
    use super::*;

    fn feats(spec: &FeatureSpec, text: &str) -> Vec<u32> {
        let mut t = Tokens::new();
        t.read(text);
        let mut out = Vec::new();
        spec.features(&t, &mut out);
        out
    }

    const CHAR_ONLY: FeatureSpec = FeatureSpec {
        bits: 20,
        char_min: 1,
        char_max: 3,
        words: false,
        bigrams: false,
        negation: false,
        signals: false,
    };

    #[test]
    fn ngram_counts() {
        // "_ab_": 1-grams a b; 2-grams _a ab b_; 3-grams _ab ab_ → 7.
        assert_eq!(feats(&CHAR_ONLY, "ab").len(), 7);
        // Multi-byte letters count as one character each.
        assert_eq!(feats(&CHAR_ONLY, "éà").len(), 7);
        assert_eq!(feats(&CHAR_ONLY, "ab"), feats(&CHAR_ONLY, "AB"));
    }

    #[test]
    fn negation_changes_features() {
        let spec = FeatureSpec {
            char_max: 0,
            words: true,
            negation: true,
            ..CHAR_ONLY
        };
        let good = feats(&spec, "good");
        let not_good = feats(&spec, "not good");
        assert!(!not_good.contains(&good[0]));
        assert_eq!(feats(&spec, "not a b c good")[4], good[0]);
    }

    #[test]
    fn ascii_path_hashes_like_the_general_one() {
        let words = [
            "a", "ab", "hello", "don't", "x1", "refund", "aaaaaaaa", "\u{1}", "", "#tag", "a-b",
        ];
        let long = "abc".repeat(40);
        for word in words.iter().copied().chain([long.as_str()]) {
            for (min, max) in [(1, 1), (1, 3), (2, 5), (3, 5), (1, 8)] {
                for bits in [8, 18, 20] {
                    let mut fast = Vec::new();
                    let mut general = Vec::new();
                    ascii_char_ngrams(word.as_bytes(), min, max, bits, &mut fast);
                    utf8_char_ngrams(word, min, max, bits, &mut general);
                    assert_eq!(fast, general, "{word:?} {min}..{max} {bits}");
                }
            }
        }
    }

    #[test]
    fn split_features_are_the_same_multiset() {
        // Every kind of feature: the sentiment model's spec.
        let with_negation = crate::recipes::sentiment::SPEC;
        let specs = [
            with_negation,
            FeatureSpec {
                negation: false,
                ..with_negation
            },
            FeatureSpec {
                char_max: 0,
                ..with_negation
            },
        ];
        for (spec, text) in specs.iter().flat_map(|s| {
            [
                "I don't like it at all!!! :(",
                "héllo wörld 😍",
                "",
                "ok",
                "NO no never good",
            ]
            .map(|t| (s, t))
        }) {
            let mut t = Tokens::new();
            t.read(text);
            let mut whole = Vec::new();
            spec.features(&t, &mut whole);
            let mut split = Vec::new();
            for w in t.words() {
                spec.word_features(w, &mut split);
            }
            spec.context_features(&t, &mut split);
            whole.sort_unstable();
            split.sort_unstable();
            assert_eq!(whole, split, "{text:?}");
        }
    }

    #[test]
    fn context_from_kept_word_contexts_is_the_same() {
        let base = crate::recipes::sentiment::SPEC;
        let specs = [
            base,
            FeatureSpec {
                negation: false,
                ..base
            },
            FeatureSpec {
                bigrams: false,
                ..base
            },
            FeatureSpec {
                words: false,
                ..base
            },
        ];
        let texts = [
            "I don't like it at all!!! :(",
            "not good, never again, no no no good at all 😡",
            "héllo wörld 😍 NOT bad",
            "",
            "ok",
            "nunca más, nicht gut, pas mal",
        ];
        for spec in &specs {
            for text in texts {
                let mut t = Tokens::new();
                t.read(text);
                let contexts: Vec<WordContext> = t.words().map(|w| spec.word_context(w)).collect();
                let mut kept = Vec::new();
                spec.context_features_of(&t, &contexts, &mut kept);
                let mut hashed = Vec::new();
                spec.context_features(&t, &mut hashed);
                assert_eq!(kept, hashed, "{spec:?} {text:?}");
            }
        }
    }

    #[test]
    fn long_words_are_cut() {
        let long = "ab".repeat(300);
        // 64 letters between two marks: 64 one-grams, 65 two-grams, 64 three-grams.
        assert_eq!(feats(&CHAR_ONLY, &long).len(), 193);
        let wide = "é".repeat(300);
        assert!(!feats(&CHAR_ONLY, &wide).is_empty());
    }
}
