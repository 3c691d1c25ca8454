//! `OPTIONS (...)` of `STORED AS ARCHIVE` and the optional arguments of `read_archive`, checked once at planning.

use std::collections::{BTreeMap, HashMap};

pub use chrono_tz::Tz;

use crate::error::{FormatError, Result};
use crate::formats::Format;
use crate::message::Role;

/// Which day/month/year order WhatsApp dates use; exports do not say, so `Auto` infers it per file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateOrder {
    Auto,
    Dmy,
    Mdy,
    Ymd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    Fail,
    Skip,
}

/// The message-schema columns that JSONL and CSV logs can map from their own field names: all but the
/// lineage columns, which the reader fills itself.
pub const MAPPABLE_COLUMNS: &[&str] = crate::message::MESSAGE_COLUMNS.split_at(10).0;

/// Options that configure the object store rather than the parsing (passed on as they are).
const STORE_PREFIXES: &[&str] = &["aws.", "gcp.", "google.", "azure.", "http."];

const KNOWN: &[&str] = &[
    "format",
    "timezone",
    "agents",
    "bots",
    "on_error",
    "channel",
    "date_order",
    "delimiter",
    "timestamp_format",
    "split_size",
];

/// JSON Lines objects larger than this are read as several byte ranges in parallel.
pub const DEFAULT_SPLIT_SIZE: u64 = 32 << 20;

/// Parsed archive options. Construct with [`ArchiveOptions::parse`].
#[derive(Debug, Clone)]
pub struct ArchiveOptions {
    pub format: Option<Format>,
    pub timezone: Tz,
    pub roles: RoleRules,
    pub on_error: OnError,
    pub channel: Option<String>,
    pub date_order: DateOrder,
    pub delimiter: u8,
    pub timestamp_format: Option<String>,
    /// Byte-range size for splitting large uncompressed JSON Lines objects.
    pub split_size: u64,
    /// `column.<schema column>` → the field name (JSONL: a dotted path) in the log.
    pub columns: BTreeMap<String, String>,
    /// `aws.*`, `gcp.*`, `azure.*`, `http.*`: object-store configuration.
    pub store: BTreeMap<String, String>,
    /// Every other option as it was set (names lower case, without `format.`): what another process
    /// parses to read the archive the same way (a Ballista executor).
    pub given: BTreeMap<String, String>,
}

impl Default for ArchiveOptions {
    fn default() -> Self {
        Self {
            format: None,
            timezone: Tz::UTC,
            roles: RoleRules::default(),
            on_error: OnError::Fail,
            channel: None,
            date_order: DateOrder::Auto,
            delimiter: b',',
            timestamp_format: None,
            split_size: DEFAULT_SPLIT_SIZE,
            columns: BTreeMap::new(),
            store: BTreeMap::new(),
            given: BTreeMap::new(),
        }
    }
}

impl ArchiveOptions {
    /// Reads options from `CREATE EXTERNAL TABLE ... OPTIONS`. DataFusion prefixes keys without a dot with
    /// `format.`, so both `'timezone'` and `'format.timezone'` are accepted.
    pub fn parse(raw: &HashMap<String, String>) -> Result<Self> {
        let mut o = Self::default();
        let mut keys: Vec<_> = raw.iter().collect();
        keys.sort();
        for (key, value) in keys {
            let key = key.to_ascii_lowercase();
            let key = key.strip_prefix("format.").unwrap_or(&key);
            o.set(key, value)?;
        }
        Ok(o)
    }

