//! The audit trail: one JSON line per statement (who, from where, what, when, how long, how many rows,
//! the outcome, the models it used), chained by hash, so that a line deleted or edited afterwards is
//! found by [`verify`] (`colloquy audit verify FILE|URL`).
//!
//! The trail is a local file, appended to line by line, or an object-store prefix. Objects cannot be
//! appended to, so there a writer task puts the lines queued since its last put as one segment object
//! named by the `seq` of its first line (`00000000000000000042.jsonl`): one put per statement when the
//! server is quiet, fewer and larger under load, and nothing rewritten. Segments sort by name in chain
//! order, and the chain runs across them, so a removed segment breaks it at the next one. One server
//! writes one prefix.
//!
//! Each line carries `prev`, the BLAKE3 hash of the line before it (64 zeros for the first), and `seq`,
//! its position. Removing lines from the end leaves a valid shorter chain: compare the last hash that
//! `verify` prints with one kept elsewhere (the server logs the head hash when it stops).
//!
//! Nothing secret is written: SQL goes through [`crate::redact::redact_sql`] (credentials) and, on a
//! governed server, [`crate::redact::elide_literals`] (a literal may be a masked value a cleared
//! analyst typed); parameters are hashed; error messages, which may quote values, are not written.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

/// The table the trail is read as, for roles granted it.
pub const TABLE: &str = "audit_log";

/// The hash before the first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One statement, as the audit trail keeps it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub seq: u64,
    pub prev: String,
    /// When the statement started, RFC 3339 UTC.
    pub ts: String,
    pub user: String,
    pub roles: Vec<String>,
    /// A hash of the session's key (never the bearer token itself).
    pub session: String,
    pub client: String,
    pub kind: String,
    pub sql: String,
    /// BLAKE3 of the bound parameter values, when the statement had any.
    pub params: Option<String>,
    pub duration_ms: u64,
    pub rows: u64,
    pub outcome: String,
    /// ONNX functions the statement called, as `name@checksum`.
    pub models: Vec<String>,
}

/// What is known of a statement when it starts; completed into an [`Entry`] when it ends.
#[derive(Debug, Clone)]
pub struct Record {
    pub started: SystemTime,
    pub user: String,
    pub roles: Vec<String>,
    pub session: String,
    pub client: String,
    pub kind: &'static str,
    pub sql: String,
    pub params: Option<String>,
    pub models: Vec<String>,
}

/// Where the lines go.
enum Sink {
    /// A local file, appended to and flushed line by line.
    File(std::fs::File),
    /// An object-store prefix: object stores cannot append, so lines are handed to a writer task that
    /// puts whatever has queued as one segment object, named by its first line's `seq`.
    Store(tokio::sync::mpsc::UnboundedSender<(u64, String)>),
}

struct Chain {
    sink: Option<Sink>,
    prev: String,
    seq: u64,
}

/// Where an audit trail lives: a local file, or an object-store prefix of segment objects.
#[derive(Debug, Clone)]
pub enum Target {
    File(PathBuf),
    /// The store, the prefix inside it, and the URL the operator wrote (ending in `/`).
    Store {
        store: Arc<dyn ObjectStore>,
        prefix: ObjectPath,
        url: String,
    },
}

impl Target {
    /// The location as the operator wrote it: a path, or a URL ending in `/`.
    pub fn location(&self) -> String {
        match self {
            Target::File(p) => p.display().to_string(),
            Target::Store { url, .. } => url.clone(),
        }
    }
}

/// The append-only audit trail of a server.
pub struct AuditLog {
    target: Target,
    /// Whether literals are elided from SQL (a governed server).
    pub elide_literals: bool,
    chain: Mutex<Chain>,
    /// The segment writer of an object-store trail, awaited by [`AuditLog::close`].
    writer: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("location", &self.target.location())
            .finish()
    }
}

fn hash_line(line: &str) -> String {
    blake3::hash(line.as_bytes()).to_hex().to_string()
}

fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    chrono::DateTime::<chrono::Utc>::from_timestamp(d.as_secs() as i64, d.subsec_nanos())
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_default()
}

/// The name of the segment whose first line has `seq`: zero-padded, so names sort in chain order.
fn segment_name(seq: u64) -> String {
    format!("{seq:020}.jsonl")
}

