//! From a location to scan units, streamed: objects are listed as the scan runs and handed to whichever
//! output partition asks next, so memory does not grow with the number of objects in an archive.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

use datafusion::common::runtime::SpawnedTask;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use tokio::sync::mpsc;

use crate::container::compression_of;
use crate::detect::{is_hidden, is_media};
use crate::error::{ArchiveError, Result};
use crate::formats::Format;
use crate::local::LocalFiles;
use crate::progress::{PROGRESS, ScanProgress};
use crate::scan::{PlacePruner, ScanShared};
use crate::schema::MESSAGE_COLUMNS;
use colloquy_store::Location;

/// Channels that logs (JSONL, CSV) carry without a format of their own, recognised as folder names
/// (`exports/sms/2024-01.csv`) next to the registered formats' own channels.
const LOG_CHANNELS: &[&str] = &["sms", "webchat", "email"];

fn is_channel_word(word: &str) -> bool {
    LOG_CHANNELS.contains(&word) || Format::all().any(|f| f.spec().channel() == Some(word))
}

/// Chunks of units waiting between the listing and the readers, per scan.
const FEED_DEPTH: usize = 8;
/// Units handed over at a time. One at a time, each unit a reader took woke the listing task (the
/// channel was full) and each unit the listing sent woke a reader: 1 eventfd write and 6 futex calls per
/// object of a 46k-zip archive.
const UNIT_CHUNK: usize = 32;

/// How far a store's listing runs ahead of the units sent: this many batches of up to `LIST_BATCH`
/// objects (S3 lists 1,000 a request, so about 4 requests; Azure 5,000).
const LIST_AHEAD_BATCHES: usize = 4;
const LIST_BATCH: usize = 1_000;

/// The first units of a listing go one at a time (see [`Lister::send`]).
const SINGLE_UNITS: u64 = 256;

/// What the listing sends: units in listing order, a chunk at a time.
pub type UnitChunk = Result<Vec<ScanUnit>>;

/// Where a unit sits: the hive `key=value` folders above it and the channel its path names. The units
/// of one folder share one `Place`.
#[derive(Debug, PartialEq, Eq)]
pub struct Place {
    pub partitions: Vec<(String, String)>,
    pub default_channel: Option<String>,
}

