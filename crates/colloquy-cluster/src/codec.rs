//! How colloquy's plans travel: archive tables from a client to the scheduler (logical), archive scans
//! from the scheduler to executors (physical), in-memory tables both ways, and ONNX functions by model
//! URL and content hash. Everything else goes to Ballista's own codecs, which also encode its shuffles.
//!
//! Colloquy's payloads start with [`TAG`] and a kind byte, then JSON (or Arrow IPC for table data), so
//! a buffer tells which codec wrote it.

use std::sync::Arc;

use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use colloquy_archive::{ArchiveScanExec, ArchiveTable, RemoteScanEnv, ScanSpec, TableSpec};
use colloquy_store::AccessPolicy;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{AggregateUDF, Expr, Extension, LogicalPlan, ScalarUDF};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::bytes::Serializeable;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use serde::{Deserialize, Serialize};

use crate::models::{ModelSpec, Models, RemoteOnnxFunc};
use crate::rules::OneTaskExec;

/// The first bytes of every payload colloquy's codecs write.
pub const TAG: &[u8] = b"colloquy\x01";

#[repr(u8)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    ArchiveTable = 1,
    ArchiveScan = 2,
    MemTable = 3,
    OnnxModel = 4,
    OneTask = 5,
}

impl Kind {
    fn of(byte: u8) -> Option<Self> {
        [
            Self::ArchiveTable,
            Self::ArchiveScan,
            Self::MemTable,
            Self::OnnxModel,
            Self::OneTask,
        ]
        .into_iter()
        .find(|k| *k as u8 == byte)
    }
}

fn write(buf: &mut Vec<u8>, kind: Kind, payload: &[u8]) {
    buf.extend_from_slice(TAG);
    buf.push(kind as u8);
    buf.extend_from_slice(payload);
}

/// The kind and payload of a buffer colloquy wrote; `None` for anyone else's.
fn read(buf: &[u8]) -> Option<(Kind, &[u8])> {
    let rest = buf.strip_prefix(TAG)?;
    let (&kind, payload) = rest.split_first()?;
    Some((Kind::of(kind)?, payload))
}

fn json<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value)
        .map_err(|e| DataFusionError::Internal(format!("encoding a plan: {e}")))
}

fn from_json<'a, T: Deserialize<'a>>(payload: &'a [u8], what: &str) -> Result<T> {
    serde_json::from_slice(payload).map_err(|e| {
        DataFusionError::Internal(format!(
            "cannot decode {what} from the plan ({e}): are the client, scheduler and executors the same colloquy version?"
        ))
    })
}

/// Object-store options that may travel in a plan: how to talk to a store, never who you are nor where
/// the executor's credentials would be sent. A key not in this list (access keys, secrets, tokens, SAS
/// keys, service-account files, proxies, endpoints) stops the plan: on a cluster, credentials and
/// endpoints come from each executor's environment (an endpoint from a plan would receive requests
/// signed with the executor's credentials).
const PLAN_SAFE_STORE_KEYS: &[&str] = &[
    "region",
    "default_region",
    "virtual_hosted_style_request",
    "skip_signature",
    "unsigned_payload",
    "checksum_algorithm",
    "request_payer",
    "storage_account_name",
    "account_name",
    "timeout",
    "connect_timeout",
];

/// The options of `spec` that may travel, or an error naming the first that may not.
pub(crate) fn plan_safe(spec: &TableSpec) -> Result<TableSpec> {
    const STORE_PREFIXES: &[&str] = &["aws.", "gcp.", "google.", "azure.", "http."];
    for key in spec.options.keys() {
        let Some(name) = STORE_PREFIXES.iter().find_map(|p| key.strip_prefix(p)) else {
            continue;
        };
        let name = name.replace('.', "_");
        let name = name
            .strip_prefix("aws_")
            .or_else(|| name.strip_prefix("azure_"))
            .or_else(|| name.strip_prefix("google_"))
            .unwrap_or(&name);
        if !PLAN_SAFE_STORE_KEYS.contains(&name) {
            return Err(DataFusionError::Plan(format!(
                "table {}: the object-store option '{key}' would travel to the cluster inside the query plan; on a cluster, credentials and endpoints come from each executor's environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_ACCOUNT_KEY, ...): remove it from the table's OPTIONS",
                spec.name
            )));
        }
    }
    Ok(spec.clone())
}