/// Lines put in one segment at most, so one object stays a few MB under a burst.
const MAX_SEGMENT_LINES: usize = 10_000;

/// Puts queued lines as segments until the log is closed. A failed put is retried with backoff and
/// the lines are kept meanwhile: they are lost only if the process dies before the store comes back.
async fn write_segments(
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    url: String,
    mut lines: tokio::sync::mpsc::UnboundedReceiver<(u64, String)>,
) {
    while let Some((first, line)) = lines.recv().await {
        let mut body = line;
        body.push('\n');
        let mut count = 1;
        while count < MAX_SEGMENT_LINES {
            let Ok((_, next)) = lines.try_recv() else {
                break;
            };
            body.push_str(&next);
            body.push('\n');
            count += 1;
        }
        let name = prefix.clone().join(segment_name(first));
        let payload = object_store::PutPayload::from(body);
        let mut wait = std::time::Duration::from_millis(100);
        while let Err(e) = store.put(&name, payload.clone()).await {
            tracing::error!("audit trail {url}: segment {name} not written yet ({e}); retrying");
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(std::time::Duration::from_secs(30));
        }
    }
}

impl AuditLog {
    /// Opens (or creates) the trail and continues its chain, after checking it: a server does not
    /// append to a trail that was tampered with. An object-store trail needs a Tokio runtime.
    pub async fn open(target: Target, elide_literals: bool) -> Result<Self, String> {
        let report = match &target {
            Target::File(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| format!("audit log folder {}: {e}", dir.display()))?;
                }
                if path.exists() {
                    verify(path)?
                } else {
                    Report::empty()
                }
            }
            Target::Store { .. } => verify_target(&target).await?,
        };
        if let Some(problem) = report.problem {
            return Err(format!(
                "audit log {} does not verify ({problem}): move it aside and start a new one",
                target.location()
            ));
        }
        let (sink, writer) = match &target {
            Target::File(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("audit log {}: {e}", path.display()))?;
                (Sink::File(file), None)
            }
            Target::Store { store, prefix, url } => {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                let writer = tokio::spawn(write_segments(
                    Arc::clone(store),
                    prefix.clone(),
                    url.clone(),
                    rx,
                ));
                (Sink::Store(tx), Some(writer))
            }
        };
        Ok(Self {
            target,
            elide_literals,
            chain: Mutex::new(Chain {
                sink: Some(sink),
                prev: report.head,
                seq: report.lines,
            }),
            writer: Mutex::new(writer),
        })
    }

    /// Where the trail is, for the `audit_log` table and the logs.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The hash of the last line written.
    pub fn head(&self) -> String {
        self.chain
            .lock()
            .map(|c| c.prev.clone())
            .unwrap_or_default()
    }

    /// Stops taking lines and waits until an object-store trail has put every queued line. Lines
    /// appended afterwards are refused (and logged as lost).
    pub async fn close(&self) {
        if let Ok(mut chain) = self.chain.lock() {
            chain.sink = None;
        }
        let writer = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(writer) = writer
            && let Err(e) = writer.await
        {
            tracing::error!("audit trail {}: writer failed: {e}", self.target.location());
        }
    }

    /// Appends the entry of a finished statement. A failure to write is logged, not returned: the
    /// statement has run already.
    pub fn append(&self, record: &Record, outcome: &str, rows: u64) {
        let duration_ms = record.started.elapsed().map_or(0, |d| d.as_millis() as u64);
        let Ok(mut chain) = self.chain.lock() else {
            tracing::error!("audit log lock poisoned: entry lost");
            return;
        };
        let entry = Entry {
            seq: chain.seq,
            prev: chain.prev.clone(),
            ts: rfc3339(record.started),
            user: record.user.clone(),
            roles: record.roles.clone(),
            session: record.session.clone(),
            client: record.client.clone(),
            kind: record.kind.to_string(),
            sql: record.sql.clone(),
            params: record.params.clone(),
            duration_ms,
            rows,
            outcome: outcome.to_string(),
            models: record.models.clone(),
        };
        let line = match serde_json::to_string(&entry) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("audit entry not written: {e}");
                return;
            }
        };
        let seq = chain.seq;
        let written = match &mut chain.sink {
            Some(Sink::File(file)) => file
                .write_all(format!("{line}\n").as_bytes())
                .and_then(|()| file.flush())
                .map_err(|e| e.to_string()),
            Some(Sink::Store(tx)) => tx
                .send((seq, line.clone()))
                .map_err(|_| "the segment writer has stopped".to_string()),
            None => Err("the trail is closed".to_string()),
        };
        match written {
            Ok(()) => {
                chain.prev = hash_line(&line);
                chain.seq += 1;
            }
            Err(e) => tracing::error!(
                "audit log {}: entry not written: {e}",
                self.target.location()
            ),
        }
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub lines: u64,
    /// The hash of the last line (the value to compare with one kept elsewhere).
    pub head: String,
    /// The first break: `line N: …` (in a segment: `segment NAME, line N: …`).
    pub problem: Option<String>,
}

