//! Text → n-grams, written to agree exactly with the ONNX graph of [`crate::onnx`]: the same lower-casing
//! as ONNX's StringNormalizer, the same word tokens as ONNX Runtime's Tokenizer with [`WORD_PATTERN`], the
//! same characters as its character mode. A model trained on these features therefore answers the same in
//! Rust and in ONNX Runtime.

use colloquy_textmodels::ngrams::spans;
use regex::Regex;

/// Word tokens in the ONNX graph (RE2 syntax): runs of letters, marks, digits and `_`. Marks are in so that
/// Devanagari and other scripts with combining vowel signs keep whole words.
pub const WORD_PATTERN: &str = r"[\pL\pM\pN_]+";
/// How the graph splits characters, for the documentation.
pub const CHAR_PATTERN_DOC: &str = "one token per Unicode scalar value";
/// The same set as [`WORD_PATTERN`] in the regex crate's syntax.
const WORD_PATTERN_RUST: &str = r"[\p{L}\p{M}\p{N}_]+";

/// ONNX Runtime's Tokenizer pads short rows with this token; n-grams containing it are never features, so
/// padding can never be counted.
pub const PAD: char = '\u{1}';

/// Which tokenizer an n-gram comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Branch {
    Word,
    Char,
}

/// Lower-cases one character the way StringNormalizer does (C++ `towlower`: one character in, one out,
/// so `İ` becomes `i`, not `i̇`); NUL becomes a space, as colloquy's ONNX functions send it.
fn lower(c: char) -> char {
    if c == '\0' {
        return ' ';
    }
    c.to_lowercase().next().unwrap_or(c)
}

/// Splits texts into n-grams. N-gram keys: words joined by a space (a word never holds one), characters
/// as they are.
#[derive(Debug, Clone)]
pub struct Featurizer {
    words: Regex,
    word_ngrams: (usize, usize),
    char_ngrams: (usize, usize),
}

impl Featurizer {
    pub fn new(word_ngrams: (usize, usize), char_ngrams: (usize, usize)) -> Self {
        Self {
            #[allow(clippy::unwrap_used)] // a constant pattern, covered by every test
            words: Regex::new(WORD_PATTERN_RUST).unwrap(),
            word_ngrams,
            char_ngrams,
        }
    }

    /// Calls `f(branch, n, key)` for every n-gram occurrence of `text`, `buf` being scratch space.
    pub fn grams(&self, text: &str, buf: &mut Scratch, mut f: impl FnMut(Branch, &str)) {
        buf.lowered.clear();
        buf.lowered.extend(text.chars().map(lower));
        if self.word_ngrams.1 > 0 {
            buf.tokens.clear();
            buf.tokens
                .extend(self.words.find_iter(&buf.lowered).map(|m| m.range()));
            let (lo, hi) = self.word_ngrams;
            for (start, end) in spans(buf.tokens.len(), lo, hi) {
                buf.key.clear();
                for (i, r) in buf.tokens[start..end].iter().enumerate() {
                    if i > 0 {
                        buf.key.push(' ');
                    }
                    buf.key.push_str(&buf.lowered[r.clone()]);
                }
                f(Branch::Word, &buf.key);
            }
        }
        if self.char_ngrams.1 > 0 {
            buf.starts.clear();
            buf.starts
                .extend(buf.lowered.char_indices().map(|(i, _)| i));
            buf.starts.push(buf.lowered.len());
            let chars = buf.starts.len() - 1;
            let (lo, hi) = self.char_ngrams;
            for (start, end) in spans(chars, lo, hi) {
                let gram = &buf.lowered[buf.starts[start]..buf.starts[end]];
                if !gram.contains(PAD) {
                    f(Branch::Char, gram);
                }
            }
        }
    }
}

/// Reusable buffers for featurizing many texts (see [`crate::Classifier::probabilities_into`]).
#[derive(Debug, Default)]
pub struct Scratch {
    lowered: String,
    tokens: Vec<std::ops::Range<usize>>,
    starts: Vec<usize>,
    key: String,
    /// A text's sparse features per tokenizer, filled by the scorer.
    pub(crate) parts: [Vec<(u32, f32)>; 2],
}

/// The tokens of an n-gram key, as the ONNX pool lists them.
pub fn key_tokens(branch: Branch, key: &str) -> Vec<String> {
    match branch {
        Branch::Word => key.split(' ').map(str::to_string).collect(),
        Branch::Char => key.chars().map(String::from).collect(),
    }
}

/// The n of an n-gram key.
pub fn key_len(branch: Branch, key: &str) -> usize {
    match branch {
        Branch::Word => key.split(' ').count(),
        Branch::Char => key.chars().count(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(f: &Featurizer, text: &str) -> Vec<(Branch, String)> {
        let mut out = Vec::new();
        f.grams(text, &mut Scratch::default(), |b, k| {
            out.push((b, k.to_string()))
        });
        out
    }

    #[test]
    fn words_and_characters() {
        let f = Featurizer::new((1, 2), (2, 3));
        let g = all(&f, "Hi, Ünï!");
        let words: Vec<_> = g
            .iter()
            .filter(|(b, _)| *b == Branch::Word)
            .map(|(_, k)| k.as_str())
            .collect();
        assert_eq!(words, ["hi", "hi ünï", "ünï"]);
        let chars: Vec<_> = g
            .iter()
            .filter(|(b, _)| *b == Branch::Char)
            .map(|(_, k)| k.as_str())
            .collect();
        assert_eq!(
            chars,
            [
                "hi", "hi,", "i,", "i, ", ", ", ", ü", " ü", " ün", "ün", "ünï", "nï", "nï!", "ï!"
            ]
        );
        assert_eq!(key_tokens(Branch::Char, "ün"), ["ü", "n"]);
        assert_eq!(key_len(Branch::Word, "hi ünï"), 2);
    }

    #[test]
    fn devanagari_words_keep_their_vowel_signs_and_pad_never_counts() {
        let f = Featurizer::new((1, 1), (2, 2));
        let g = all(&f, "नमस्ते दोस्त \u{1}x");
        let words: Vec<_> = g
            .iter()
            .filter(|(b, _)| *b == Branch::Word)
            .map(|(_, k)| k.as_str())
            .collect();
        assert_eq!(words, ["नमस्ते", "दोस्त", "x"]);
        assert!(g.iter().all(|(_, k)| !k.contains(PAD)));
        assert_eq!(lower('İ'), 'i');
        assert_eq!(lower('\0'), ' ');
    }
}