impl Place {
    pub fn value(&self, key: &str) -> Option<&str> {
        self.partitions
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// What one reader task fetches and parses as a whole.
#[derive(Debug, Clone)]
pub enum UnitKind {
    Object {
        location: Path,
        size: u64,
        /// The object's version as listed (modification time and entity tag): the cache key of its
        /// parsed messages.
        version: String,
    },
    /// The lines of a large JSON Lines object that start in `start..end`.
    Range {
        location: Path,
        size: u64,
        start: u64,
        end: u64,
        version: String,
    },
    /// An unpacked folder export (Slack's): the folder holding its marker files (`users.json`,
    /// `channels.json`), and every file below it.
    ExportFolder {
        format: Format,
        root: Path,
        files: Vec<ObjectMeta>,
    },
}

#[derive(Debug, Clone)]
pub struct ScanUnit {
    pub kind: UnitKind,
    pub place: Arc<Place>,
}

impl ScanUnit {
    /// Bytes the unit reads.
    pub fn size(&self) -> u64 {
        match &self.kind {
            UnitKind::Object { size, .. } => *size,
            UnitKind::Range { start, end, .. } => end - start,
            UnitKind::ExportFolder { files, .. } => files.iter().map(|f| f.size).sum(),
        }
    }
}

impl ScanUnit {
    /// Which of `partitions` reads this unit when every partition lists the location itself (a
    /// cluster's tasks share no feed): a hash of where the unit starts, the same in every process and
    /// build (CRC-32), so each unit is read by exactly one partition.
    pub fn owner(&self, partitions: usize) -> usize {
        let mut h = crc32fast::Hasher::new();
        match &self.kind {
            UnitKind::Object { location, .. } => h.update(location.as_ref().as_bytes()),
            UnitKind::Range {
                location, start, ..
            } => {
                h.update(location.as_ref().as_bytes());
                h.update(&start.to_le_bytes());
            }
            UnitKind::ExportFolder { root, .. } => h.update(root.as_ref().as_bytes()),
        }
        h.finalize() as usize % partitions.max(1)
    }
}

/// What tells one version of an object from the next: its modification time and entity tag.
fn version_of(m: &ObjectMeta) -> String {
    format!(
        "{}/{}",
        m.last_modified.timestamp_micros(),
        m.e_tag.as_deref().unwrap_or("")
    )
}

/// Turns listed paths into places, reusing the previous one while the folder stays the same.
struct Places {
    /// The folder, its place, and whether the folders alone decided the channel.
    last: Option<(String, Arc<Place>, bool)>,
}

impl Places {
    fn new() -> Self {
        Self { last: None }
    }

    fn of(&mut self, relative_path: &str) -> Arc<Place> {
        let (dir, file) = relative_path
            .rsplit_once('/')
            .unwrap_or(("", relative_path));
        if let Some((d, p, by_folder)) = &self.last {
            // Without a channel folder, a file named after its channel (`sms-2026-01.csv`) has its own.
            if d == dir && (*by_folder || (p.default_channel.is_none() && !names_channel(file))) {
                return Arc::clone(p);
            }
        }
        let (place, by_folder) = place_of(relative_path);
        let place = Arc::new(place);
        self.last = Some((dir.to_string(), Arc::clone(&place), by_folder));
        place
    }
}

fn names_channel(file: &str) -> bool {
    channel_word(file).is_some()
}

fn channel_word(file: &str) -> Option<String> {
    file.to_ascii_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .find(|w| is_channel_word(w))
        .map(str::to_string)
}

/// The place of a path, and whether its folders (rather than its file name) named the channel.
fn place_of(relative_path: &str) -> (Place, bool) {
    let dirs: Vec<&str> = relative_path.split('/').collect();
    let dirs = &dirs[..dirs.len().saturating_sub(1)];
    let mut partitions = Vec::new();
    let mut default_channel = None;
    for seg in dirs {
        if let Some((k, v)) = seg.split_once('=') {
            if k.eq_ignore_ascii_case("channel") {
                default_channel = Some(v.to_string());
            } else {
                partitions.push((k.to_string(), v.to_string()));
            }
        } else if default_channel.is_none() && is_channel_word(&seg.to_ascii_lowercase()) {
            default_channel = Some(seg.to_ascii_lowercase());
        }
    }
    let by_folder = default_channel.is_some();
    if default_channel.is_none() {
        // A file named after its channel: `sms-2026-01.csv`, `webchat.jsonl`.
        default_channel = channel_word(relative_path.rsplit('/').next().unwrap_or(relative_path));
    }
    (
        Place {
            partitions,
            default_channel,
        },
        by_folder,
    )
}

/// Lists `url` and sends its scan units to `tx` as they are found. Plain `.json` objects are held back,
/// because an unpacked Slack export's day files may be listed before the `channels.json` that marks
/// their folder: from a store, until the listing ends; from a local walk, which lists a folder's files
/// together and before those of its subfolders, only until the walk leaves their folder (by then every
/// folder that could mark them as an export's has been read). Everything else streams.
pub async fn list_units(
    store: Arc<dyn ObjectStore>,
    local: Option<LocalFiles>,
    url: Location,
    split: Option<u64>,
    prune: Option<Arc<PlacePruner>>,
    tx: mpsc::Sender<UnitChunk>,
) {
    let mut lister = Lister::new(&url, local, prune, split, &tx);
    let result = lister.run(store.as_ref()).await;
    if lister.flush().await.is_err() {
        return;
    }
    if let Err(e) = result {
        let _ = tx.send(Err(e)).await;
    }
}

struct Lister<'a> {
    url: &'a Location,
    /// Lists a local archive without `object_store` (see [`LocalFiles`]).
    local: Option<LocalFiles>,
    prune: Option<Arc<PlacePruner>>,
    split: Option<u64>,
    tx: &'a mpsc::Sender<UnitChunk>,
    places: Places,
    found: u64,
    /// Units not sent yet.
    pending: Vec<ScanUnit>,
    /// Objects held until the listing ends: export markers, and `.json` objects that may belong to an
    /// export folder (from a local walk, only those of a folder that is one or is inside one).
    held: Vec<ObjectMeta>,
    /// Folders holding an export's marker files, and the export's format.
    export_roots: BTreeMap<String, Format>,
    /// In a local walk, the folder whose files are being listed and its `.json` objects held so far.
    folder: Option<(String, Vec<ObjectMeta>)>,
}

/// The receiving side has gone away (the query ended or was cancelled): stop listing quietly.
struct Closed;

impl<'a> Lister<'a> {
    fn new(
        url: &'a Location,
        local: Option<LocalFiles>,
        prune: Option<Arc<PlacePruner>>,
        split: Option<u64>,
        tx: &'a mpsc::Sender<UnitChunk>,
    ) -> Self {
        Self {
            url,
            local,
            prune,
            split,
            tx,
            places: Places::new(),
            found: 0,
            pending: Vec::with_capacity(UNIT_CHUNK),
            held: Vec::new(),
            export_roots: BTreeMap::new(),
            folder: None,
        }
    }

