//! Detection and redaction of personal data in chat text: the pure-Rust core of `redact_pii()`.
//!
//! No DataFusion here. The SQL functions call [`redact`], [`find`] (or [`find_into`] with a reused buffer) and
//! [`kinds_found`] once per value, and parse their optional type-list argument with [`PiiSet`]'s `FromStr`.
//!
//! What counts (each detector's file says why):
//! - [`PiiKind::Email`] → `<EMAIL>`: `local@domain.tld` with an alphabetic (or `xn--`) TLD; accented local parts and
//!   domains are kept whole.
//! - [`PiiKind::Phone`] → `<PHONE>`: `+`, `(+…)` or `00` international numbers of 7–15 digits, and national numbers
//!   of 7–12 digits with a phone-like shape: a trunk `0`, an area code in parentheses, NANP `555-123-4567`, or grouped
//!   digits that are not a date, a thousands-separated amount, a dotted quad or a version.
//! - [`PiiKind::Card`] → `<CARD>`: 13–19 digits, in one block or in groups of 3+ split by single spaces or dashes, not
//!   starting with `0`, Luhn-valid.
//! - [`PiiKind::Iban`] → `<IBAN>`: a registered country code, that country's exact length and the mod-97 checksum;
//!   either case, with single spaces or dashes anywhere after the check digits.
//! - [`PiiKind::Ip`] → `<IP>`: dotted-quad IPv4 without leading zeros; IPv6 as `std::net::Ipv6Addr` parses it, where
//!   a `::` form needs two groups and one of 3+ hex digits (so `10::30` and `a::b` stay).
//!
//! # Behaviour the SQL layer documents
//! - Offsets in [`Finding`] are byte offsets into the UTF-8 text, always on `char` boundaries.
//! - Overlaps: a stretch of text is one kind only. Detectors run strongest first, email > IBAN > card > IP > phone (an
//!   e-mail address may contain any digits, and a checksum is better evidence than a shape), and each one scans
//!   around the text the earlier ones claimed. So a phone number followed by a card number is two matches, not one
//!   phone swallowing the card's first group and then losing to it. Findings come back sorted by start and never
//!   overlap.
//! - Choosing kinds does not change what a stretch *is*: `redact(text, phone)` still runs the stronger detectors, so
//!   the digits inside an IBAN or an e-mail address are never reported as a phone. It only changes what is replaced.
//! - [`kinds_found`] lists each kind once, in the order of its first appearance in the text.
//! - Adjacent matches stay separate: `"<PHONE> <CARD>"`, and `"<EMAIL>,<EMAIL>"` for a comma-separated list.
//! - A match must stand alone: a letter, digit or `_` right next to it (`A33032`, `1Z999AA10123456784`, `v1.2.3.4`)
//!   makes it part of a longer token. Letters of scripts written without spaces (Chinese, Japanese, Korean syllables,
//!   Thai, Lao, Khmer, Myanmar) and full-width forms do not, because there the neighbour is the next word.
//! - Phone extensions stay after the placeholder: `<PHONE>x123`, `<PHONE> ext. 12`. So do ports and prefix lengths
//!   after an IP (`<IP>:8080`, `<IP>/24`).
//! - Known confusions, all on the side of redacting: a Luhn-valid order number or a 15-digit IMEI reads as a card, a
//!   US social security number (`123-45-6789`) and a bare 10-digit NANP-shaped order number as a phone, a four-part
//!   version (`1.2.3.4`) as an IPv4 address.
//! - Not handled: digits other than ASCII `0-9` (Arabic-Indic, full-width), no-break spaces or Unicode dashes inside
//!   numbers, phone numbers spelled with letters (`1-800-FLOWERS`), obfuscated addresses (`jo (at) x.com`), IPv6 zone
//!   ids, IP literals in e-mail domains.
//!
//! # Why hand-written scanners and not regexes
//! Every detector has to validate sub-spans of a candidate (Luhn over each window of digit groups, mod-97 over a
//! country-specific length, octet ranges) and look at the character on each side with Unicode rules. The `regex`
//! crate has no look-around, so a regex could only propose candidates that the scanner would then re-parse. Byte
//! scanners do both in one pass, allocate nothing, and need no compiled state.
//!
//! # Cost
//! One pass over the bytes (`Profile`) counts digits, `@`, `.` and `:`. A detector runs only when that count allows
//! a match: e-mail needs an `@`, phones 7 digits, cards 13, IBANs 7, IPv4 4 digits and 3 dots, IPv6 two colons. Most
//! chat messages stop there and cost one pass, with no allocation: [`find`] returns an empty `Vec` (which does not
//! allocate) and [`redact`] returns `Cow::Borrowed`.

