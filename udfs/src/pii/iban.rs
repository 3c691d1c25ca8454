//! IBANs (ISO 13616): a country code, two check digits and the national account number, checked with mod 97.
//!
//! The country fixes the length, so the scanner knows where an IBAN ends even when it is written in the print format
//! (`DE89 3704 0044 0532 0130 00`) and followed by more text. That, plus the checksum, is what keeps random codes
//! out: a string that merely starts with two letters and two digits would pass mod 97 one time in 97. A mistyped
//! IBAN (its checksum fails) is still found when it is written in the print format throughout, groups of four
//! and one space, at its country's exact length: that shape is an IBAN whatever its digits, and the typo does not
//! make the account less the customer's.
//!
//! Lengths are those of the SWIFT IBAN registry as of 2025 (89 countries). Codes outside it (French overseas departments,
//! Nordea's "experimental" IBANs for African countries) are not recognised; they use their parent's code in practice.

use super::{Edge, Finding, PiiKind, clear_after, clear_before, is_claimed};

/// Only a letter, digit or `_` glues to an IBAN.
const EDGE: Edge = Edge {
    glue: b"",
    digit_glue: b"",
    stop: &[],
};

pub(super) fn find(text: &str, found: &mut Vec<Finding>) {
    let b = text.as_bytes();
    let claims = found.len();
    let mut i = 0;
    while i + 4 <= b.len() {
        if b[i].is_ascii_alphabetic()
            && b[i + 1].is_ascii_alphabetic()
            && b[i + 2].is_ascii_digit()
            && b[i + 3].is_ascii_digit()
            && clear_before(text, i, &EDGE)
            && let Some(end) = iban_at(text, i)
            && !is_claimed(&found[..claims], i, end)
        {
            found.push(Finding {
                kind: PiiKind::Iban,
                start: i,
                end,
            });
            i = end;
            continue;
        }
        i += 1;
    }
}

/// The end of the IBAN starting at `start` (two letters and two digits), if its country, length and checksum agree.
fn iban_at(text: &str, start: usize) -> Option<usize> {
    let b = text.as_bytes();
    let len = registered_length([
        b[start].to_ascii_uppercase(),
        b[start + 1].to_ascii_uppercase(),
    ])?;
    // Issued check digits are 98 - (n mod 97), so 02..=98; "00", "01" and "99" can satisfy mod 97 but never occur.
    if matches!(&b[start + 2..start + 4], b"00" | b"01" | b"99") {
        return None;
    }
    let mut iban = [0u8; 34];
    let mut n = 0;
    let mut p = start;
    // Whether every separator is one space after a group of four: the print format.
    let mut print_format = true;
    let mut separators = 0;
    while n < len {
        let c = *b.get(p)?;
        if c.is_ascii_alphanumeric() {
            iban[n] = c.to_ascii_uppercase();
            n += 1;
            p += 1;
        } else if n >= 4
            && matches!(c, b' ' | b'-')
            && b.get(p + 1).is_some_and(u8::is_ascii_alphanumeric)
        {
            // The print format groups by four, but people also group by bank code and account, or use dashes:
            // allow one separator between any two characters after the check digits.
            print_format &= c == b' ' && n % 4 == 0;
            separators += 1;
            p += 1;
        } else {
            return None;
        }
    }
    if !clear_after(text, p, &EDGE) {
        return None;
    }
    // A checksum that fails is a mistyped IBAN when it is written in the print format throughout: a
    // customer's account number with a typo still points at their account, so it is hidden too. Other
    // shapes must pass the checksum, which keeps order numbers and product codes out.
    let grouped = print_format && separators == (len - 1) / 4;
    (mod97(&iban[..len]) || grouped).then_some(p)
}