    /// Sets one option by name, with an error that names the option and the accepted values.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        if !STORE_PREFIXES.iter().any(|p| key.starts_with(p)) {
            self.given.insert(key.to_string(), value.to_string());
        }
        let v = value.trim();
        match key {
            "format" => self.format = Format::from_option(v)?,
            "timezone" | "tz" => {
                self.timezone = v.parse::<Tz>().map_err(|_| {
                    FormatError::config(format!(
                        "option 'timezone': unknown time zone '{v}' (use an IANA name such as 'Europe/Berlin' or 'UTC')"
                    ))
                })?
            }
            "agents" => self.roles.agents = Patterns::parse(v),
            "bots" => self.roles.bots = Patterns::parse(v),
            "on_error" => {
                self.on_error = match v.to_ascii_lowercase().as_str() {
                    "fail" | "error" | "abort" => OnError::Fail,
                    "skip" | "ignore" => OnError::Skip,
                    _ => {
                        return Err(FormatError::config(format!(
                            "option 'on_error': expected 'fail' or 'skip', got '{v}'"
                        )));
                    }
                }
            }
            "channel" => self.channel = Some(v.to_string()).filter(|s| !s.is_empty()),
            "date_order" => {
                self.date_order = match v.to_ascii_lowercase().as_str() {
                    "auto" => DateOrder::Auto,
                    "dmy" | "day_first" => DateOrder::Dmy,
                    "mdy" | "month_first" => DateOrder::Mdy,
                    "ymd" => DateOrder::Ymd,
                    _ => {
                        return Err(FormatError::config(format!(
                            "option 'date_order': expected 'auto', 'dmy', 'mdy' or 'ymd', got '{v}'"
                        )));
                    }
                }
            }
            "delimiter" => {
                let d = match value {
                    "\\t" | "tab" => "\t",
                    other => other,
                };
                if d.len() != 1 {
                    return Err(FormatError::config(format!(
                        "option 'delimiter': expected one ASCII character, got '{value}'"
                    )));
                }
                self.delimiter = d.as_bytes()[0];
            }
            "timestamp_format" => self.timestamp_format = Some(v.to_string()),
            "split_size" => {
                self.split_size = parse_size(v).filter(|n| *n > 0).ok_or_else(|| {
                    FormatError::config(format!(
                        "option 'split_size': expected a positive size in bytes such as '33554432', '64KB' or '32MB', got '{v}'"
                    ))
                })?
            }
            k if k.starts_with("column.") => {
                let col = &k["column.".len()..];
                if !MAPPABLE_COLUMNS.contains(&col) {
                    return Err(FormatError::config(format!(
                        "option '{k}': '{col}' is not a message column; mappable columns are {}",
                        MAPPABLE_COLUMNS.join(", ")
                    )));
                }
                self.columns.insert(col.to_string(), v.to_string());
            }
            k if STORE_PREFIXES.iter().any(|p| k.starts_with(p)) => {
                self.store.insert(k.to_string(), v.to_string());
            }
            other => {
                return Err(FormatError::config(format!(
                    "unknown ARCHIVE option '{other}'; known options are {}, column.<name>, and object-store options aws.*, gcp.*, azure.*, http.*",
                    KNOWN.join(", ")
                )));
            }
        }
        Ok(())
    }
}

/// `1024`, `64KB`, `32MB`, `1GB` (powers of 1024; `KiB` spellings too).
fn parse_size(v: &str) -> Option<u64> {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (digits, unit) = v.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return None,
    };
    n.checked_mul(1 << shift)
}

/// Comma-separated names or ids, `*` as a wildcard, compared without regard to case.
#[derive(Debug, Clone, Default)]
pub struct Patterns(Vec<String>);

impl Patterns {
    fn parse(list: &str) -> Self {
        Self(
            list.split(',')
                .map(|s| s.trim().to_lowercase())
                .filter(|s| !s.is_empty())
                .collect(),
        )
    }

    pub fn matches(&self, candidate: &str) -> bool {
        !self.is_empty() && self.matches_folded(&fold(candidate))
    }

