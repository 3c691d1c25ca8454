//! Payment card numbers: 13–19 digits that pass the Luhn check.
//!
//! Cards are written as one block (`4111111111111111`) or in groups separated by single spaces or dashes (`4111 1111
//! 1111 1111`, `3782-822463-10005`). The scanner collects a run of such groups and tries windows of consecutive
//! groups, longest first from the earliest start, so a quantity before the number or an expiry date after it
//! (`2 x 4111 1111 1111 1111 12/26`) does not hide the card.
//!
//! Luhn lets one random digit string in ten through, so a Luhn-valid 16-digit order number is redacted as a card.
//! Three rules cut that down without missing real cards: no card number starts with 0 (ISO/IEC 7812 gives major
//! industry identifier 0 to no card issuer); groups have 3 digits or more (all printed card layouts do), so a list
//! of small numbers is never read as a card; and four-digit groups cut out of a longer run of four-digit groups (a
//! 20-digit account number) are not a card.

use super::{Edge, Finding, PiiKind, clear_after, clear_before, next_claim};

/// A run longer than this is cut and scanned on in a new run; 19 digits fit in at most 6 groups of 3 or more.
const MAX_GROUPS: usize = 24;

/// `ID-4111…`, `ref.4111…` and `4111….5` are identifiers and decimals; `10:4111…` is not a card either.
const EDGE: Edge = Edge {
    glue: b".-",
    digit_glue: b":",
    stop: &[],
};

pub(super) fn find(text: &str, found: &mut Vec<Finding>) {
    let b = text.as_bytes();
    let claims = found.len();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() || (i > 0 && b[i - 1].is_ascii_digit()) {
            i += 1;
            continue;
        }
        let limit = next_claim(&found[..claims], i, b.len());
        // (start, end) of each digit group in the run.
        let mut groups = [(0, 0); MAX_GROUPS];
        let mut n = 0;
        let mut p = i;
        while n < MAX_GROUPS {
            let start = p;
            while p < b.len() && b[p].is_ascii_digit() {
                p += 1;
            }
            if p > limit {
                break;
            }
            groups[n] = (start, p);
            n += 1;
            if matches!(b.get(p), Some(b' ' | b'-')) && b.get(p + 1).is_some_and(u8::is_ascii_digit)
            {
                p += 1;
            } else {
                break;
            }
        }
        if n == 0 {
            i += 1;
            continue;
        }
        emit(text, &groups[..n], found);
        i = groups[n - 1].1;
    }
}

fn emit(text: &str, g: &[(usize, usize)], found: &mut Vec<Finding>) {
    let b = text.as_bytes();
    let mut k = 0;
    while k < g.len() {
        // Inside a run only a space can separate two numbers; a dash sits inside one.
        let start_ok = if k == 0 {
            clear_before(text, g[0].0, &EDGE)
        } else {
            b[g[k].0 - 1] == b' '
        };
        let mut hit = None;
        if start_ok {
            let mut last = k;
            let mut count = 0;
            for (j, &(s, e)) in g.iter().enumerate().skip(k) {
                // Printed layouts group by 3 or more; a shorter group ends the window (or is a lone prefix,
                // which cannot hold 13 digits anyway).
                if e - s < 3 {
                    break;
                }
                count += e - s;
                if count > 19 {
                    break;
                }
                last = j;
            }
            hit = (k..=last).rev().find(|&j| {
                let end_ok = if j + 1 == g.len() {
                    clear_after(text, g[j].1, &EDGE)
                } else {
                    b[g[j].1] == b' '
                };
                end_ok && !blends_in(g, k, j) && is_card(b, &g[k..=j])
            });
        }
        match hit {
            Some(j) => {
                found.push(Finding {
                    kind: PiiKind::Card,
                    start: g[k].0,
                    end: g[j].1,
                });
                k = j + 1;
            }
            None => k += 1,
        }
    }
}

/// Whether the window `g[k..=j]` is four-digit groups cut out of a longer run of four-digit groups: one in ten
/// windows of a 20-digit account number in blocks of four passes Luhn, but that number is not a card.
fn blends_in(g: &[(usize, usize)], k: usize, j: usize) -> bool {
    let four = |&(s, e): &(usize, usize)| e - s == 4;
    j > k
        && g[k..=j].iter().all(four)
        && ((k > 0 && four(&g[k - 1])) || g.get(j + 1).is_some_and(four))
}