impl Report {
    fn empty() -> Self {
        Self {
            lines: 0,
            head: GENESIS.to_string(),
            problem: None,
        }
    }

    /// Checks the lines of one part of the trail (the file, or one segment) against the chain so far,
    /// one at a time, so a trail of any size is checked in constant memory. `segment` is the segment's
    /// name, which must be its first line's `seq`. An error reading a line is returned.
    fn check<L: AsRef<str>>(
        &mut self,
        segment: Option<&str>,
        lines: impl IntoIterator<Item = Result<L, String>>,
    ) -> Result<(), String> {
        if self.problem.is_some() {
            return Ok(());
        }
        let at = |n: usize| match segment {
            Some(s) => format!("segment {s}, line {n}"),
            None => format!("line {n}"),
        };
        if let Some(name) = segment
            && name != segment_name(self.lines)
        {
            self.problem = Some(format!(
                "segment {name}: expected the segment {} next: a segment before it was removed or renamed",
                segment_name(self.lines)
            ));
            return Ok(());
        }
        for (i, line) in lines.into_iter().enumerate() {
            let n = i + 1;
            let line = line.map_err(|e| format!("{}: {e}", at(n)))?;
            let line = line.as_ref();
            let entry: Entry = match serde_json::from_str(line) {
                Ok(e) => e,
                Err(e) => {
                    self.problem = Some(format!("{}: not an audit entry ({e})", at(n)));
                    return Ok(());
                }
            };
            if entry.prev != self.head || entry.seq != self.lines {
                self.problem = Some(format!(
                    "{}: the chain breaks here (seq {}, expected {}): the line before it was removed or changed, or this one was",
                    at(n),
                    entry.seq,
                    self.lines
                ));
                return Ok(());
            }
            self.head = hash_line(line);
            self.lines += 1;
        }
        Ok(())
    }
}

/// Checks the chain of an audit file line by line.
pub fn verify(path: &Path) -> Result<Report, String> {
    let file =
        std::fs::File::open(path).map_err(|e| format!("audit log {}: {e}", path.display()))?;
    let mut report = Report::empty();
    let lines = std::io::BufReader::new(file)
        .lines()
        .map(|l| l.map_err(|e| e.to_string()));
    report
        .check(None, lines)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(report)
}

/// Checks the chain of a trail: a file, or every segment under an object-store prefix in name order
/// (a segment removed from the middle breaks the chain at the next one).
pub async fn verify_target(target: &Target) -> Result<Report, String> {
    let (store, prefix, url) = match target {
        Target::File(path) => return verify(path),
        Target::Store { store, prefix, url } => (store, prefix, url),
    };
    let listed: Vec<object_store::ObjectMeta> = store
        .list(Some(prefix))
        .try_collect()
        .await
        .map_err(|e| format!("audit log {url}: {e}"))?;
    let mut segments: Vec<(String, ObjectPath)> = listed
        .into_iter()
        .filter_map(|m| {
            let name = m.location.filename()?.to_string();
            // Only the segments directly under the prefix: nothing else is part of the trail.
            (m.location.prefix_match(prefix)?.count() == 1 && name.ends_with(".jsonl"))
                .then_some((name, m.location))
        })
        .collect();
    segments.sort();
    let mut report = Report::empty();
    for (name, location) in segments {
        let read = async { store.get(&location).await?.bytes().await };
        let bytes = read
            .await
            .map_err(|e| format!("audit log {url}{name}: {e}"))?;
        let text = String::from_utf8_lossy(&bytes);
        report
            .check(Some(&name), text.lines().map(Ok::<_, String>))
            .map_err(|e| format!("audit log {url}: {e}"))?;
        if report.problem.is_some() {
            break;
        }
    }
    Ok(report)
}

