//! Chat text → normalised words and the signals around them (emoji, emoticons, `!`, `?`, shouting).
//!
//! All three models read text through this one tokenizer, at training and at scoring time, so the two can
//! never disagree about what a word is. Chat-specific choices: URLs, e-mail addresses and @mentions carry no
//! language or sentiment and are dropped; `#tag` counts as the word `tag`; digits split words; letter runs of
//! three or more collapse to two ("soooo" → "soo") and are remembered as elongation; an apostrophe between
//! letters stays inside the word so that "don't" is one (negating) word.

/// At most this many bytes of a message are read: enough to decide language, tone and request, and it keeps
/// a 200,000-character message from costing 5,000 short ones.
pub const MAX_BYTES: usize = 4096;

/// ASCII emoticons recognised as whole tokens (lowercased).
pub const EMOTICONS: &[&str] = &[
    ":)", ":-)", ":]", "=)", ":d", ":-d", "xd", ";)", ";-)", ":p", ":-p", "<3", ":(", ":-(", ":[",
    ":'(", ":/", ":-/", ":|", ":o", "^^", ":3", "</3", ">:(", "-_-",
];

/// One message after tokenisation. Reused between messages: `clear` keeps the allocations.
#[derive(Default, Debug)]
pub struct Tokens {
    buf: String,
    words: Vec<(u32, u32)>,
    /// Per word: whether a clause break (punctuation, an emoji or an emoticon) came between it and the
    /// word before. Lexicon features end a negation's scope there.
    breaks: Vec<bool>,
    pending_break: bool,
    /// Emoji and other symbols, in order.
    pub symbols: Vec<char>,
    /// Indexes into [`EMOTICONS`].
    pub emoticons: Vec<u8>,
    pub exclamations: u32,
    pub questions: u32,
    /// Words of two or more letters written in capitals.
    pub shouted: u32,
    /// Words that had a letter repeated three or more times.
    pub elongated: u32,
    /// Letters seen (after dropping URLs and mentions).
    pub letters: u32,
    /// Of those, Han, kana and Hangul characters: one of them says as much as a short Latin word.
    pub ideographs: u32,
}

impl Tokens {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn clear(&mut self) {
        self.buf.clear();
        self.words.clear();
        self.breaks.clear();
        self.pending_break = false;
        self.symbols.clear();
        self.emoticons.clear();
        self.exclamations = 0;
        self.questions = 0;
        self.shouted = 0;
        self.elongated = 0;
        self.letters = 0;
        self.ideographs = 0;
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    pub fn word(&self, i: usize) -> &str {
        let (s, e) = self.words[i];
        &self.buf[s as usize..e as usize]
    }

    /// Whether a clause break came before word `i` ([`Self::word`]); never before the first.
    pub fn break_before(&self, i: usize) -> bool {
        i > 0 && self.breaks[i]
    }

    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.words
            .iter()
            .map(|&(s, e)| &self.buf[s as usize..e as usize])
    }

    /// Tokenises `text` into `self` (cleared first).
    pub fn read(&mut self, text: &str) {
        self.clear();
        let text = truncate(text, MAX_BYTES);
        if text.is_ascii() {
            self.read_ascii_text(text.as_bytes());
        } else {
            for raw in text.split_whitespace() {
                self.read_raw(raw);
            }
        }
    }

