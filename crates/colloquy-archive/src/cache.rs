//! Parsed messages kept in memory between scans, per object version.
//!
//! A server answers many queries over the same archive; parsing its exports again for each one made a
//! point lookup over the 20k-message demo cost 0.3 s of CPU, and 32 clients queued behind each other
//! (benches/README.md, "Flight SQL server"). With a cache in the session's configuration, a scan parses
//! each object at most once per version: the key holds the object's location, size, modification time
//! and entity tag, so an export replaced in place is read again, and one dropped under the prefix is
//! the only one parsed. Tables still list their location at each scan, which is what keeps the answer
//! current.
//!
//! Entries hold every message column (whatever the query projected), so any later query can use them;
//! the least recently used are dropped once the cache holds more than its budget.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use datafusion::arrow::array::ArrayRef;

use crate::listing::{ScanUnit, UnitKind};
use crate::sink::RecordIssue;

/// The messages of one scan unit: batches of the 12 message columns, and the records skipped while
/// parsing it (replayed into `archive_errors()` when the entry is used).
#[derive(Debug, Default)]
pub struct ParsedUnit {
    pub batches: Vec<(Vec<ArrayRef>, usize)>,
    pub issues: Vec<RecordIssue>,
    bytes: usize,
}

impl ParsedUnit {
    pub fn new(batches: Vec<(Vec<ArrayRef>, usize)>, issues: Vec<RecordIssue>) -> Self {
        let bytes = batches
            .iter()
            .flat_map(|(cols, _)| cols.iter())
            .map(|c| c.get_array_memory_size())
            .sum::<usize>()
            + issues
                .iter()
                .map(|i| i.source.len() + i.reason.len() + 48)
                .sum::<usize>();
        Self {
            batches,
            issues,
            bytes,
        }
    }

    pub fn rows(&self) -> usize {
        self.batches.iter().map(|(_, n)| n).sum()
    }

    /// Memory the entry holds, as counted against the budget.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[derive(Debug)]
struct Entry {
    unit: Arc<ParsedUnit>,
    last_used: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<String, Entry>,
    bytes: usize,
}

/// A budgeted, shared cache of parsed scan units. Put one in a session's configuration
/// ([`ParsedCache::attach`]) and every archive table of that session uses it; sessions that share one
/// (a server's) share its entries.
#[derive(Debug)]
pub struct ParsedCache {
    budget: usize,
    /// Read-locked by lookups (a scan makes one per object, and a server runs many scans at once),
    /// write-locked by inserts.
    state: RwLock<State>,
    clock: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// What a cache has done so far, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    pub entries: usize,
    pub bytes: usize,
    pub budget: usize,
    pub hits: u64,
    pub misses: u64,
}

impl ParsedCache {
    /// A cache that holds at most `budget` bytes of parsed messages.
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            state: RwLock::new(State::default()),
            clock: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Whether a unit of `raw_bytes` is worth keeping: parsed messages take a few times the bytes of
    /// their export (more for compressed ones), and a unit is parsed whole before it is kept, so units
    /// near the budget would hold that much memory at once only to push everything else out. Those are
    /// streamed as without a cache.
    pub fn admits(&self, raw_bytes: u64) -> bool {
        raw_bytes <= (self.budget / 16) as u64
    }

    /// The session configuration with this cache in it.
    pub fn attach(
        self: &Arc<Self>,
        config: datafusion::prelude::SessionConfig,
    ) -> datafusion::prelude::SessionConfig {
        config.with_extension(Arc::clone(self))
    }

    /// Puts this cache in a running session: its archive tables use it from their next scan.
    pub fn install(self: &Arc<Self>, ctx: &datafusion::prelude::SessionContext) {
        ctx.state_ref()
            .write()
            .config_mut()
            .set_extension(Arc::clone(self));
    }