    async fn run(&mut self, store: &dyn ObjectStore) -> Result<()> {
        let url = self.url;
        let single = url.glob.is_none()
            && !url.base.path().ends_with('/')
            && !url.prefix.as_ref().is_empty();
        if single {
            match store.head(&url.prefix).await {
                Ok(m) => {
                    let rel = self.relative(&m.location);
                    let _ = self.object(m, &rel).await;
                    return Ok(());
                }
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => {
                    return Err(ArchiveError::object(
                        &url.original,
                        format!("cannot read: {e}"),
                    ));
                }
            }
        }
        let mut walk = vec![(url.prefix.clone(), Vec::new())];
        while let Some((dir, known)) = walk.pop() {
            // Descend folder by folder while partition filters still wait for keys the path has not
            // named yet; list the rest of the tree in one go once none does.
            let descend = url.glob.is_none()
                && self
                    .prune
                    .as_ref()
                    .is_some_and(|p| p.needs_more_than(&known));
            let dir_opt = (!dir.as_ref().is_empty()).then_some(&dir);
            if descend {
                let level = store.list_with_delimiter(dir_opt).await.map_err(|e| {
                    ArchiveError::object(&url.original, format!("cannot list: {e}"))
                })?;
                for m in level.objects {
                    if self.consider(m).await.is_err() {
                        return Ok(());
                    }
                }
                // Reversed so that the stack pops folders in listing order.
                for sub in level.common_prefixes.into_iter().rev() {
                    let mut known = known.clone();
                    let name = sub.filename().unwrap_or_default();
                    if let Some((k, v)) = name.split_once('=') {
                        known.push((k.to_string(), v.to_string()));
                        if self.prune.as_ref().is_some_and(|p| !p.may_keep(&known)) {
                            continue;
                        }
                    }
                    walk.push((sub, known));
                }
                continue;
            }
            let mut listing = match &self.local {
                Some(local) => local.list(dir_opt),
                None => read_ahead(store.list(dir_opt)),
            };
            while let Some(m) = listing
                .try_next()
                .await
                .map_err(|e| ArchiveError::object(&url.original, format!("cannot list: {e}")))?
            {
                if self.consider(m).await.is_err() {
                    return Ok(());
                }
            }
        }
        if self.finish().await.is_err() {
            return Ok(());
        }
        if self.found == 0 {
            return Err(ArchiveError::object(
                &url.original,
                "no objects found at this location",
            ));
        }
        Ok(())
    }

    /// The listing has ended: the objects still held join their export folders, or are sent on alone.
    async fn finish(&mut self) -> std::result::Result<(), Closed> {
        self.leave_folder().await?;
        let mut folders: BTreeMap<(String, Format), Vec<ObjectMeta>> = BTreeMap::new();
        for m in std::mem::take(&mut self.held) {
            match self.root_of(m.location.as_ref()) {
                Some(root) => folders.entry(root).or_default().push(m),
                None => {
                    let rel = self.relative(&m.location);
                    self.object(m, &rel).await?;
                }
            }
        }
        for ((root, format), mut files) in folders {
            files.sort_by(|a, b| a.location.cmp(&b.location));
            let rel = self.relative(&Path::from(format!("{root}/x")));
            let unit = ScanUnit {
                kind: UnitKind::ExportFolder {
                    format,
                    root: Path::from(root),
                    files,
                },
                place: self.places.of(&rel),
            };
            self.send(unit).await?;
        }
        Ok(())
    }

