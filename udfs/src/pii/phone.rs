//! Phone numbers, international and national, in the ways people type them in chats.
//!
//! A number is a *run* of digit groups joined by one separator each (a space, `-`, `.`, `/`, optionally spaced, or
//! the parentheses of an area code), optionally opened by `+`. A run can hold more than one number, or a number and
//! something else ("call 555 123 4567 2 times", "0612345678 / 0698765432"), so the scanner tries windows of
//! consecutive groups, longest first from the earliest start, and accepts the first that reads as a phone number:
//!
//! - international (`+44 20 7946 0958`, `0044 20 7946 0958`, `+44 (0)20 …`, `(+34) 612 34 56 78`): 7–15 digits
//!   after the prefix, not starting with 0. E.164 caps a number at 15 digits, and a prefix is strong evidence, so no
//!   other shape rule.
//! - national: 7–12 digits, and one of: a trunk `0` (`06 12 34 56 78`, `020 7946 0958`, `030/1234567`), an area code
//!   in parentheses (`(555) 123-4567`, `8 (495) 123-45-67`), a bare 10-digit NANP number or 11-digit `1…` number
//!   (NANP with country code, or a Chinese mobile), or three or more groups that are not a date, a
//!   thousands-separated amount, a dotted quad or a version (`555-123-4567`, `612 34 56 78`, `138 0013 8000`), or the
//!   two-group shapes `555-0143`, `98765 43210` and `347 1234567`.
//!
//! That leaves out bare runs of 7–9 digits and most bare runs not starting with 0: in a support chat those are order,
//! ticket and customer numbers far more often than phone numbers written without spaces.

use super::{Edge, Finding, PiiKind, clear_after, clear_before, next_claim};

/// More groups than this end the run; no phone number has more than a handful.
const MAX_GROUPS: usize = 16;
/// The longest window tried: `+33 (0)6 12 34 56 78` has 7 groups.
const MAX_WINDOW: usize = 8;

/// `#1234567` is a ticket, `€1 299 000` an amount, `1234567%` a ratio; `A-555-0143` and `v.123` are codes;
/// `10:30` is a time.
const EDGE: Edge = Edge {
    glue: b".-/",
    digit_glue: b":",
    stop: &['#', '@', '%', '€', '$', '£', '¥', '₹'],
};

#[derive(Clone, Copy, Default)]
struct Group {
    /// Where the group's text starts: its `(`, the run's `+`, or its first digit.
    start: usize,
    /// Where the group's text ends: after its `)` or its last digit.
    end: usize,
    digits_start: usize,
    digits_end: usize,
    paren: bool,
    /// The punctuation before this group: `b' '`, `b'-'`, `b'.'`, `b'/'`, or 0 (right after a parenthesis).
    sep: u8,
    /// Whether one number may end and another begin at the separator before this group. A plain space, a spaced
    /// dash or a slash can separate two numbers; a bare dash or dot sits inside one.
    cut: bool,
}

impl Group {
    fn len(&self) -> usize {
        self.digits_end - self.digits_start
    }
}

pub(super) fn find(text: &str, found: &mut Vec<Finding>) {
    let b = text.as_bytes();
    let claims = found.len();
    let mut i = 0;
    while i < b.len() {
        let starts = match b[i] {
            b'+' => b.get(i + 1).is_some_and(u8::is_ascii_digit),
            // "(555) …", and "(+34) …" with the country code in parentheses.
            b'(' => {
                let at = i + 1 + usize::from(b.get(i + 1) == Some(&b'+'));
                b.get(at).is_some_and(u8::is_ascii_digit)
            }
            c => c.is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_digit()),
        };
        if !starts {
            i += 1;
            continue;
        }
        let limit = next_claim(&found[..claims], i, b.len());
        let Some(run) = Run::parse(b, i, limit) else {
            i += 1;
            continue;
        };
        // "(0612345678)" is a number in brackets, not an area code: retry from its first digit.
        if run.n == 1 && run.groups[0].paren {
            i += 1;
            continue;
        }
        run.emit(text, found);
        i = run.groups[run.n - 1].end;
    }
}

struct Run {
    groups: [Group; MAX_GROUPS],
    n: usize,
    plus: bool,
}

