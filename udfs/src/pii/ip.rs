//! IP addresses: dotted-quad IPv4 and textual IPv6.
//!
//! IPv4 needs exactly four octets, each 0–255 without a leading zero, so versions (`1.2.3`), dates (`05.01.2026`)
//! and prices never match; a four-part version (`1.2.3.4`) is indistinguishable from an address and is redacted.
//! Ports (`:8080`), prefixes (`/24`) and ranges (`-10.0.0.9`) after an address stay in the text.
//!
//! IPv6 is parsed by `std::net::Ipv6Addr`, after cutting a candidate out of the text. Full eight-group forms are
//! unambiguous; a `::` form needs two groups and a group of three or more hex digits (`fe80::1`, `2001:db8::`), so
//! clock times, `10::30`, `a::b` and `std::io` stay text. `::1` and `::` are not personal data and stay too.

use std::net::Ipv6Addr;

use super::{Edge, Finding, PiiKind, clear_after, clear_before, is_claimed};

/// `1.2.3.4.5` is an OID or a version, `v.1.2.3.4` a label; a dash, colon or slash after an address is a range, a
/// port or a prefix length.
const V4_EDGE: Edge = Edge {
    glue: b".",
    digit_glue: b"",
    stop: &[],
};

/// Only a letter, digit or `_` glues to an IPv6 address (the run already holds every hex digit, colon and dot);
/// brackets, ports and prefix lengths do not.
const V6_EDGE: Edge = Edge {
    glue: b"",
    digit_glue: b"",
    stop: &[],
};

pub(super) fn find(text: &str, found: &mut Vec<Finding>) {
    // IPv6 first, and a claim for IPv4: an IPv4-mapped address ("::ffff:192.0.2.1") contains an IPv4 one.
    if text.bytes().filter(|&b| b == b':').nth(1).is_some() {
        find_v6(text, found);
        found.sort_unstable_by_key(|f| f.start);
    }
    find_v4(text, found);
}

fn find_v4(text: &str, found: &mut Vec<Finding>) {
    let b = text.as_bytes();
    let claims = found.len();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() || (i > 0 && b[i - 1].is_ascii_digit()) {
            i += 1;
            continue;
        }
        if let Some(end) = dotted_quad(b, i)
            && clear_before(text, i, &V4_EDGE)
            && clear_after(text, end, &V4_EDGE)
            && !is_claimed(&found[..claims], i, end)
        {
            found.push(Finding {
                kind: PiiKind::Ip,
                start: i,
                end,
            });
            i = end;
            continue;
        }
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
}

/// The end of a dotted quad starting at `start`.
fn dotted_quad(b: &[u8], start: usize) -> Option<usize> {
    let mut p = start;
    for octet in 0..4 {
        if octet > 0 {
            if b.get(p) != Some(&b'.') {
                return None;
            }
            p += 1;
        }
        let first = p;
        let mut value = 0u32;
        while p < b.len() && b[p].is_ascii_digit() {
            if p - first == 3 {
                return None;
            }
            value = value * 10 + u32::from(b[p] - b'0');
            p += 1;
        }
        let len = p - first;
        if len == 0 || value > 255 || (len > 1 && b[first] == b'0') {
            return None;
        }
    }
    Some(p)
}

fn is_v6_byte(b: u8) -> bool {
    b.is_ascii_hexdigit() || b == b':' || b == b'.'
}

fn find_v6(text: &str, found: &mut Vec<Finding>) {
    let b = text.as_bytes();
    let claims = found.len();
    let mut i = 0;
    while i < b.len() {
        if !is_v6_byte(b[i]) {
            i += 1;
            continue;
        }
        let run_start = i;
        while i < b.len() && is_v6_byte(b[i]) {
            i += 1;
        }
        if let Some((start, end)) = v6_in_run(text, run_start, i)
            && !is_claimed(&found[..claims], start, end)
        {
            found.push(Finding {
                kind: PiiKind::Ip,
                start,
                end,
            });
        }
    }
}