    /// One listed object: skipped, held back (a `.json` that may belong to an unpacked Slack export), or
    /// sent on.
    async fn consider(&mut self, m: ObjectMeta) -> std::result::Result<(), Closed> {
        if !self.url.matches(&m.location) {
            return Ok(());
        }
        let rel = self.relative(&m.location);
        if is_hidden(&rel) {
            return Ok(());
        }
        let path = m.location.as_ref();
        let (dir, file) = path.rsplit_once('/').unwrap_or(("", path));
        let walked = self.local.is_some();
        if walked && self.folder.as_ref().is_none_or(|(open, _)| open != dir) {
            self.leave_folder().await?;
            self.folder = Some((dir.to_string(), Vec::new()));
        }
        if let Some(format) = Format::marked_by(file) {
            self.export_roots.insert(dir.to_string(), format);
            self.held.push(m);
        } else if file.to_ascii_lowercase().ends_with(".json") {
            match &mut self.folder {
                Some((_, files)) => files.push(m),
                None => self.held.push(m),
            }
        } else {
            self.object(m, &rel).await?;
        }
        Ok(())
    }

    /// A local walk has listed every file of the open folder, and so every marker that could make its
    /// `.json` objects part of an export (the folder's own and those of the folders above it, read
    /// before it): those objects join an export, or are sent on now.
    async fn leave_folder(&mut self) -> std::result::Result<(), Closed> {
        let Some((dir, files)) = self.folder.take().filter(|(_, f)| !f.is_empty()) else {
            return Ok(());
        };
        if self.root_of(&format!("{dir}/")).is_some() {
            self.held.extend(files);
            return Ok(());
        }
        for m in files {
            let rel = self.relative(&m.location);
            self.object(m, &rel).await?;
        }
        Ok(())
    }

    /// The innermost export folder that holds `path`, and its format.
    fn root_of(&self, path: &str) -> Option<(String, Format)> {
        self.export_roots
            .iter()
            .filter(|(r, _)| {
                r.is_empty()
                    || path
                        .strip_prefix(r.as_str())
                        .is_some_and(|p| p.starts_with('/'))
            })
            .max_by_key(|(r, _)| r.len())
            .map(|(r, f)| (r.clone(), *f))
    }

    fn relative(&self, loc: &Path) -> String {
        let p = loc.as_ref();
        let pre = self.url.prefix.as_ref();
        match p.strip_prefix(pre).map(|r| r.trim_start_matches('/')) {
            // The location named this very object: keep its file name (it may name the channel).
            Some("") => p.rsplit('/').next().unwrap_or(p).to_string(),
            Some(r) => r.to_string(),
            None => p.to_string(),
        }
    }

    /// Sends one object as a unit, or as byte ranges when it is a large uncompressed JSON Lines file.
    async fn object(&mut self, m: ObjectMeta, relative: &str) -> std::result::Result<(), Closed> {
        let path = m.location.as_ref();
        let (compression, inner) = compression_of(path);
        if is_media(inner) {
            return Ok(());
        }
        let place = self.places.of(relative);
        let version = version_of(&m);
        let lower = inner.to_ascii_lowercase();
        let splittable = matches!(compression, crate::container::Compression::None)
            && (lower.ends_with(".jsonl") || lower.ends_with(".ndjson"))
            && self.split.is_some_and(|s| m.size > s);
        if !splittable {
            return self
                .send(ScanUnit {
                    kind: UnitKind::Object {
                        location: m.location,
                        size: m.size,
                        version,
                    },
                    place,
                })
                .await;
        }
        let step = self.split.unwrap_or(u64::MAX).max(1);
        let mut start = 0;
        while start < m.size {
            let end = start.saturating_add(step).min(m.size);
            self.send(ScanUnit {
                kind: UnitKind::Range {
                    location: m.location.clone(),
                    size: m.size,
                    start,
                    end,
                    version: version.clone(),
                },
                place: Arc::clone(&place),
            })
            .await?;
            start = end;
        }
        Ok(())
    }

    async fn send(&mut self, unit: ScanUnit) -> std::result::Result<(), Closed> {
        self.found += 1;
        ScanProgress::add(&PROGRESS.objects_listed, 1);
        // Ranges of one large object are split for parallelism, and the first units of a listing may be
        // all there is: those go one at a time, so that every partition gets some. Chunks grow once
        // the listing is long.
        let single = matches!(unit.kind, UnitKind::Range { .. }) || self.found <= SINGLE_UNITS;
        self.pending.push(unit);
        if !single && self.pending.len() < UNIT_CHUNK {
            return Ok(());
        }
        self.flush().await
    }