/// In-memory tables travel with their rows, up to this size (Arrow IPC bytes): larger ones belong in
/// storage the executors can read.
const MEM_TABLE_LIMIT: usize = 8 << 20;

fn encode_mem_table(name: &TableReference, table: &MemTable) -> Result<Vec<u8>> {
    use datafusion::arrow::ipc::writer::StreamWriter;
    let schema = table.schema();
    let mut out = Vec::new();
    // One IPC stream per partition, each prefixed by its length.
    for partition in &table.batches {
        let batches = partition.try_read().map_err(|_| {
            DataFusionError::Execution(format!(
                "table {name} is being written to; run the query again"
            ))
        })?;
        let mut bytes = Vec::new();
        {
            let mut w = StreamWriter::try_new(&mut bytes, &schema)?;
            for b in batches.iter() {
                w.write(b)?;
            }
            w.finish()?;
        }
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(&bytes);
        if out.len() > MEM_TABLE_LIMIT {
            return Err(DataFusionError::Plan(format!(
                "table {name} lives in this session's memory and holds more than {} MB; a cluster's executors cannot read it from here: write it to storage (COPY {name} TO '<location>') and create an external table over that",
                MEM_TABLE_LIMIT >> 20
            )));
        }
    }
    Ok(out)
}

fn decode_mem_table(mut payload: &[u8], schema: SchemaRef) -> Result<MemTable> {
    use datafusion::arrow::ipc::reader::StreamReader;
    let mut partitions = Vec::new();
    while !payload.is_empty() {
        let (len, rest) = payload.split_at_checked(8).ok_or_else(|| {
            DataFusionError::Internal("a table's rows were cut short in the plan".into())
        })?;
        let len = u64::from_le_bytes(len.try_into().unwrap_or_default()) as usize;
        let (bytes, rest) = rest.split_at_checked(len).ok_or_else(|| {
            DataFusionError::Internal("a table's rows were cut short in the plan".into())
        })?;
        let reader = StreamReader::try_new(bytes, None)?;
        partitions.push(reader.collect::<std::result::Result<Vec<_>, _>>()?);
        payload = rest;
    }
    if partitions.is_empty() {
        partitions.push(Vec::new());
    }
    MemTable::try_new(schema, partitions)
}

/// Client → scheduler.
#[derive(Debug, Default)]
pub struct ColloquyLogicalCodec {
    inner: BallistaLogicalExtensionCodec,
    /// The scheduler's (or executor's) own access policy, applied to every archive it rebuilds.
    policy: Option<Arc<AccessPolicy>>,
}

impl ColloquyLogicalCodec {
    pub fn with_policy(policy: Option<Arc<AccessPolicy>>) -> Self {
        Self {
            inner: BallistaLogicalExtensionCodec::default(),
            policy,
        }
    }
}

impl LogicalExtensionCodec for ColloquyLogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        self.inner.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        match read(buf) {
            Some((Kind::ArchiveTable, payload)) => {
                let spec: TableSpec = from_json(payload, "an archive table")?;
                let table = ArchiveTable::from_spec(
                    &spec,
                    ctx.runtime_env().as_ref(),
                    self.policy.clone(),
                )?;
                Ok(Arc::new(table))
            }
            Some((Kind::MemTable, payload)) => Ok(Arc::new(decode_mem_table(payload, schema)?)),
            _ => self
                .inner
                .try_decode_table_provider(buf, table_ref, schema, ctx),
        }
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        if let Some(table) = node.downcast_ref::<ArchiveTable>() {
            write(buf, Kind::ArchiveTable, &json(&plan_safe(&table.spec())?)?);
            return Ok(());
        }
        if let Some(table) = node.downcast_ref::<MemTable>() {
            write(buf, Kind::MemTable, &encode_mem_table(table_ref, table)?);
            return Ok(());
        }
        self.inner
            .try_encode_table_provider(table_ref, Arc::clone(&node), buf)
            .map_err(|_| {
                DataFusionError::NotImplemented(format!(
                    "table {table_ref} ({}) cannot be sent to a cluster: it exists only in this session; on a cluster, query archive tables, external tables in storage, or small in-memory tables",
                    provider_kind(node.as_ref())
                ))
            })
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn FileFormatFactory>> {
        self.inner.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> Result<()> {
        self.inner.try_encode_file_format(buf, node)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        match read(buf) {
            Some((Kind::OnnxModel, payload)) => Ok(Arc::new(ScalarUDF::new_from_impl(
                RemoteOnnxFunc::new(ModelSpec::decode(payload)?),
            ))),
            _ => self.inner.try_decode_udf(name, buf),
        }
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        if encode_model(node, buf)? {
            return Ok(());
        }
        self.inner.try_encode_udf(node, buf)
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        self.inner.try_decode_udaf(name, buf)
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udaf(node, buf)
    }
}