    /// [`Self::read`] of ASCII text (most chat messages), or of one ASCII token of other text, in one pass
    /// over its bytes: bytes are characters, a letter is `a-z`/`A-Z` and nothing is a symbol or
    /// ideograph, so no decoding and no Unicode tables. Each token's letters are read while the same pass
    /// notes what makes it an emoticon or an e-mail address, and such a token's words are then taken
    /// back ([`Self::undo`]); links and mentions are told by their start. Testing each token for an
    /// emoticon and for a link or an address before reading its letters was three passes, a quarter of
    /// the models' time. Same result as [`Self::read_chars`] (a test compares them).
    fn read_ascii_text(&mut self, text: &[u8]) {
        // Whitespace in ASCII text is the space and bytes 9 to 13 (what `split_whitespace` splits on).
        let space = |c: u8| c == b' ' || (9..=13).contains(&c);
        let n = text.len();
        let mut i = 0;
        loop {
            while i < n && space(text[i]) {
                i += 1;
            }
            if i == n {
                return;
            }
            let token_start = i;
            let rest = &text[i..];
            let starts =
                |p: &[u8]| rest.len() >= p.len() && rest[..p.len()].eq_ignore_ascii_case(p);
            if rest[0] == b'@' || starts(b"http://") || starts(b"https://") || starts(b"www.") {
                while i < n && !space(text[i]) {
                    i += 1;
                }
                continue;
            }
            let before = self.mark();
            let mut start = self.buf.len();
            let mut letters = 0u32;
            let mut upper = 0u32;
            // 0 is never a letter or an apostrophe: "no previous letter".
            let mut last = 0u8;
            let mut run = 0u32;
            let mut elongated = false;
            let (mut at, mut dot, mut punctuation) = (false, false, false);
            while i < n {
                let c = text[i];
                if space(c) {
                    break;
                }
                i += 1;
                let apostrophe_inside =
                    c == b'\'' && letters > 0 && text.get(i).is_some_and(u8::is_ascii_alphabetic);
                if c.is_ascii_alphabetic() || apostrophe_inside {
                    upper += u32::from(c.is_ascii_uppercase());
                    let l = c.to_ascii_lowercase();
                    if l == last {
                        run += 1;
                    } else {
                        run = 1;
                        last = l;
                    }
                    letters += 1;
                    if run >= 3 {
                        elongated = true;
                    } else {
                        self.buf.push(char::from(l));
                    }
                    continue;
                }
                self.end_word(start, letters, upper, elongated);
                start = self.buf.len();
                letters = 0;
                upper = 0;
                last = 0;
                run = 0;
                elongated = false;
                at |= c == b'@';
                dot |= c == b'.';
                punctuation |= c.is_ascii_punctuation();
                match c {
                    b'!' => self.exclamations += 1,
                    b'?' => self.questions += 1,
                    _ => {}
                }
                if matches!(
                    c,
                    b'.' | b',' | b';' | b':' | b'!' | b'?' | b'(' | b')' | b'"' | b'[' | b']'
                ) {
                    self.pending_break = true;
                }
            }
            self.end_word(start, letters, upper, elongated);
            let raw = &text[token_start..i];
            if raw.len() <= 4
                && (punctuation || raw.eq_ignore_ascii_case(b"xd"))
                && let Some(e) = EMOTICONS
                    .iter()
                    .position(|e| e.as_bytes().eq_ignore_ascii_case(raw))
            {
                self.undo(before);
                self.emoticons.push(e as u8);
                self.pending_break = true;
            } else if at && dot {
                self.undo(before);
            }
        }
    }

    /// What reading one token can change, to take it back ([`Self::undo`]).
    fn mark(&self) -> Mark {
        Mark {
            buf: self.buf.len(),
            words: self.words.len(),
            pending_break: self.pending_break,
            counts: [
                self.exclamations,
                self.questions,
                self.shouted,
                self.elongated,
                self.letters,
            ],
        }
    }

    fn undo(&mut self, m: Mark) {
        self.buf.truncate(m.buf);
        self.words.truncate(m.words);
        self.breaks.truncate(m.words);
        self.pending_break = m.pending_break;
        [
            self.exclamations,
            self.questions,
            self.shouted,
            self.elongated,
            self.letters,
        ] = m.counts;
    }

    fn read_raw(&mut self, raw: &str) {
        if raw.is_ascii() {
            self.read_ascii_text(raw.as_bytes());
        } else if !is_link_or_mention(raw.as_bytes()) {
            // Emoticons are ASCII: a token with other characters is never one.
            self.read_chars(raw);
        }
    }

    fn read_chars(&mut self, raw: &str) {
        let mut start = self.buf.len();
        let mut letters_in_word = 0u32;
        let mut upper_in_word = 0u32;
        let mut last: Option<char> = None;
        let mut run = 0u32;
        let mut elongated = false;
        let mut chars = raw.chars().peekable();
        while let Some(c) = chars.next() {
            let apostrophe_inside = (c == '\'' || c == '’')
                && letters_in_word > 0
                && chars.peek().is_some_and(|n| n.is_alphabetic());
            if is_word_char(c) || apostrophe_inside {
                let c = if apostrophe_inside { '\'' } else { c };
                if c.is_uppercase() {
                    upper_in_word += 1;
                }
                if is_ideographic(c) {
                    self.ideographs += 1;
                }
                // ASCII letters, most of chat text, lowercase without the Unicode tables.
                let lower = if c.is_ascii() {
                    LowerChars::One(c.to_ascii_lowercase())
                } else {
                    LowerChars::Many(c.to_lowercase())
                };
                for l in lower {
                    if Some(l) == last {
                        run += 1;
                    } else {
                        run = 1;
                        last = Some(l);
                    }
                    if run >= 3 {
                        elongated = true;
                        continue;
                    }
                    self.buf.push(l);
                }
                letters_in_word += 1;
                continue;
            }
            // Anything else ends the word.
            self.end_word(start, letters_in_word, upper_in_word, elongated);
            start = self.buf.len();
            letters_in_word = 0;
            upper_in_word = 0;
            last = None;
            run = 0;
            elongated = false;
            match c {
                '!' | '¡' => self.exclamations += 1,
                '?' | '¿' | '؟' => self.questions += 1,
                _ if is_symbol(c) => {
                    self.symbols.push(c);
                    self.pending_break = true;
                }
                _ => {}
            }
            if is_clause_punctuation(c) {
                self.pending_break = true;
            }
        }
        self.end_word(start, letters_in_word, upper_in_word, elongated);
    }