    pub fn get(&self, key: &str) -> Option<Arc<ParsedUnit>> {
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        match state.entries.get(key) {
            Some(e) => {
                e.last_used.store(now, Ordering::Relaxed);
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(Arc::clone(&e.unit))
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Keeps `unit` under `key`, dropping the least recently used entries to stay within the budget. A
    /// unit larger than the whole budget is not kept.
    pub fn insert(&self, key: String, unit: Arc<ParsedUnit>) {
        if unit.bytes > self.budget {
            return;
        }
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = state.entries.insert(
            key,
            Entry {
                unit: Arc::clone(&unit),
                last_used: AtomicU64::new(now),
            },
        ) {
            state.bytes -= old.unit.bytes;
        }
        state.bytes += unit.bytes;
        if state.bytes <= self.budget {
            return;
        }
        // Evict oldest first: sorting the (few thousand at most) entries is cheaper than keeping an
        // ordered index on every hit.
        let mut by_age: Vec<(u64, String)> = state
            .entries
            .iter()
            .map(|(k, e)| (e.last_used.load(Ordering::Relaxed), k.clone()))
            .collect();
        by_age.sort_unstable();
        for (_, k) in by_age {
            if state.bytes <= self.budget {
                break;
            }
            if let Some(e) = state.entries.remove(&k) {
                state.bytes -= e.unit.bytes;
            }
        }
    }

    pub fn stats(&self) -> CacheStats {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        CacheStats {
            entries: state.entries.len(),
            bytes: state.bytes,
            budget: self.budget,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }
}

/// The cache key of a unit read by a table: the table's location and options (they change what is
/// parsed: format, time zone, roles, column mappings), the channel the unit's path names, and each
/// object's location and version.
pub fn unit_key(location: &str, options_fingerprint: &str, unit: &ScanUnit) -> String {
    let mut key = String::with_capacity(128);
    let _ = write!(
        key,
        "{location}\u{0}{options_fingerprint}\u{0}{:?}\u{0}",
        unit.place.default_channel
    );
    match &unit.kind {
        UnitKind::Object {
            location,
            size,
            version,
        } => {
            let _ = write!(key, "o\u{0}{location}\u{0}{size}\u{0}{version}");
        }
        UnitKind::Range {
            location,
            size,
            start,
            end,
            version,
        } => {
            let _ = write!(
                key,
                "r\u{0}{location}\u{0}{size}\u{0}{version}\u{0}{start}..{end}"
            );
        }
        UnitKind::ExportFolder {
            format,
            root,
            files,
        } => {
            let _ = write!(key, "s\u{0}{format}\u{0}{root}");
            for f in files {
                let _ = write!(
                    key,
                    "\u{0}{}\u{0}{}\u{0}{}\u{0}{:?}",
                    f.location,
                    f.size,
                    f.last_modified.timestamp_micros(),
                    f.e_tag
                );
            }
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::StringArray;

    fn unit(rows: usize) -> Arc<ParsedUnit> {
        let col: ArrayRef = Arc::new(StringArray::from(vec!["x".repeat(100); rows]));
        Arc::new(ParsedUnit::new(vec![(vec![col], rows)], vec![]))
    }

    #[test]
    fn evicts_least_recently_used_beyond_budget() {
        let one = unit(10).bytes();
        let cache = ParsedCache::new(one * 2 + one / 2);
        cache.insert("a".into(), unit(10));
        cache.insert("b".into(), unit(10));
        assert!(cache.get("a").is_some(), "a was just inserted");
        cache.insert("c".into(), unit(10));
        // b was used least recently.
        assert!(cache.get("b").is_none());
        assert!(cache.get("a").is_some());
        assert!(cache.get("c").is_some());
        let s = cache.stats();
        assert_eq!(s.entries, 2);
        assert!(s.bytes <= s.budget);
        assert_eq!((s.hits, s.misses), (3, 1));
    }

    #[test]
    fn does_not_keep_a_unit_larger_than_the_budget() {
        let cache = ParsedCache::new(10);
        cache.insert("big".into(), unit(1000));
        assert!(cache.get("big").is_none());
        assert_eq!(cache.stats().bytes, 0);
    }
}