impl Run {
    /// The run starting at `start` (a `+`, a `(` or a digit), stopping before `limit`, where a stronger detector's
    /// match begins.
    fn parse(b: &[u8], start: usize, limit: usize) -> Option<Self> {
        let paren_plus = b[start] == b'(' && b.get(start + 1) == Some(&b'+');
        let plus = b[start] == b'+' || paren_plus;
        let mut first = if paren_plus {
            // "(+34) 612 34 56 78": the country code in parentheses, read as "+34".
            let mut code = parse_group(b, start + 2, limit)?;
            if b.get(code.end) != Some(&b')') || code.end >= limit {
                return None;
            }
            code.end += 1;
            code.paren = true;
            code
        } else {
            parse_group(b, start + usize::from(plus), limit)?
        };
        first.start = start;
        let mut run = Self {
            groups: [Group::default(); MAX_GROUPS],
            n: 1,
            plus,
        };
        run.groups[0] = first;
        while run.n < MAX_GROUPS {
            let prev = run.groups[run.n - 1];
            let Some((sep, cut, at)) = parse_sep(b, prev.end, prev.paren) else {
                break;
            };
            let Some(mut group) = parse_group(b, at, limit) else {
                break;
            };
            group.sep = sep;
            group.cut = cut;
            run.groups[run.n] = group;
            run.n += 1;
        }
        Some(run)
    }

    fn emit(&self, text: &str, found: &mut Vec<Finding>) {
        let b = text.as_bytes();
        let g = &self.groups[..self.n];
        let mut k = 0;
        while k < g.len() {
            let start_ok = if k == 0 {
                clear_before(text, g[0].start, &EDGE)
            } else {
                g[k].cut
            };
            let hit = if start_ok {
                (k..g.len().min(k + MAX_WINDOW)).rev().find(|&j| {
                    let end_ok = match g.get(j + 1) {
                        None => clear_after(text, g[j].end, &EDGE) || is_extension(b, g[j].end),
                        Some(next) => next.cut,
                    };
                    end_ok && plausible(b, &g[k..=j], self.plus && k == 0, k > 0, g.get(j + 1))
                })
            } else {
                None
            };
            match hit {
                Some(j) => {
                    found.push(Finding {
                        kind: PiiKind::Phone,
                        start: g[k].start,
                        end: g[j].end,
                    });
                    k = j + 1;
                }
                None => k += 1,
            }
        }
    }
}

/// "x123" right after a number is its extension (`555-010-9999x123`), not a letter that makes the number a code.
/// The extension stays in the text: it identifies no one without the number.
fn is_extension(b: &[u8], end: usize) -> bool {
    let digits = b.get(end + 1..).map_or(0, |rest| {
        rest.iter().take_while(|c| c.is_ascii_digit()).count()
    });
    matches!(b.get(end), Some(b'x' | b'X')) && (1..=5).contains(&digits)
}

/// A digit group at `at`, bare or in parentheses, ending by `limit`.
fn parse_group(b: &[u8], at: usize, limit: usize) -> Option<Group> {
    let paren = b.get(at) == Some(&b'(');
    let digits_start = at + usize::from(paren);
    let digits_end = digits_start
        + b.get(digits_start..).map_or(0, |rest| {
            rest.iter().take_while(|c| c.is_ascii_digit()).count()
        });
    let end = digits_end + usize::from(paren);
    let closed = !paren || b.get(digits_end) == Some(&b')');
    (digits_end > digits_start && end <= limit && closed).then_some(Group {
        start: at,
        end,
        digits_start,
        digits_end,
        paren,
        sep: 0,
        cut: false,
    })
}

/// The separator after a group ending at `end`, its cut flag, and where the next group starts. A separator is an
/// optional space, an optional `-`, `.` or `/`, and an optional space, followed by a digit or `(` and a digit;
/// nothing at all is allowed only beside a parenthesis (`(555)123-4567`, `+44 (0)20`).
fn parse_sep(b: &[u8], end: usize, after_paren: bool) -> Option<(u8, bool, usize)> {
    let mut p = end;
    let space_before = b.get(p) == Some(&b' ');
    p += usize::from(space_before);
    let punct = b
        .get(p)
        .copied()
        .filter(|c| matches!(c, b'-' | b'.' | b'/'));
    p += usize::from(punct.is_some());
    let space_after = punct.is_some() && b.get(p) == Some(&b' ');
    p += usize::from(space_after);
    let open = b.get(p) == Some(&b'(');
    if !b.get(p + usize::from(open)).is_some_and(u8::is_ascii_digit)
        || (p == end && !after_paren && !open)
    {
        return None;
    }
    let sep = punct.unwrap_or(if space_before { b' ' } else { 0 });
    let cut = (space_before && (punct.is_none() || space_after)) || punct == Some(b'/');
    Some((sep, cut, p))
}