    fn end_word(&mut self, start: usize, letters: u32, upper: u32, elongated: bool) {
        let end = self.buf.len();
        if end == start {
            return;
        }
        self.letters += letters;
        if letters >= 2 && upper == letters {
            self.shouted += 1;
        }
        if elongated {
            self.elongated += 1;
        }
        self.words.push((start as u32, end as u32));
        self.breaks.push(std::mem::take(&mut self.pending_break));
    }
}

/// The state of [`Tokens`] before a token, for [`Tokens::undo`].
#[derive(Clone, Copy)]
struct Mark {
    buf: usize,
    words: usize,
    pending_break: bool,
    counts: [u32; 5],
}

enum LowerChars {
    One(char),
    Many(std::char::ToLowercase),
}

impl Iterator for LowerChars {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        match self {
            Self::One(c) => {
                let out = *c;
                *c = '\0';
                (out != '\0').then_some(out)
            }
            Self::Many(it) => it.next(),
        }
    }
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
pub fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn is_link_or_mention(b: &[u8]) -> bool {
    let starts = |p: &[u8]| b.len() >= p.len() && b[..p.len()].eq_ignore_ascii_case(p);
    // '@' and '.' are never part of a multi-byte UTF-8 character, so bytes are enough; one pass over a
    // token of a few bytes costs less than two memchr calls.
    let (at, dot) = b.iter().fold((false, false), |(at, dot), &c| {
        (at || c == b'@', dot || c == b'.')
    });
    starts(b"http://")
        || starts(b"https://")
        || starts(b"www.")
        || b.first() == Some(&b'@')
        || (at && dot)
}

/// Letters, and the combining marks that belong inside words (Indic vowel signs and viramas, Arabic and
/// Hebrew vowel points, Latin diacritics written as combining characters, zero-width joiners).
pub fn is_word_char(c: char) -> bool {
    if c.is_alphabetic() {
        return true;
    }
    let u = c as u32;
    matches!(u,
        0x0300..=0x036F | 0x0483..=0x0489 | 0x0591..=0x05C7 | 0x0610..=0x061A | 0x064B..=0x065F | 0x0670
        | 0x06D6..=0x06ED | 0x0E31 | 0x0E34..=0x0E3A | 0x0E47..=0x0E4E | 0x200C..=0x200D | 0x3099..=0x309A
        | 0xFE20..=0xFE2F)
        || ((0x0900..=0x0DFF).contains(&u)
            && !c.is_numeric()
            && !matches!(u, 0x0964 | 0x0965 | 0x0970))
}

/// Punctuation that ends a clause, in the scripts the sentiment model reads.
fn is_clause_punctuation(c: char) -> bool {
    matches!(
        c,
        '.' | ','
            | ';'
            | ':'
            | '!'
            | '?'
            | '('
            | ')'
            | '"'
            | '['
            | ']'
            | '…'
            | '¡'
            | '¿'
            | '؟'
            | '،'
            | '؛'
            | '।'
    )
}

fn is_ideographic(c: char) -> bool {
    matches!(c as u32, 0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF | 0x20000..=0x2FFFF)
}

