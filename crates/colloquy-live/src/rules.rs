//! Rule events: which rule matched what, once, and what became of its action.
//!
//! `<dir>/rules/events.jsonl` holds one line per event, synced before the action runs:
//! - `fired`: a rule matched a key (a conversation) for the first time; `detail` is the matched row;
//! - `delivered` / `dead_letter`: the webhook answered 2xx, or every try failed (`detail` says why);
//! - `recorded`: the rule has no webhook; the event is the action (clients read the table
//!   `rule_events`).
//!
//! A `(rule, key)` fires once, across restarts: the log is read back at start. A `fired` event whose
//! delivery never finished (the server stopped meanwhile) is delivered again after the restart, with the
//! same `X-Colloquy-Event` header, so a receiver can tell a repeat.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{LiveError, Result};

pub const RULES_DIR: &str = "rules";
pub const EVENTS: &str = "events.jsonl";

/// One line of the event log (and one row of `rule_events`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleEvent {
    pub rule: String,
    pub key: String,
    /// RFC 3339, UTC.
    pub at: String,
    /// `fired`, `delivered`, `dead_letter` or `recorded`.
    pub status: String,
    /// Webhook tries so far.
    pub attempts: u32,
    /// The matched row (JSON) on `fired`; the answer or error after a delivery.
    pub detail: String,
}

impl RuleEvent {
    fn new(rule: &str, key: &str, status: &str, attempts: u32, detail: String) -> Self {
        Self {
            rule: rule.to_owned(),
            key: key.to_owned(),
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            status: status.to_owned(),
            attempts,
            detail,
        }
    }
}

/// The event log, shared by the rule runner and the deliveries.
///
/// Writers append under one lock and sync outside it, sharing syncs (group commit): a delivery that
/// finds its line already synced by another's sync does not sync again. At a thousand actions a second a
/// sync per line was most of the rule latency.
#[derive(Debug)]
pub struct RuleLog {
    path: PathBuf,
    inner: Mutex<LogState>,
    /// A handle on the same file for syncing, and how many appends the last sync covered.
    sync: Mutex<(File, u64)>,
}

#[derive(Debug)]
struct LogState {
    file: File,
    fired: HashSet<(String, String)>,
    /// Appends so far.
    written: u64,
}