fn is_card(b: &[u8], w: &[(usize, usize)]) -> bool {
    let count: usize = w.iter().map(|&(s, e)| e - s).sum();
    (13..=19).contains(&count)
        && b[w[0].0] != b'0'
        && luhn(w.iter().flat_map(|&(s, e)| b[s..e].iter().copied()))
}

/// The Luhn (mod 10) check over ASCII digits: from the right, every second digit is doubled, and a doubled digit
/// over 9 counts as the sum of its two digits.
fn luhn(digits: impl DoubleEndedIterator<Item = u8>) -> bool {
    let sum: u32 = digits
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let v = u32::from(d - b'0');
            match (i % 2 == 1, v > 4) {
                (false, _) => v,
                (true, false) => 2 * v,
                (true, true) => 2 * v - 9,
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::super::PiiKind;
    use super::super::tests::{red, spans};
    use super::luhn;

    fn cards(text: &str) -> Vec<&str> {
        spans(text, PiiKind::Card)
    }

    #[test]
    fn luhn_check() {
        let ok = |s: &str| luhn(s.bytes());
        assert!(ok("4111111111111111"));
        assert!(ok("79927398713"));
        assert!(ok("0"));
        assert!(!ok("4111111111111112"));
        assert!(!ok("79927398710"));
        assert!(!ok("1234567812345678"));
    }

    #[test]
    fn card_numbers() {
        for number in [
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "4111111111111111",
            "4111 1111-1111 1111",
            "4242424242424242",
            "5555 5555 5555 4444",
            "5105105105105100",
            "2223 0031 2200 3222",
            "3782 822463 10005",
            "378282246310005",
            "6011 1111 1111 1117",
            "3530 1113 3330 0000",
            "3622 720627 1667",
            "30569309025904",
            "6200 0000 0000 0005",
            "4222222222222",
            "6759 6498 2643 8453 128",
            "6222021000000000009",
        ] {
            assert_eq!(
                cards(&format!("card {number} thanks")),
                [number],
                "{number}"
            );
            assert_eq!(red(number), "<CARD>", "{number}");
        }
    }

    #[test]
    fn not_cards() {
        for text in [
            "order 1234567812345678",
            "order 1234 5678 1234 5678",
            "4111 1111 1111 1112",
            "0000 0000 0000 0000",
            "0111111111111111",
            "4111 1111 1111",
            "41111111111111111111",
            "4111.1111.1111.1111",
            "1Z999AA10123456784",
            "A4111111111111111",
            "4111111111111111x",
            "ID-4111111111111111",
            "41 11 11 11 11 11 11 11",
            "4111111111111111.50",
            "4111 1111 1111 1111 1111 1111",
            "1234 4111 1111 1111 1111",
        ] {
            assert_eq!(cards(text), Vec::<&str>::new(), "{text}");
        }
    }

    #[test]
    fn runs_with_other_numbers() {
        assert_eq!(red("2 x 4111 1111 1111 1111"), "2 x <CARD>");
        assert_eq!(red("qty 3 4111 1111 1111 1111"), "qty 3 <CARD>");
        assert_eq!(red("4111 1111 1111 1111 12/26 123"), "<CARD> 12/26 123");
        assert_eq!(red("4111111111111111 5555555555554444"), "<CARD> <CARD>");
        assert_eq!(red("4111111111111111,5555555555554444"), "<CARD>,<CARD>");
        assert_eq!(
            red("4111-1111-1111-1111/5555-5555-5555-4444"),
            "<CARD>/<CARD>"
        );
        assert_eq!(red("4111 1111 1111 1111 123"), "<CARD> 123");
    }

    #[test]
    fn unicode_text() {
        assert_eq!(
            red("Karte: 4111 1111 1111 1111 ✅ danke"),
            "Karte: <CARD> ✅ danke"
        );
        assert_eq!(red("بطاقتي 5555 5555 5555 4444 شكرا"), "بطاقتي <CARD> شكرا");
        assert_eq!(red("卡号4111111111111111谢谢"), "卡号<CARD>谢谢");
        assert_eq!(red("n°4111111111111111"), "n°<CARD>");
        assert_eq!(red("é4111111111111111"), "é4111111111111111");
    }
}