/// Emoji and other pictographs and symbols: non-ASCII, not a letter, digit, mark, space or punctuation.
fn is_symbol(c: char) -> bool {
    let u = c as u32;
    u >= 0x2190
        && !c.is_alphanumeric()
        && !c.is_whitespace()
        && !matches!(u, 0xFE00..=0xFE0F | 0x200D | 0xE0020..=0xE007F)
        && !matches!(u, 0x3000..=0x303F | 0xFF00..=0xFF0F)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        let mut t = Tokens::new();
        t.read(text);
        t.words().map(str::to_owned).collect()
    }

    #[test]
    fn chat_normalisation() {
        assert_eq!(
            words("Soooo GOOD!!! see https://x.io @bob #Happy"),
            ["soo", "good", "see", "happy"]
        );
        assert_eq!(words("don't l’homme 3pm"), ["don't", "l'homme", "pm"]);
        assert_eq!(words("नहीं चाहिए"), ["नहीं", "चाहिए"]);
        assert_eq!(words("mail me at a.b@c.de"), ["mail", "me", "at"]);
        // Emoticons with letters in them leave no words behind.
        assert_eq!(words("ok :D xD :-p :o"), ["ok"]);
    }

    #[test]
    fn signals() {
        let mut t = Tokens::new();
        t.read("I LOVE it 😍😍 :) really?? yessss");
        assert_eq!(t.symbols, ['😍', '😍']);
        assert_eq!(t.emoticons.len(), 1);
        assert_eq!(t.questions, 2);
        assert_eq!(t.shouted, 1);
        assert_eq!(t.elongated, 1);
    }

    #[test]
    fn clause_breaks() {
        let mut t = Tokens::new();
        t.read("not good, but fine 😍 ok :) yes. «no» (maybe)");
        let breaks: Vec<bool> = (0..t.len()).map(|i| t.break_before(i)).collect();
        // not good | but fine | ok | yes | no | maybe
        assert_eq!(breaks, [false, false, true, false, true, true, true, true]);
    }

    /// Every token through the general loop, for comparison with the ASCII one.
    fn general(text: &str) -> Tokens {
        let mut t = Tokens::new();
        for raw in text.split_whitespace() {
            if let Some(i) = EMOTICONS.iter().position(|e| e.eq_ignore_ascii_case(raw)) {
                t.emoticons.push(i as u8);
                t.pending_break = true;
            } else if !is_link_or_mention(raw.as_bytes()) {
                t.read_chars(raw);
            }
        }
        t
    }

    #[test]
    fn ascii_path_reads_like_the_general_one() {
        // Every short string over an alphabet of letters in both cases, apostrophes and punctuation, plus
        // a pseudo-random sample of longer ones.
        let alphabet: &[u8] = b"aAbz'!?-.9 \t\x0b@:)";
        let mut texts = Vec::new();
        for len in 1..=4u32 {
            for mut code in 0..alphabet.len().pow(len) {
                let mut s = String::new();
                for _ in 0..len {
                    s.push(char::from(alphabet[code % alphabet.len()]));
                    code /= alphabet.len();
                }
                texts.push(s);
            }
        }
        let exhaustive = texts.len();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            // The length is drawn anew for every text: drawn from a state that only the characters
            // advance, one empty text would make all the following ones empty.
            let s: String = (0..next() % 40)
                .map(|_| char::from(alphabet[(next() % alphabet.len() as u64) as usize]))
                .collect();
            texts.push(s);
        }
        // Tokens built from pieces of emoticons, links, addresses and mentions, which the ASCII path
        // recognises in the same pass as the letters and takes back.
        let pieces = [
            "www.", "http://", "HTTPS://", "xD", "<3", ":-P", ":'(", "</3", ">:(", "-_-", "^^",
            "=)", ";)", ":o", "a@b", ".c", "@x", "it's", "NO", "sooo", "x", "d", ".", "!", "?",
            ":", " ", " ", "\t",
        ];
        for _ in 0..20_000 {
            let s: String = (0..next() % 8)
                .map(|_| pieces[(next() % pieces.len() as u64) as usize])
                .collect();
            texts.push(s);
        }
        // The generated texts are not all empty (they once were, by the bug described above).
        assert!(texts.iter().filter(|t| t.len() > 8).count() > 20_000);
        // ASCII tokens inside text that is not ASCII take the same path as ASCII text: the generated
        // texts again, between two words that are not ASCII.
        let mixed: Vec<String> = texts[exhaustive..]
            .iter()
            .map(|t| format!("é {t} ü"))
            .collect();
        texts.extend(mixed);
        texts.extend(
            [
                "Soooo GOOD!!! don't",
                "it's ok'",
                "'quoted' WORDS",
                "aaa'aaa",
            ]
            .map(String::from),
        );
        for text in &texts {
            let mut fast = Tokens::new();
            fast.read(text);
            let slow = general(text);
            let fast_words: Vec<_> = fast.words().collect();
            let slow_words: Vec<_> = slow.words().collect();
            assert_eq!(fast_words, slow_words, "{text:?}");
            assert_eq!(fast.breaks, slow.breaks, "{text:?}");
            assert_eq!(
                (
                    fast.exclamations,
                    fast.questions,
                    fast.shouted,
                    fast.elongated,
                    fast.letters
                ),
                (
                    slow.exclamations,
                    slow.questions,
                    slow.shouted,
                    slow.elongated,
                    slow.letters
                ),
                "{text:?}"
            );
            assert_eq!(fast.emoticons, slow.emoticons, "{text:?}");
        }
    }

    #[test]
    fn truncates_on_char_boundary() {
        let s = "é".repeat(3000);
        let t = truncate(&s, MAX_BYTES);
        assert_eq!(t.len(), MAX_BYTES);
        assert_eq!(truncate("ab", 10), "ab");
    }
}