/// The address inside a maximal run of hex digits, colons and dots, once the sentence's punctuation is cut off.
fn v6_in_run(text: &str, mut start: usize, mut end: usize) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    // "IP:fe80::1", "is 2001:db8::1." and "was 2001:db8::1: then" - a lone colon or a dot at either end is prose.
    if b[start] == b':' && b.get(start + 1) != Some(&b':') {
        start += 1;
    }
    while end > start && b[end - 1] == b'.' {
        end -= 1;
    }
    if end - start >= 2 && b[end - 1] == b':' && b[end - 2] != b':' {
        end -= 1;
    }
    let candidate = &text[start..end];
    if candidate.bytes().filter(|&c| c == b':').count() < 2
        || candidate.parse::<Ipv6Addr>().is_err()
    {
        return None;
    }
    if candidate.contains("::") {
        let mut groups = candidate.split(':').filter(|g| !g.is_empty());
        let count = groups.clone().count();
        if count < 2 || !groups.any(|g| g.len() >= 3) {
            return None;
        }
    }
    (clear_before(text, start, &V6_EDGE) && clear_after(text, end, &V6_EDGE))
        .then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::super::PiiKind;
    use super::super::tests::{red, spans};

    fn ips(text: &str) -> Vec<&str> {
        spans(text, PiiKind::Ip)
    }

    #[test]
    fn ipv4() {
        for addr in [
            "192.168.1.20",
            "10.0.0.1",
            "8.8.8.8",
            "255.255.255.255",
            "0.0.0.0",
            "172.16.254.3",
        ] {
            assert_eq!(ips(&format!("from {addr} today")), [addr], "{addr}");
            assert_eq!(red(addr), "<IP>", "{addr}");
        }
    }

    #[test]
    fn ipv4_neighbours() {
        assert_eq!(red("10.0.0.1:8080"), "<IP>:8080");
        assert_eq!(red("10.0.0.0/24"), "<IP>/24");
        assert_eq!(red("10.0.0.1-10.0.0.9"), "<IP>-<IP>");
        assert_eq!(red("[10.0.0.1]"), "[<IP>]");
        assert_eq!(red("my IP is 10.0.0.1."), "my IP is <IP>.");
        assert_eq!(red("IP:10.0.0.1, ok"), "IP:<IP>, ok");
        assert_eq!(red("http://10.0.0.1/admin"), "http://<IP>/admin");
    }

    #[test]
    fn not_ipv4() {
        for text in [
            "version 1.2.3",
            "v1.2.3.4",
            "1.2.3.4.5",
            "256.1.1.1",
            "1.2.3.256",
            "192.168.01.1",
            "05.01.2026",
            "1.1.2026",
            "€1,299.00",
            "1.299.000,00",
            "10.0.0",
            "10..0.0.1",
            "10.0.0.1a",
            "host10.0.0.1",
        ] {
            assert_eq!(ips(text), Vec::<&str>::new(), "{text}");
        }
    }

    #[test]
    fn ipv6() {
        for addr in [
            "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
            "2001:db8:85a3::8a2e:370:7334",
            "2001:db8::1",
            "fe80::1ff:fe23:4567:890a",
            "fe80::1",
            "2001:db8::",
            "::ffff:192.0.2.1",
            "FE80::ABCD",
        ] {
            assert_eq!(ips(&format!("addr {addr} here")), [addr], "{addr}");
            assert_eq!(red(addr), "<IP>", "{addr}");
        }
    }

    #[test]
    fn ipv6_neighbours() {
        assert_eq!(red("[2001:db8::1]:443"), "[<IP>]:443");
        assert_eq!(red("IP:2001:db8::1"), "IP:<IP>");
        assert_eq!(red("it was 2001:db8::1."), "it was <IP>.");
        assert_eq!(red("it was 2001:db8::1: weird"), "it was <IP>: weird");
        assert_eq!(red("2001:db8::1/64"), "<IP>/64");
    }

    #[test]
    fn not_ipv6() {
        for text in [
            "10:30",
            "at 10:30:45",
            "10::30",
            "a::b",
            "std::io::Error",
            "::1",
            "::",
            "00:1A:2B:3C:4D:5E",
            "deadbeef:cafe",
            "Codeface::beef",
            "1:2:3:4:5:6:7",
            "2001:db8::1::2",
            "2001:db8:::1",
        ] {
            assert_eq!(ips(text), Vec::<&str>::new(), "{text}");
        }
    }

    #[test]
    fn unicode_text() {
        assert_eq!(
            red("Mi IP es 192.168.0.12 ¿por qué? 🤔"),
            "Mi IP es <IP> ¿por qué? 🤔"
        );
        assert_eq!(
            red("عنوان IP الخاص بي 10.0.0.7 شكرا"),
            "عنوان IP الخاص بي <IP> شكرا"
        );
        assert_eq!(red("地址2001:db8::1谢谢"), "地址<IP>谢谢");
        assert_eq!(red("IP→10.1.2.3←"), "IP→<IP>←");
    }
}
