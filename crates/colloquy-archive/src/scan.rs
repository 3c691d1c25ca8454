//! From a location to record batches: listing objects into scan units (an object, or a whole Slack export
//! folder), fetching them, and parsing them off the async runtime in a blocking task per group of units.
//!
//! A blocking-pool thread never waits for the query to read. The pool is small (the CLI allows two
//! threads per core) and every scan of the process parses on it: a parse task that waited for its
//! consumer while the query drained another scan first (a hash join's build side) would keep that scan
//! from parsing at all, and enough of them deadlocked the query. So a pool task hands over what fits in
//! the channel, keeps the rest, and stops at the next unit; the async side sends the rest and goes on.
//! A large unit, whose messages could fill many batches, is parsed on a thread of its own instead.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, RecordBatch, RecordBatchOptions, StringArray, new_null_array,
};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::runtime::SpawnedTask;
use datafusion::error::{DataFusionError, Result as DFResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::stream::RecordBatchReceiverStream;
use datafusion::physical_plan::streaming::PartitionStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{GetResult, GetResultPayload, ObjectStore, ObjectStoreExt};
use tokio::sync::mpsc::Sender;
use tokio::sync::mpsc::error::TrySendError;

use crate::cache::{ParsedCache, ParsedUnit, unit_key};
use crate::container::{Compression, compression_of, decompress, is_zip, zip_entries};
use crate::detect::{detect, is_hidden, is_media};
use crate::errlog::ErrorLog;
use crate::error::{ArchiveError, Result};
use crate::formats::{ExportFile, FileData, Format, ParseCtx};
use crate::listing::{Feed, Feeds, Place, ScanUnit, UnitKind};
use crate::local::LocalFiles;
use crate::options::ArchiveOptions;
use crate::progress::{PROGRESS, ScanProgress};
use crate::requests;
use crate::schema::{BATCH_ROWS, MESSAGE_COLUMNS, MessageBatchBuilder};
use crate::sink::{RecordIssue, Sink};
use colloquy_formats::message::Message;
use colloquy_formats::{FormatError, Result as FormatResult};
use colloquy_store::Location;

/// Objects fetched ahead of the parser, per output partition, from a remote store... A small object costs
/// one request's latency (20 ms to another region) and almost no bytes, so many are in flight at once:
/// 128 per partition kept a 2-core scan of small zips waiting for a store 20 ms away (benches/README.md,
/// "From S3"). The byte budget below keeps large ones few, and the process-wide request slots
/// ([`crate::requests`]) keep all scans together within the open-files limit.
const PREFETCH: usize = 512;
/// ...and from local files (read directly, or through a store, whose files stay open until parsed),
/// which cost no latency.
const LOCAL_PREFETCH: usize = 128;
/// ...and the bytes they may hold together (a unit larger than this is fetched alone). Counting objects
/// alone let 16 daily logs of 4.5 MB each wait in memory per partition.
const PREFETCH_KIB: u32 = 16 << 10;
/// At most this many fetched objects are parsed in one blocking task (and share record batches), so
/// that an archive of many tiny exports does not pay a task and a batch per object.
const GROUP_OBJECTS: usize = 64;
/// Units larger than this are parsed on a thread of their own: one of up to this many bytes makes at
/// most a few batches, which a blocking-pool task may hold while the query is not reading.
const OWN_THREAD_BYTES: u64 = 1 << 20;
/// A compressed unit (a zip, `.gz`, `.zst`, `.bz2`) counts as this many times its size: chat text
/// deflates to a fifth or a tenth, and the margin keeps an unusually compressible one off the pool. (An
/// entry inflates to at most 64 MB whatever its header says, so even a deceptive one is bounded.)
const COMPRESSED_FACTOR: u64 = 16;
/// Groups a partition parses at once. One left a core idle a fifth of the time over an archive of small
/// zips: the next group waited for the parse of the one before (benches/README.md).
const LANES: usize = 2;
/// Files of export folders (a Slack export's day files) requested at once, per partition.
const FOLDER_FETCHES: usize = 32;
/// Bytes read past a byte range's end at a time, looking for the end of its last line.
const TAIL_STEP: u64 = 64 << 10;

/// Everything the units of one scan share.
#[derive(Debug)]
pub struct ScanShared {
    pub store: Arc<dyn ObjectStore>,
    /// Set when the archive is local: listed and read without `store`.
    pub local: Option<LocalFiles>,
    pub url: Location,
    pub options: Arc<ArchiveOptions>,
    pub partition_cols: Vec<String>,
    /// Schema of message columns plus partition columns, before projection.
    pub full_schema: SchemaRef,
    pub projection: Option<Vec<usize>>,
    pub projected_schema: SchemaRef,
    pub table: String,
    pub log: ErrorLog,
    pub partitions: usize,
    /// Each partition lists the location on its own and reads only the units it owns
    /// ([`ScanUnit::owner`]): a cluster runs partitions in different processes.
    pub spread: bool,
    pub feeds: Feeds,
    pub prune: Option<Arc<PlacePruner>>,
    /// Parsed units kept between scans, when the session has a cache.
    pub cache: Option<ScanCache>,
}

/// The session's cache and what, besides the unit itself, its keys must hold for this table.
#[derive(Debug)]
pub struct ScanCache {
    pub cache: Arc<ParsedCache>,
    /// The table's options, as text: two tables over one location with different options parse it
    /// differently.
    pub options_fingerprint: String,
}

impl ScanShared {
    /// Which message columns the projection reads (all without a projection).
    pub fn needed_message_columns(&self) -> [bool; 12] {
        let mut needed = [self.projection.is_none(); 12];
        for &i in self.projection.iter().flatten() {
            if let Some(n) = needed.get_mut(i) {
                *n = true;
            }
        }
        needed
    }
}

/// Filters on partition columns only, checked against each unit's place before it is read. Pruning is a
/// shortcut: the filters are applied to the rows again (`Inexact` pushdown).
#[derive(Debug)]
pub struct PlacePruner {
    /// The partition columns, all Utf8, in table order.
    pub schema: SchemaRef,
    /// Each filter with the partition columns it reads.
    pub filters: Vec<(Arc<dyn PhysicalExpr>, Vec<String>)>,
}

impl PlacePruner {
    fn keeps(&self, place: &Place) -> DFResult<bool> {
        self.passes(&place.partitions, |_| true)
    }

    /// Whether some filter reads a partition column that `known` (the `key=value` folders walked so far)
    /// does not name yet.
    pub fn needs_more_than(&self, known: &[(String, String)]) -> bool {
        self.filters
            .iter()
            .any(|(_, cols)| cols.iter().any(|c| !known.iter().any(|(k, _)| k == c)))
    }

    /// False when a filter whose columns `known` all names already rejects the folder; filters that read
    /// columns not known yet are left for deeper folders. An error counts as "keep": the rows are
    /// filtered again anyway.
    pub fn may_keep(&self, known: &[(String, String)]) -> bool {
        self.passes(known, |cols| {
            cols.iter().all(|c| known.iter().any(|(k, _)| k == c))
        })
        .unwrap_or(true)
    }

    fn passes(
        &self,
        values: &[(String, String)],
        applies: impl Fn(&[String]) -> bool,
    ) -> DFResult<bool> {
        let columns: Vec<ArrayRef> = self
            .schema
            .fields()
            .iter()
            .map(|f| {
                let v = values
                    .iter()
                    .find(|(k, _)| k == f.name())
                    .map(|(_, v)| v.as_str());
                Arc::new(StringArray::from(vec![v])) as ArrayRef
            })
            .collect();
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        for (f, cols) in &self.filters {
            if !applies(cols) {
                continue;
            }
            let result = f.evaluate(&batch)?.into_array(1)?;
            if let Some(mask) = result.as_any().downcast_ref::<BooleanArray>()
                && !(mask.is_valid(0) && mask.value(0))
            {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// One output partition of a scan: it reads units from the scan's shared feed until the feed runs dry.
#[derive(Debug)]
pub struct ArchivePartition {
    pub shared: Arc<ScanShared>,
    pub index: usize,
}

impl PartitionStream for ArchivePartition {
    fn schema(&self) -> &SchemaRef {
        &self.shared.projected_schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let shared = Arc::clone(&self.shared);
        let feed = shared.feeds.for_partition(self.index, &shared);
        let mut builder =
            RecordBatchReceiverStream::builder(Arc::clone(&self.shared.projected_schema), 2);
        let tx = builder.tx();
        builder.spawn(read_partition(shared, self.index, feed, tx));
        builder.build()
    }
}

/// Keeps one partition's readers busy: fetches up to `PREFETCH` units ahead (`LOCAL_PREFETCH` from local
/// files) and parses whatever has arrived, in up to `LANES` blocking tasks at once.
async fn read_partition(
    shared: Arc<ScanShared>,
    partition: usize,
    feed: Arc<Feed>,
    tx: Sender<DFResult<RecordBatch>>,
) -> DFResult<()> {
    // Units of the chunk this partition took last, in order.
    let units = futures::stream::unfold((feed, VecDeque::new()), |(feed, mut chunk)| async move {
        if chunk.is_empty() {
            match feed.next().await? {
                Ok(more) => chunk = more.into(),
                Err(e) => return Some((Err(e), (feed, chunk))),
            }
        }
        let unit = chunk.pop_front()?;
        Some((Ok(unit), (feed, chunk)))
    });
    let mut verdict: Option<(Arc<Place>, bool)> = None;
    let pruner = Arc::clone(&shared);
    let index = partition;
    let units = units.try_filter_map(move |unit| {
        if pruner.spread && unit.owner(pruner.partitions) != index {
            return futures::future::ready(Ok(None));
        }
        let keep = match &pruner.prune {
            None => Ok(true),
            Some(p) => match &verdict {
                Some((place, keep)) if Arc::ptr_eq(place, &unit.place) => Ok(*keep),
                _ => p.keeps(&unit.place).inspect(|keep| {
                    verdict = Some((Arc::clone(&unit.place), *keep));
                }),
            },
        };
        futures::future::ready(match keep {
            Ok(true) => Ok(Some(unit)),
            Ok(false) => Ok(None),
            Err(e) => Err(ArchiveError::DataFusion(e)),
        })
    });
    // Requests for the files of export folders, shared by the folders this partition has in flight:
    // with one per folder, every folder in flight could have `FOLDER_FETCHES` open at once.
    let folder_slots = Arc::new(tokio::sync::Semaphore::new(FOLDER_FETCHES));
    let prefetch = if shared.url.base.scheme() == "file" {
        LOCAL_PREFETCH
    } else {
        PREFETCH
    };
    let fetcher = Arc::clone(&shared);
    let budget = Arc::new(tokio::sync::Semaphore::new(PREFETCH_KIB as usize));
    let fetched = units
        .map(move |unit| {
            let shared = Arc::clone(&fetcher);
            let budget = Arc::clone(&budget);
            let folder_slots = Arc::clone(&folder_slots);
            async move {
                let unit = unit?;
                let key = shared
                    .cache
                    .as_ref()
                    .filter(|c| c.cache.admits(unit.size()))
                    .map(|c| unit_key(&shared.url.original, &c.options_fingerprint, &unit));
                if let (Some(c), Some(k)) = (&shared.cache, &key)
                    && let Some(parsed) = c.cache.get(k)
                {
                    return Ok((unit, Fetched::Parsed(parsed), None));
                }
                let kib = u32::try_from(unit.size().div_ceil(1024))
                    .unwrap_or(u32::MAX)
                    .clamp(1, PREFETCH_KIB);
                // Held until the unit is parsed; the semaphore is never closed.
                let permit = budget.acquire_many_owned(kib).await.ok();
                // Only a local archive's whole objects are read without a request (in the parse
                // task); its byte ranges and export folders go through the store, like any remote
                // fetch, and take request slots.
                let (unit, input) =
                    if shared.local.is_some() && matches!(unit.kind, UnitKind::Object { .. }) {
                        let input = fetch_unit(&shared, &unit, &folder_slots).await?;
                        (unit, input)
                    } else {
                        fetch_in_own_task(&shared, unit, &folder_slots).await?
                    };
                Ok::<_, ArchiveError>((unit, Fetched::Read { input, key }, permit))
            }
        })
        .buffered(prefetch);
    let mut groups = std::pin::pin!(fetched.ready_chunks(GROUP_OBJECTS));
    // A lane parses one group at a time; a group takes the carry of whichever lane is free. While one
    // group parses, the next is taken from the fetches (which go on while this loop waits for either).
    // Batches of different lanes interleave.
    let mut idle: Vec<Carry> = (0..LANES).map(|_| Carry::default()).collect();
    let mut running = futures::stream::FuturesUnordered::new();
    let mut listed_all = false;
    loop {
        tokio::select! {
            group = groups.next(), if !listed_all && !idle.is_empty() => match group {
                Some(group) => {
                    let group = group.into_iter().collect::<Result<VecDeque<_>>>()?;
                    let carry = idle.pop().unwrap_or_default();
                    running.push(parse_and_send(Arc::clone(&shared), tx.clone(), group, carry));
                }
                None => listed_all = true,
            },
            parsed = running.next(), if !running.is_empty() => match parsed {
                Some(Ok(Some(carry))) => idle.push(carry),
                // The query stopped reading (a LIMIT, or the client went away).
                Some(Ok(None)) => return Ok(()),
                Some(Err(e)) => return Err(e),
                None => {}
            },
            else => break,
        }
    }
    for carry in idle {
        if carry.rows > 0 {
            // Only parsed units wait in a carry: joining their columns is quick.
            for b in flush_carry(&shared, carry)? {
                if tx.send(Ok(b)).await.is_err() {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

/// Fetches a unit from a store in a task of its own, so that its requests finish, and give back their
/// slots in [`crate::requests`], whether or not the query reads on. Polled only along with the
/// partition's stream, a scan nobody reads (a hash join's probe side while the build side is read, a
/// client that stopped reading) would keep its slots, and every other scan of the process could wait
/// for them for ever. Dropping the scan aborts the task.
async fn fetch_in_own_task(
    shared: &Arc<ScanShared>,
    unit: ScanUnit,
    folder_slots: &Arc<tokio::sync::Semaphore>,
) -> Result<(ScanUnit, Input)> {
    let (shared, folder_slots) = (Arc::clone(shared), Arc::clone(folder_slots));
    SpawnedTask::spawn(async move {
        let input = fetch_unit(&shared, &unit, &folder_slots).await;
        input.map(|input| (unit, input))
    })
    .join()
    .await
    .map_err(|e| ArchiveError::DataFusion(DataFusionError::ExecutionJoin(Box::new(e))))?
}

/// Parses a group of fetched units and sends their batches; returns what the lane's next group takes
/// over, or `None` when the query stopped reading.
async fn parse_and_send(
    shared: Arc<ScanShared>,
    tx: Sender<DFResult<RecordBatch>>,
    mut rest: VecDeque<Pending>,
    mut carry: Carry,
) -> DFResult<Option<Carry>> {
    while let Some(front) = rest.front() {
        let (parsed, unparsed) = if rest.iter().all(|(_, f, _)| matches!(f, Fetched::Parsed(_))) {
            // Only cached units: joining their columns here costs less than a thread hand-off.
            parse_group(&shared, rest, Out::Collect(Vec::new()), carry)?
        } else if needs_own_thread(front) {
            let shared = Arc::clone(&shared);
            let tx = tx.clone();
            on_own_thread(move || parse_group(&shared, rest, Out::Send(&tx), carry)).await??
        } else {
            let shared = Arc::clone(&shared);
            let tx = tx.clone();
            // Parsing is CPU work: keep it off the runtime threads that drive IO.
            tokio::task::spawn_blocking(move || parse_group(&shared, rest, Out::offer(&tx), carry))
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))??
        };
        shared.log.extend(&shared.table, parsed.issues);
        carry = parsed.carry;
        rest = unparsed;
        // What did not fit in the channel, sent here where waiting holds no thread.
        for b in parsed.batches {
            if tx.send(Ok(b)).await.is_err() {
                return Ok(None);
            }
        }
    }
    Ok(Some(carry))
}

/// Whether a unit is parsed on a thread of its own: its messages may fill many batches, more than a
/// blocking-pool thread may hold while the query is not reading (see [`Out::Offer`]). Units answered
/// from the cache are never parsed.
fn needs_own_thread((unit, fetched, _): &Pending) -> bool {
    if matches!(fetched, Fetched::Parsed(_)) {
        return false;
    }
    let size = unit.size();
    // Most units are small enough either way: their names are not looked at (this runs per unit).
    if size > OWN_THREAD_BYTES || size.saturating_mul(COMPRESSED_FACTOR) <= OWN_THREAD_BYTES {
        return size > OWN_THREAD_BYTES;
    }
    match &unit.kind {
        UnitKind::Object { location, .. } | UnitKind::Range { location, .. } => {
            let name = location.as_ref();
            is_zip(name, &[]) || !matches!(compression_of(name).0, Compression::None)
        }
        UnitKind::ExportFolder { .. } => false,
    }
}

/// Runs `parse` on a new thread, which may wait for the query to read as long as it likes: it is not
/// one of the blocking pool's few threads, which every scan of the process needs.
async fn on_own_thread<T: Send + 'static>(
    parse: impl FnOnce() -> T + Send + 'static,
) -> DFResult<T> {
    let (answer, answered) = tokio::sync::oneshot::channel();
    let runtime = tokio::runtime::Handle::current();
    std::thread::Builder::new()
        .name("colloquy-parse".into())
        .spawn(move || {
            let _entered = runtime.enter();
            let _ = answer.send(parse());
        })
        .map_err(|e| DataFusionError::Execution(format!("cannot start a parse thread: {e}")))?;
    answered.await.map_err(|_| {
        DataFusionError::Execution("a parse thread ended without an answer (it panicked)".into())
    })
}

async fn fetch(store: &dyn ObjectStore, url: &Location, location: &Path) -> Result<Bytes> {
    let source = url.object_url(location);
    let _slot = requests::slot().await;
    let get = store
        .get(location)
        .await
        .map_err(|e| ArchiveError::object(&source, format!("cannot read: {e}")))?;
    let data = get
        .bytes()
        .await
        .map_err(|e| ArchiveError::object(&source, format!("read failed part-way: {e}")))?;
    ScanProgress::add(&PROGRESS.bytes_read, data.len() as u64);
    Ok(data)
}

enum Opened {
    Bytes(Bytes),
    File(std::fs::File),
}

/// Starts reading a whole object: a remote object is read here, a local file only opened.
async fn open(store: &dyn ObjectStore, source: &str, location: &Path) -> Result<Opened> {
    let _slot = requests::slot().await;
    let get = store
        .get(location)
        .await
        .map_err(|e| ArchiveError::object(source, format!("cannot read: {e}")))?;
    let get = match get.payload {
        GetResultPayload::File(file, _) if get.range.start == 0 => return Ok(Opened::File(file)),
        payload => GetResult { payload, ..get },
    };
    let data = get
        .bytes()
        .await
        .map_err(|e| ArchiveError::object(source, format!("read failed part-way: {e}")))?;
    ScanProgress::add(&PROGRESS.bytes_read, data.len() as u64);
    Ok(Opened::Bytes(data))
}

fn read_local(source: &str, mut file: std::fs::File) -> Result<Bytes> {
    use std::io::Read;
    let mut data = Vec::new();
    file.read_to_end(&mut data)
        .map_err(|e| ArchiveError::object(source, format!("read failed part-way: {e}")))?;
    ScanProgress::add(&PROGRESS.bytes_read, data.len() as u64);
    Ok(Bytes::from(data))
}

async fn fetch_range(
    store: &dyn ObjectStore,
    url: &Location,
    location: &Path,
    range: std::ops::Range<u64>,
) -> Result<Bytes> {
    let _slot = requests::slot().await;
    let data = store
        .get_range(location, range.clone())
        .await
        .map_err(|e| {
            ArchiveError::object(
                url.object_url(location),
                format!("cannot read bytes {}..{}: {e}", range.start, range.end),
            )
        })?;
    ScanProgress::add(&PROGRESS.bytes_read, data.len() as u64);
    Ok(data)
}

/// The whole lines that start in `start..end` of a JSON Lines object: the range is read from one byte
/// before `start` (to see whether a line starts exactly there) and past `end` until its last line ends.
async fn fetch_lines(
    store: &dyn ObjectStore,
    url: &Location,
    location: &Path,
    size: u64,
    start: u64,
    end: u64,
) -> Result<Bytes> {
    let from = start.saturating_sub(1);
    let head = fetch_range(store, url, location, from..end).await?;
    let mut data = BytesMut::from(head.as_ref());
    let mut pos = end;
    while pos < size && data.last() != Some(&b'\n') {
        let next = (pos + TAIL_STEP).min(size);
        let more = fetch_range(store, url, location, pos..next).await?;
        match more.iter().position(|&b| b == b'\n') {
            Some(i) => {
                data.extend_from_slice(&more[..=i]);
                break;
            }
            None => data.extend_from_slice(&more),
        }
        pos = next;
    }
    let data = data.freeze();
    if start == 0 {
        return Ok(data);
    }
    // Byte `start - 1` is first: the range's own lines begin after the first newline.
    Ok(match data.iter().position(|&b| b == b'\n') {
        Some(i) => data.slice(i + 1..),
        None => Bytes::new(),
    })
}

async fn fetch_unit(
    shared: &ScanShared,
    unit: &ScanUnit,
    folder_slots: &Arc<tokio::sync::Semaphore>,
) -> Result<Input> {
    let store = shared.store.as_ref();
    Ok(match &unit.kind {
        UnitKind::Object { location, size, .. } => {
            let name = location.as_ref().to_string();
            let source = shared.url.object_url(location);
            if let Some(local) = &shared.local {
                // Read by the parse task itself: no await, no hand-off to the blocking pool.
                return Ok(Input::LocalPath {
                    name,
                    source,
                    local: local.clone(),
                    location: location.clone(),
                    size: *size,
                });
            }
            match open(store, &source, location).await? {
                Opened::Bytes(data) => Input::Object { name, source, data },
                Opened::File(file) => Input::LocalFile { name, source, file },
            }
        }
        UnitKind::Range {
            location,
            size,
            start,
            end,
            ..
        } => Input::Object {
            name: location.as_ref().to_string(),
            // Line numbers count from the range's first line.
            source: format!("{}[from byte {start}]", shared.url.object_url(location)),
            data: fetch_lines(store, &shared.url, location, *size, *start, *end).await?,
        },
        UnitKind::ExportFolder {
            format,
            root,
            files,
        } => {
            // A Slack export is a file per channel and day: fetched many at a time, since from a
            // remote store each costs a request's latency and almost no bytes.
            // Owned futures, collected: a stream holding the closure (or futures borrowing `files`)
            // trips the compiler's check that the scan's task is `Send` ("FnOnce is not general enough").
            let requests: Vec<_> = files
                .iter()
                .map(|m| {
                    let (store, url) = (Arc::clone(&shared.store), shared.url.clone());
                    let location = m.location.clone();
                    let slots = Arc::clone(folder_slots);
                    async move {
                        // Never closed: a permit is always given.
                        let _slot = slots.acquire_owned().await.ok();
                        fetch(store.as_ref(), &url, &location).await
                    }
                })
                .collect();
            let fetched: Vec<Bytes> = futures::stream::iter(requests)
                .buffered(FOLDER_FETCHES)
                .try_collect()
                .await?;
            let mut out = Vec::with_capacity(files.len());
            for (m, data) in files.iter().zip(fetched) {
                let path = m.location.as_ref();
                let rel = path
                    .strip_prefix(root.as_ref())
                    .unwrap_or(path)
                    .trim_start_matches('/')
                    .to_string();
                out.push(ExportFile {
                    path: rel,
                    source: shared.url.object_url(&m.location),
                    data: data.into(),
                });
            }
            Input::Folder {
                format: *format,
                source: shared.url.object_url(root),
                files: out,
            }
        }
    })
}

/// A unit ready for the parse task: read from the store (with its cache key when the session caches),
/// or already parsed by an earlier scan.
enum Fetched {
    Read { input: Input, key: Option<String> },
    Parsed(Arc<ParsedUnit>),
}

enum Input {
    Object {
        name: String,
        source: String,
        data: Bytes,
    },
    /// A local file that is open but not read yet: it is read in the blocking parse task, which saves
    /// the object store a second hop through the blocking pool per object (see benches/README.md).
    LocalFile {
        name: String,
        source: String,
        file: std::fs::File,
    },
    /// A local file not opened yet ([`LocalFiles`]): opened and read in the parse task.
    LocalPath {
        name: String,
        source: String,
        local: LocalFiles,
        location: Path,
        size: u64,
    },
    Folder {
        format: Format,
        source: String,
        files: Vec<ExportFile>,
    },
}

/// Builds record batches from the messages of consecutive units. A batch holds the rows of units of one
/// place only, because the place's partition values become constant columns.
struct GroupWriter<'a> {
    shared: &'a ScanShared,
    out: Out<'a>,
    builder: MessageBatchBuilder,
    carry: Carry,
}

/// Where a writer's batches go.
enum Out<'a> {
    /// From a blocking-pool task: into the channel while it has room; once it is full, this batch and
    /// every later one wait here, in order, and the task stops at the end of its unit (the pool's
    /// threads must not wait for the query: see the module's comment).
    Offer {
        tx: &'a Sender<DFResult<RecordBatch>>,
        held: Vec<RecordBatch>,
    },
    /// From a thread of the unit's own, which may wait for room.
    Send(&'a Sender<DFResult<RecordBatch>>),
    /// Collected, when a group is answered from the cache on the async runtime (a thread hand-off per
    /// group cost more than copying cached columns).
    Collect(Vec<RecordBatch>),
}

impl<'a> Out<'a> {
    fn offer(tx: &'a Sender<DFResult<RecordBatch>>) -> Self {
        Out::Offer {
            tx,
            held: Vec::new(),
        }
    }

    fn put(&mut self, batch: RecordBatch) -> Result<()> {
        let cancelled =
            || ArchiveError::DataFusion(DataFusionError::Execution("scan cancelled".into()));
        match self {
            Out::Offer { tx, held } if held.is_empty() => match tx.try_send(Ok(batch)) {
                Ok(()) => Ok(()),
                Err(TrySendError::Full(batch)) => {
                    held.push(batch.map_err(ArchiveError::DataFusion)?);
                    Ok(())
                }
                Err(TrySendError::Closed(_)) => Err(cancelled()),
            },
            Out::Offer { held, .. } | Out::Collect(held) => {
                held.push(batch);
                Ok(())
            }
            Out::Send(tx) => tx.blocking_send(Ok(batch)).map_err(|_| cancelled()),
        }
    }

    /// Whether the task should stop before parsing `next`: a pool task once it holds batches or when
    /// `next` needs a thread of its own, that thread when `next` does not.
    fn stops_before(&self, next: &Pending) -> bool {
        match self {
            Out::Offer { held, .. } => !held.is_empty() || needs_own_thread(next),
            Out::Send(_) => !needs_own_thread(next),
            Out::Collect(_) => false,
        }
    }

    /// The batches held or collected, for the async side to send.
    fn into_held(self) -> Vec<RecordBatch> {
        match self {
            Out::Offer { held, .. } | Out::Collect(held) => held,
            Out::Send(_) => Vec::new(),
        }
    }
}

/// What a parse task leaves for the next task of its lane: the place being written, and batches
/// of parsed units waiting to be sent as one (an archive of many small exports would otherwise send a
/// batch of a few rows per export, or per parse task).
#[derive(Default)]
struct Carry {
    place: Option<Arc<Place>>,
    pending: Vec<(Vec<ArrayRef>, usize)>,
    rows: usize,
}

impl GroupWriter<'_> {
    fn enter(&mut self, place: &Arc<Place>) -> Result<()> {
        let same = self
            .carry
            .place
            .as_ref()
            .is_some_and(|p| Arc::ptr_eq(p, place) || **p == **place);
        if !same {
            self.flush()?;
            self.carry.place = Some(Arc::clone(place));
        }
        Ok(())
    }

    fn append(&mut self, m: &Message, source: &str) -> Result<()> {
        self.builder.append(m, source);
        if self.builder.len() >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.flush_pending()?;
        self.flush_builder()
    }

    fn flush_builder(&mut self) -> Result<()> {
        if self.builder.is_empty() {
            return Ok(());
        }
        let (columns, rows) = self.builder.finish_columns();
        self.send(columns, rows)
    }

    fn send(&mut self, columns: Vec<Option<ArrayRef>>, rows: usize) -> Result<()> {
        ScanProgress::add(&PROGRESS.rows, rows as u64);
        let out = finish_batch(self.shared, self.carry.place.as_deref(), columns, rows)?;
        self.out.put(out)
    }

    /// Queues the batches of a parsed unit (all message columns) for sending.
    fn append_parsed(&mut self, parsed: &ParsedUnit) -> Result<()> {
        for (columns, rows) in &parsed.batches {
            if self.carry.rows + rows > BATCH_ROWS {
                self.flush_pending()?;
            }
            self.carry.pending.push((columns.clone(), *rows));
            self.carry.rows += rows;
        }
        Ok(())
    }

    fn flush_pending(&mut self) -> Result<()> {
        let rows = std::mem::take(&mut self.carry.rows);
        let pending = std::mem::take(&mut self.carry.pending);
        if rows == 0 {
            return Ok(());
        }
        let needed = self.shared.needed_message_columns();
        let columns = (0..MESSAGE_COLUMNS.len())
            .map(|i| {
                if !needed[i] {
                    return Ok(None);
                }
                if let [(only, _)] = pending.as_slice() {
                    return Ok(Some(Arc::clone(&only[i])));
                }
                let parts: Vec<&dyn Array> = pending.iter().map(|(c, _)| c[i].as_ref()).collect();
                datafusion::arrow::compute::concat(&parts)
                    .map(Some)
                    .map_err(|e| ArchiveError::DataFusion(e.into()))
            })
            .collect::<Result<Vec<_>>>()?;
        self.send(columns, rows)
    }
}

/// Parses one unit into batches of every message column, for the cache.
fn parse_unit(shared: &ScanShared, unit: &ScanUnit, input: Input) -> Result<ParsedUnit> {
    let mut builder = MessageBatchBuilder::with_columns([true; 12]);
    let mut batches: Vec<(Vec<ArrayRef>, usize)> = Vec::new();
    let source = input.source().to_owned();
    let mut emit = |m: Message, source: &str| -> FormatResult<()> {
        builder.append(&m, source);
        if builder.len() >= BATCH_ROWS {
            batches.push(finish_for_cache(&mut builder));
        }
        Ok(())
    };
    let mut sink = Sink::new(source, shared.options.on_error, &mut emit);
    let result = parse_into(shared, unit, input, &mut sink);
    let issues = std::mem::take(&mut sink.issues);
    drop(sink);
    result.map_err(ArchiveError::from)?;
    if !builder.is_empty() {
        batches.push(finish_for_cache(&mut builder));
    }
    Ok(ParsedUnit::new(batches, issues))
}

/// The builder's columns with their buffers cut to size: builders start with room for a thousand
/// values, so the few messages of a small export would otherwise keep tens of kilobytes each.
fn finish_for_cache(builder: &mut MessageBatchBuilder) -> (Vec<ArrayRef>, usize) {
    let (columns, rows) = builder.finish_columns();
    let columns = columns
        .into_iter()
        .flatten()
        .map(|mut column| {
            if let Some(array) = Arc::get_mut(&mut column) {
                array.shrink_to_fit();
            }
            column
        })
        .collect();
    (columns, rows)
}

impl Input {
    fn source(&self) -> &str {
        match self {
            Input::Object { source, .. }
            | Input::LocalFile { source, .. }
            | Input::LocalPath { source, .. }
            | Input::Folder { source, .. } => source,
        }
    }
}

/// A fetched unit waiting to be parsed, with its share of the prefetch budget.
type Pending = (ScanUnit, Fetched, Option<tokio::sync::OwnedSemaphorePermit>);

/// What a parse task did: the records it skipped, what it leaves for the next task, and the batches it
/// held or collected for the async side to send.
struct GroupParsed {
    issues: Vec<RecordIssue>,
    carry: Carry,
    batches: Vec<RecordBatch>,
}

/// Parses units from the front of `group` until it is empty or `out` says to stop (never before the
/// first); returns what it did and the units it left.
fn parse_group(
    shared: &ScanShared,
    mut group: VecDeque<Pending>,
    out: Out<'_>,
    carry: Carry,
) -> DFResult<(GroupParsed, VecDeque<Pending>)> {
    let mut writer = GroupWriter {
        shared,
        out,
        builder: MessageBatchBuilder::with_columns(shared.needed_message_columns()),
        carry,
    };
    let mut issues = Vec::new();
    let mut first = true;
    while let Some(next) = group.front() {
        if !std::mem::take(&mut first) && writer.out.stops_before(next) {
            break;
        }
        let Some((unit, fetched, _permit)) = group.pop_front() else {
            break;
        };
        writer.enter(&unit.place)?;
        let input = match fetched {
            Fetched::Parsed(parsed) => {
                writer.append_parsed(&parsed)?;
                issues.extend(parsed.issues.iter().cloned());
                ScanProgress::add(&PROGRESS.objects_done, 1);
                continue;
            }
            Fetched::Read {
                input,
                key: Some(key),
            } => {
                let parsed = Arc::new(parse_unit(shared, &unit, input)?);
                writer.append_parsed(&parsed)?;
                issues.extend(parsed.issues.iter().cloned());
                if let Some(c) = &shared.cache {
                    c.cache.insert(key, parsed);
                }
                ScanProgress::add(&PROGRESS.objects_done, 1);
                continue;
            }
            Fetched::Read { input, key: None } => input,
        };
        let source = input.source().to_owned();
        let mut emit = |m: Message, source: &str| -> FormatResult<()> {
            writer
                .append(&m, source)
                .map_err(|e| FormatError::Downstream(e.to_string()))
        };
        let mut sink = Sink::new(source, shared.options.on_error, &mut emit);
        let result = parse_into(shared, &unit, input, &mut sink);
        issues.append(&mut sink.issues);
        drop(sink);
        result.map_err(ArchiveError::from)?;
        ScanProgress::add(&PROGRESS.objects_done, 1);
    }
    // Rows parsed here go now; parsed units may wait for the next task's to fill a batch.
    writer.flush_builder()?;
    let parsed = GroupParsed {
        issues,
        carry: writer.carry,
        batches: writer.out.into_held(),
    };
    Ok((parsed, group))
}

/// The batches of what the last parse task of a lane left waiting.
fn flush_carry(shared: &ScanShared, carry: Carry) -> Result<Vec<RecordBatch>> {
    let mut writer = GroupWriter {
        shared,
        out: Out::Collect(Vec::new()),
        builder: MessageBatchBuilder::with_columns(shared.needed_message_columns()),
        carry,
    };
    writer.flush()?;
    Ok(writer.out.into_held())
}

fn parse_into(
    shared: &ScanShared,
    unit: &ScanUnit,
    input: Input,
    sink: &mut Sink<'_>,
) -> FormatResult<()> {
    let options = shared.options.as_ref();
    let forced = options.format;
    match input {
        Input::LocalFile { name, source, file } => match read_local(&source, file) {
            Ok(data) => parse_into(shared, unit, Input::Object { name, source, data }, sink),
            Err(e) => Err(FormatError::Downstream(e.to_string())),
        },
        Input::LocalPath {
            name,
            source,
            local,
            location,
            size,
        } => match local.read(&location, size) {
            Ok(data) => {
                ScanProgress::add(&PROGRESS.bytes_read, data.len() as u64);
                parse_into(shared, unit, Input::Object { name, source, data }, sink)
            }
            Err(e) => Err(FormatError::Downstream(
                ArchiveError::object(&source, format!("cannot read: {e}")).to_string(),
            )),
        },
        Input::Folder { format, files, .. } => {
            let ctx = ParseCtx {
                options,
                name: "",
                container: None,
                default_channel: unit.place.default_channel.as_deref(),
                format_name: format.name(),
            };
            format.parse_folder(&files, &ctx, sink)
        }
        Input::Object { name, source, data } => {
            let (compression, inner) = compression_of(&name);
            let data = match decompress(data, compression) {
                Ok(d) => d,
                Err(e) => return sink.bad_object(e),
            };
            if is_zip(inner, &data) {
                let entries = match zip_entries(data) {
                    Ok(e) => e,
                    Err(e) => return sink.bad_object(e),
                };
                // A zip holding a folder export's marker files near its top is that export (a Slack
                // workspace zip).
                let folder = forced.filter(|f| f.is_folder_export()).or_else(|| {
                    entries.iter().find_map(|e| {
                        let file = e.name.rsplit('/').next().unwrap_or(&e.name);
                        Format::marked_by(file).filter(|_| e.name.matches('/').count() <= 1)
                    })
                });
                if let Some(format) = folder {
                    let markers = format.spec().folder_markers();
                    let root = entries
                        .iter()
                        .filter(|e| markers.contains(&e.name.rsplit('/').next().unwrap_or(&e.name)))
                        .map(|e| {
                            e.name
                                .rsplit_once('/')
                                .map_or(String::new(), |(d, _)| format!("{d}/"))
                        })
                        .min_by_key(String::len)
                        .unwrap_or_default();
                    let files: Vec<ExportFile> = entries
                        .into_iter()
                        .filter_map(|e| {
                            let rel = e.name.strip_prefix(&root)?.to_string();
                            Some(ExportFile {
                                source: format!("{source}#{}", e.name),
                                path: rel,
                                data: FileData::Zipped(e),
                            })
                        })
                        .collect();
                    let ctx = ParseCtx {
                        options,
                        name: inner,
                        container: None,
                        default_channel: unit.place.default_channel.as_deref(),
                        format_name: format.name(),
                    };
                    return format.parse_folder(&files, &ctx, sink);
                }
                let mut seen_names = HashSet::new();
                for entry in entries {
                    if is_media(&entry.name)
                        || is_hidden(&entry.name)
                        || !seen_names.insert(entry.name.clone())
                    {
                        continue;
                    }
                    sink.set_source(format!("{source}#{}", entry.name))?;
                    let (c, entry_inner) = compression_of(&entry.name);
                    let data = match entry.read().and_then(|d| decompress(d, c)) {
                        Ok(d) => d,
                        Err(e) => {
                            sink.bad_object(e)?;
                            continue;
                        }
                    };
                    if is_blank(&data) {
                        continue;
                    }
                    let format = match forced.map(Ok).unwrap_or_else(|| detect(entry_inner, &data))
                    {
                        Ok(f) => f,
                        Err(e) => {
                            sink.bad_object(e)?;
                            continue;
                        }
                    };
                    let ctx = ParseCtx {
                        options,
                        name: entry_inner,
                        container: Some(inner),
                        default_channel: unit.place.default_channel.as_deref(),
                        format_name: format.name(),
                    };
                    format.parse(&data, &ctx, sink)?;
                }
                Ok(())
            } else {
                if is_blank(&data) {
                    // An empty chat or log exports as an empty file: no messages, not an error.
                    return Ok(());
                }
                let format = match forced.map(Ok).unwrap_or_else(|| detect(inner, &data)) {
                    Ok(f) => f,
                    Err(e) => return sink.bad_object(e),
                };
                let ctx = ParseCtx {
                    options,
                    name: inner,
                    container: None,
                    default_channel: unit.place.default_channel.as_deref(),
                    format_name: format.name(),
                };
                format.parse(&data, &ctx, sink)
            }
        }
    }
}

fn is_blank(data: &[u8]) -> bool {
    crate::formats::strip_bom(data)
        .iter()
        .all(u8::is_ascii_whitespace)
}

/// Assembles the projected batch from the built message columns and the unit's partition values.
fn finish_batch(
    shared: &ScanShared,
    place: Option<&Place>,
    mut columns: Vec<Option<ArrayRef>>,
    rows: usize,
) -> Result<RecordBatch> {
    let message_cols = MESSAGE_COLUMNS.len();
    let all: Vec<usize>;
    let indices = match &shared.projection {
        Some(p) => p,
        None => {
            all = (0..shared.full_schema.fields().len()).collect();
            &all
        }
    };
    let mut out: Vec<ArrayRef> = Vec::with_capacity(indices.len());
    for &i in indices {
        if i < message_cols {
            let col = columns[i].take().ok_or_else(|| {
                ArchiveError::DataFusion(DataFusionError::Internal(format!(
                    "column {i} was not built"
                )))
            })?;
            out.push(col);
        } else {
            let name = &shared.partition_cols[i - message_cols];
            let value = place.and_then(|p| p.value(name));
            out.push(match value {
                Some(v) => Arc::new(StringArray::from(vec![v; rows])),
                None => new_null_array(&DataType::Utf8, rows),
            });
        }
    }
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    RecordBatch::try_new_with_options(Arc::clone(&shared.projected_schema), out, &options)
        .map_err(|e| ArchiveError::DataFusion(e.into()))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use datafusion::arrow::util::display::array_value_to_string;
    use datafusion::error::DataFusionError;
    use datafusion::prelude::{SessionConfig, SessionContext};
    use futures::TryStreamExt;

    use super::*;
    use crate::errlog::ErrorLog;

    /// `files` web chat logs of `lines` messages each, and one log larger than `OWN_THREAD_BYTES`.
    fn logs(files: usize, lines: usize) -> (tempfile::TempDir, usize) {
        let dir = tempfile::tempdir().expect("tempdir");
        let line = |f: usize, l: usize| {
            format!(
                "{{\"session_id\": \"s{f}\", \"id\": \"m{l}\", \"timestamp\": \"2025-01-20T09:00:00Z\", \
                 \"role\": \"visitor\", \"text\": \"message {l} of log {f}, with some words\"}}\n"
            )
        };
        for f in 0..files {
            let text: String = (0..lines).map(|l| line(f, l)).collect();
            std::fs::write(dir.path().join(format!("log-{f:04}.jsonl")), text).expect("write");
        }
        let mut large = String::new();
        let mut large_lines = 0;
        while large.len() as u64 <= OWN_THREAD_BYTES {
            large.push_str(&line(files, large_lines));
            large_lines += 1;
        }
        std::fs::write(dir.path().join("large.jsonl"), large).expect("write");
        (dir, files * lines + large_lines)
    }

    /// Each message's conversation and message id, sorted.
    fn keys(batches: &[RecordBatch]) -> Vec<String> {
        let mut keys: Vec<String> = batches
            .iter()
            .flat_map(|b| {
                let column = |name: &str| b.column_by_name(name).map(Arc::clone).expect("column");
                let (conversation, message) = (column("conversation_id"), column("message_id"));
                (0..b.num_rows()).map(move |i| {
                    let value = |a: &ArrayRef| array_value_to_string(a, i).expect("value");
                    format!("{}/{}", value(&conversation), value(&message))
                })
            })
            .collect();
        keys.sort_unstable();
        keys
    }

    /// A store that answers every GET after 20 ms (a store in another region) and counts the requests
    /// it has in flight.
    #[derive(Debug)]
    struct DistantStore {
        inner: object_store::memory::InMemory,
        in_flight: std::sync::atomic::AtomicUsize,
        most: std::sync::atomic::AtomicUsize,
        /// GETs answered.
        gets: std::sync::atomic::AtomicUsize,
    }

    impl std::fmt::Display for DistantStore {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "DistantStore")
        }
    }

    #[async_trait::async_trait]
    impl ObjectStore for DistantStore {
        async fn put_opts(
            &self,
            location: &Path,
            payload: object_store::PutPayload,
            opts: object_store::PutOptions,
        ) -> object_store::Result<object_store::PutResult> {
            self.inner.put_opts(location, payload, opts).await
        }

        async fn put_multipart_opts(
            &self,
            location: &Path,
            opts: object_store::PutMultipartOptions,
        ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
            self.inner.put_multipart_opts(location, opts).await
        }

        async fn get_opts(
            &self,
            location: &Path,
            options: object_store::GetOptions,
        ) -> object_store::Result<GetResult> {
            use std::sync::atomic::Ordering::SeqCst;
            let now = self.in_flight.fetch_add(1, SeqCst) + 1;
            self.most.fetch_max(now, SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            let got = self.inner.get_opts(location, options).await;
            self.in_flight.fetch_sub(1, SeqCst);
            self.gets.fetch_add(1, SeqCst);
            got
        }

        fn delete_stream(
            &self,
            locations: futures::stream::BoxStream<'static, object_store::Result<Path>>,
        ) -> futures::stream::BoxStream<'static, object_store::Result<Path>> {
            self.inner.delete_stream(locations)
        }

        fn list(
            &self,
            prefix: Option<&Path>,
        ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>>
        {
            self.inner.list(prefix)
        }

        async fn list_with_delimiter(
            &self,
            prefix: Option<&Path>,
        ) -> object_store::Result<object_store::ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }

        async fn copy_opts(
            &self,
            from: &Path,
            to: &Path,
            options: object_store::CopyOptions,
        ) -> object_store::Result<()> {
            self.inner.copy_opts(from, to, options).await
        }
    }

    /// `sessions` web chat logs of `messages` messages each under `memory://distant/chats/`, in a
    /// [`DistantStore`] registered in a new session of `partitions` partitions.
    async fn distant_archive(
        sessions: usize,
        messages: usize,
        partitions: usize,
    ) -> DFResult<(SessionContext, Arc<DistantStore>)> {
        let store = Arc::new(DistantStore {
            inner: object_store::memory::InMemory::new(),
            in_flight: Default::default(),
            most: Default::default(),
            gets: Default::default(),
        });
        for s in 0..sessions {
            let log: String = (0..messages)
                .map(|m| {
                    format!(
                        "{{\"session_id\": \"s{s}\", \"id\": \"m{m}\", \"timestamp\": \
                         \"2025-01-20T09:00:00Z\", \"role\": \"visitor\", \"text\": \"hello {s}\"}}\n"
                    )
                })
                .collect();
            store
                .inner
                .put(&Path::from(format!("chats/s{s:04}.jsonl")), log.into())
                .await?;
        }
        let ctx = SessionContext::new_with_config(
            SessionConfig::new().with_target_partitions(partitions),
        );
        let url = url::Url::parse("memory://distant").expect("url");
        ctx.runtime_env()
            .register_object_store(&url, Arc::clone(&store) as Arc<dyn ObjectStore>);
        crate::register_functions(&ctx, &ErrorLog::default());
        Ok((ctx, store))
    }

    /// Small objects from a store 20 ms away: a partition keeps hundreds of requests in flight (128
    /// kept a 2-core scan waiting on the store), and every message arrives once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_remote_scan_keeps_hundreds_of_requests_in_flight() -> DFResult<()> {
        let (ctx, store) = distant_archive(1500, 2, 2).await?;
        let batches = ctx
            .sql("SELECT * FROM read_archive('memory://distant/chats/')")
            .await?
            .collect()
            .await?;
        let keys = keys(&batches);
        assert_eq!(keys.len(), 3000);
        assert!(keys.windows(2).all(|w| w[0] != w[1]), "a message twice");
        let most = store.most.load(std::sync::atomic::Ordering::SeqCst);
        // Fewer where the open-files limit leaves fewer request slots.
        let expected = 300.min(requests::total() / 2);
        assert!(most > expected, "at most {most} requests in flight");
        Ok(())
    }

    /// A scan nobody reads (a join's probe side while its build side is read) gives back its request
    /// slots: its requests finish in tasks of their own, or the process's other scans could wait for
    /// those slots for ever. With the fetches polled only along with the stalled stream, requests stay
    /// in flight and keep their slots.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_remote_scan_nobody_reads_holds_no_request_slot() -> DFResult<()> {
        use std::sync::atomic::Ordering::SeqCst;
        // 120,000 messages: many more batches than the partition's channel and lanes hold.
        let (ctx, store) = distant_archive(3000, 40, 1).await?;
        let stalled = ctx
            .sql("SELECT * FROM read_archive('memory://distant/chats/')")
            .await?
            .execute_stream()
            .await?;
        // Stalled: no GET in flight, none answered for a while, and far from all objects read. Without
        // its own tasks the scan stops with requests in flight (woken, never polled again).
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut answered = usize::MAX;
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = store.gets.load(SeqCst);
            if now > 0 && now == answered && store.in_flight.load(SeqCst) == 0 {
                break;
            }
            answered = now;
            assert!(
                std::time::Instant::now() < deadline,
                "a scan nobody reads keeps {} requests in flight ({} slots of the process in use)",
                store.in_flight.load(SeqCst),
                requests::in_use()
            );
        }
        assert!(
            answered < 3000,
            "the scan read all {answered} objects: it never stalled"
        );
        // Slots of the process: other tests may hold some for a moment, this scan none for good.
        while requests::in_use() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "{} request slots held while no request runs here",
                requests::in_use()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drop(stalled);
        Ok(())
    }

    /// A query that reads one scan while another waits (a hash join drains its build side first) must
    /// not deadlock on the blocking pool. One blocking thread makes it certain: the waiting scan's
    /// parse task, had it waited for room in its channel, would hold the only thread and the other
    /// scan could never parse. Then the same archive from the parsed cache, whose units travel in the
    /// lanes' carries.
    #[test]
    fn a_scan_nobody_reads_holds_no_blocking_thread() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        // Enough groups of 64 objects for many more batches than the channel holds.
        let (dir, messages) = logs(600, 3);
        let sql = format!("SELECT * FROM read_archive('{}/')", dir.path().display());
        let result = runtime.block_on(async {
            let ctx =
                SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
            crate::register_functions(&ctx, &ErrorLog::default());
            // Planned first: planning lists the location, and waits for it without a timeout.
            let other = ctx.sql(&sql).await?;
            let waiting = ctx.sql(&sql).await?.execute_stream().await?;
            // Let the waiting scan fill its channel.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let other = other.collect();
            let Ok(other) = tokio::time::timeout(Duration::from_secs(30), other).await else {
                return Ok(None);
            };
            let first: Vec<_> = waiting.try_collect().await?;
            Arc::new(ParsedCache::new(256 << 20)).install(&ctx);
            let filling = ctx.sql(&sql).await?.collect().await?;
            let cached = ctx.sql(&sql).await?.collect().await?;
            Ok::<_, DataFusionError>(Some([other?, first, filling, cached].map(|b| keys(&b))))
        });
        // Returns at once, or after a second with a parse task still stuck in the pool.
        runtime.shutdown_timeout(Duration::from_secs(1));
        let scans = result
            .expect("scans")
            .expect("the second scan finished while the first waited");
        for keys in &scans {
            assert_eq!(keys.len(), messages);
            // Every message once.
            assert!(keys.windows(2).all(|w| w[0] != w[1]));
            assert_eq!(keys, &scans[0]);
        }
    }
}