use std::borrow::Cow;
use std::fmt;
use std::ops::BitOr;
use std::str::FromStr;

mod card;
mod email;
mod iban;
mod ip;
mod phone;

/// A kind of personal data that [`find`] recognises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PiiKind {
    Email,
    Phone,
    Card,
    Iban,
    Ip,
}

impl PiiKind {
    /// Every kind, in declaration order.
    pub const ALL: [PiiKind; 5] = [Self::Email, Self::Phone, Self::Card, Self::Iban, Self::Ip];

    /// The upper-case name used in placeholders and in `kinds_found` output: `"EMAIL"`, `"PHONE"`, `"CARD"`, `"IBAN"`,
    /// `"IP"`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Email => "EMAIL",
            Self::Phone => "PHONE",
            Self::Card => "CARD",
            Self::Iban => "IBAN",
            Self::Ip => "IP",
        }
    }

    /// The lower-case name that [`PiiKind::parse`] and [`PiiSet`]'s parser accept, and that error messages list.
    pub const fn sql_name(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Phone => "phone",
            Self::Card => "card",
            Self::Iban => "iban",
            Self::Ip => "ip",
        }
    }

    /// The text that replaces a match: `<EMAIL>` and so on.
    pub const fn placeholder(self) -> &'static str {
        match self {
            Self::Email => "<EMAIL>",
            Self::Phone => "<PHONE>",
            Self::Card => "<CARD>",
            Self::Iban => "<IBAN>",
            Self::Ip => "<IP>",
        }
    }

    /// Parses one type name, ignoring ASCII case and surrounding whitespace: `email(s)`, `e-mail(s)`, `phone(s)`,
    /// `phone_number(s)`, `card(s)`, `credit_card(s)`, `payment_card(s)`, `iban(s)`, `ip(s)`, `ip_address(es)`.
    pub fn parse(name: &str) -> Option<Self> {
        const NAMES: &[(&str, PiiKind)] = &[
            ("email", PiiKind::Email),
            ("emails", PiiKind::Email),
            ("e-mail", PiiKind::Email),
            ("e-mails", PiiKind::Email),
            ("phone", PiiKind::Phone),
            ("phones", PiiKind::Phone),
            ("phone_number", PiiKind::Phone),
            ("phone_numbers", PiiKind::Phone),
            ("card", PiiKind::Card),
            ("cards", PiiKind::Card),
            ("credit_card", PiiKind::Card),
            ("credit_cards", PiiKind::Card),
            ("payment_card", PiiKind::Card),
            ("payment_cards", PiiKind::Card),
            ("iban", PiiKind::Iban),
            ("ibans", PiiKind::Iban),
            ("ip", PiiKind::Ip),
            ("ips", PiiKind::Ip),
            ("ip_address", PiiKind::Ip),
            ("ip_addresses", PiiKind::Ip),
        ];
        let name = name.trim();
        NAMES
            .iter()
            .find(|(alias, _)| alias.eq_ignore_ascii_case(name))
            .map(|&(_, kind)| kind)
    }

    const fn bit(self) -> u8 {
        1 << self as u8
    }

    /// The order in which detectors claim text, lower first: an e-mail address may contain anything else, and a
    /// checksum (IBAN, card) is better evidence than a shape (IP, phone).
    const fn rank(self) -> u8 {
        match self {
            Self::Email => 0,
            Self::Iban => 1,
            Self::Card => 2,
            Self::Ip => 3,
            Self::Phone => 4,
        }
    }
}

impl fmt::Display for PiiKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PiiKind {
    type Err = PiiParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or_else(|| PiiParseError::Unknown(s.trim().to_owned()))
    }
}

