//! From a location to record batches: listing objects into scan units (an object, or a whole Slack export
//! folder), fetching them, and parsing them off the async runtime in a blocking task per unit.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::{
    ArrayRef, RecordBatch, RecordBatchOptions, StringArray, new_null_array,
};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::error::{DataFusionError, Result as DFResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::{RecordBatchReceiverStream, RecordBatchStreamAdapter};
use datafusion::physical_plan::streaming::PartitionStream;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use tokio::sync::mpsc::Sender;

use crate::container::{compression_of, decompress, is_zip, zip_entries};
use crate::detect::{detect, is_hidden, is_media};
use crate::errlog::ErrorLog;
use crate::error::{ArchiveError, Result};
use crate::formats::slack::{MARKERS, SlackFile};
use crate::formats::{
    Format, ParseCtx, csv, discord, jsonl, messenger, slack, teams, telegram, whatsapp,
};
use crate::options::ArchiveOptions;
use crate::progress::{PROGRESS, ScanProgress};
use crate::schema::{BATCH_ROWS, MESSAGE_COLUMNS, MessageBatchBuilder};
use crate::sink::{RecordIssue, Sink};
use crate::store::ArchiveUrl;
use colloquy_formats::message::Message;
use colloquy_formats::{FormatError, Result as FormatResult};

/// Channel names recognised as folder names (`exports/sms/2024-01.csv`).
const CHANNEL_WORDS: &[&str] = &[
    "whatsapp",
    "slack",
    "telegram",
    "discord",
    "messenger",
    "instagram",
    "teams",
    "sms",
    "webchat",
    "email",
];

/// What one task reads and parses as a whole.
#[derive(Debug, Clone)]
pub enum UnitKind {
    Object(ObjectMeta),
    /// An unpacked Slack export: the folder holding `users.json`/`channels.json`, and every file below it.
    SlackFolder {
        root: Path,
        files: Vec<ObjectMeta>,
    },
}

#[derive(Debug, Clone)]
pub struct ScanUnit {
    pub kind: UnitKind,
    /// Hive-style `key=value` segments of the path, as (key, value).
    pub partitions: Vec<(String, String)>,
    pub default_channel: Option<String>,
}

impl ScanUnit {
    pub fn size(&self) -> u64 {
        match &self.kind {
            UnitKind::Object(m) => m.size,
            UnitKind::SlackFolder { files, .. } => files.iter().map(|f| f.size).sum(),
        }
    }
}

/// Lists the objects of an archive location and groups them into scan units.
pub async fn list_units(store: &dyn ObjectStore, url: &ArchiveUrl) -> Result<Vec<ScanUnit>> {
    let mut metas: Vec<ObjectMeta> = Vec::new();
    let single =
        url.glob.is_none() && !url.base.path().ends_with('/') && !url.prefix.as_ref().is_empty();
    let mut found_single = false;
    if single {
        match store.head(&url.prefix).await {
            Ok(m) => {
                metas.push(m);
                found_single = true;
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
    if !found_single {
        let prefix = (!url.prefix.as_ref().is_empty()).then_some(&url.prefix);
        let listed: Vec<ObjectMeta> = store
            .list(prefix)
            .try_collect()
            .await
            .map_err(|e| ArchiveError::object(&url.original, format!("cannot list: {e}")))?;
        metas.extend(listed.into_iter().filter(|m| url.matches(&m.location)));
    }
    let relative = |loc: &Path| -> String {
        let p = loc.as_ref();
        let pre = url.prefix.as_ref();
        match p.strip_prefix(pre).map(|r| r.trim_start_matches('/')) {
            // The location named this very object: keep its file name (it may name the channel).
            Some("") => p.rsplit('/').next().unwrap_or(p).to_string(),
            Some(r) => r.to_string(),
            None => p.to_string(),
        }
    };
    metas.retain(|m| !is_hidden(&relative(&m.location)));
    metas.sort_by(|a, b| a.location.cmp(&b.location));
    if metas.is_empty() {
        return Err(ArchiveError::object(
            &url.original,
            "no objects found at this location",
        ));
    }

    // Folders that hold a Slack export's metadata files (a location naming one file is that file only).
    let slack_roots: BTreeSet<String> = metas
        .iter()
        .filter(|_| !found_single)
        .filter_map(|m| {
            let p = m.location.as_ref();
            let (dir, file) = p.rsplit_once('/').unwrap_or(("", p));
            MARKERS.contains(&file).then(|| dir.to_string())
        })
        .collect();
    let root_of = |p: &str| -> Option<String> {
        slack_roots
            .iter()
            .filter(|r| r.is_empty() || p.starts_with(&format!("{r}/")))
            .max_by_key(|r| r.len())
            .cloned()
    };

    let mut units = Vec::new();
    let mut slack_units: Vec<(String, Vec<ObjectMeta>)> = Vec::new();
    for m in metas {
        let path = m.location.as_ref().to_string();
        if let Some(root) = root_of(&path) {
            match slack_units.iter_mut().find(|(r, _)| *r == root) {
                Some((_, files)) => files.push(m),
                None => slack_units.push((root, vec![m])),
            }
            continue;
        }
        let (_, inner) = compression_of(&path);
        if is_media(inner) {
            continue;
        }
        let rel = relative(&m.location);
        units.push(unit(UnitKind::Object(m), &rel));
    }
    for (root, files) in slack_units {
        let rel = relative(&Path::from(format!("{root}/x")));
        units.push(unit(
            UnitKind::SlackFolder {
                root: Path::from(root),
                files,
            },
            &rel,
        ));
    }
    Ok(units)
}

fn unit(kind: UnitKind, relative_path: &str) -> ScanUnit {
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
        } else if default_channel.is_none()
            && CHANNEL_WORDS.contains(&seg.to_ascii_lowercase().as_str())
        {
            default_channel = Some(seg.to_ascii_lowercase());
        }
    }
    if default_channel.is_none() {
        // A file named after its channel: `sms-2026-01.csv`, `webchat.jsonl`.
        let file = relative_path
            .rsplit('/')
            .next()
            .unwrap_or(relative_path)
            .to_ascii_lowercase();
        default_channel = file
            .split(|c: char| !c.is_ascii_alphanumeric())
            .find(|w| CHANNEL_WORDS.contains(w))
            .map(str::to_string);
    }
    ScanUnit {
        kind,
        partitions,
        default_channel,
    }
}

/// Partition columns: every hive key seen, sorted, except names the message schema already has.
pub fn partition_columns(units: &[ScanUnit]) -> Vec<String> {
    let mut keys: BTreeSet<String> = BTreeSet::new();
    for u in units {
        for (k, _) in &u.partitions {
            if !MESSAGE_COLUMNS.contains(&k.as_str()) {
                keys.insert(k.clone());
            }
        }
    }
    keys.into_iter().collect()
}

/// Everything the units of one scan share.
#[derive(Debug)]
pub struct ScanShared {
    pub store: Arc<dyn ObjectStore>,
    pub url: ArchiveUrl,
    pub options: Arc<ArchiveOptions>,
    pub partition_cols: Vec<String>,
    /// Schema of message columns plus partition columns, before projection.
    pub full_schema: SchemaRef,
    pub projection: Option<Vec<usize>>,
    pub projected_schema: SchemaRef,
    pub table: String,
    pub log: ErrorLog,
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

/// One output partition of a scan: its units are read one after the other.
#[derive(Debug)]
pub struct ArchivePartition {
    pub shared: Arc<ScanShared>,
    pub units: Vec<ScanUnit>,
}

impl PartitionStream for ArchivePartition {
    fn schema(&self) -> &SchemaRef {
        &self.shared.projected_schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        if self.units.is_empty() {
            return Box::pin(RecordBatchStreamAdapter::new(
                Arc::clone(&self.shared.projected_schema),
                futures::stream::empty(),
            ));
        }
        let mut builder =
            RecordBatchReceiverStream::builder(Arc::clone(&self.shared.projected_schema), 2);
        let tx = builder.tx();
        let shared = Arc::clone(&self.shared);
        let units = self.units.clone();
        builder.spawn(async move {
            for unit in units {
                read_unit(&shared, unit, tx.clone()).await?;
            }
            Ok(())
        });
        builder.build()
    }
}

async fn fetch(store: &dyn ObjectStore, url: &ArchiveUrl, m: &ObjectMeta) -> Result<Bytes> {
    let source = url.object_url(&m.location);
    let get = store
        .get(&m.location)
        .await
        .map_err(|e| ArchiveError::object(&source, format!("cannot read: {e}")))?;
    let data = get
        .bytes()
        .await
        .map_err(|e| ArchiveError::object(&source, format!("read failed part-way: {e}")))?;
    ScanProgress::add(&PROGRESS.bytes_read, data.len() as u64);
    Ok(data)
}

async fn read_unit(
    shared: &Arc<ScanShared>,
    unit: ScanUnit,
    tx: Sender<DFResult<RecordBatch>>,
) -> DFResult<()> {
    let input = match &unit.kind {
        UnitKind::Object(m) => Input::Object {
            name: m.location.as_ref().to_string(),
            source: shared.url.object_url(&m.location),
            data: fetch(shared.store.as_ref(), &shared.url, m).await?,
        },
        UnitKind::SlackFolder { root, files } => {
            let mut out = Vec::with_capacity(files.len());
            for m in files {
                let data = fetch(shared.store.as_ref(), &shared.url, m).await?;
                let path = m.location.as_ref();
                let rel = path
                    .strip_prefix(root.as_ref())
                    .unwrap_or(path)
                    .trim_start_matches('/')
                    .to_string();
                out.push(SlackFile {
                    path: rel,
                    source: shared.url.object_url(&m.location),
                    data,
                });
            }
            Input::SlackFolder {
                source: shared.url.object_url(root),
                files: out,
            }
        }
    };
    let shared2 = Arc::clone(shared);
    // Parsing is CPU work: keep it off the runtime threads that drive IO.
    let issues = tokio::task::spawn_blocking(move || parse_input(&shared2, &unit, input, &tx))
        .await
        .map_err(|e| DataFusionError::External(Box::new(e)))??;
    shared.log.extend(&shared.table, issues);
    ScanProgress::add(&PROGRESS.objects_done, 1);
    Ok(())
}

enum Input {
    Object {
        name: String,
        source: String,
        data: Bytes,
    },
    SlackFolder {
        source: String,
        files: Vec<SlackFile>,
    },
}

fn parse_input(
    shared: &ScanShared,
    unit: &ScanUnit,
    input: Input,
    tx: &Sender<DFResult<RecordBatch>>,
) -> DFResult<Vec<RecordIssue>> {
    let send = |columns: Vec<Option<ArrayRef>>, rows: usize| -> Result<()> {
        ScanProgress::add(&PROGRESS.rows, rows as u64);
        let out = finish_batch(shared, unit, columns, rows)?;
        tx.blocking_send(Ok(out)).map_err(|_| {
            ArchiveError::DataFusion(DataFusionError::Execution("scan cancelled".into()))
        })
    };
    let mut builder = MessageBatchBuilder::with_columns(shared.needed_message_columns());
    let mut emit = |m: Message, source: &str| -> FormatResult<()> {
        builder.append(&m, source);
        if builder.len() >= BATCH_ROWS {
            let (columns, rows) = builder.finish_columns();
            send(columns, rows).map_err(|e| FormatError::Downstream(e.to_string()))?;
        }
        Ok(())
    };
    let source = match &input {
        Input::Object { source, .. } | Input::SlackFolder { source, .. } => source.clone(),
    };
    let mut sink = Sink::new(source, shared.options.on_error, &mut emit);
    let result = parse_into(shared, unit, input, &mut sink);
    let issues = std::mem::take(&mut sink.issues);
    drop(sink);
    result.map_err(ArchiveError::from)?;
    if !builder.is_empty() {
        let (columns, rows) = builder.finish_columns();
        send(columns, rows)?;
    }
    Ok(issues)
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
        Input::SlackFolder { files, .. } => {
            let ctx = ParseCtx {
                options,
                name: "",
                container: None,
                default_channel: unit.default_channel.as_deref(),
                format_name: "slack",
            };
            slack::parse(&files, &ctx, sink)
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
                let is_slack = forced == Some(Format::Slack)
                    || entries.iter().any(|e| {
                        let file = e.name.rsplit('/').next().unwrap_or(&e.name);
                        MARKERS.contains(&file) && e.name.matches('/').count() <= 1
                    });
                if is_slack {
                    let root = entries
                        .iter()
                        .filter(|e| MARKERS.contains(&e.name.rsplit('/').next().unwrap_or(&e.name)))
                        .map(|e| {
                            e.name
                                .rsplit_once('/')
                                .map_or(String::new(), |(d, _)| format!("{d}/"))
                        })
                        .min_by_key(String::len)
                        .unwrap_or_default();
                    let files: Vec<SlackFile> = entries
                        .into_iter()
                        .filter_map(|e| {
                            let rel = e.name.strip_prefix(&root)?.to_string();
                            Some(SlackFile {
                                source: format!("{source}#{}", e.name),
                                path: rel,
                                data: e.data,
                            })
                        })
                        .collect();
                    let ctx = ParseCtx {
                        options,
                        name: inner,
                        container: None,
                        default_channel: unit.default_channel.as_deref(),
                        format_name: "slack",
                    };
                    return slack::parse(&files, &ctx, sink);
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
                    let data = match decompress(entry.data, c) {
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
                        default_channel: unit.default_channel.as_deref(),
                        format_name: format.name(),
                    };
                    parse_one(format, &data, &ctx, sink)?;
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
                    default_channel: unit.default_channel.as_deref(),
                    format_name: format.name(),
                };
                parse_one(format, &data, &ctx, sink)
            }
        }
    }
}

fn is_blank(data: &[u8]) -> bool {
    crate::formats::strip_bom(data)
        .iter()
        .all(u8::is_ascii_whitespace)
}

fn parse_one(
    format: Format,
    data: &[u8],
    ctx: &ParseCtx<'_>,
    sink: &mut Sink<'_>,
) -> FormatResult<()> {
    match format {
        Format::Whatsapp => whatsapp::parse(data, ctx, sink),
        Format::Telegram => telegram::parse(data, ctx, sink),
        Format::Discord => discord::parse(data, ctx, sink),
        Format::Messenger => messenger::parse(data, ctx, sink, "messenger"),
        Format::Instagram => messenger::parse(data, ctx, sink, "instagram"),
        Format::Teams => teams::parse(data, ctx, sink),
        Format::Jsonl => jsonl::parse(data, ctx, sink),
        Format::Csv => csv::parse(data, ctx, sink),
        Format::Slack => sink.bad_object("the 'slack' format reads a Slack export .zip or folder (with users.json and channels.json), not a single file"),
    }
}

/// Assembles the projected batch from the built message columns and the unit's partition values.
fn finish_batch(
    shared: &ScanShared,
    unit: &ScanUnit,
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
            let value = unit
                .partitions
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str());
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

/// Splits units over at most `partitions` outputs, largest first onto the least-loaded output.
pub fn distribute(mut units: Vec<ScanUnit>, partitions: usize) -> Vec<Vec<ScanUnit>> {
    let n = partitions.max(1).min(units.len().max(1));
    let mut out: Vec<(u64, Vec<ScanUnit>)> = (0..n).map(|_| (0, Vec::new())).collect();
    units.sort_by_key(|u| std::cmp::Reverse(u.size()));
    for u in units {
        if let Some(slot) = out.iter_mut().min_by_key(|(load, _)| *load) {
            slot.0 += u.size();
            slot.1.push(u);
        }
    }
    out.into_iter().map(|(_, u)| u).collect()
}