impl RuleLog {
    /// Opens the log in `<dir>/rules/`; returns it with the `fired` events whose delivery did not finish.
    pub fn open(dir: &Path) -> Result<(Self, Vec<RuleEvent>)> {
        let folder = dir.join(RULES_DIR);
        fs::create_dir_all(&folder)?;
        let path = folder.join(EVENTS);
        let mut fired = HashSet::new();
        let mut open: HashMap<(String, String), RuleEvent> = HashMap::new();
        if let Ok(file) = File::open(&path) {
            for line in BufReader::new(file).split(b'\n') {
                // A line cut short by a crash was never acted on: its rule fires again.
                let Ok(e) = serde_json::from_slice::<RuleEvent>(&line?) else {
                    continue;
                };
                let k = (e.rule.clone(), e.key.clone());
                fired.insert(k.clone());
                match e.status.as_str() {
                    "fired" => {
                        open.insert(k, e);
                    }
                    _ => {
                        open.remove(&k);
                    }
                }
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let sync = file.try_clone()?;
        let mut pending: Vec<RuleEvent> = open.into_values().collect();
        pending.sort_by(|a, b| a.at.cmp(&b.at));
        Ok((
            Self {
                path,
                inner: Mutex::new(LogState {
                    file,
                    fired,
                    written: 0,
                }),
                sync: Mutex::new((sync, 0)),
            },
            pending,
        ))
    }

    /// The folder clients read as `rule_events`.
    pub fn folder(&self) -> &Path {
        self.path.parent().unwrap_or(&self.path)
    }

    /// Records that `rule` matched `key` with `row`, unless it did before; `Some(event)` when this is
    /// the first time (synced to disk before it returns).
    pub fn fire(&self, rule: &str, key: &str, row: String) -> Result<Option<RuleEvent>> {
        Ok(self
            .fire_all(rule, vec![(key.to_owned(), row)], "fired")?
            .pop())
    }

    /// [`RuleLog::fire`] for many matches of one rule, with one write and one sync: the events of the
    /// keys that had not fired yet (a key twice in `matches` fires once). `status` is `fired` (an
    /// action follows) or `recorded` (the event is the action).
    pub fn fire_all(
        &self,
        rule: &str,
        matches: Vec<(String, String)>,
        status: &str,
    ) -> Result<Vec<RuleEvent>> {
        let mut events = Vec::new();
        let seq = {
            let mut state = self.lock()?;
            let mut lines = Vec::new();
            let mut keys = HashSet::new();
            for (key, row) in matches {
                let k = (rule.to_owned(), key);
                if state.fired.contains(&k) || !keys.insert(k.1.clone()) {
                    continue;
                }
                let event = RuleEvent::new(rule, &k.1, status, 0, row);
                line_of(&event, &mut lines)?;
                events.push(event);
            }
            if events.is_empty() {
                return Ok(events);
            }
            state.file.write_all(&lines)?;
            state.written += 1;
            state.written
        };
        self.synced(seq)?;
        // Marked only once on disk; the rule runner is the one caller, so nothing fires in between.
        let mut state = self.lock()?;
        for e in &events {
            state.fired.insert((e.rule.clone(), e.key.clone()));
        }
        Ok(events)
    }

    /// The keys `rule` has fired for so far.
    pub fn fired_keys(&self, rule: &str) -> Result<Vec<String>> {
        Ok(self
            .lock()?
            .fired
            .iter()
            .filter(|(r, _)| r == rule)
            .map(|(_, k)| k.clone())
            .collect())
    }

    /// Records what became of a fired event's action.
    pub fn outcome(
        &self,
        fired: &RuleEvent,
        status: &str,
        attempts: u32,
        detail: String,
    ) -> Result<()> {
        let mut line = Vec::new();
        line_of(
            &RuleEvent::new(&fired.rule, &fired.key, status, attempts, detail),
            &mut line,
        )?;
        let seq = {
            let mut state = self.lock()?;
            state.file.write_all(&line)?;
            state.written += 1;
            state.written
        };
        self.synced(seq)
    }

    /// Returns once append number `seq` is on disk: syncs, unless a sync that began after it was
    /// written already did.
    fn synced(&self, seq: u64) -> Result<()> {
        let mut sync = self
            .sync
            .lock()
            .map_err(|_| LiveError::Store("the rule log's lock is poisoned".into()))?;
        if sync.1 >= seq {
            return Ok(());
        }
        // Everything written before the sync starts is covered by it.
        let upto = self.lock()?.written;
        sync.0.sync_data()?;
        sync.1 = upto;
        Ok(())
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, LogState>> {
        self.inner
            .lock()
            .map_err(|_| LiveError::Store("the rule log's lock is poisoned".into()))
    }
}

fn line_of(event: &RuleEvent, out: &mut Vec<u8>) -> Result<()> {
    serde_json::to_writer(&mut *out, event).map_err(|e| LiveError::Store(e.to_string()))?;
    out.push(b'\n');
    Ok(())
}

/// How a webhook action is tried.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub tries: u32,
    /// Waited before the second try, doubled before each later one.
    pub first_backoff: Duration,
    pub timeout: Duration,
}

impl Default for Delivery {
    fn default() -> Self {
        Self {
            tries: 5,
            first_backoff: Duration::from_millis(500),
            timeout: Duration::from_secs(10),
        }
    }
}

/// The names a webhook template's `{{name}}` placeholders use, in order.
pub fn placeholders(template: &str) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| LiveError::BadRequest("the template has a {{ without its }}".into()))?;
        names.push(after[..end].trim().to_owned());
        rest = &after[end + 2..];
    }
    Ok(names)
}

/// A webhook's body from `template`: each `{{column}}` becomes the matched row's value as JSON (null when
/// the row has none), `{{rule}}`, `{{key}}` and `{{fired_at}}` the event's. Values are written as JSON,
/// so a text cannot break out of its place; the whole must be JSON.
pub fn render(template: &str, event: &RuleEvent, row: &serde_json::Value) -> Result<String> {
    let mut out = String::with_capacity(template.len() * 2);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| LiveError::BadRequest("the template has a {{ without its }}".into()))?;
        let value = match after[..end].trim() {
            "rule" => serde_json::Value::from(event.rule.as_str()),
            "key" => serde_json::Value::from(event.key.as_str()),
            "fired_at" => serde_json::Value::from(event.at.as_str()),
            name => row.get(name).cloned().unwrap_or(serde_json::Value::Null),
        };
        out.push_str(&value.to_string());
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    serde_json::from_str::<serde_json::Value>(&out).map_err(|e| {
        LiveError::BadRequest(format!("the webhook template does not give JSON: {e}"))
    })?;
    Ok(out)
}