    async fn flush(&mut self) -> std::result::Result<(), Closed> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.pending, Vec::with_capacity(UNIT_CHUNK));
        self.tx.send(Ok(chunk)).await.map_err(|_| Closed)
    }
}

/// A store's listing read in a task of its own, up to [`LIST_AHEAD_BATCHES`] batches ahead of its reader.
/// A store lists a page per request, each request waiting for the one before, and a listing asks for
/// its next page only when polled: while the lister waited for room in the feed, no page was on its way,
/// so every page's round trip stood between the readers and their next units (0.9 s over the 46 pages
/// of 46k objects 20 ms away, benches/README.md). The task ends when the stream is dropped; a task that
/// failed (a panic in the store's listing) ends the stream with an error, not as if it had ended.
fn read_ahead(
    listing: BoxStream<'static, object_store::Result<ObjectMeta>>,
) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
    let (tx, rx) = mpsc::channel(LIST_AHEAD_BATCHES);
    let task = SpawnedTask::spawn(async move {
        let mut batches = listing.ready_chunks(LIST_BATCH);
        while let Some(batch) = batches.next().await {
            if tx.send(batch).await.is_err() {
                return;
            }
        }
    });
    // Once the task has sent its last batch: its failure, if it failed. The task lives in the stream,
    // so dropping the stream aborts it.
    let failure =
        futures::stream::once(async move { task.join().await.err() }).filter_map(|failed| {
            futures::future::ready(failed.map(|e| {
                Err(object_store::Error::Generic {
                    store: "listing",
                    source: format!("the listing task failed: {e}").into(),
                })
            }))
        });
    crate::local::received(rx).chain(failure).boxed()
}

/// Units sampled to find the partition columns.
const SCHEMA_SAMPLE: usize = 10_000;

/// Lists the start of a location to learn its partition columns (every hive key among the first
/// `SCHEMA_SAMPLE` units, sorted, except names the message schema already has) and to fail early when it
/// holds nothing. A sample, as DataFusion's listing tables take one: listing 700k local files took 9.6 s,
/// and a key that first appears later is ignored rather than failing the scan.
pub async fn partition_columns(
    store: Arc<dyn ObjectStore>,
    local: Option<LocalFiles>,
    url: &Location,
) -> Result<Vec<String>> {
    let (tx, mut rx) = mpsc::channel(FEED_DEPTH);
    let lister = tokio::spawn(list_units(store, local, url.clone(), None, None, tx));
    let mut keys: BTreeSet<String> = BTreeSet::new();
    let mut last: Option<Arc<Place>> = None;
    let mut seen = 0;
    'listing: while let Some(chunk) = rx.recv().await {
        for unit in chunk? {
            seen += 1;
            if seen > SCHEMA_SAMPLE {
                // Dropping the receiver stops the listing at its next chunk.
                break 'listing;
            }
            if last.as_ref().is_some_and(|l| Arc::ptr_eq(l, &unit.place)) {
                continue;
            }
            for (k, _) in &unit.place.partitions {
                if !MESSAGE_COLUMNS.contains(&k.as_str()) && !keys.contains(k) {
                    keys.insert(k.clone());
                }
            }
            last = Some(unit.place);
        }
    }
    drop(rx);
    lister
        .await
        .map_err(|e| ArchiveError::object(&url.original, format!("listing failed: {e}")))?;
    Ok(keys.into_iter().collect())
}

/// The units of one execution of a scan, shared by its output partitions: each partition takes the
/// next unit when it is ready for one, so a slow object does not hold up the others.
#[derive(Debug)]
pub struct Feed {
    rx: tokio::sync::Mutex<mpsc::Receiver<UnitChunk>>,
    claimed: Mutex<Vec<bool>>,
}

impl Feed {
    /// The next chunk of units, for the partition that asks first.
    pub async fn next(&self) -> Option<UnitChunk> {
        self.rx.lock().await.recv().await
    }
}

/// Hands each execution of a scan its own feed. DataFusion executes every partition once per run; a
/// partition asking twice means a new run, which gets a new listing.
#[derive(Debug, Default)]
pub struct Feeds {
    current: Mutex<Option<Arc<Feed>>>,
}

