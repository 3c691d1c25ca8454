//! The live store: a write-ahead log, synced before a request is acknowledged, flushed every second into
//! JSON Lines files the archive reader reads, on the local disk or under an object-store prefix
//! ([`DataTarget`]).
//!
//! Layout under the store's directory (with an object-store prefix, `data/` is that prefix):
//! - `wal.jsonl`: messages acknowledged since the last flush, one line each;
//! - `data/<channel>/<day>/<first message's sequence>.jsonl`: flushed messages (written to a temporary
//!   name, synced, then renamed, so a reader never sees half a file);
//! - `data/_live.jsonl`: empty, so that a store with no messages yet is an archive location with an
//!   object in it (the archive reader refuses an empty location, a likely typo elsewhere).
//!
//! One thread owns the files: requests queue their messages, the thread appends every queued request's
//! messages, syncs once for all of them (group commit), then answers each. A message whose
//! `(channel, message_id)` was stored before is counted as a duplicate and not stored again, across
//! restarts too: at start the ids of `data/` and of the log are read back, a log line cut short by a crash
//! (never acknowledged) is dropped, and the log is flushed.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::sync::{broadcast, oneshot};

use crate::error::{LiveError, Result};
use crate::message::LiveMessage;

const WAL: &str = "wal.jsonl";
const DATA: &str = "data";
const PLACEHOLDER: &str = "_live.jsonl";

#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// How often the log is flushed into `data/`.
    pub flush_every: Duration,
    /// The log is also flushed once it holds this many messages.
    pub flush_messages: usize,
    /// Where flushed messages go.
    pub data: DataTarget,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            flush_every: Duration::from_secs(1),
            flush_messages: 50_000,
            data: DataTarget::Local,
        }
    }
}

/// Where a flush writes its files. The write-ahead log is always local: it is synced per request.
#[derive(Clone, Debug)]
pub enum DataTarget {
    /// `<dir>/data/`: each file written under a temporary name, synced, then renamed.
    Local,
    /// An object-store prefix (S3, GCS, Azure): each file one put, which no reader sees half done. The
    /// writer thread runs the store's calls on `runtime`.
    Store {
        store: Arc<dyn ObjectStore>,
        prefix: ObjectPath,
        runtime: tokio::runtime::Handle,
    },
}

/// What became of a request's messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Stored now.
    pub accepted: usize,
    /// Stored before (or twice in the request): not stored again.
    pub duplicates: usize,
}

struct Append {
    messages: Vec<LiveMessage>,
    done: oneshot::Sender<Result<Outcome>>,
}

/// What one flush made readable: the rule runner evaluates its rules on this, not on everything.
#[derive(Clone, Debug, Default)]
pub struct Flushed {
    /// `(channel, message_id)` of each message flushed.
    pub messages: Vec<(String, String)>,
    /// `(channel, conversation_id)` of the conversations those messages belong to, each once.
    pub conversations: Vec<(String, String)>,
    /// The newest message timestamp among them (microseconds since the epoch, UTC).
    pub newest_us: Option<i64>,
}

/// Flushes a subscriber may fall behind by before it is told it lagged (and must look at everything).
const FLUSH_FEED: usize = 1024;

/// A handle on the store's writer thread; cheap to clone.
#[derive(Clone, Debug)]
pub struct LiveStore {
    tx: std_mpsc::Sender<Append>,
    data: PathBuf,
    flushes: Arc<AtomicU64>,
    feed: broadcast::Sender<Arc<Flushed>>,
}

impl LiveStore {
    /// Opens (or creates) the store in `dir`: reads back what it holds, flushes the log, and starts the
    /// writer thread.
    pub fn open(dir: &Path, options: StoreOptions) -> Result<Self> {
        let dir = dir.to_path_buf();
        let (ready_tx, ready_rx) = std_mpsc::channel();
        let (tx, rx) = std_mpsc::channel::<Append>();
        // Recovery runs on the writer thread too: with an object-store target it waits on the store's
        // calls, which must not happen on a thread of the async runtime.
        std::thread::Builder::new()
            .name("colloquy-live-store".into())
            .spawn(move || match Writer::recover(&dir, options) {
                Ok(mut writer) => {
                    let handles = (
                        writer.dir.join(DATA),
                        Arc::clone(&writer.flushes),
                        writer.feed.clone(),
                    );
                    let _ = ready_tx.send(Ok(handles));
                    writer.run(&rx);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })?;
        let (data, flushes, feed) = ready_rx
            .recv()
            .map_err(|_| LiveError::Store("the store stopped while opening".into()))??;
        Ok(Self {
            tx,
            data,
            flushes,
            feed,
        })
    }

    /// What each flush from now on writes. A receiver that falls more than 1,024 flushes behind gets
    /// `RecvError::Lagged` and should treat everything as new.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Flushed>> {
        self.feed.subscribe()
    }

