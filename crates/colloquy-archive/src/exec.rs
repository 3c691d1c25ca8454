//! The scan's execution plan. In the process that planned it, its partitions share one listing (see
//! [`crate::listing::Feeds`]). It can also be described ([`ScanSpec`]) and rebuilt in another process —
//! a Ballista executor — where each partition lists the location itself and reads the units it owns.
//!
//! On a cluster the scan has an input: a tiny in-memory table of share numbers, one row per partition
//! (`shares`). Ballista hands each task only the partitions it runs by cutting the in-memory tables
//! and file scans under it; the scan reads the shares its input still holds. Without that input, every
//! task of the stage would read every share.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{RecordBatch, UInt32Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::{DataFusionError, Result as DFResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::limit::LimitStream;
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::cache::ParsedCache;
use crate::errlog::ErrorLog;
use crate::error::ArchiveError;
use crate::listing::Feeds;
use crate::local::LocalFiles;
use crate::options::ArchiveOptions;
use crate::provider::{pruner, resolve_plan_store};
use crate::scan::{ArchivePartition, ScanCache, ScanShared};
use crate::schema::table_schema;
use colloquy_store::{AccessPolicy, Location};

/// An archive table as it travels between processes: enough to read it the same way elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSpec {
    pub name: String,
    pub location: String,
    /// The table's options, object-store options included: whoever sends a spec to another process
    /// decides which of these may leave (credentials must not).
    pub options: BTreeMap<String, String>,
    pub partition_cols: Vec<String>,
}

impl TableSpec {
    pub(crate) fn parse_options(&self) -> Result<ArchiveOptions, ArchiveError> {
        let raw: HashMap<String, String> = self
            .options
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(ArchiveOptions::parse(&raw)?)
    }
}

/// One scan of an archive table, as it travels: the table, what the query reads of it, and how many
/// partitions read it. The partition-only filters travel beside it, as expressions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanSpec {
    pub table: TableSpec,
    pub projection: Option<Vec<usize>>,
    pub limit: Option<usize>,
    pub partitions: usize,
}

/// What a process that rebuilds scans from specs brings: its own access policy (an executor's
/// operator's rules), its cache of parsed units, and where skipped records are logged.
#[derive(Debug, Clone, Default)]
pub struct RemoteScanEnv {
    pub policy: Option<Arc<AccessPolicy>>,
    pub cache: Option<Arc<ParsedCache>>,
    pub log: ErrorLog,
}

/// Reads an archive table: the plan of `ArchiveTable`'s scan.
pub struct ArchiveScanExec {
    spec: ScanSpec,
    /// On a cluster: which shares this plan's partitions read (see the module doc).
    shares: Option<Arc<dyn ExecutionPlan>>,
    /// Filters on partition columns only: units whose folders fail them are not read.
    filters: Vec<Expr>,
    /// Built on first execution in a process other than the planner's.
    shared: OnceLock<Arc<ScanShared>>,
    remote: Option<RemoteScanEnv>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl fmt::Debug for ArchiveScanExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArchiveScanExec")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl ArchiveScanExec {
    /// The plan in the process that planned it: `shared` holds the resolved store and the feed its
    /// partitions share.
    pub(crate) fn local(spec: ScanSpec, filters: Vec<Expr>, shared: Arc<ScanShared>) -> Self {
        let schema = Arc::clone(&shared.projected_schema);
        let exec = Self::with_schema(spec, filters, schema, None, None);
        let _ = exec.shared.set(shared);
        exec
    }

    /// The plan a cluster's scheduler makes: read by shares, in whichever process runs it.
    pub(crate) fn planned_for_cluster(spec: ScanSpec, filters: Vec<Expr>) -> DFResult<Self> {
        let shares = shares(spec.partitions)?;
        Self::remote(spec, filters, RemoteScanEnv::default(), shares)
    }

    /// The plan rebuilt from its description in another process; `shares` is its input.
    pub fn remote(
        spec: ScanSpec,
        filters: Vec<Expr>,
        env: RemoteScanEnv,
        shares: Arc<dyn ExecutionPlan>,
    ) -> DFResult<Self> {
        let full = table_schema(&spec.table.partition_cols);
        let schema = match &spec.projection {
            Some(p) => Arc::new(full.project(p)?),
            None => full,
        };
        Ok(Self::with_schema(
            spec,
            filters,
            schema,
            Some(env),
            Some(shares),
        ))
    }