impl Feeds {
    pub fn for_partition(&self, partition: usize, scan: &ScanShared) -> Arc<Feed> {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(feed) = current.as_ref().filter(|_| !scan.spread) {
            let mut claimed = feed.claimed.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(c) = claimed.get_mut(partition).filter(|c| !**c) {
                *c = true;
                drop(claimed);
                return Arc::clone(feed);
            }
        }
        let (tx, rx) = mpsc::channel(FEED_DEPTH);
        let split = scan
            .options
            .format
            .is_none_or(Format::splits_by_line)
            .then_some(scan.options.split_size);
        tokio::spawn(list_units(
            Arc::clone(&scan.store),
            scan.local.clone(),
            scan.url.clone(),
            split,
            scan.prune.clone(),
            tx,
        ));
        let mut claimed = vec![false; scan.partitions.max(partition + 1)];
        claimed[partition] = true;
        let feed = Arc::new(Feed {
            rx: tokio::sync::Mutex::new(rx),
            claimed: Mutex::new(claimed),
        });
        *current = Some(Arc::clone(&feed));
        feed
    }
}

#[cfg(test)]
mod tests {
    use object_store::local::LocalFileSystem;

    use super::*;

    /// A unit as the tests compare it: an object's path, or an export's root and files, relative to
    /// `prefix`.
    fn shown(unit: ScanUnit, prefix: &str) -> String {
        let rel = |p: &Path| p.as_ref().trim_start_matches(prefix).to_string();
        match unit.kind {
            UnitKind::Object { location, .. } => rel(&location),
            UnitKind::ExportFolder { root, files, .. } => {
                let mut names: Vec<_> = files.iter().map(|f| rel(&f.location)).collect();
                names.sort();
                format!("{} = [{}]", rel(&root), names.join(" "))
            }
            UnitKind::Range { .. } => unreachable!("no ranges without a split size"),
        }
    }

    fn local_files(store: &dyn ObjectStore) -> LocalFiles {
        let base = url::Url::parse("file:///").expect("url");
        LocalFiles::for_store(store, &base, None).expect("local root")
    }