/// POSTs `event` (with its matched row) to `url` until it answers 2xx or the tries run out, then records
/// `delivered` or `dead_letter`. The body is the event as JSON (`rule`, `key`, `fired_at`, `row`), or
/// `template` rendered ([`render`]); a template that does not render is dead-lettered at once.
pub async fn deliver(
    client: &reqwest::Client,
    log: &RuleLog,
    url: &str,
    template: Option<&str>,
    event: &RuleEvent,
    how: &Delivery,
) -> Result<()> {
    let row: serde_json::Value =
        serde_json::from_str(&event.detail).unwrap_or(serde_json::Value::Null);
    let body = match template {
        Some(t) => match render(t, event, &row) {
            Ok(body) => body,
            Err(e) => return log.outcome(event, "dead_letter", 0, e.to_string()),
        },
        None => serde_json::json!({
            "rule": event.rule, "key": event.key, "fired_at": event.at, "row": row,
        })
        .to_string(),
    };
    let mut wait = how.first_backoff;
    let mut last = String::new();
    for attempt in 1..=how.tries.max(1) {
        let sent = client
            .post(url)
            .timeout(how.timeout)
            .header("content-type", "application/json")
            .header("x-colloquy-event", format!("{}/{}", event.rule, event.key))
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(resp) if resp.status().is_success() => {
                return log.outcome(
                    event,
                    "delivered",
                    attempt,
                    format!("HTTP {}", resp.status().as_u16()),
                );
            }
            Ok(resp) => last = format!("HTTP {}", resp.status().as_u16()),
            Err(e) => last = e.to_string(),
        }
        if attempt < how.tries {
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
    tracing::warn!(
        "rule {}: {} dead-lettered after {} tries: {last}",
        event.rule,
        event.key,
        how.tries
    );
    log.outcome(event, "dead_letter", how.tries.max(1), last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_once_across_restarts_and_reopens_unfinished_deliveries() {
        let dir = tempfile::tempdir().expect("dir");
        let (log, pending) = RuleLog::open(dir.path()).expect("open");
        assert!(pending.is_empty());
        let a = log
            .fire("neg", "c1", "{\"x\":1}".into())
            .expect("logged")
            .expect("new");
        assert!(
            log.fire("neg", "c1", "{}".into())
                .expect("logged")
                .is_none()
        );
        let b = log
            .fire("neg", "c2", "{}".into())
            .expect("logged")
            .expect("new");
        assert!(
            log.fire("other", "c1", "{}".into())
                .expect("logged")
                .is_some()
        );
        log.outcome(&a, "delivered", 1, "HTTP 200".into())
            .expect("logged");
        drop(log);
        let (log, pending) = RuleLog::open(dir.path()).expect("reopen");
        // c2's delivery never finished; "other" has no outcome either.
        let keys: Vec<(&str, &str)> = pending
            .iter()
            .map(|e| (e.rule.as_str(), e.key.as_str()))
            .collect();
        assert_eq!(keys.len(), 2);
        assert!(keys.contains(&("neg", "c2")) && keys.contains(&("other", "c1")));
        assert_eq!(pending.iter().find(|e| e.key == "c2"), Some(&b));
        assert!(
            log.fire("neg", "c1", "{}".into())
                .expect("logged")
                .is_none()
        );
        assert!(
            log.fire("neg", "c2", "{}".into())
                .expect("logged")
                .is_none()
        );
        assert!(log.folder().ends_with(RULES_DIR));
    }

    #[test]
    fn templates_render_values_as_json_and_refuse_what_is_not() {
        let event = RuleEvent::new("spike", "k/1", "fired", 0, String::new());
        let row = serde_json::json!({"text": "he said \"no\"}, {", "n": 5});
        let body = render(
            r#"{"rule": {{rule}}, "text": {{ text }}, "n": {{n}}, "missing": {{nothing}}}"#,
            &event,
            &row,
        )
        .expect("renders");
        let back: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(back["rule"], "spike");
        assert_eq!(back["text"], "he said \"no\"}, {");
        assert_eq!(back["n"], 5);
        assert!(back["missing"].is_null());
        assert!(
            render("{\"a\": {{n}", &event, &row)
                .expect_err("refused")
                .to_string()
                .contains("without its }}")
        );
        assert!(
            render("text: {{text}}", &event, &row)
                .expect_err("refused")
                .to_string()
                .contains("does not give JSON")
        );
        assert_eq!(
            placeholders("{{a}} x {{ b }}").expect("names"),
            ["a".to_owned(), "b".to_owned()]
        );
    }

    #[tokio::test]
    async fn an_unreachable_receiver_is_dead_lettered() {
        let dir = tempfile::tempdir().expect("dir");
        let (log, _) = RuleLog::open(dir.path()).expect("open");
        let e = log
            .fire("neg", "c1", "{}".into())
            .expect("logged")
            .expect("new");
        let how = Delivery {
            tries: 2,
            first_backoff: Duration::from_millis(10),
            timeout: Duration::from_secs(2),
        };
        // Port 9 on loopback: nothing listens (discard), so the connection is refused.
        deliver(
            &reqwest::Client::new(),
            &log,
            "http://127.0.0.1:9/hook",
            None,
            &e,
            &how,
        )
        .await
        .expect("recorded");
        let text = fs::read_to_string(dir.path().join(RULES_DIR).join(EVENTS)).expect("log");
        let last: RuleEvent =
            serde_json::from_str(text.lines().last().expect("a line")).expect("an event");
        assert_eq!((last.status.as_str(), last.attempts), ("dead_letter", 2));
    }
}