/// The table the audit trail is read as (`audit_log`), for roles granted it: the file, or every
/// segment under the prefix.
pub fn table_sql(target: &Target) -> String {
    format!(
        "CREATE OR REPLACE EXTERNAL TABLE {TABLE} (seq BIGINT, prev VARCHAR, ts VARCHAR, \"user\" VARCHAR, \
         roles VARCHAR[], session VARCHAR, client VARCHAR, kind VARCHAR, sql VARCHAR, params VARCHAR, \
         duration_ms BIGINT, \"rows\" BIGINT, outcome VARCHAR, models VARCHAR[]) STORED AS JSON LOCATION '{}'",
        target.location().replace('\'', "''")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(sql: &str) -> Record {
        Record {
            started: SystemTime::now(),
            user: "ana".into(),
            roles: vec!["public".into(), "emea".into()],
            session: "s1".into(),
            client: "127.0.0.1:5".into(),
            kind: "query",
            sql: sql.into(),
            params: None,
            models: vec![],
        }
    }

    #[tokio::test]
    async fn the_chain_finds_a_removed_or_edited_line() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("audit/audit.jsonl");
        let file = || Target::File(path.clone());
        let log = AuditLog::open(file(), false).await.expect("open");
        for i in 0..4 {
            log.append(&record(&format!("SELECT {i}")), "ok", i);
        }
        let head = log.head();
        drop(log);
        let report = verify(&path).expect("verify");
        assert_eq!((report.lines, report.problem.clone()), (4, None));
        assert_eq!(report.head, head);
        // Reopening continues the chain.
        let log = AuditLog::open(file(), false).await.expect("reopen");
        log.append(&record("SELECT 4"), "ok", 0);
        drop(log);
        assert_eq!(verify(&path).expect("verify").lines, 5);

        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        let without_second: String = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 1)
            .map(|(_, l)| format!("{l}\n"))
            .collect();
        std::fs::write(&path, &without_second).expect("write");
        let problem = verify(&path).expect("verify").problem.expect("a break");
        assert!(problem.starts_with("line 2:"), "{problem}");
        assert!(
            AuditLog::open(file(), false).await.is_err(),
            "a broken trail is not appended to"
        );

        let edited = text.replace("SELECT 2", "SELECT 9");
        std::fs::write(&path, edited).expect("write");
        let problem = verify(&path).expect("verify").problem.expect("a break");
        assert!(problem.starts_with("line 4:"), "{problem}");
    }

    #[tokio::test]
    async fn an_object_store_trail_chains_across_segments() {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let target = Target::Store {
            store: Arc::clone(&store),
            prefix: ObjectPath::from("audit"),
            url: "memory:///audit/".into(),
        };
        let log = AuditLog::open(target.clone(), false).await.expect("open");
        for i in 0..3 {
            log.append(&record(&format!("SELECT {i}")), "ok", i);
            // Let the writer put this line on its own, so the trail has several segments.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        log.close().await;
        let head = log.head();
        log.append(&record("SELECT 'late'"), "ok", 0);
        assert_eq!(log.head(), head, "a closed trail takes no more lines");
        let report = verify_target(&target).await.expect("verify");
        assert_eq!((report.lines, report.problem, report.head), (3, None, head));

        // Reopening continues the chain in a new segment; other objects under the prefix are ignored.
        store
            .put(&ObjectPath::from("audit/notes/readme.txt"), "x".into())
            .await
            .expect("put");
        let log = AuditLog::open(target.clone(), false).await.expect("reopen");
        log.append(&record("SELECT 3"), "ok", 0);
        log.close().await;
        let report = verify_target(&target).await.expect("verify");
        assert_eq!((report.lines, report.problem), (4, None));

        // A segment removed from the middle is found at the next one.
        let second = ObjectPath::from(format!("audit/{}", segment_name(1)));
        store.delete(&second).await.expect("delete");
        let problem = verify_target(&target)
            .await
            .expect("verify")
            .problem
            .expect("a break");
        assert!(
            problem.starts_with(&format!("segment {}", segment_name(2))),
            "{problem}"
        );
        assert!(AuditLog::open(target, false).await.is_err());
    }
}