/// A set of [`PiiKind`]s: which kinds to redact or report.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PiiSet(u8);

impl PiiSet {
    pub const EMPTY: Self = Self(0);
    pub const ALL: Self = Self(0b1_1111);

    pub const fn only(kind: PiiKind) -> Self {
        Self(kind.bit())
    }

    pub const fn with(self, kind: PiiKind) -> Self {
        Self(self.0 | kind.bit())
    }

    pub const fn contains(self, kind: PiiKind) -> bool {
        self.0 & kind.bit() != 0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The kinds in the set, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = PiiKind> {
        PiiKind::ALL.into_iter().filter(move |&k| self.contains(k))
    }

    /// This set plus every kind that can win an overlap against one of its members. Detecting those too keeps a
    /// choice of kinds from changing what a stretch of text is (the digits of an IBAN are not a phone number).
    fn with_stronger(self) -> Self {
        let weakest = self.iter().map(PiiKind::rank).max();
        PiiKind::ALL
            .into_iter()
            .filter(|k| weakest.is_some_and(|w| k.rank() <= w))
            .collect()
    }
}

impl From<PiiKind> for PiiSet {
    fn from(kind: PiiKind) -> Self {
        Self::only(kind)
    }
}

impl FromIterator<PiiKind> for PiiSet {
    fn from_iter<I: IntoIterator<Item = PiiKind>>(iter: I) -> Self {
        iter.into_iter().fold(Self::EMPTY, Self::with)
    }
}

impl BitOr for PiiSet {
    type Output = Self;

    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl BitOr<PiiKind> for PiiSet {
    type Output = Self;

    fn bitor(self, rhs: PiiKind) -> Self {
        self.with(rhs)
    }
}

impl fmt::Debug for PiiSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// Writes the set the way the parser reads it back: `email,phone`.
impl fmt::Display for PiiSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, kind) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(kind.sql_name())?;
        }
        Ok(())
    }
}

/// Parses a comma-separated list of type names (see [`PiiKind::parse`]), or `all`. Blank items are skipped, so a
/// trailing comma is harmless; a list with no names at all is an error rather than a silent no-op.
impl FromStr for PiiSet {
    type Err = PiiParseError;

    fn from_str(list: &str) -> Result<Self, Self::Err> {
        let mut set = Self::EMPTY;
        let mut named = false;
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            named = true;
            if item.eq_ignore_ascii_case("all") {
                set = Self::ALL;
            } else {
                set = set.with(item.parse()?);
            }
        }
        if named {
            Ok(set)
        } else {
            Err(PiiParseError::Empty)
        }
    }
}

/// A type list that names no kind, or a kind that does not exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PiiParseError {
    /// The name as written (trimmed).
    Unknown(String),
    Empty,
}

const VALID_NAMES: &str = "email, phone, card, iban, ip (or all)";

impl fmt::Display for PiiParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(name) => write!(
                f,
                "unknown PII type '{name}'; valid types are {VALID_NAMES}"
            ),
            Self::Empty => write!(
                f,
                "no PII type given; list one or more of {VALID_NAMES}, separated by commas"
            ),
        }
    }
}

impl std::error::Error for PiiParseError {}

/// One match: `text[start..end]` is personal data of `kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Finding {
    pub kind: PiiKind,
    pub start: usize,
    pub end: usize,
}

/// A detector appends its matches to `found`, skipping the spans already there (see [`next_claim`]).
type Detector = fn(text: &str, found: &mut Vec<Finding>);

/// The matches of the chosen kinds, sorted by start, never overlapping.
pub fn find(text: &str, kinds: PiiSet) -> Vec<Finding> {
    let mut found = Vec::new();
    find_into(text, kinds, &mut found);
    found
}

