//! The audit trail: one JSON line per statement (who, from where, what, when, how long, how many rows,
//! the outcome, the models it used), appended to a local file and chained by hash, so that a line
//! deleted or edited afterwards is found by [`verify`] (`colloquy audit verify FILE`).
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
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

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

struct Chain {
    file: std::fs::File,
    prev: String,
    seq: u64,
}

/// The append-only audit file of a server.
pub struct AuditLog {
    path: PathBuf,
    /// Whether literals are elided from SQL (a governed server).
    pub elide_literals: bool,
    chain: Mutex<Chain>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
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

impl AuditLog {
    /// Opens (or creates) the file and continues its chain, after checking it: a server does not
    /// append to a trail that was tampered with.
    pub fn open(path: &Path, elide_literals: bool) -> Result<Self, String> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("audit log folder {}: {e}", dir.display()))?;
        }
        let (prev, seq) = if path.exists() {
            let report = verify(path)?;
            if let Some(problem) = report.problem {
                return Err(format!(
                    "audit log {} does not verify ({problem}): move it aside and start a new one",
                    path.display()
                ));
            }
            (report.head, report.lines)
        } else {
            (GENESIS.to_string(), 0)
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("audit log {}: {e}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            elide_literals,
            chain: Mutex::new(Chain { file, prev, seq }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The hash of the last line written.
    pub fn head(&self) -> String {
        self.chain
            .lock()
            .map(|c| c.prev.clone())
            .unwrap_or_default()
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
        let written = chain
            .file
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| chain.file.flush());
        match written {
            Ok(()) => {
                chain.prev = hash_line(&line);
                chain.seq += 1;
            }
            Err(e) => tracing::error!("audit log {}: entry not written: {e}", self.path.display()),
        }
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub lines: u64,
    /// The hash of the last line (the value to compare with one kept elsewhere).
    pub head: String,
    /// The first break: `line N: …`.
    pub problem: Option<String>,
}

/// Checks the chain of an audit file line by line.
pub fn verify(path: &Path) -> Result<Report, String> {
    let file =
        std::fs::File::open(path).map_err(|e| format!("audit log {}: {e}", path.display()))?;
    let mut prev = GENESIS.to_string();
    let mut lines = 0u64;
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let n = i + 1;
        let line = line.map_err(|e| format!("{}: line {n}: {e}", path.display()))?;
        let entry: Entry = match serde_json::from_str(&line) {
            Ok(e) => e,
            Err(e) => {
                return Ok(Report {
                    lines,
                    head: prev,
                    problem: Some(format!("line {n}: not an audit entry ({e})")),
                });
            }
        };
        if entry.prev != prev || entry.seq != lines {
            return Ok(Report {
                lines,
                head: prev,
                problem: Some(format!(
                    "line {n}: the chain breaks here (seq {}, expected {lines}): the line before it was removed or changed, or this one was",
                    entry.seq
                )),
            });
        }
        prev = hash_line(&line);
        lines += 1;
    }
    Ok(Report {
        lines,
        head: prev,
        problem: None,
    })
}

/// The table the audit file is read as (`audit_log`), for roles granted it.
pub fn table_sql(path: &Path) -> String {
    format!(
        "CREATE OR REPLACE EXTERNAL TABLE audit_log (seq BIGINT, prev VARCHAR, ts VARCHAR, \"user\" VARCHAR, \
         roles VARCHAR[], session VARCHAR, client VARCHAR, kind VARCHAR, sql VARCHAR, params VARCHAR, \
         duration_ms BIGINT, \"rows\" BIGINT, outcome VARCHAR, models VARCHAR[]) STORED AS JSON LOCATION '{}'",
        path.display().to_string().replace('\'', "''")
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

    #[test]
    fn the_chain_finds_a_removed_or_edited_line() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("audit/audit.jsonl");
        let log = AuditLog::open(&path, false).expect("open");
        for i in 0..4 {
            log.append(&record(&format!("SELECT {i}")), "ok", i);
        }
        let head = log.head();
        drop(log);
        let report = verify(&path).expect("verify");
        assert_eq!((report.lines, report.problem.clone()), (4, None));
        assert_eq!(report.head, head);
        // Reopening continues the chain.
        let log = AuditLog::open(&path, false).expect("reopen");
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
            AuditLog::open(&path, false).is_err(),
            "a broken trail is not appended to"
        );

        let edited = text.replace("SELECT 2", "SELECT 9");
        std::fs::write(&path, edited).expect("write");
        let problem = verify(&path).expect("verify").problem.expect("a break");
        assert!(problem.starts_with("line 4:"), "{problem}");
    }
}
