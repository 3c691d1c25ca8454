//! Timestamps: naive local times in a zone, RFC 3339 strings and epoch numbers, all to UTC microseconds.

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

/// Interprets a wall-clock time in `tz`. Times in a DST gap (they cannot exist, but exports written by
/// hand or by buggy apps contain them) move forward by the gap; ambiguous times take the earlier instant,
/// which keeps a chat's message order when clocks go back.
pub fn local_to_micros(naive: NaiveDateTime, tz: Tz) -> i64 {
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => t.timestamp_micros(),
        LocalResult::Ambiguous(early, _) => early.timestamp_micros(),
        LocalResult::None => {
            // Walk forward in 15-minute steps until the wall clock exists again (gaps are at most 2 hours).
            for step in 1..=12 {
                let shifted = naive + chrono::Duration::minutes(15 * step);
                if let Some(t) = tz.from_local_datetime(&shifted).earliest() {
                    return t.timestamp_micros();
                }
            }
            naive.and_utc().timestamp_micros()
        }
    }
}

/// Epoch numbers: seconds, milliseconds or microseconds, told apart by magnitude (valid from 1973 to 5138).
pub fn epoch_to_micros(v: f64) -> Option<i64> {
    if !v.is_finite() {
        return None;
    }
    let a = v.abs();
    let micros = if a < 1e11 {
        v * 1e6
    } else if a < 1e14 {
        v * 1e3
    } else if a < 1e17 {
        v
    } else {
        return None;
    };
    Some(micros.round() as i64)
}

const NAIVE_FORMATS: &[&str] = &[
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y/%m/%d %H:%M:%S%.f",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
];

/// Parses a timestamp string of a message log: RFC 3339 / ISO 8601 with or without offset, epoch numbers,
/// or `custom` (a chrono format) when given. Times without an offset are read in `tz`.
pub fn parse_timestamp(s: &str, tz: Tz, custom: Option<&str>) -> Result<i64, String> {
    let s = s.trim();
    if let Some(fmt) = custom {
        if let Ok(t) = DateTime::parse_from_str(s, fmt) {
            return Ok(t.timestamp_micros());
        }
        return NaiveDateTime::parse_from_str(s, fmt)
            .map(|n| local_to_micros(n, tz))
            .map_err(|e| format!("timestamp '{s}' does not match timestamp_format '{fmt}': {e}"));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_micros());
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
    ] {
        if let Ok(t) = DateTime::parse_from_str(s, fmt) {
            return Ok(t.timestamp_micros());
        }
    }
    if let Some(rest) = s.strip_suffix(" UTC").or_else(|| s.strip_suffix('Z'))
        && let Some(n) = parse_naive(rest)
    {
        return Ok(n.and_utc().timestamp_micros());
    }
    if let Some(n) = parse_naive(s) {
        return Ok(local_to_micros(n, tz));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(local_to_micros(d.and_time(chrono::NaiveTime::MIN), tz));
    }
    if let Ok(v) = s.parse::<f64>()
        && let Some(m) = epoch_to_micros(v)
    {
        return Ok(m);
    }
    Err(format!(
        "cannot read timestamp '{}' (expected RFC 3339, 'YYYY-MM-DD HH:MM:SS', or epoch seconds/milliseconds; set 'timestamp_format' for others)",
        truncate(s, 60)
    ))
}

fn parse_naive(s: &str) -> Option<NaiveDateTime> {
    NAIVE_FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
}

/// Shortens user data quoted in an error message.
pub fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max_chars).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").expect("test literal")
    }

    #[test]
    fn dst_gap_and_overlap_in_berlin() {
        let tz = chrono_tz::Europe::Berlin;
        // 2026-03-29 02:30 does not exist in Berlin: it becomes 03:00 CEST = 01:00 UTC.
        assert_eq!(
            local_to_micros(naive("2026-03-29 02:30:00"), tz),
            naive("2026-03-29 01:00:00").and_utc().timestamp_micros()
        );
        // 2026-10-25 02:30 happens twice: the first (CEST, 00:30 UTC) is taken.
        assert_eq!(
            local_to_micros(naive("2026-10-25 02:30:00"), tz),
            naive("2026-10-25 00:30:00").and_utc().timestamp_micros()
        );
    }

    #[test]
    fn log_timestamps() {
        let utc = Tz::UTC;
        let expect = naive("2026-01-05 09:00:00").and_utc().timestamp_micros();
        for s in [
            "2026-01-05T09:00:00Z",
            "2026-01-05T10:00:00+01:00",
            "2026-01-05 09:00:00",
            "2026-01-05 09:00:00.000",
            "1767603600",
            "1767603600000",
        ] {
            assert_eq!(parse_timestamp(s, utc, None), Ok(expect), "{s}");
        }
        assert!(parse_timestamp("yesterday", utc, None).is_err());
        assert_eq!(
            parse_timestamp("05/01/2026 09h00", utc, Some("%d/%m/%Y %Hh%M")),
            Ok(expect)
        );
    }
}