fn digits<'a>(b: &'a [u8], g: &Group) -> &'a [u8] {
    &b[g.digits_start..g.digits_end]
}

/// Whether the groups `w` read as one phone number. `plus`: the window opens with `+`; `mid_run`: it starts after
/// other groups of the run; `next`: the group after it, if the run goes on.
fn plausible(b: &[u8], w: &[Group], plus: bool, mid_run: bool, next: Option<&Group>) -> bool {
    let first = digits(b, &w[0]);
    // "0044 20 …" dials out; a lone "00" group is more often the cents of a price ("1.299,00 / 1 299 000").
    let dial_out = !w[0].paren && first.len() > 2 && first.starts_with(b"00");
    if plus || dial_out {
        international(b, w, dial_out)
    } else {
        national(b, w, mid_run, next)
    }
}

fn international(b: &[u8], w: &[Group], dial_out: bool) -> bool {
    // The "(0)" of "+44 (0)20 …" is the trunk prefix, dialled only from inside the country.
    let significant = w
        .iter()
        .enumerate()
        .filter(|&(i, g)| !(i == 1 && g.paren && digits(b, g) == b"0"))
        .flat_map(|(_, g)| digits(b, g).iter().copied());
    let prefix = if dial_out { 2 } else { 0 };
    let lead = significant.clone().nth(prefix);
    let count = significant.count().saturating_sub(prefix);
    // Zero-padded references ("00123456789") look like a bare dial-out number; ask those for a full-length number.
    let min = if dial_out && w.len() == 1 { 10 } else { 7 };
    lead.is_some_and(|d| d != b'0') && (min..=15).contains(&count)
}

fn national(b: &[u8], w: &[Group], mid_run: bool, next: Option<&Group>) -> bool {
    let total: usize = w.iter().map(Group::len).sum();
    if !(7..=12).contains(&total) {
        return false;
    }
    let first = digits(b, &w[0]);
    // An area code in parentheses opens the number, or follows a one-digit trunk or country code ("8 (495) …").
    let parens_ok = w.iter().enumerate().all(|(i, g)| {
        !g.paren || ((i == 0 || (i == 1 && w[0].len() == 1)) && (2..=5).contains(&g.len()))
    });
    if !parens_ok {
        return false;
    }
    // A trunk prefix is one 0; "00…" that did not pass as a dial-out prefix is padding.
    let trunk = first[0] == b'0' && first.get(1) != Some(&b'0');
    let strong = trunk || w.iter().any(|g| g.paren);
    // Starting inside a run needs evidence of its own: "order 12 0612345678" yes, "12 345 678 901" no.
    if mid_run && !strong {
        return false;
    }
    // One digit is a trunk or country code ("1-800-…") only at the front; further in, it is a version or a list.
    if w[1..].iter().any(|g| g.len() == 1) {
        return false;
    }
    if w.windows(3).any(|t| is_date(b, t)) {
        return false;
    }
    if w.len() == 1 {
        return bare(first);
    }
    if strong {
        return true;
    }
    let rest = &w[1..];
    // Outside "030/1234567" (trunk 0, handled above) a slash joins dates, expiry dates and fractions: "12/26 123".
    if rest.iter().any(|g| g.sep == b'/') {
        return false;
    }
    // "2026 1234 5678" opens with a year: a date or a reference, not a phone.
    if w[0].len() == 4 && is_year(first) {
        return false;
    }
    // Thousands separators: "1 234 567", "12 345 678", "1.234.567" (but "612 345 678" is a Spanish mobile).
    if rest.iter().all(|g| g.len() == 3) && (w[0].len() < 3 || rest.iter().all(|g| g.sep == b'.')) {
        return false;
    }
    // Dotted quads that are not valid IPs, and four-part versions: "192.168.100.300", "10.20.30.40".
    if w.len() == 4 && rest.iter().all(|g| g.sep == b'.') && w.iter().all(|g| g.len() <= 3) {
        return false;
    }
    if w.len() == 2 {
        let shape = (w[0].len(), w[1].len());
        // US local "555-0143"; Indian mobile "98765 43210"; Italian mobile "347 1234567" (a 3xx operator
        // prefix, then 6 or 7 digits). Other pairs are too often two unrelated numbers.
        return (shape == (3, 4) && matches!(w[1].sep, b'-' | b'.'))
            || (shape == (5, 5) && (b'6'..=b'9').contains(&first[0]))
            || (first[0] == b'3' && w[0].len() == 3 && (6..=7).contains(&w[1].len()));
    }
    // Cutting a run of space-separated groups is ambiguous: "1234 5678 1234 5678" is one number (a card that failed
    // Luhn, an order), not a phone plus a rest. Cut it only before a small count ("… 4567 2 times"), or after a
    // window whose own separators are not spaces ("555-123-4567 2026-01-05").
    !next.is_some_and(|n| n.len() > 2 && rest.iter().any(|g| g.sep == b' '))
}