/// [`find`] into a caller-owned buffer (cleared first), so a column kernel allocates once per batch, not per row.
pub fn find_into(text: &str, kinds: PiiSet, found: &mut Vec<Finding>) {
    found.clear();
    let detect = kinds.with_stronger();
    if detect.is_empty() {
        return;
    }
    let detect = Profile::of(text).possible(detect);
    if detect.is_empty() {
        return;
    }
    // Strongest first (see `PiiKind::rank`). Each detector treats what is already in `found` as claimed (it appends
    // its own matches after those), and the claims are re-sorted before the next one looks them up.
    let detectors: [(PiiKind, Detector); 5] = [
        (PiiKind::Email, email::find),
        (PiiKind::Iban, iban::find),
        (PiiKind::Card, card::find),
        (PiiKind::Ip, ip::find),
        (PiiKind::Phone, phone::find),
    ];
    for (kind, detector) in detectors {
        if detect.contains(kind) {
            detector(text, found);
            found.sort_unstable_by_key(|f| f.start);
        }
    }
    found.retain(|f| kinds.contains(f.kind));
}

/// The text with every match of the chosen kinds replaced by its placeholder; borrowed when nothing matched.
pub fn redact(text: &str, kinds: PiiSet) -> Cow<'_, str> {
    let found = find(text, kinds);
    if found.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 4 * found.len());
    let mut copied = 0;
    for f in &found {
        out.push_str(&text[copied..f.start]);
        out.push_str(f.kind.placeholder());
        copied = f.end;
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// The kinds found, each once, in the order of its first appearance in the text.
pub fn kinds_found(text: &str, kinds: PiiSet) -> Vec<PiiKind> {
    let mut seen = PiiSet::EMPTY;
    let mut order = Vec::new();
    for f in find(text, kinds) {
        if !seen.contains(f.kind) {
            seen = seen.with(f.kind);
            order.push(f.kind);
        }
    }
    order
}

/// Byte counts that decide which detectors can possibly match, taken in one branch-free pass the compiler vectorises.
struct Profile {
    digits: usize,
    at_signs: usize,
    dots: usize,
    colons: usize,
}

impl Profile {
    fn of(text: &str) -> Self {
        let mut p = Self {
            digits: 0,
            at_signs: 0,
            dots: 0,
            colons: 0,
        };
        for &b in text.as_bytes() {
            p.digits += usize::from(b.is_ascii_digit());
            p.at_signs += usize::from(b == b'@');
            p.dots += usize::from(b == b'.');
            p.colons += usize::from(b == b':');
        }
        p
    }

    /// The kinds of `wanted` that this text has the raw material for: an `@` for an e-mail address, 7 digits for a
    /// phone number, 13 for a card, 4 digits and 3 dots or 2 colons for an IP. An IBAN is its 2 check digits plus a
    /// national account number, and account numbers are digits; an IBAN with fewer than 7 digits in all (possible on
    /// paper for a few letter-heavy formats, unseen in the registry's examples) is not looked for.
    fn possible(&self, wanted: PiiSet) -> PiiSet {
        let mut set = PiiSet::EMPTY;
        if self.at_signs > 0 {
            set = set.with(PiiKind::Email);
        }
        if self.digits >= 7 {
            set = set.with(PiiKind::Phone).with(PiiKind::Iban);
        }
        if self.digits >= 13 {
            set = set.with(PiiKind::Card);
        }
        if (self.digits >= 4 && self.dots >= 3) || self.colons >= 2 {
            set = set.with(PiiKind::Ip);
        }
        PiiSet(set.0 & wanted.0)
    }
}

/// Where the first span claimed by a stronger detector at or after `pos` starts (`text_len` if none): a weaker
/// detector's candidate must end before it. `claims` is sorted and non-overlapping, so their ends are sorted too and
/// a binary search keeps a text with thousands of matches linear.
pub(super) fn next_claim(claims: &[Finding], pos: usize, text_len: usize) -> usize {
    let i = claims.partition_point(|f| f.end <= pos);
    claims.get(i).map_or(text_len, |f| f.start.max(pos))
}

/// Whether `start..end` touches a span claimed by a stronger detector (`claims` as for [`next_claim`]).
pub(super) fn is_claimed(claims: &[Finding], start: usize, end: usize) -> bool {
    let i = claims.partition_point(|f| f.end <= start);
    claims.get(i).is_some_and(|f| f.start < end)
}

/// What may touch a match without making it part of a longer token.
pub(super) struct Edge {
    /// Punctuation that joins tokens when a word character is on its far side: `A-123`, `v.1`, `05/01`.
    pub glue: &'static [u8],
    /// Punctuation that joins tokens only when an ASCII digit is on its far side: `10:30`.
    pub digit_glue: &'static [u8],
    /// Characters that rule a match out when they touch it (`#123456 7`, `€1 299 000`).
    pub stop: &'static [char],
}

/// Whether the text before byte `pos` lets a match start there.
pub(super) fn clear_before(text: &str, pos: usize, edge: &Edge) -> bool {
    let mut before = text[..pos].chars().rev();
    match before.next() {
        None => true,
        Some(c) => clear_beside(c, before.next(), edge),
    }
}

/// Whether the text from byte `pos` lets a match end there.
pub(super) fn clear_after(text: &str, pos: usize, edge: &Edge) -> bool {
    let mut after = text[pos..].chars();
    match after.next() {
        None => true,
        Some(c) => clear_beside(c, after.next(), edge),
    }
}

fn clear_beside(next: char, beyond: Option<char>, edge: &Edge) -> bool {
    if is_word_char(next) || edge.stop.contains(&next) {
        return false;
    }
    if !next.is_ascii() {
        return true;
    }
    let b = next as u8;
    if edge.glue.contains(&b) {
        return !beyond.is_some_and(is_word_char);
    }
    if edge.digit_glue.contains(&b) {
        return !beyond.is_some_and(|c| c.is_ascii_digit());
    }
    true
}

/// A character that continues a word: a match touching one is a fragment of that word.
pub(super) fn is_word_char(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric() || c == '_'
    } else {
        c.is_alphanumeric() && !is_spaceless_script(c)
    }
}