/// ISO 7064 MOD 97-10 over an upper-case IBAN: move the first four characters to the end, read letters as 10..=35,
/// and the number must leave 1 modulo 97. Folding digit by digit keeps it in a `u32` at any length.
fn mod97(iban: &[u8]) -> bool {
    let (head, tail) = iban.split_at(4);
    let rest = tail.iter().chain(head).fold(0u32, |r, &c| {
        if c.is_ascii_digit() {
            (r * 10 + u32::from(c - b'0')) % 97
        } else {
            (r * 100 + u32::from(c - b'A') + 10) % 97
        }
    });
    rest == 1
}

/// The IBAN length of a registered country.
fn registered_length(country: [u8; 2]) -> Option<usize> {
    let len = match &country {
        b"NO" => 15,
        b"BE" => 16,
        b"DK" | b"FI" | b"FK" | b"FO" | b"GL" | b"NL" | b"SD" => 18,
        b"MK" | b"SI" => 19,
        b"AT" | b"BA" | b"EE" | b"KZ" | b"LT" | b"LU" | b"MN" | b"XK" => 20,
        b"CH" | b"HR" | b"LI" | b"LV" => 21,
        b"BG" | b"BH" | b"CR" | b"DE" | b"GB" | b"GE" | b"IE" | b"ME" | b"RS" | b"VA" => 22,
        b"AE" | b"GI" | b"IL" | b"IQ" | b"OM" | b"SO" | b"TL" => 23,
        b"AD" | b"CZ" | b"ES" | b"MD" | b"PK" | b"RO" | b"SA" | b"SE" | b"SK" | b"TN" | b"VG" => 24,
        b"LY" | b"PT" | b"ST" => 25,
        b"IS" | b"TR" => 26,
        b"BI" | b"DJ" | b"FR" | b"GR" | b"IT" | b"MC" | b"MR" | b"SM" => 27,
        b"AL" | b"AZ" | b"BY" | b"CY" | b"DO" | b"GT" | b"HN" | b"HU" | b"LB" | b"NI" | b"PL"
        | b"SV" => 28,
        b"BR" | b"EG" | b"PS" | b"QA" | b"UA" => 29,
        b"JO" | b"KW" | b"MU" | b"YE" => 30,
        b"MT" | b"SC" => 31,
        b"LC" => 32,
        b"RU" => 33,
        _ => return None,
    };
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::super::PiiKind;
    use super::super::tests::{red, spans};
    use super::{mod97, registered_length};

    fn ibans(text: &str) -> Vec<&str> {
        spans(text, PiiKind::Iban)
    }

    #[test]
    fn checksum() {
        assert!(mod97(b"DE89370400440532013000"));
        assert!(!mod97(b"DE89370400440532013001"));
        assert!(mod97(b"GB82WEST12345698765432"));
        assert!(!mod97(b"GB82WEST12345698765433"));
    }

    #[test]
    fn registry_examples() {
        for iban in [
            "DE89 3704 0044 0532 0130 00",
            "GB82 WEST 1234 5698 7654 32",
            "GB29 NWBK 6016 1331 9268 19",
            "FR14 2004 1010 0505 0001 3M02 606",
            "FR76 3000 6000 0112 3456 7890 189",
            "NL91 ABNA 0417 1643 00",
            "BE68 5390 0754 7034",
            "ES91 2100 0418 4502 0005 1332",
            "IT60 X054 2811 1010 0000 0123 456",
            "CH93 0076 2011 6238 5295 7",
            "NO93 8601 1117 947",
            "AT61 1904 3002 3457 3201",
            "PL61 1090 1014 0000 0712 1981 2874",
            "SA03 8000 0000 6080 1016 7519",
            "MT84 MALT 0110 0001 2345 MTLC AST0 01S",
            "BR18 0036 0305 0000 1000 9795 493C 1",
        ] {
            assert_eq!(ibans(&format!("IBAN {iban} thanks")), [iban], "{iban}");
            let compact = iban.replace(' ', "");
            assert_eq!(red(&compact), "<IBAN>", "{compact}");
            assert_eq!(red(&compact.to_lowercase()), "<IBAN>", "{compact}");
            assert_eq!(red(&iban.replace(' ', "-")), "<IBAN>", "{iban}");
        }
    }

    #[test]
    fn every_registered_country() {
        // Build a valid IBAN for each length in the table, so a typo in the table shows up as a miss.
        for a in b'A'..=b'Z' {
            for c in b'A'..=b'Z' {
                let Some(len) = registered_length([a, c]) else {
                    continue;
                };
                let bban: String = (0..len - 4)
                    .map(|i| char::from(b'0' + (i % 7 + 1) as u8))
                    .collect();
                let country = String::from_utf8(vec![a, c]).expect("ASCII");
                let check = (1..=98)
                    .map(|d| format!("{country}{d:02}{bban}"))
                    .find(|iban| mod97(iban.as_bytes()))
                    .expect("some check digits fit");
                assert_eq!(
                    red(&format!("pay to {check}.")),
                    "pay to <IBAN>.",
                    "{check}"
                );
                // One character short or long is another country's length, not this one.
                assert_eq!(
                    ibans(&check[..check.len() - 1]),
                    Vec::<&str>::new(),
                    "{check}"
                );
                assert_eq!(ibans(&format!("{check}7")), Vec::<&str>::new(), "{check}");
            }
        }
    }

    #[test]
    fn other_groupings() {
        assert_eq!(red("DE89 37040044 0532013000"), "<IBAN>");
        assert_eq!(red("de89 3704 0044 0532 0130 00"), "<IBAN>");
        assert_eq!(
            red("IBAN:DE89370400440532013000,BIC:COBADEFFXXX"),
            "IBAN:<IBAN>,BIC:COBADEFFXXX"
        );
    }

    #[test]
    fn mistyped_ibans_in_the_print_format() {
        assert_eq!(red("DE89 3704 0044 0532 0130 01"), "<IBAN>");
        assert_eq!(
            red("falsch: GB84 HBUK 4012 7671 8033 41."),
            "falsch: <IBAN>."
        );
        assert_eq!(red("FR76 1027 8060 7685 9952 8907 827 ;"), "<IBAN> ;");
        // Any other shape must pass the checksum.
        for text in [
            "DE89370400440532013001",
            "DE89 37040044 0532013001",
            "DE89-3704-0044-0532-0130-01",
            "DE89 3704  0044 0532 0130 01",
        ] {
            assert_eq!(ibans(text), Vec::<&str>::new(), "{text}");
        }
    }

    #[test]
    fn not_ibans() {
        for text in [
            "DE89 3704 0044 0532 0130 0",
            "DE89 3704 0044 0532 0130 000",
            "XX89 3704 0044 0532 0130 00",
            "DE00 3704 0044 0532 0130 00",
            "xDE89370400440532013000",
            "DE89370400440532013000x",
            "DE 89 3704 0044 0532 0130 00",
            "AB12 order",
            "1Z999AA10123456784",
        ] {
            assert_eq!(ibans(text), Vec::<&str>::new(), "{text}");
        }
    }

    #[test]
    fn start_end_adjacent_unicode() {
        assert_eq!(red("NL91ABNA0417164300"), "<IBAN>");
        assert_eq!(
            red("DE89 3704 0044 0532 0130 00 4111 1111 1111 1111"),
            "<IBAN> <CARD>"
        );
        assert_eq!(red("NL91ABNA0417164300 BE68539007547034"), "<IBAN> <IBAN>");
        assert_eq!(
            red("Überweisung an DE89 3704 0044 0532 0130 00 🙏 danke"),
            "Überweisung an <IBAN> 🙏 danke"
        );
        assert_eq!(
            red("رقم الآيبان SA03 8000 0000 6080 1016 7519 شكرا"),
            "رقم الآيبان <IBAN> شكرا"
        );
        assert_eq!(red("账户GB82WEST12345698765432谢谢"), "账户<IBAN>谢谢");
        assert_eq!(red("IBAN FR7630006000011234567890189."), "IBAN <IBAN>.");
    }
}