/// A bare run of digits: trunk `0` and 10–11 digits (most of Europe), NANP, `1` + NANP, or a Chinese mobile (`1[3-9]`
/// and 11 digits).
fn bare(d: &[u8]) -> bool {
    let nanp =
        |d: &[u8]| d.len() == 10 && (b'2'..=b'9').contains(&d[0]) && (b'2'..=b'9').contains(&d[3]);
    match d.len() {
        10 => (d[0] == b'0' && d[1] != b'0') || nanp(d),
        11 => {
            (d[0] == b'0' && d[1] != b'0')
                || (d[0] == b'1' && (nanp(&d[1..]) || (b'3'..=b'9').contains(&d[1])))
        }
        _ => false,
    }
}

fn is_year(d: &[u8]) -> bool {
    d.len() == 4 && (d.starts_with(b"19") || d.starts_with(b"20"))
}

/// Three groups with one separator that read as a date with a four-digit year: `2026-01-05`, `05/01/2026`,
/// `5.1.2026`, `05 01 2026`.
fn is_date(b: &[u8], t: &[Group]) -> bool {
    let [a, m, c] = t else {
        return false;
    };
    let short = |g: &Group| g.len() <= 2;
    m.sep == c.sep
        && t.iter().all(|g| !g.paren)
        && ((is_year(digits(b, a)) && short(m) && short(c))
            || (short(a) && short(m) && is_year(digits(b, c))))
}

#[cfg(test)]
mod tests {
    use super::super::PiiKind;
    use super::super::tests::{red, spans};

    fn phones(text: &str) -> Vec<&str> {
        spans(text, PiiKind::Phone)
    }

    #[test]
    fn international_formats() {
        for number in [
            "+44 20 7946 0958",
            "+44 (0)20 7946 0958",
            "+44 7700 900123",
            "+1-202-555-0143",
            "+1 (202) 555-0143",
            "+1.202.555.0143",
            "+12025550143",
            "0044 20 7946 0958",
            "0044 (0)20 7946 0958",
            "00442079460958",
            "+49 30 1234567",
            "+49 (30) 1234567",
            "+49 151 23456789",
            "+33 6 12 34 56 78",
            "+33 (0)6 12 34 56 78",
            "+33612345678",
            "+34 612 34 56 78",
            "+39 06 1234 5678",
            "+31 6 12345678",
            "+91 98765 43210",
            "+86 138 0013 8000",
            "+81 90-1234-5678",
            "+55 11 91234-5678",
            "+7 495 123-45-67",
            "+971 50 123 4567",
            "+61 412 345 678",
            "+52 55 1234 5678",
            "+683 4002",
            "(+34) 612 34 56 78",
            "(+351) 912 345 678",
            "(+39)347 1234567",
        ] {
            assert_eq!(phones(&format!("call {number} now")), [number], "{number}");
            assert_eq!(red(number), "<PHONE>", "{number}");
        }
    }

    #[test]
    fn national_formats() {
        for number in [
            "(555) 123-4567",
            "(555)123-4567",
            "555-123-4567",
            "555.123.4567",
            "555 123 4567",
            "1-800-555-0199",
            "1 (800) 555-0199",
            "555-0143",
            "2025550143",
            "12025550143",
            "06 12 34 56 78",
            "06.12.34.56.78",
            "06-12-34-56-78",
            "0612345678",
            "01 23 45 67 89",
            "020 7946 0958",
            "07700 900123",
            "02079460958",
            "030 1234567",
            "030/1234567",
            "(030) 1234567",
            "0151 23456789",
            "06-12345678",
            "612 34 56 78",
            "612 345 678",
            "06 1234 5678",
            "98765 43210",
            "138 0013 8000",
            "13800138000",
            "090-1234-5678",
            "0412 345 678",
            "044 668 18 00",
            "8 (495) 123-45-67",
            "(11) 91234-5678",
            "55 1234 5678",
            "050 123 4567",
            "347 1234567",
            "339-876543",
        ] {
            assert_eq!(phones(&format!("tel: {number}.")), [number], "{number}");
        }
    }

