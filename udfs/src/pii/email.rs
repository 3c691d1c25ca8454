//! E-mail addresses: `local@domain.tld`, found by expanding outwards from each `@`.
//!
//! Chat text is not RFC 5322: nobody quotes a local part or writes an IP-literal domain, but people do glue
//! addresses to punctuation (`(jo@x.com)`, `mailto:jo@x.com`, `jo@x.com.`) and to words in scripts without spaces.
//! So the scanner accepts the common dot-atom shape and leaves the rest to the surrounding text.

use super::{Finding, PiiKind, is_word_char};

pub(super) fn find(text: &str, found: &mut Vec<Finding>) {
    // A local part cannot reach back into the previous address ("a@b.co.uk@c.com" is two tries, not nested ones).
    let mut floor = 0;
    for (at, _) in text.bytes().enumerate().filter(|&(_, b)| b == b'@') {
        if at < floor {
            continue;
        }
        let (Some(start), Some(end)) = (local_start(text, floor, at), domain_end(text, at + 1))
        else {
            continue;
        };
        found.push(Finding {
            kind: PiiKind::Email,
            start,
            end,
        });
        floor = end;
    }
}

fn is_local_char(c: char) -> bool {
    is_word_char(c) || matches!(c, '.' | '%' | '+' | '-' | '\'')
}

fn is_domain_char(c: char) -> bool {
    (is_word_char(c) && c != '_') || matches!(c, '.' | '-')
}

/// Where the local part ending at `at` begins, if it has one.
fn local_start(text: &str, floor: usize, at: usize) -> Option<usize> {
    let mut start = at;
    for (i, c) in text[floor..at].char_indices().rev() {
        if !is_local_char(c) {
            break;
        }
        start = floor + i;
    }
    // Punctuation before the first letter belongs to the sentence: "'jo@x.com'", "…jo@x.com", "+jo@x.com".
    let local = text[start..at].trim_start_matches(|c: char| !is_word_char(c));
    (!local.is_empty()).then(|| at - local.len())
}

/// Where the domain starting at `from` ends, if it is a plausible domain name.
fn domain_end(text: &str, from: usize) -> Option<usize> {
    let rest = &text[from..];
    let run = rest
        .char_indices()
        .find(|&(_, c)| !is_domain_char(c))
        .map_or(rest.len(), |(i, _)| i);
    // A full stop or a dash after the address ends the sentence, not the domain.
    let mut domain = rest[..run].trim_end_matches(['.', '-']);
    if !valid_domain(domain) {
        return None;
    }
    // "Write to jo@x.com.Thanks": a missing space after the full stop. Domains are written in lower case, so a
    // capitalised last label after an otherwise lower-case domain is the next sentence.
    if let Some((head, last)) = domain.rsplit_once('.')
        && head.contains('.')
        && last.starts_with(|c: char| c.is_uppercase())
        && !head.chars().any(char::is_uppercase)
        && valid_domain(head)
    {
        domain = head;
    }
    Some(from + domain.len())
}

fn valid_domain(domain: &str) -> bool {
    let Some((_, tld)) = domain.rsplit_once('.') else {
        return false;
    };
    let labels_ok = domain.split('.').all(|label| {
        !label.is_empty() && label.len() <= 63 && !label.starts_with('-') && !label.ends_with('-')
    });
    // No TLD has digits: "3@2.50" is a price, "build@1.2" a version.
    let tld_ok = (tld.chars().count() >= 2 && tld.chars().all(char::is_alphabetic))
        || tld.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("xn--"));
    labels_ok && tld_ok
}

#[cfg(test)]
mod tests {
    use super::super::tests::red;
    use super::super::{PiiKind, PiiSet, find};

    #[test]
    fn common_addresses() {
        for addr in [
            "jane.doe@example.com",
            "j.o'brien@mail.example.co.uk",
            "first_last+support@sub-domain.example.org",
            "x@y.io",
            "UPPER.Case@Example.COM",
            "user%tag@example.net",
            "12345@numbers.example.de",
            "a-b@xn--bcher-kva.example",
            "name@xn--mgbh0fb.xn--kgbechtv",
        ] {
            assert_eq!(
                red(&format!("mail {addr} please")),
                "mail <EMAIL> please",
                "{addr}"
            );
        }
    }

    #[test]
    fn internationalised_addresses() {
        assert_eq!(red("correo: josé.núñez@correo.es"), "correo: <EMAIL>");
        assert_eq!(red("почта иван@пример.рф"), "почта <EMAIL>");
        assert_eq!(
            red("Ελληνικά: δοκιμή@παράδειγμα.δοκιμή"),
            "Ελληνικά: <EMAIL>"
        );
    }

    #[test]
    fn punctuation_around() {
        assert_eq!(red("(jo@x.com)"), "(<EMAIL>)");
        assert_eq!(red("<jo@x.com>"), "<<EMAIL>>");
        assert_eq!(red("mailto:jo@x.com"), "mailto:<EMAIL>");
        assert_eq!(red("is it jo@x.com?"), "is it <EMAIL>?");
        assert_eq!(red("write jo@x.com."), "write <EMAIL>.");
        assert_eq!(red("'jo@x.com'"), "'<EMAIL>'");
        assert_eq!(red("\"jo@x.com\""), "\"<EMAIL>\"");
        assert_eq!(red("...jo@x.com..."), "...<EMAIL>...");
        assert_eq!(red("Email:jo@x.com,thanks"), "Email:<EMAIL>,thanks");
    }

    #[test]
    fn missing_space_after_full_stop() {
        assert_eq!(
            red("write to jo@example.com.Thanks"),
            "write to <EMAIL>.Thanks"
        );
        // A capitalised domain is kept whole.
        assert_eq!(red("jo@Example.Com"), "<EMAIL>");
        assert_eq!(red("jo@mail.example.org"), "<EMAIL>");
    }

    #[test]
    fn start_end_and_adjacent() {
        assert_eq!(red("jo@x.com"), "<EMAIL>");
        assert_eq!(red("jo@x.com and al@y.org"), "<EMAIL> and <EMAIL>");
        assert_eq!(red("jo@x.com;al@y.org"), "<EMAIL>;<EMAIL>");
        assert_eq!(red("jo@x.com al@y.org"), "<EMAIL> <EMAIL>");
    }

    #[test]
    fn unicode_neighbours() {
        assert_eq!(red("👉jo@x.com👈"), "👉<EMAIL>👈");
        assert_eq!(
            red("راسلني على ahmed.ali@example.sa من فضلك"),
            "راسلني على <EMAIL> من فضلك"
        );
        assert_eq!(red("メールはtaro@example.jpです"), "メールは<EMAIL>です");
        assert_eq!(red("อีเมลsomchai@example.co.thครับ"), "อีเมล<EMAIL>ครับ");
    }

    #[test]
    fn not_addresses() {
        for text in [
            "@jane thanks!",
            "meet @10:30",
            "jo@localhost",
            "jo@",
            "@x.com",
            "price 3@2.50",
            "jo@x.c",
            "jo@x..com",
            "jo@-x.com",
            "a@b.c1",
            "email me at jo at x dot com",
            "@@@",
        ] {
            assert_eq!(red(text), text);
        }
    }

    #[test]
    fn spans() {
        let f = find("hi x@y.org!", PiiSet::only(PiiKind::Email));
        assert_eq!((f[0].start, f[0].end), (3, 10));
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn double_at() {
        assert_eq!(red("a@b@c.com"), "a@<EMAIL>");
    }
}