    /// How many flushes have written messages so far: a reader of `data/` that saw this number before has
    /// nothing new to read.
    pub fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::Acquire)
    }

    /// The local folder of flushed messages (unused with an object-store target).
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// Stores `messages`; returns once they are on disk (or refused).
    pub async fn append(&self, messages: Vec<LiveMessage>) -> Result<Outcome> {
        let (done, rx) = oneshot::channel();
        self.tx
            .send(Append { messages, done })
            .map_err(|_| LiveError::Store("the store has stopped".into()))?;
        rx.await
            .map_err(|_| LiveError::Store("the store stopped before answering".into()))?
    }
}

/// A message in the log, as the line written there (newline included) and where its flush puts it.
struct Pending {
    seq: u64,
    /// `(channel folder, day)`.
    folder: (String, String),
    line: Vec<u8>,
    channel: String,
    conversation_id: String,
    message_id: String,
    ts_us: Option<i64>,
}

impl Pending {
    fn new(seq: u64, m: &LiveMessage) -> Self {
        let mut line = m.to_line();
        line.push(b'\n');
        Self {
            seq,
            folder: (folder_name(&m.channel), m.day().to_owned()),
            line,
            channel: m.channel.clone(),
            conversation_id: m.conversation_id.clone(),
            message_id: m.message_id.clone(),
            ts_us: chrono::DateTime::parse_from_rfc3339(&m.ts)
                .ok()
                .map(|t| t.timestamp_micros()),
        }
    }
}

struct Writer {
    dir: PathBuf,
    options: StoreOptions,
    wal: File,
    /// `(channel, message_id)` of every stored message.
    seen: HashSet<(String, String)>,
    /// Messages in the log, not flushed yet.
    pending: Vec<Pending>,
    next_seq: u64,
    last_flush: Instant,
    flushes: Arc<AtomicU64>,
    feed: broadcast::Sender<Arc<Flushed>>,
}