    /// Every unit a listing of `dir` sends, in order, with its objects' paths relative to `dir`.
    async fn units_of(dir: &std::path::Path, walked: bool) -> Vec<String> {
        let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new());
        let local = walked.then(|| local_files(store.as_ref()));
        let root = std::fs::canonicalize(dir).expect("canonical");
        let url = Location::parse(&format!("{}/", root.display())).expect("location");
        let (tx, mut rx) = mpsc::channel(FEED_DEPTH);
        tokio::spawn(list_units(store, local, url, None, None, tx));
        let prefix = format!("{}/", root.display())
            .trim_start_matches('/')
            .to_string();
        let mut units = Vec::new();
        while let Some(chunk) = rx.recv().await {
            units.extend(
                chunk
                    .expect("listing")
                    .into_iter()
                    .map(|u| shown(u, &prefix)),
            );
        }
        units
    }

    fn write(path: std::path::PathBuf, text: &str) {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }

    #[tokio::test]
    async fn a_local_walk_sends_json_objects_once_their_folder_is_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        // A Messenger thread, with a WhatsApp chat in a folder below it: a walk lists the thread's folder
        // first, so its `.json` goes before the chat once nothing has marked it as an export's.
        write(root.join("inbox/ana_1/message_1.json"), "{}");
        write(root.join("inbox/ana_1/later/chat.txt"), "x");
        // A Slack export whose root and day files all stay in the export (one unit, sent at the end).
        write(root.join("slack/general/2024-01-02.json"), "[]");
        write(root.join("slack/a.json"), "[]");
        write(root.join("slack/users.json"), "[]");
        write(root.join("slack/z.json"), "[]");
        write(root.join("slack/general/deeper/x.json"), "[]");
        let walked = units_of(root, true).await;
        let thread = walked
            .iter()
            .position(|u| u == "inbox/ana_1/message_1.json");
        let chat = walked
            .iter()
            .position(|u| u == "inbox/ana_1/later/chat.txt");
        assert!(thread.is_some() && thread < chat, "{walked:?}");
        let slack = "slack = [slack/a.json slack/general/2024-01-02.json \
                     slack/general/deeper/x.json slack/users.json slack/z.json]";
        assert_eq!(walked.last().map(String::as_str), Some(slack), "{walked:?}");
        assert_eq!(walked.len(), 3, "{walked:?}");

        // Through the store, which lists in no such order, every `.json` waits for the end: the same
        // units, the thread after the chat.
        let listed = units_of(root, false).await;
        let mut a = walked.clone();
        let mut b = listed.clone();
        a.sort();
        b.sort();
        assert_eq!(a, b);
        let thread = listed
            .iter()
            .position(|u| u == "inbox/ana_1/message_1.json");
        let chat = listed
            .iter()
            .position(|u| u == "inbox/ana_1/later/chat.txt");
        assert!(chat < thread, "{listed:?}");
    }

    /// A listed object of one byte.
    fn meta(path: &str) -> ObjectMeta {
        ObjectMeta {
            location: Path::from(path),
            last_modified: Default::default(),
            size: 1,
            e_tag: None,
            version: None,
        }
    }

    /// The units a listing sends for objects listed in exactly this order under `data/`.
    async fn units_for(order: &[&str], walked: bool) -> Vec<String> {
        let store = LocalFileSystem::new();
        let url = Location::parse("file:///data/").expect("location");
        let (tx, mut rx) = mpsc::channel(order.len() + 1);
        let mut lister = Lister::new(&url, walked.then(|| local_files(&store)), None, None, &tx);
        for path in order {
            let listed = meta(&format!("data/{path}"));
            assert!(lister.consider(listed).await.is_ok(), "the feed is open");
        }
        assert!(lister.finish().await.is_ok() && lister.flush().await.is_ok());
        drop(lister);
        drop(tx);
        let mut units = Vec::new();
        while let Some(chunk) = rx.recv().await {
            units.extend(
                chunk
                    .expect("listing")
                    .into_iter()
                    .map(|u| shown(u, "data/")),
            );
        }
        units
    }

    #[tokio::test]
    async fn json_objects_wait_only_as_long_as_an_export_may_claim_them() {
        // In the order a walk lists them: a folder's files, then its subfolders'. `slack/a.json` comes
        // before the `users.json` that makes its folder an export, so it may not be sent when listed.
        let order = [
            "inbox/t/message_1.json",
            "inbox/t/later/chat.txt",
            "slack/a.json",
            "slack/users.json",
            "slack/z.json",
            "slack/general/2024-01-02.json",
            "slack/sub/users.json",
            "slack/sub/c/2024-01-01.json",
            "notes/x.json",
        ];
        let exports = [
            "slack = [slack/a.json slack/general/2024-01-02.json slack/users.json slack/z.json]",
            "slack/sub = [slack/sub/c/2024-01-01.json slack/sub/users.json]",
        ];
        let walked = units_for(&order, true).await;
        let mut expected = vec![
            "inbox/t/message_1.json",
            "inbox/t/later/chat.txt",
            "notes/x.json",
        ];
        expected.extend(exports);
        assert_eq!(walked, expected);
        // From a store, whose order says nothing about folders, they all wait for the end.
        let listed = units_for(&order, false).await;
        let mut expected = vec![
            "inbox/t/later/chat.txt",
            "inbox/t/message_1.json",
            "notes/x.json",
        ];
        expected.extend(exports);
        assert_eq!(listed, expected);
        // A marker at the top makes every `.json` below part of one export, walked or not.
        let order = [
            "a.json",
            "users.json",
            "inbox/t/message_1.json",
            "inbox/chat.txt",
        ];
        let export = "data = [a.json inbox/t/message_1.json users.json]";
        for walked in [true, false] {
            let units = units_for(&order, walked).await;
            assert_eq!(units, ["inbox/chat.txt", export]);
        }
    }

    #[tokio::test]
    async fn a_listing_read_ahead_gives_every_object_and_ends_in_error_if_its_task_fails() {
        let metas: Vec<object_store::Result<ObjectMeta>> =
            (0..2_500).map(|i| Ok(meta(&format!("o/{i}")))).collect();
        let all: Vec<_> = read_ahead(futures::stream::iter(metas).boxed())
            .try_collect()
            .await
            .expect("listing");
        assert_eq!(all.len(), 2_500);
        assert_eq!(all[2_499].location.as_ref(), "o/2499");

        // A store whose listing panics half way: the reader hears of it instead of a short listing.
        let failing = futures::stream::iter(0..3).map(|i| {
            assert!(i < 2, "the store's listing broke");
            Ok(meta(&format!("o/{i}")))
        });
        let got: Vec<object_store::Result<ObjectMeta>> =
            read_ahead(failing.boxed()).collect().await;
        let last = got.last().expect("an item");
        assert!(
            matches!(last, Err(e) if e.to_string().contains("the listing task failed")),
            "{got:?}"
        );
    }
}