    fn with_schema(
        spec: ScanSpec,
        filters: Vec<Expr>,
        schema: SchemaRef,
        remote: Option<RemoteScanEnv>,
        shares: Option<Arc<dyn ExecutionPlan>>,
    ) -> Self {
        let partitions = match &shares {
            Some(s) => s.properties().partitioning.partition_count(),
            None => spec.partitions.max(1),
        };
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Self {
            spec,
            shares,
            filters,
            shared: OnceLock::new(),
            remote,
            schema,
            properties,
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    pub fn spec(&self) -> &ScanSpec {
        &self.spec
    }

    pub fn filters(&self) -> &[Expr] {
        &self.filters
    }

    /// The shared state of this plan's partitions; in another process, built from the spec with that
    /// process's stores, policy and cache.
    fn shared(&self, ctx: &TaskContext) -> DFResult<Arc<ScanShared>> {
        if let Some(s) = self.shared.get() {
            return Ok(Arc::clone(s));
        }
        let env = self.remote.clone().unwrap_or_default();
        let table = &self.spec.table;
        let url = Location::parse(&table.location).map_err(ArchiveError::from)?;
        let options = table.parse_options()?;
        if let Some(policy) = &env.policy {
            policy
                .check_url(&url.base, &url.prefix, false)
                .map_err(ArchiveError::Denied)?;
        }
        let store = resolve_plan_store(
            ctx.runtime_env().as_ref(),
            &url,
            &options,
            env.policy.clone(),
        )?;
        let local = LocalFiles::for_store(store.as_ref(), &url.base, env.policy.as_ref());
        let full_schema = table_schema(&table.partition_cols);
        let prune = pruner(
            &table.partition_cols,
            &self.filters,
            &datafusion::execution::context::ExecutionProps::new(),
        )?;
        let options_fingerprint = format!("{options:?}");
        let shared = Arc::new(ScanShared {
            store,
            local,
            url,
            options: Arc::new(options),
            partition_cols: table.partition_cols.clone(),
            full_schema,
            projection: self.spec.projection.clone(),
            projected_schema: Arc::clone(&self.schema),
            table: table.name.clone(),
            log: env.log.clone(),
            partitions: self.spec.partitions.max(1),
            spread: true,
            feeds: Feeds::default(),
            prune,
            // Cached units are keyed by each object's version, so an executor's cache is never stale.
            cache: env.cache.map(|cache| ScanCache {
                cache,
                options_fingerprint,
            }),
        });
        Ok(Arc::clone(self.shared.get_or_init(|| shared)))
    }
}

impl DisplayAs for ArchiveScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ArchiveScanExec: table={}, partitions={}",
            self.spec.table.name, self.spec.partitions
        )?;
        if let Some(limit) = self.spec.limit {
            write!(f, ", fetch={limit}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for ArchiveScanExec {
    fn name(&self) -> &str {
        "ArchiveScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        self.shares.iter().collect()
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        // The shares are already one per partition: repartitioning them would only shuffle numbers.
        vec![false; self.shares.iter().len()]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DFResult<TreeNodeRecursion>,
    ) -> DFResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        match (children.len(), &self.shares) {
            (0, None) => Ok(self),
            (1, Some(_)) => Ok(Arc::new(Self::with_schema(
                self.spec.clone(),
                self.filters.clone(),
                Arc::clone(&self.schema),
                self.remote.clone(),
                Some(children.swap_remove(0)),
            ))),
            (n, _) => datafusion::common::internal_err!(
                "ArchiveScanExec takes {} input(s), got {n}",
                self.shares.iter().len()
            ),
        }
    }

    fn fetch(&self) -> Option<usize> {
        self.spec.limit
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DFResult<SendableRecordBatchStream> {
        let shared = self.shared(&context)?;
        let stream = match &self.shares {
            None => ArchivePartition {
                shared,
                index: partition,
            }
            .execute(context),
            Some(input) => read_shares(
                input.execute(partition, Arc::clone(&context))?,
                shared,
                context,
                Arc::clone(&self.schema),
            ),
        };
        Ok(match self.spec.limit {
            None => stream,
            Some(fetch) => Box::pin(LimitStream::new(
                stream,
                0,
                Some(fetch),
                BaselineMetrics::new(&self.metrics, partition),
            )),
        })
    }
}

/// The shares of a scan read by `partitions` tasks: one row (`share`, UInt32) per partition.
fn shares(partitions: usize) -> DFResult<Arc<dyn ExecutionPlan>> {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "share",
        DataType::UInt32,
        false,
    )]));
    let batches = (0..partitions.max(1) as u32)
        .map(|i| {
            Ok(vec![RecordBatch::try_new(
                Arc::clone(&schema),
                vec![Arc::new(UInt32Array::from(vec![i]))],
            )?])
        })
        .collect::<DFResult<Vec<_>>>()?;
    Ok(MemorySourceConfig::try_new_exec(&batches, schema, None)?)
}

/// Reads every share named in `tickets`, one after the other.
fn read_shares(
    tickets: SendableRecordBatchStream,
    shared: Arc<ScanShared>,
    context: Arc<TaskContext>,
    schema: SchemaRef,
) -> SendableRecordBatchStream {
    let stream = tickets
        .map(move |batch| {
            let shares: DFResult<Vec<usize>> = batch.and_then(|b| {
                let column = b
                    .column(0)
                    .as_any()
                    .downcast_ref::<UInt32Array>()
                    .ok_or_else(|| {
                        DataFusionError::Internal("an archive scan's shares are not UInt32".into())
                    })?;
                Ok(column.values().iter().map(|v| *v as usize).collect())
            });
            match shares {
                Ok(shares) => {
                    let shared = Arc::clone(&shared);
                    let context = Arc::clone(&context);
                    futures::stream::iter(shares)
                        .flat_map(move |index| {
                            ArchivePartition {
                                shared: Arc::clone(&shared),
                                index,
                            }
                            .execute(Arc::clone(&context))
                        })
                        .boxed()
                }
                Err(e) => futures::stream::once(futures::future::ready(Err(e))).boxed(),
            }
        })
        .flatten();
    Box::pin(RecordBatchStreamAdapter::new(schema, stream))
}