    #[test]
    fn not_phones() {
        for text in [
            "order A33032",
            "ticket #123456",
            "ticket #1234567",
            "123456",
            "order 1234567",
            "order 123456789",
            "order 1234567890",
            "ref 00123456789",
            "2026-01-05",
            "2026-01-05 10:30",
            "05/01/2026",
            "05-01-2026",
            "05.01.2026 10:30",
            "5.1.2026",
            "05 01 2026",
            "2026/01/05",
            "10:30",
            "10:30:45",
            "€1,299.00",
            "€1 299 000",
            "1 299 000 €",
            "$12,345,678",
            "1 234 567",
            "12 345 678",
            "1.234.567",
            "12.345.678,90",
            "1.2.3",
            "10.0.19041.1234",
            "192.168.100.300",
            "1Z999AA10123456784",
            "SKU-1234567",
            "A-555-0143",
            "v.555.123.4567",
            "42",
            "1234 5678",
            "2026 1234 5678",
            "1234 5678 1234 5678",
            "1234567812345678",
            "55%1234567",
            "50% 1234567",
            "3 x 4 x 5 x 6 x 7 x 8 x 9",
            "1 2 3 4 5 6 7 8",
            "page 12, 345, 678",
            "expires 12/26 123",
            "1/2 3/4 567",
            "1.299,00 / 1 299 000",
            "00 1 234 5678",
            "0000 0000 0000 0000",
        ] {
            assert_eq!(phones(text), Vec::<&str>::new(), "{text}");
        }
    }

    #[test]
    fn runs_split_into_numbers() {
        assert_eq!(phones("call 555 123 4567 2 times"), ["555 123 4567"]);
        assert_eq!(phones("06 12 34 56 78 2 fois"), ["06 12 34 56 78"]);
        assert_eq!(
            phones("0612345678 / 0698765432"),
            ["0612345678", "0698765432"]
        );
        assert_eq!(
            phones("0612345678/0698765432"),
            ["0612345678", "0698765432"]
        );
        assert_eq!(
            phones("0612345678 0698765432"),
            ["0612345678", "0698765432"]
        );
        assert_eq!(phones("order 12 0612345678"), ["0612345678"]);
        assert_eq!(phones("555-123-4567 2026-01-05"), ["555-123-4567"]);
        assert_eq!(phones("+44 20 7946 0958 1234"), ["+44 20 7946 0958"]);
        assert_eq!(phones("(0612345678)"), ["0612345678"]);
    }

    #[test]
    fn neighbours() {
        assert_eq!(red("+33612345678"), "<PHONE>");
        assert_eq!(red("x+33612345678"), "x+33612345678");
        assert_eq!(red("tel:+33612345678"), "tel:<PHONE>");
        assert_eq!(red("Phone:0612345678"), "Phone:<PHONE>");
        assert_eq!(red("(+1 202 555 0143)"), "(<PHONE>)");
        assert_eq!(red("(+34)"), "(+34)");
        assert_eq!(red("(+34) 612"), "(+34) 612");
        assert_eq!(red("0612345678abc"), "0612345678abc");
        assert_eq!(red("0612345678, 0698765432."), "<PHONE>, <PHONE>.");
        assert_eq!(red("0612345678-A"), "0612345678-A");
        assert_eq!(red("call 0612345678!"), "call <PHONE>!");
        assert_eq!(red("at 10:30 call 0612345678"), "at 10:30 call <PHONE>");
        assert_eq!(red("+1 (555) 010-9999x123"), "<PHONE>x123");
        assert_eq!(red("+1 (555) 010-9999 ext. 123"), "<PHONE> ext. 123");
        assert_eq!(red("0612345678xyz"), "0612345678xyz");
    }

    #[test]
    fn unicode_text() {
        assert_eq!(
            red("Llámame al 612 34 56 78, ¡gracias! 😊"),
            "Llámame al <PHONE>, ¡gracias! 😊"
        );
        assert_eq!(
            red("اتصل بي على 0501234567 شكرا"),
            "اتصل بي على <PHONE> شكرا"
        );
        assert_eq!(red("📞+49 30 1234567📞"), "📞<PHONE>📞");
        assert_eq!(
            red("Rufen Sie 030/1234567 an – danke"),
            "Rufen Sie <PHONE> an – danke"
        );
        assert_eq!(red("फ़ोन +91 98765 43210 पर करें"), "फ़ोन <PHONE> पर करें");
    }
}
