//! Requests to object stores in flight at once, across every scan of the process.
//!
//! A scan keeps many small objects in flight per partition to hide a remote store's latency (20 ms a
//! request to another region: 512 in flight for 25,000 objects a second). S3 and most object stores
//! speak HTTP/1.1, so each request in flight holds a connection, which is a file descriptor. Partitions
//! times concurrent scans could otherwise pass the process's open-files limit (1024 by default on many
//! systems), and requests would fail with "too many open files". The slots are shared by every scan and
//! sized from that limit, which the CLI first raises to what the system allows
//! ([`raise_open_files_limit`]). They count requests, not connections: a store's client keeps idle
//! connections open for a while after a burst (per store, so two buckets can hold more), which the
//! other half of the limit is for.
//!
//! A slot is only ever held by a request that is running: scans fetch through stores in tasks of their
//! own (`scan::fetch_in_own_task`), so a scan the query is not reading gives its slots back.

use std::sync::LazyLock;

use tokio::sync::{Semaphore, SemaphorePermit};

/// Never more than this many requests at once, however high the limit: past it the store (or the
/// network) is the bottleneck, and each connection costs memory on both ends.
const MOST_REQUESTS: u64 = 4096;
/// Never fewer: below this a remote scan is latency-bound for no reason.
const FEWEST_REQUESTS: u64 = 16;

static TOTAL: LazyLock<usize> = LazyLock::new(|| slots_for(open_files_limit()));
static SLOTS: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(*TOTAL));

/// Waits for a slot; a request holds it until its whole response is read. (The semaphore is never
/// closed: there is always a permit.)
pub(crate) async fn slot() -> Option<SemaphorePermit<'static>> {
    SLOTS.acquire().await.ok()
}

/// How many slots the process has (for tests: the scan's own bounds do not need it).
#[cfg(test)]
pub(crate) fn total() -> usize {
    *TOTAL
}

/// Slots held by requests right now.
#[cfg(test)]
pub(crate) fn in_use() -> usize {
    total().saturating_sub(SLOTS.available_permits())
}

/// Half the open-files limit goes to requests; the rest stays for the process's files, its clients
/// (a server's) and the requests of the stores' own listings. `None`: the limit is not known.
fn slots_for(open_files: Option<u64>) -> usize {
    let slots = open_files.map_or(256, |n| n / 2);
    usize::try_from(slots.clamp(FEWEST_REQUESTS, MOST_REQUESTS)).unwrap_or(256)
}

#[cfg(unix)]
fn open_files_limit() -> Option<u64> {
    // No current limit means none at all.
    Some(
        rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(u64::MAX),
    )
}

#[cfg(not(unix))]
fn open_files_limit() -> Option<u64> {
    None
}

/// Raises the soft limit on open files to the hard limit (as the Go runtime does at start), so that a
/// scan can keep enough requests in flight; returns the limit now in force (`None`: none). Call it
/// before the first scan: the slots are sized once. A hard limit of "unlimited" (macOS's default) is
/// left alone: the kernel's own ceiling is not known here, and a soft limit above it is refused.
#[cfg(unix)]
pub fn raise_open_files_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if let Some(hard) = limit.maximum
        && limit.current.is_some_and(|soft| soft < hard)
    {
        let raised = rustix::process::Rlimit {
            current: Some(hard),
            maximum: Some(hard),
        };
        // Refused (a sandbox): the old limit stays, and is used.
        let _ = setrlimit(Resource::Nofile, raised);
    }
    getrlimit(Resource::Nofile).current
}

#[cfg(not(unix))]
pub fn raise_open_files_limit() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_half_the_limit_within_bounds() {
        assert_eq!(slots_for(Some(1024)), 512);
        assert_eq!(slots_for(Some(20)), 16);
        assert_eq!(slots_for(Some(1 << 20)), 4096);
        assert_eq!(slots_for(Some(u64::MAX)), 4096);
        // Not known (not a Unix system).
        assert_eq!(slots_for(None), 256);
    }

    #[cfg(unix)]
    #[test]
    fn raising_the_limit_never_lowers_it() {
        let unlimited = |l: Option<u64>| l.unwrap_or(u64::MAX);
        let before = open_files_limit();
        let after = raise_open_files_limit();
        assert!(
            unlimited(after) >= unlimited(before),
            "{before:?} -> {after:?}"
        );
    }
}