impl Writer {
    fn recover(dir: &Path, options: StoreOptions) -> Result<Self> {
        fs::create_dir_all(dir.join(DATA))?;
        let dir = dir.canonicalize()?;
        let mut seen = HashSet::new();
        let mut next_seq = 0;
        for (stem, content) in existing_files(&dir, &options.data)? {
            // Named by the sequence number of its first message.
            if let Ok(seq) = stem.parse::<u64>() {
                next_seq = next_seq.max(seq + 1);
            }
            for line in content.split(|&b| b == b'\n') {
                if let Ok(m) = serde_json::from_slice::<LiveMessage>(line) {
                    seen.insert((m.channel, m.message_id));
                }
            }
        }
        let wal_path = dir.join(WAL);
        let mut pending = Vec::new();
        if let Ok(file) = File::open(&wal_path) {
            for line in BufReader::new(file).split(b'\n') {
                let line = line?;
                // A line cut short was being written when the process stopped: it was never
                // acknowledged (the sync comes after the whole request), and it does not parse.
                let Ok(m) = serde_json::from_slice::<LiveMessage>(&line) else {
                    continue;
                };
                if seen.insert((m.channel.clone(), m.message_id.clone())) {
                    pending.push(Pending::new(next_seq, &m));
                    next_seq += 1;
                }
            }
        }
        let wal = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&wal_path)?;
        let mut w = Self {
            dir,
            options,
            wal,
            seen,
            pending,
            next_seq,
            last_flush: Instant::now(),
            flushes: Arc::new(AtomicU64::new(0)),
            feed: broadcast::channel(FLUSH_FEED).0,
        };
        w.flush()?;
        Ok(w)
    }

    fn run(&mut self, rx: &std_mpsc::Receiver<Append>) {
        loop {
            let wait = self
                .options
                .flush_every
                .saturating_sub(self.last_flush.elapsed());
            let first = match rx.recv_timeout(wait) {
                Ok(a) => Some(a),
                Err(std_mpsc::RecvTimeoutError::Timeout) => None,
                Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                    if let Err(e) = self.flush() {
                        tracing::error!("live store: final flush failed: {e}");
                    }
                    return;
                }
            };
            if let Some(first) = first {
                // Every request queued meanwhile shares one sync.
                let mut batch = vec![first];
                batch.extend(rx.try_iter());
                self.append(batch);
            }
            let due = self.last_flush.elapsed() >= self.options.flush_every
                || self.pending.len() >= self.options.flush_messages;
            // On failure the messages stay in the log (synced) and in `pending`: the next flush retries
            // with the same file names.
            if due && let Err(e) = self.flush() {
                tracing::error!("live store: flush failed: {e}");
            }
        }
    }

    fn append(&mut self, batch: Vec<Append>) {
        let mut lines = Vec::new();
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut added: Vec<Pending> = Vec::new();
        // Keys new in this batch: marked seen at once (a message twice in the batch is a duplicate),
        // and forgotten again if the log cannot be written.
        let mut fresh: Vec<(String, String)> = Vec::new();
        for a in &batch {
            let mut o = Outcome::default();
            for m in &a.messages {
                let key = (m.channel.clone(), m.message_id.clone());
                if !self.seen.insert(key.clone()) {
                    o.duplicates += 1;
                    continue;
                }
                fresh.push(key);
                let p = Pending::new(self.next_seq + added.len() as u64, m);
                lines.extend_from_slice(&p.line);
                added.push(p);
                o.accepted += 1;
            }
            outcomes.push(o);
        }
        let written = if lines.is_empty() {
            Ok(())
        } else {
            self.wal
                .write_all(&lines)
                .and_then(|()| self.wal.sync_data())
        };
        match written {
            Ok(()) => {
                self.next_seq += added.len() as u64;
                self.pending.extend(added);
                for (a, o) in batch.into_iter().zip(outcomes) {
                    let _ = a.done.send(Ok(o));
                }
            }
            Err(e) => {
                for key in &fresh {
                    self.seen.remove(key);
                }
                // Nothing is acknowledged; a partly written tail is cut off so the log stays whole.
                let keep = self.pending_bytes();
                let _ = self.rewrite_wal(keep);
                for a in batch {
                    let _ = a
                        .done
                        .send(Err(LiveError::Store(format!("cannot write the log: {e}"))));
                }
            }
        }
    }

    fn pending_bytes(&self) -> Vec<u8> {
        self.pending
            .iter()
            .flat_map(|p| p.line.iter().copied())
            .collect()
    }

    fn rewrite_wal(&mut self, content: Vec<u8>) -> std::io::Result<()> {
        let path = self.dir.join(WAL);
        let tmp = self.dir.join("wal.jsonl.tmp");
        write_synced(&tmp, &content)?;
        fs::rename(&tmp, &path)?;
        self.wal = OpenOptions::new().append(true).open(&path)?;
        Ok(())
    }

    /// Writes the pending messages into `data/<channel>/<day>/<seq>.jsonl` and empties the log.
    fn flush(&mut self) -> Result<()> {
        self.last_flush = Instant::now();
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut groups: BTreeMap<&(String, String), (u64, Vec<u8>)> = BTreeMap::new();
        for p in &self.pending {
            let g = groups.entry(&p.folder).or_insert((p.seq, Vec::new()));
            g.1.extend_from_slice(&p.line);
        }
        for ((channel, day), (seq, content)) in groups {
            let name = format!("{seq:020}.jsonl");
            match &self.options.data {
                DataTarget::Local => {
                    let folder = self.dir.join(DATA).join(channel).join(day);
                    fs::create_dir_all(&folder)?;
                    let tmp = folder.join(format!(".{name}.tmp"));
                    write_synced(&tmp, &content)?;
                    fs::rename(&tmp, folder.join(name))?;
                    sync_dir(&folder)?;
                }
                DataTarget::Store {
                    store,
                    prefix,
                    runtime,
                } => {
                    let key = prefix
                        .clone()
                        .join(channel.as_str())
                        .join(day.as_str())
                        .join(name.as_str());
                    runtime
                        .block_on(store.put(&key, content.into()))
                        .map_err(|e| LiveError::Store(format!("cannot write {key}: {e}")))?;
                }
            }
        }
        let flushed = std::mem::take(&mut self.pending);
        self.rewrite_wal(Vec::new())?;
        self.flushes.fetch_add(1, Ordering::Release);
        if self.feed.receiver_count() > 0 {
            let mut conversations: HashSet<(String, String)> = HashSet::new();
            let mut summary = Flushed::default();
            for p in flushed {
                summary.newest_us = summary.newest_us.max(p.ts_us);
                let conversation = (p.channel.clone(), p.conversation_id);
                if !conversations.contains(&conversation) {
                    conversations.insert(conversation.clone());
                    summary.conversations.push(conversation);
                }
                summary.messages.push((p.channel, p.message_id));
            }
            // Nobody listening is not an error: the rules may be off.
            let _ = self.feed.send(Arc::new(summary));
        }
        Ok(())
    }
}