/// Writes an ONNX function's [`ModelSpec`]; false for any other function.
fn encode_model(node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<bool> {
    let Some(spec) = ModelSpec::of(node)? else {
        return Ok(false);
    };
    write(buf, Kind::OnnxModel, &spec.encode()?);
    Ok(true)
}

fn provider_kind(p: &dyn TableProvider) -> String {
    let debug = format!("{p:?}");
    debug
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .next()
        .unwrap_or("a table")
        .to_string()
}

/// An archive scan as it travels to executors: the scan and its partition-only filters.
#[derive(Serialize, Deserialize)]
struct ScanNode {
    spec: ScanSpec,
    /// Each filter as DataFusion's protobuf bytes.
    filters: Vec<Vec<u8>>,
}

/// Scheduler → executors.
#[derive(Debug)]
pub struct ColloquyPhysicalCodec {
    inner: BallistaPhysicalExtensionCodec,
    scans: RemoteScanEnv,
    models: Arc<Models>,
}

impl Default for ColloquyPhysicalCodec {
    fn default() -> Self {
        Self::new(RemoteScanEnv::default(), Arc::new(Models::default()))
    }
}

impl ColloquyPhysicalCodec {
    /// `scans`: this process's policy, parsed-unit cache and error log for the archive scans it
    /// rebuilds; `models`: its ONNX models, loaded once per content hash.
    pub fn new(scans: RemoteScanEnv, models: Arc<Models>) -> Self {
        Self {
            inner: BallistaPhysicalExtensionCodec::default(),
            scans,
            models,
        }
    }
}

impl PhysicalExtensionCodec for ColloquyPhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match read(buf) {
            Some((Kind::ArchiveScan, payload)) => {
                let node: ScanNode = from_json(payload, "an archive scan")?;
                let filters = node
                    .filters
                    .iter()
                    .map(|f| Expr::from_bytes_with_ctx(f, ctx))
                    .collect::<Result<Vec<_>>>()?;
                let [shares] = inputs else {
                    return Err(DataFusionError::Internal(format!(
                        "an archive scan arrived with {} inputs instead of its shares",
                        inputs.len()
                    )));
                };
                Ok(Arc::new(ArchiveScanExec::remote(
                    node.spec,
                    filters,
                    self.scans.clone(),
                    Arc::clone(shares),
                )?))
            }
            Some((Kind::OneTask, _)) => match inputs {
                [input] => Ok(Arc::new(OneTaskExec::new(Arc::clone(input)))),
                _ => Err(DataFusionError::Internal(
                    "OneTaskExec arrived without its input".into(),
                )),
            },
            _ => self.inner.try_decode(buf, inputs, ctx, proto_converter),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        if let Some(scan) = node.downcast_ref::<ArchiveScanExec>() {
            let spec = ScanSpec {
                table: plan_safe(&scan.spec().table)?,
                ..scan.spec().clone()
            };
            let filters = scan
                .filters()
                .iter()
                .map(|f| Ok(f.to_bytes()?.to_vec()))
                .collect::<Result<Vec<_>>>()?;
            write(buf, Kind::ArchiveScan, &json(&ScanNode { spec, filters })?);
            return Ok(());
        }
        if node.is::<OneTaskExec>() {
            write(buf, Kind::OneTask, &[]);
            return Ok(());
        }
        self.inner.try_encode(node, buf, proto_converter)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        match read(buf) {
            Some((Kind::OnnxModel, payload)) => self.models.function(ModelSpec::decode(payload)?),
            _ => self.inner.try_decode_udf(name, buf),
        }
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        if encode_model(node, buf)? {
            return Ok(());
        }
        self.inner.try_encode_udf(node, buf)
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        self.inner.try_decode_udaf(name, buf)
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode_udaf(node, buf)
    }
}