/// Scripts written without spaces between words (and Korean, whose particles attach to any word, digits included):
/// a letter of these next to a number is the neighbouring word, not part of the number (`电话0612345678谢谢`).
fn is_spaceless_script(c: char) -> bool {
    matches!(c as u32,
        0x0E00..=0x0EFF     // Thai, Lao
        | 0x1000..=0x109F   // Myanmar
        | 0x1780..=0x17FF   // Khmer
        | 0x3040..=0x30FF   // Hiragana, Katakana
        | 0x3400..=0x4DBF   // CJK extension A
        | 0x4E00..=0x9FFF   // CJK unified ideographs
        | 0xAC00..=0xD7AF   // Hangul syllables
        | 0xF900..=0xFAFF   // CJK compatibility ideographs
        | 0xFF00..=0xFFEF   // full-width and half-width forms
        | 0x20000..=0x3FFFF // CJK extensions B and later
    )
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Redacts every kind; the shorthand every detector's tests use.
    pub(in super::super) fn red(text: &str) -> String {
        redact(text, PiiSet::ALL).into_owned()
    }

    /// The texts matched as `kind`, with every detector running (as in `redact_pii(text)`).
    pub(in super::super) fn spans(text: &str, kind: PiiKind) -> Vec<&str> {
        find(text, PiiSet::ALL)
            .into_iter()
            .filter(|f| f.kind == kind)
            .map(|f| &text[f.start..f.end])
            .collect()
    }

    #[test]
    fn kind_names_round_trip() {
        for kind in PiiKind::ALL {
            assert_eq!(PiiKind::parse(kind.sql_name()), Some(kind));
            assert_eq!(PiiKind::parse(kind.name()), Some(kind));
            assert_eq!(kind.placeholder(), format!("<{}>", kind.name()));
            assert_eq!(kind.to_string(), kind.name());
        }
    }

    #[test]
    fn kind_aliases_and_plurals() {
        for (name, kind) in [
            ("emails", PiiKind::Email),
            ("e-mail", PiiKind::Email),
            ("phones", PiiKind::Phone),
            ("phone_number", PiiKind::Phone),
            ("credit_card", PiiKind::Card),
            ("credit_cards", PiiKind::Card),
            ("payment_card", PiiKind::Card),
            ("cards", PiiKind::Card),
            ("ibans", PiiKind::Iban),
            ("ips", PiiKind::Ip),
            ("ip_address", PiiKind::Ip),
            ("  Email ", PiiKind::Email),
        ] {
            assert_eq!(PiiKind::parse(name), Some(kind), "{name}");
        }
        assert_eq!(PiiKind::parse("ssn"), None);
        assert_eq!(PiiKind::parse(""), None);
    }

    #[test]
    fn set_parses_lists() {
        let set: PiiSet = "email,phone".parse().expect("valid list");
        assert_eq!(set, PiiSet::only(PiiKind::Email) | PiiKind::Phone);
        assert_eq!(
            " IBAN , credit_card ,".parse(),
            Ok(PiiSet::from_iter([PiiKind::Iban, PiiKind::Card]))
        );
        assert_eq!("all".parse(), Ok(PiiSet::ALL));
        assert_eq!("ip,ALL".parse(), Ok(PiiSet::ALL));
        assert_eq!(PiiSet::ALL.to_string(), "email,phone,card,iban,ip");
        assert_eq!(PiiSet::ALL.to_string().parse(), Ok(PiiSet::ALL));
        assert_eq!(format!("{:?}", PiiSet::only(PiiKind::Ip)), "{Ip}");
    }

    #[test]
    fn set_parse_errors_name_the_culprit_and_the_choices() {
        let err = "email,ssn"
            .parse::<PiiSet>()
            .expect_err("ssn is not a type");
        assert_eq!(err, PiiParseError::Unknown("ssn".into()));
        let msg = err.to_string();
        assert!(msg.contains("'ssn'"), "{msg}");
        for kind in PiiKind::ALL {
            assert!(msg.contains(kind.sql_name()), "{msg}");
        }
        assert_eq!("".parse::<PiiSet>(), Err(PiiParseError::Empty));
        assert_eq!(" , ".parse::<PiiSet>(), Err(PiiParseError::Empty));
        assert!(
            PiiParseError::Empty
                .to_string()
                .contains("email, phone, card, iban, ip")
        );
    }

    #[test]
    fn set_operations() {
        assert!(PiiSet::EMPTY.is_empty());
        assert_eq!(PiiSet::ALL.iter().count(), 5);
        assert_eq!(
            PiiSet::from(PiiKind::Card).iter().collect::<Vec<_>>(),
            [PiiKind::Card]
        );
        assert!(PiiSet::ALL.contains(PiiKind::Ip));
        assert!(!PiiSet::only(PiiKind::Ip).contains(PiiKind::Email));
        assert_eq!(
            PiiSet::only(PiiKind::Email).with_stronger(),
            PiiSet::only(PiiKind::Email)
        );
        assert_eq!(PiiSet::only(PiiKind::Phone).with_stronger(), PiiSet::ALL);
        assert_eq!(
            PiiSet::only(PiiKind::Card).with_stronger(),
            PiiSet::from_iter([PiiKind::Email, PiiKind::Iban, PiiKind::Card])
        );
        assert_eq!(PiiSet::EMPTY.with_stronger(), PiiSet::EMPTY);
    }

    #[test]
    fn nothing_found_borrows() {
        for text in [
            "",
            "Hi, where is my order?",
            "Order A33032 was placed on 2026-01-05 at 10:30 for €1,299.00",
            "Tracking 1Z999AA10123456784, version 1.2.3",
            "شكرا جزيلا 🙏",
        ] {
            assert!(
                matches!(redact(text, PiiSet::ALL), Cow::Borrowed(_)),
                "{text}"
            );
            assert!(find(text, PiiSet::ALL).is_empty(), "{text}");
            assert!(kinds_found(text, PiiSet::ALL).is_empty(), "{text}");
        }
    }

    #[test]
    fn every_kind_in_one_message() {
        let text = "Mail jane.doe@example.com or call +44 20 7946 0958; card 4111 1111 1111 1111, \
                    IBAN DE89 3704 0044 0532 0130 00 from 192.168.1.20";
        assert_eq!(
            red(text),
            "Mail <EMAIL> or call <PHONE>; card <CARD>, IBAN <IBAN> from <IP>"
        );
        assert_eq!(
            kinds_found(text, PiiSet::ALL),
            [
                PiiKind::Email,
                PiiKind::Phone,
                PiiKind::Card,
                PiiKind::Iban,
                PiiKind::Ip
            ]
        );
    }

    #[test]
    fn findings_are_sorted_byte_spans() {
        let text = "ip 10.0.0.1 then a@b.co";
        assert_eq!(
            find(text, PiiSet::ALL),
            [
                Finding {
                    kind: PiiKind::Ip,
                    start: 3,
                    end: 11
                },
                Finding {
                    kind: PiiKind::Email,
                    start: 17,
                    end: 23
                },
            ]
        );
    }

    #[test]
    fn chosen_kinds_only() {
        let text = "a@b.co +33 6 12 34 56 78";
        let email = PiiSet::only(PiiKind::Email);
        assert_eq!(redact(text, email), "<EMAIL> +33 6 12 34 56 78");
        assert_eq!(redact(text, PiiSet::only(PiiKind::Phone)), "a@b.co <PHONE>");
        assert_eq!(redact(text, PiiSet::only(PiiKind::Card)), text);
        assert_eq!(redact(text, PiiSet::EMPTY), text);
        assert_eq!(
            kinds_found(text, PiiSet::only(PiiKind::Phone)),
            [PiiKind::Phone]
        );
    }

    #[test]
    fn choosing_kinds_does_not_reclassify() {
        // Without the IBAN detector, "3704 0044 0532" would pass as a grouped phone number.
        let iban = "IBAN DE89 3704 0044 0532 0130 00";
        assert_eq!(redact(iban, PiiSet::only(PiiKind::Phone)), iban);
        let email = "write to 0612345678@sms.example.com";
        assert_eq!(redact(email, PiiSet::only(PiiKind::Phone)), email);
        assert_eq!(red(email), "write to <EMAIL>");
    }

    #[test]
    fn kinds_found_is_first_appearance_order_deduplicated() {
        let text = "192.168.0.1, x@y.org, 10.1.1.1, z@y.org, 0612345678";
        assert_eq!(
            kinds_found(text, PiiSet::ALL),
            [PiiKind::Ip, PiiKind::Email, PiiKind::Phone]
        );
        assert_eq!(
            kinds_found(text, PiiSet::from_iter([PiiKind::Phone, PiiKind::Email])),
            [PiiKind::Email, PiiKind::Phone]
        );
    }

    #[test]
    fn find_into_reuses_and_clears_the_buffer() {
        let mut buf = Vec::new();
        find_into("x@y.org", PiiSet::ALL, &mut buf);
        assert_eq!(buf.len(), 1);
        find_into("nothing here", PiiSet::ALL, &mut buf);
        assert!(buf.is_empty());
    }

    #[test]
    fn claims() {
        assert_eq!(next_claim(&[], 3, 50), 50);
        assert!(!is_claimed(&[], 0, 50));
        let claimed = [
            Finding {
                kind: PiiKind::Email,
                start: 10,
                end: 20,
            },
            Finding {
                kind: PiiKind::Card,
                start: 30,
                end: 40,
            },
        ];
        assert_eq!(next_claim(&claimed, 0, 50), 10);
        assert_eq!(next_claim(&claimed, 15, 50), 15);
        assert_eq!(next_claim(&claimed, 20, 50), 30);
        assert_eq!(next_claim(&claimed, 40, 50), 50);
        assert!(is_claimed(&claimed, 5, 11));
        assert!(!is_claimed(&claimed, 20, 30));
        assert!(is_claimed(&claimed, 35, 36));
    }

    #[test]
    fn stronger_kinds_claim_first() {
        // The e-mail address holds a phone number, the IBAN holds card- and phone-shaped digit groups.
        assert_eq!(red("0612345678@sms.example.com"), "<EMAIL>");
        assert_eq!(red("FR76 3000 6000 0112 3456 7890 189"), "<IBAN>");
        // A phone number that runs straight into a card number: the card claims its digits first.
        assert_eq!(
            red("+33 6 12 34 56 78 4111 1111 1111 1111"),
            "<PHONE> <CARD>"
        );
        assert_eq!(red("::ffff:192.0.2.1"), "<IP>");
    }

    #[test]
    fn unicode_around_matches() {
        assert_eq!(
            red("Merci 🙏 écrivez à zoé@exemple.fr ou au 06 12 34 56 78 — à bientôt ✨"),
            "Merci 🙏 écrivez à <EMAIL> ou au <PHONE> — à bientôt ✨"
        );
        // Right-to-left text with a right-to-left mark beside the number.
        assert_eq!(
            red("رقمي \u{200F}+971 50 123 4567\u{200F} وبريدي ahmed@example.ae شكرا"),
            "رقمي \u{200F}<PHONE>\u{200F} وبريدي <EMAIL> شكرا"
        );
        assert_eq!(
            red("我的邮箱是wang@example.cn，电话13800138000谢谢"),
            "我的邮箱是<EMAIL>，电话<PHONE>谢谢"
        );
        assert_eq!(red("電話は090-1234-5678です"), "電話は<PHONE>です");
        assert_eq!(
            red("전화 010-1234-5678로 연락주세요"),
            "전화 <PHONE>로 연락주세요"
        );
        // Accented letters are word characters: glued to a number, they make it a code.
        assert_eq!(red("réf0612345678"), "réf0612345678");
    }

    #[test]
    fn whole_text_and_edges() {
        assert_eq!(red("x@y.org"), "<EMAIL>");
        assert_eq!(red("4111111111111111"), "<CARD>");
        assert_eq!(red("+14155550123"), "<PHONE>");
        assert_eq!(red("2001:db8::1"), "<IP>");
        assert_eq!(red("NL91ABNA0417164300"), "<IBAN>");
        assert_eq!(red("10.0.0.1 x@y.org"), "<IP> <EMAIL>");
    }

    #[test]
    fn adjacent_matches_stay_separate() {
        assert_eq!(red("x@y.org,z@w.net"), "<EMAIL>,<EMAIL>");
        assert_eq!(red("0612345678,0698765432"), "<PHONE>,<PHONE>");
        assert_eq!(red("0612345678 / 0698765432"), "<PHONE> / <PHONE>");
        assert_eq!(
            red("+33 6 12 34 56 78 4111 1111 1111 1111"),
            "<PHONE> <CARD>"
        );
        assert_eq!(red("10.0.0.1-10.0.0.9"), "<IP>-<IP>");
        assert_eq!(red("(x@y.org)(10.0.0.1)"), "(<EMAIL>)(<IP>)");
    }

    #[test]
    fn documented_confusions_redact() {
        assert_eq!(red("SSN 123-45-6789"), "SSN <PHONE>");
        assert_eq!(red("IMEI 356938035643809"), "IMEI <CARD>");
        assert_eq!(red("order 4829301746"), "order <PHONE>");
        assert_eq!(red("version 1.2.3.4"), "version <IP>");
        assert_eq!(red("call 1-800-FLOWERS"), "call 1-800-FLOWERS");
    }

    #[test]
    fn support_chat_false_positives() {
        for text in [
            "Order A33032 hasn't arrived",
            "Ticket #123456 and #1234567",
            "Delivered 2026-01-05 at 10:30",
            "on 05/01/2026, 5.1.2026 or 05.01.2026 10:30:15",
            "It cost €1,299.00 (was $1.299,00 / 1 299 000 ₫)",
            "Update to 1.2.3 or 10.0.19041.1234",
            "UPS 1Z999AA10123456784",
            "Call 123456 or 42",
            "order number 1234567812345678",
            "between 9 and 17, 3 x 250 ml",
            "SKU-1234567 and ref A-555-0143",
            "Time stamps 10:30:00 and 12:00",
            "Total 12 345 678 units",
            "Order #A-12345-678, Amazon 112-1234567-1234567, RMA 2024-000123",
            "05.01.2026 - 06.01.2026, 10:00-12:00, Mon-Fri 9-17",
            "https://shop.example.com/orders/1234567890",
            "id 550e8400-e29b-41d4-a716-446655440000, ISBN 978-3-16-148410-0",
            "EAN 4006381333931, USPS 9400111899223397788884",
            "PIN 1234, sort code 12-34-56, account 12345678",
            "iPhone 15 Pro Max 256 GB, room 1204",
            "coords 48.8566, 2.3522",
        ] {
            assert_eq!(red(text), text);
        }
    }
}