/// A channel as a folder name: letters, digits, `-` and `_` kept, anything else `_`.
fn folder_name(channel: &str) -> String {
    let name: String = channel
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.starts_with('.') || name.is_empty() {
        format!("_{name}")
    } else {
        name
    }
}

fn write_synced(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(content)?;
    f.sync_all()
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Every flushed file under `data/` (temporary files skipped).
fn data_files(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "jsonl")
                && !entry.file_name().to_string_lossy().starts_with('.')
            {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The flushed files of the store, each as its name's stem and its content; writes the placeholder when
/// there is none.
fn existing_files(dir: &Path, target: &DataTarget) -> Result<Vec<(String, Vec<u8>)>> {
    match target {
        DataTarget::Local => {
            let placeholder = dir.join(DATA).join(PLACEHOLDER);
            if !placeholder.exists() {
                write_synced(&placeholder, b"")?;
            }
            let mut out = Vec::new();
            for file in data_files(&dir.join(DATA))? {
                let stem = file
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default()
                    .to_owned();
                out.push((stem, fs::read(&file)?));
            }
            Ok(out)
        }
        DataTarget::Store {
            store,
            prefix,
            runtime,
        } => runtime.block_on(async {
            let fail = |e: object_store::Error| LiveError::Store(format!("{prefix}: {e}"));
            let objects: Vec<_> = store.list(Some(prefix)).try_collect().await.map_err(fail)?;
            let placeholder = prefix.clone().join(PLACEHOLDER);
            if !objects.iter().any(|o| o.location == placeholder) {
                store
                    .put(&placeholder, Vec::<u8>::new().into())
                    .await
                    .map_err(fail)?;
            }
            let mut out = Vec::new();
            for o in objects {
                let Some(name) = o.location.filename() else {
                    continue;
                };
                let Some(stem) = name.strip_suffix(".jsonl") else {
                    continue;
                };
                let stem = stem.to_owned();
                let bytes = store
                    .get(&o.location)
                    .await
                    .map_err(fail)?
                    .bytes()
                    .await
                    .map_err(fail)?;
                out.push((stem, bytes.to_vec()));
            }
            Ok(out)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: &str, channel: &str, day: u32) -> LiveMessage {
        LiveMessage {
            message_id: id.into(),
            channel: channel.into(),
            conversation_id: "c".into(),
            ts: format!("2026-03-{day:02}T10:00:00Z"),
            sender_id: None,
            sender_name: None,
            sender_role: Some("customer".into()),
            text: Some(format!("text of {id}")),
            reply_to: None,
        }
    }

    fn stored(dir: &Path) -> Vec<String> {
        let mut ids = Vec::new();
        for f in data_files(&dir.join(DATA)).expect("listing") {
            for line in fs::read_to_string(f).expect("readable").lines() {
                let m: LiveMessage = serde_json::from_str(line).expect("a message");
                ids.push(format!("{}/{}/{}", m.channel, m.day(), m.message_id));
            }
        }
        ids.sort();
        ids
    }

    #[tokio::test]
    async fn each_flush_tells_subscribers_what_it_wrote() {
        let dir = tempfile::tempdir().expect("dir");
        let opts = StoreOptions {
            flush_every: Duration::from_millis(20),
            ..StoreOptions::default()
        };
        let store = LiveStore::open(dir.path(), opts).expect("open");
        let mut feed = store.subscribe();
        let mut late = msg("2", "sms", 4);
        late.conversation_id = "other".into();
        store
            .append(vec![msg("1", "sms", 3), late, msg("3", "sms", 2)])
            .await
            .expect("stored");
        let flushed = tokio::time::timeout(Duration::from_secs(5), feed.recv())
            .await
            .expect("a flush")
            .expect("received");
        let ids: Vec<&str> = flushed.messages.iter().map(|m| m.1.as_str()).collect();
        assert_eq!(ids, ["1", "2", "3"]);
        assert_eq!(
            flushed.conversations,
            [
                ("sms".to_owned(), "c".to_owned()),
                ("sms".to_owned(), "other".to_owned())
            ]
        );
        // 2026-03-04T10:00:00Z, the newest of the three.
        assert_eq!(flushed.newest_us, Some(1_772_618_400_000_000));
        // A duplicate writes nothing, and no flush is announced for it.
        store
            .append(vec![msg("1", "sms", 3)])
            .await
            .expect("answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(feed.try_recv().is_err());
    }

    #[tokio::test]
    async fn stores_once_and_flushes_by_channel_and_day() {
        let dir = tempfile::tempdir().expect("dir");
        let opts = StoreOptions {
            flush_every: Duration::from_millis(50),
            ..StoreOptions::default()
        };
        let store = LiveStore::open(dir.path(), opts.clone()).expect("open");
        let o = store
            .append(vec![
                msg("1", "web chat", 2),
                msg("2", "sms", 3),
                msg("1", "web chat", 2),
            ])
            .await
            .expect("stored");
        assert_eq!(
            o,
            Outcome {
                accepted: 2,
                duplicates: 1
            }
        );
        let o = store
            .append(vec![msg("1", "web chat", 2)])
            .await
            .expect("answered");
        assert_eq!(
            o,
            Outcome {
                accepted: 0,
                duplicates: 1
            }
        );
        // The same id on another channel is another message.
        let o = store
            .append(vec![msg("1", "sms", 3)])
            .await
            .expect("stored");
        assert_eq!(o.accepted, 1);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            stored(dir.path()),
            [
                "sms/2026-03-03/1",
                "sms/2026-03-03/2",
                "web chat/2026-03-02/1"
            ]
        );
        assert!(dir.path().join("data/web_chat/2026-03-02").is_dir());
        assert_eq!(fs::read(dir.path().join(WAL)).expect("log").len(), 0);
        drop(store);
        // Reopened: what was stored is still known.
        let store = LiveStore::open(dir.path(), opts).expect("reopen");
        let o = store
            .append(vec![msg("2", "sms", 3), msg("3", "sms", 3)])
            .await
            .expect("answered");
        assert_eq!(
            o,
            Outcome {
                accepted: 1,
                duplicates: 1
            }
        );
    }

    #[test]
    fn recovery_replays_the_log_once_and_drops_a_torn_line() {
        let dir = tempfile::tempdir().expect("dir");
        fs::create_dir_all(dir.path().join(DATA).join("sms").join("2026-03-03")).expect("mkdir");
        // Flushed before a crash that left the same message in the log too.
        let flushed = msg("1", "sms", 3);
        fs::write(
            dir.path()
                .join("data/sms/2026-03-03/00000000000000000000.jsonl"),
            [flushed.to_line(), b"\n".to_vec()].concat(),
        )
        .expect("write");
        let mut wal = Vec::new();
        for m in [msg("1", "sms", 3), msg("2", "sms", 3)] {
            wal.extend(m.to_line());
            wal.push(b'\n');
        }
        let torn = msg("3", "sms", 3).to_line();
        wal.extend_from_slice(&torn[..torn.len() / 2]);
        fs::write(dir.path().join(WAL), wal).expect("write");
        let w = Writer::recover(dir.path(), StoreOptions::default()).expect("recovered");
        assert!(w.pending.is_empty());
        assert_eq!(w.next_seq, 2);
        assert_eq!(stored(dir.path()), ["sms/2026-03-03/1", "sms/2026-03-03/2"]);
        assert_eq!(fs::read(dir.path().join(WAL)).expect("log").len(), 0);
    }

    #[test]
    fn folder_names_are_safe() {
        assert_eq!(folder_name("web chat"), "web_chat");
        assert_eq!(folder_name("../etc"), "___etc");
        assert_eq!(folder_name(".hidden"), "_hidden");
        assert_eq!(folder_name(""), "_");
        assert_eq!(folder_name("whatsapp"), "whatsapp");
    }
}