    /// [`Self::matches`] of a candidate already trimmed and lowercased ([`fold`]).
    fn matches_folded(&self, folded: &str) -> bool {
        self.0.iter().any(|p| wildcard_match(p, folded))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A name as patterns are matched against it: trimmed and lowercased.
fn fold(candidate: &str) -> String {
    candidate.trim().to_lowercase()
}

/// `*` matches any run of characters; everything else literally.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// How humans are told apart: configured agent and bot names/ids; everyone else is a customer.
#[derive(Debug, Clone, Default)]
pub struct RoleRules {
    pub agents: Patterns,
    pub bots: Patterns,
}

impl RoleRules {
    /// The role of a human (or unflagged) sender, from the configured names and ids.
    pub fn classify(&self, id: Option<&str>, name: Option<&str>) -> Role {
        // Runs per message: without configured names there is nothing to match, and each candidate is
        // lowercased once for both lists (an export often gives the same string as id and name).
        if self.bots.is_empty() && self.agents.is_empty() {
            return Role::Customer;
        }
        let folded_name = match (id, name) {
            (Some(i), Some(n)) if i == n => None,
            (_, n) => n.map(fold),
        };
        let folded_id = id.map(fold);
        let hit = |p: &Patterns| {
            [&folded_id, &folded_name]
                .into_iter()
                .flatten()
                .any(|v| p.matches_folded(v))
        };
        if hit(&self.bots) {
            Role::Bot
        } else if hit(&self.agents) {
            Role::Agent
        } else {
            Role::Customer
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_from_id_or_name() {
        let mut o = ArchiveOptions::default();
        assert_eq!(o.roles.classify(Some("Acme"), Some("Acme")), Role::Customer);
        o.set("agents", "acme*, U42").expect("option");
        o.set("bots", "*bot").expect("option");
        let r = &o.roles;
        assert_eq!(r.classify(Some(" ACME Support "), None), Role::Agent);
        assert_eq!(r.classify(None, Some("Acme Support")), Role::Agent);
        assert_eq!(r.classify(Some("u42"), Some("Dana")), Role::Agent);
        assert_eq!(r.classify(Some("x1"), Some("acme")), Role::Agent);
        assert_eq!(r.classify(Some("Acme"), Some("Acme")), Role::Agent);
        assert_eq!(r.classify(Some("AcmeBot"), Some("AcmeBot")), Role::Bot);
        assert_eq!(r.classify(Some("Dana"), Some("Dana")), Role::Customer);
        assert_eq!(r.classify(None, None), Role::Customer);
        assert!(o.roles.agents.matches(" acme x"));
        assert!(!o.roles.agents.matches("x acme"));
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("acme*", "acme support"));
        assert!(wildcard_match("*support", "acme support"));
        assert!(wildcard_match("a*c*e", "abcde"));
        assert!(!wildcard_match("a*c*e", "abcd"));
        assert!(wildcard_match("maria", "maria"));
        assert!(!wildcard_match("maria", "mariam"));
    }

    #[test]
    fn datafusion_prefixed_keys_and_errors() {
        let mut raw = HashMap::new();
        raw.insert("format.timezone".to_string(), "Europe/Berlin".to_string());
        raw.insert(
            "format.agents".to_string(),
            "Acme Support, Maria".to_string(),
        );
        raw.insert("aws.region".to_string(), "eu-west-1".to_string());
        let o = ArchiveOptions::parse(&raw).expect("valid options");
        assert_eq!(o.timezone, chrono_tz::Europe::Berlin);
        assert_eq!(o.roles.classify(None, Some("maria")), Role::Agent);
        assert_eq!(o.roles.classify(None, Some("Bob")), Role::Customer);
        assert_eq!(
            o.store.get("aws.region").map(String::as_str),
            Some("eu-west-1")
        );

        raw.insert("format.timezon".to_string(), "x".to_string());
        let err = ArchiveOptions::parse(&raw)
            .expect_err("typo must fail")
            .to_string();
        assert!(err.contains("unknown ARCHIVE option 'timezon'"), "{err}");
    }

    #[test]
    fn split_sizes() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("64KB"), Some(64 << 10));
        assert_eq!(parse_size("32 MiB"), Some(32 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("12 bananas"), None);
        assert_eq!(parse_size("99999999999999999999GB"), None);
        let mut o = ArchiveOptions::default();
        let err = o.set("split_size", "0").expect_err("zero").to_string();
        assert!(err.contains("option 'split_size'"), "{err}");
    }
}
