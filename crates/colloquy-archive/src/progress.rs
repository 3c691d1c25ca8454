//! Process-wide scan counters, read by the CLI's progress bar. Cheap relaxed atomics on the scan path.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct ScanProgress {
    pub objects_listed: AtomicU64,
    pub objects_done: AtomicU64,
    pub bytes_read: AtomicU64,
    pub rows: AtomicU64,
}

pub static PROGRESS: ScanProgress = ScanProgress {
    objects_listed: AtomicU64::new(0),
    objects_done: AtomicU64::new(0),
    bytes_read: AtomicU64::new(0),
    rows: AtomicU64::new(0),
};

/// A snapshot of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProgressSnapshot {
    pub objects_listed: u64,
    pub objects_done: u64,
    pub bytes_read: u64,
    pub rows: u64,
}

impl ScanProgress {
    pub fn snapshot(&self) -> ProgressSnapshot {
        ProgressSnapshot {
            objects_listed: self.objects_listed.load(Ordering::Relaxed),
            objects_done: self.objects_done.load(Ordering::Relaxed),
            bytes_read: self.bytes_read.load(Ordering::Relaxed),
            rows: self.rows.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}
