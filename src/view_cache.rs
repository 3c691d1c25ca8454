//! The analytics views that every other view reads (`conversation_messages`, `conversations`), kept in
//! memory per archive version.
//!
//! A DataFusion view is inlined into each query that reads it, so every view of the library cut the
//! archive's chats into conversations again, and a view that read `conversations` and
//! `conversation_messages` did it twice in one query: the 13 views took about 4 minutes over a million
//! messages (benches/README.md, "The analytics library"). A [`CachedView`] is planned as its own scan
//! instead: the first query computes every column of the view and streams it on while keeping it, and
//! later queries of the session read what was kept, as long as nothing the view depends on changed:
//! - the objects of the archive tables under it: each query lists them again (as every archive scan
//!   does) and compares their locations, sizes and versions;
//! - the session's settings (`colloquy.analytics.*`, the time zone, the language candidates...);
//! - the functions and tables it was planned with: replacing `messages` or a function plans the views
//!   again ([`crate::analytics::affects_views`]), which makes a new `CachedView` with entries of its own.
//!
//! Only views whose every input can say its version are cached (archive tables, also under governance
//! policies); a view over an in-memory table stays a plain view. Entries count against the budget of the
//! session's [`ViewCache`]; a result larger than the budget is streamed without being kept, so memory
//! stays bounded however large the archive grows. Each installed view has entries of its own, so
//! sessions never share results (a governed session's rows are its own).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayData, RecordBatch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::{TableType, source_as_provider};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties,
};
use futures::{StreamExt, TryStreamExt};

use crate::governance::table::GovernedTable;
use colloquy_archive::ArchiveTable;

/// The budget of the session's cached view results; put one in a session's configuration
/// ([`ViewCache::install`]) and the analytics views installed after it are cached. Sessions that share
/// one (a server's) share its budget, not its entries.
#[derive(Debug)]
pub struct ViewCache {
    budget: usize,
    /// Bytes that executions computing a view hold to keep it, all together: at most `budget` more,
    /// whatever number of queries compute at once. Kept and collected results are outside DataFusion's
    /// memory pool, so this is what bounds them.
    collecting: std::sync::atomic::AtomicUsize,
    state: Mutex<CacheState>,
    clock: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[derive(Debug, Default)]
struct CacheState {
    /// Per installed view (its id): the version its entry was computed for, and the entry.
    entries: HashMap<u64, Entry>,
    bytes: usize,
}

#[derive(Debug)]
struct Entry {
    key: u64,
    result: Arc<CachedResult>,
    last_used: u64,
}

/// A view's whole result: the batches of each output partition of the query that computed it.
#[derive(Debug)]
pub struct CachedResult {
    partitions: Vec<Vec<RecordBatch>>,
    bytes: usize,
}

/// Ids of installed cached views: entries are never shared between two installations.
static NEXT_VIEW: AtomicU64 = AtomicU64::new(1);

impl ViewCache {
    /// A cache that keeps at most `budget` bytes of view results.
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            collecting: std::sync::atomic::AtomicUsize::new(0),
            state: Mutex::new(CacheState::default()),
            clock: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Puts this cache in a running session: views installed from now on use it.
    pub fn install(self: &Arc<Self>, ctx: &datafusion::prelude::SessionContext) {
        ctx.state_ref()
            .write()
            .config_mut()
            .set_extension(Arc::clone(self));
    }

    /// (hits, misses) so far.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    fn get(&self, view: u64, key: u64) -> Option<Arc<CachedResult>> {
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match state.entries.get_mut(&view).filter(|e| e.key == key) {
            Some(e) => {
                e.last_used = now;
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(Arc::clone(&e.result))
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Keeps `result` as the view's entry (replacing the entry of an older version), dropping the least
    /// recently used entries of other views to stay within the budget.
    fn insert(&self, view: u64, key: u64, result: Arc<CachedResult>) {
        if result.bytes > self.budget {
            return;
        }
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let bytes = result.bytes;
        if let Some(old) = state.entries.insert(
            view,
            Entry {
                key,
                result,
                last_used: now,
            },
        ) {
            state.bytes -= old.result.bytes;
        }
        state.bytes += bytes;
        while state.bytes > self.budget {
            let Some(oldest) = state
                .entries
                .iter()
                .filter(|(id, _)| **id != view)
                .min_by_key(|(_, e)| e.last_used)
                .map(|(id, _)| *id)
            else {
                break;
            };
            if let Some(e) = state.entries.remove(&oldest) {
                state.bytes -= e.result.bytes;
            }
        }
    }

    /// Drops the entry of an installed view that is gone (planned again, or its session closed).
    fn forget(&self, view: u64) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = state.entries.remove(&view) {
            state.bytes -= e.result.bytes;
        }
    }
}

/// A table a cached view reads, and how to learn its current version.
#[derive(Debug, Clone)]
enum Input {
    /// An [`ArchiveTable`].
    Archive(Arc<dyn TableProvider>),
    View(Arc<CachedView>),
}

/// The inputs of `plan` when every one of them can say its version; `None` otherwise.
fn versioned_inputs(plan: &LogicalPlan) -> Option<Vec<Input>> {
    let mut inputs = Vec::new();
    let mut ok = true;
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            match source_as_provider(&scan.source)
                .ok()
                .and_then(|p| input_of(&p))
            {
                Some(input) => inputs.push(input),
                None => {
                    ok = false;
                    return Ok(TreeNodeRecursion::Stop);
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    ok.then_some(inputs)
}

fn input_of(provider: &Arc<dyn TableProvider>) -> Option<Input> {
    if let Some(view) = provider.downcast_ref::<CachedView>() {
        return Some(Input::View(Arc::new(view.clone())));
    }
    if let Some(governed) = provider.downcast_ref::<GovernedTable>() {
        // The policies are the session's own and fixed for its life, so the rows change only with the
        // inner table, unless a policy calls a function whose answer changes by itself
        // (`ts > now() - INTERVAL '30 days'`): such a table is never cached.
        let exprs = governed
            .predicate
            .iter()
            .chain(governed.columns.iter().map(|c| &c.expr));
        if exprs.into_iter().any(not_immutable) {
            return None;
        }
        return input_of(&governed.inner);
    }
    provider
        .is::<ArchiveTable>()
        .then(|| Input::Archive(Arc::clone(provider)))
}

/// Whether `e` calls a function that may answer differently for the same arguments (`now()`,
/// `random()`).
fn not_immutable(e: &Expr) -> bool {
    let mut found = false;
    let _ = e.apply(|e| {
        if let Expr::ScalarFunction(f) = e
            && f.func.signature().volatility != datafusion::logical_expr::Volatility::Immutable
        {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

impl Input {
    fn version<'a>(
        &'a self,
        hasher: &'a mut DefaultHasher,
    ) -> futures::future::BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match self {
                Input::Archive(table) => {
                    let table = table.downcast_ref::<ArchiveTable>().ok_or_else(|| {
                        DataFusionError::Internal("not an archive table".to_string())
                    })?;
                    table.version().await?.hash(hasher);
                }
                Input::View(view) => {
                    for input in view.inputs.iter() {
                        input.version(hasher).await?;
                    }
                }
            }
            Ok(())
        })
    }
}

/// A view planned as its own scan, whose result is kept per version of its inputs.
#[derive(Debug, Clone)]
pub struct CachedView {
    id: u64,
    name: &'static str,
    plan: LogicalPlan,
    definition: Option<String>,
    schema: SchemaRef,
    inputs: Arc<Vec<Input>>,
    /// Drops the view's entry when the last copy of the view is gone.
    _forget: Arc<Forget>,
}

#[derive(Debug)]
struct Forget {
    id: u64,
    cache: Arc<ViewCache>,
}

impl Drop for Forget {
    fn drop(&mut self) {
        self.cache.forget(self.id);
    }
}

impl CachedView {
    /// `view` (a plain view's provider) as a cached view, when every table it reads can say its version.
    pub fn wrap(
        name: &'static str,
        view: &Arc<dyn TableProvider>,
        cache: Arc<ViewCache>,
    ) -> Option<Self> {
        let plan = view.get_logical_plan()?.into_owned();
        let inputs = versioned_inputs(&plan)?;
        let id = NEXT_VIEW.fetch_add(1, Ordering::Relaxed);
        Some(Self {
            id,
            name,
            definition: view.get_table_definition().map(str::to_string),
            schema: Arc::clone(plan.schema().inner()),
            plan,
            inputs: Arc::new(inputs),
            _forget: Arc::new(Forget { id, cache }),
        })
    }

    /// The view's own plan (for tools that look inside views, such as the audit's model list).
    pub fn view_plan(&self) -> &LogicalPlan {
        &self.plan
    }
}

#[async_trait]
impl TableProvider for CachedView {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn get_table_definition(&self) -> Option<&str> {
        self.definition.as_deref()
    }

    // No `get_logical_plan`: DataFusion would inline the view into the query, which is what this avoids.

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let full = state.create_physical_plan(&self.plan).await?;
        let Some(cache) = state.config().get_extension::<ViewCache>() else {
            return project(full, projection);
        };
        // Everything in the session's settings that a function or the view's SQL may read.
        let mut settings = DefaultHasher::new();
        format!("{:?}", state.config_options()).hash(&mut settings);
        Ok(Arc::new(CachedViewExec::new(
            self.clone(),
            full,
            projection.cloned(),
            cache,
            settings.finish(),
        )?))
    }
}

/// The view's plan with only the projected columns.
fn project(
    plan: Arc<dyn ExecutionPlan>,
    projection: Option<&Vec<usize>>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let Some(p) = projection else {
        return Ok(plan);
    };
    let schema = plan.schema();
    let exprs = p
        .iter()
        .map(|&i| {
            let f = schema.field(i);
            (
                Arc::new(datafusion::physical_expr::expressions::Column::new(
                    f.name(),
                    i,
                )) as Arc<dyn datafusion::physical_expr::PhysicalExpr>,
                f.name().clone(),
            )
        })
        .collect::<Vec<_>>();
    Ok(Arc::new(
        datafusion::physical_plan::projection::ProjectionExec::try_new(exprs, plan)?,
    ))
}

/// Reads a cached view: the kept result when its inputs have not changed, else the view's plan, whose
/// batches are kept as they stream past (while they fit the budget).
#[derive(Debug)]
struct CachedViewExec {
    view: CachedView,
    /// The whole view, every column.
    input: Arc<dyn ExecutionPlan>,
    projection: Option<Vec<usize>>,
    cache: Arc<ViewCache>,
    settings: u64,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    /// The decision of this execution, made once for all its partitions.
    run: Arc<tokio::sync::OnceCell<Run>>,
}

/// What one execution does: serve a kept result, or compute and keep one.
#[derive(Debug, Clone)]
enum Run {
    Hit(Arc<CachedResult>),
    Miss(Arc<Collector>),
}

/// The batches of a computing execution, per partition, until every partition has finished.
#[derive(Debug)]
struct Collector {
    key: u64,
    cache: Arc<ViewCache>,
    state: Mutex<Collecting>,
}

impl Drop for Collector {
    fn drop(&mut self) {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        self.cache
            .collecting
            .fetch_sub(state.bytes, Ordering::Relaxed);
    }
}

#[derive(Debug)]
struct Collecting {
    partitions: Vec<Option<Vec<RecordBatch>>>,
    bytes: usize,
    /// Allocations counted so far (see [`retained_bytes`]).
    seen: HashSet<usize>,
    /// Over the budget: nothing is kept.
    dropped: bool,
}

/// The memory that keeping `batch` holds: each allocation under its arrays once, whole. Batches cut
/// from one sorted run share its buffers, and `get_array_memory_size` counted the whole run for every
/// one of them (a 400 MB view counted as several GB and was never kept).
fn retained_bytes(batch: &RecordBatch, seen: &mut HashSet<usize>) -> usize {
    fn walk(data: &ArrayData, seen: &mut HashSet<usize>) -> usize {
        let mut bytes = 0;
        let nulls = data.nulls().map(|n| n.buffer());
        for b in data.buffers().iter().chain(nulls) {
            if seen.insert(b.data_ptr().as_ptr() as usize) {
                bytes += b.capacity();
            }
        }
        bytes
            + data
                .child_data()
                .iter()
                .map(|c| walk(c, seen))
                .sum::<usize>()
    }
    batch
        .columns()
        .iter()
        .map(|c| walk(&c.to_data(), seen))
        .sum()
}

impl Collector {
    /// Counts what keeping `batch` holds against the budget: false (and nothing is kept any more) once
    /// the result outgrows it.
    fn admit(&self, batch: &RecordBatch) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.dropped {
            return false;
        }
        let bytes = retained_bytes(batch, &mut state.seen);
        state.bytes += bytes;
        let collecting = self.cache.collecting.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if state.bytes > self.cache.budget || collecting > self.cache.budget {
            state.dropped = true;
            self.cache
                .collecting
                .fetch_sub(state.bytes, Ordering::Relaxed);
            state.bytes = 0;
            state.partitions.iter_mut().for_each(|p| *p = None);
            state.seen = HashSet::new();
            return false;
        }
        true
    }

    /// A partition's whole output; the result is kept once every partition has given its own.
    fn finish(&self, partition: usize, batches: Vec<RecordBatch>, cache: &ViewCache, view: u64) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.dropped {
            return;
        }
        if let Some(slot) = state.partitions.get_mut(partition) {
            *slot = Some(batches);
        }
        if state.partitions.iter().any(Option::is_none) {
            return;
        }
        let partitions: Vec<Vec<RecordBatch>> = state
            .partitions
            .iter_mut()
            .map(|p| p.take().unwrap_or_default())
            .collect();
        let bytes = std::mem::take(&mut state.bytes);
        self.cache.collecting.fetch_sub(bytes, Ordering::Relaxed);
        state.dropped = true;
        drop(state);
        cache.insert(view, self.key, Arc::new(CachedResult { partitions, bytes }));
    }
}

impl CachedViewExec {
    fn new(
        view: CachedView,
        input: Arc<dyn ExecutionPlan>,
        projection: Option<Vec<usize>>,
        cache: Arc<ViewCache>,
        settings: u64,
    ) -> Result<Self> {
        // The view's own schema, as the query was planned against it: the physical plan's may differ
        // in nullability, and a table created from the view checks its batches against this one.
        let schema = match &projection {
            Some(p) => Arc::new(view.schema.project(p)?),
            None => Arc::clone(&view.schema),
        };
        let partitions = input.output_partitioning().partition_count();
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Ok(Self {
            view,
            input,
            projection,
            cache,
            settings,
            schema,
            properties,
            run: Arc::new(tokio::sync::OnceCell::new()),
        })
    }

    async fn decide(&self) -> Result<Run> {
        let mut hasher = DefaultHasher::new();
        self.settings.hash(&mut hasher);
        // A kept result is served partition by partition: only to a plan with as many.
        self.input
            .output_partitioning()
            .partition_count()
            .hash(&mut hasher);
        for input in self.view.inputs.iter() {
            input.version(&mut hasher).await?;
        }
        let key = hasher.finish();
        if let Some(hit) = self.cache.get(self.view.id, key) {
            return Ok(Run::Hit(hit));
        }
        let partitions = self.input.output_partitioning().partition_count();
        Ok(Run::Miss(Arc::new(Collector {
            key,
            cache: Arc::clone(&self.cache),
            state: Mutex::new(Collecting {
                partitions: vec![None; partitions],
                bytes: 0,
                seen: HashSet::new(),
                dropped: false,
            }),
        })))
    }
}

impl DisplayAs for CachedViewExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "CachedViewExec: view={}", self.view.name)
    }
}

impl ExecutionPlan for CachedViewExec {
    fn name(&self) -> &str {
        "CachedViewExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(
            &Arc<dyn datafusion::physical_expr::PhysicalExpr>,
        ) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = children.pop().ok_or_else(|| {
            DataFusionError::Internal("CachedViewExec takes one child".to_string())
        })?;
        Ok(Arc::new(Self::new(
            self.view.clone(),
            input,
            self.projection.clone(),
            Arc::clone(&self.cache),
            self.settings,
        )?))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let run = Arc::clone(&self.run);
        let this = Self::new(
            self.view.clone(),
            Arc::clone(&self.input),
            self.projection.clone(),
            Arc::clone(&self.cache),
            self.settings,
        )?;
        let projection = self.projection.clone();
        let stream = futures::stream::once(async move {
            let decided = run.get_or_try_init(|| this.decide()).await?.clone();
            let batches: SendableRecordBatchStream = match decided {
                Run::Hit(result) => {
                    let batches = result
                        .partitions
                        .get(partition)
                        .cloned()
                        .unwrap_or_default();
                    Box::pin(RecordBatchStreamAdapter::new(
                        this.input.schema(),
                        futures::stream::iter(batches.into_iter().map(Ok)),
                    ))
                }
                Run::Miss(collector) => {
                    let inner = this.input.execute(partition, context)?;
                    let schema = inner.schema();
                    let cache = Arc::clone(&this.cache);
                    let view = this.view.id;
                    let tee = futures::stream::unfold(
                        (inner, Some(Vec::new()), false),
                        move |(mut inner, mut kept, done)| {
                            let collector = Arc::clone(&collector);
                            let cache = Arc::clone(&cache);
                            async move {
                                if done {
                                    return None;
                                }
                                match inner.next().await {
                                    Some(Ok(b)) => {
                                        if let Some(k) = kept.as_mut() {
                                            if collector.admit(&b) {
                                                k.push(b.clone());
                                            } else {
                                                kept = None;
                                            }
                                        }
                                        Some((Ok(b), (inner, kept, false)))
                                    }
                                    Some(Err(e)) => Some((Err(e), (inner, None, true))),
                                    None => {
                                        // The partition streamed to its end (a query that stops early
                                        // keeps nothing).
                                        if let Some(k) = kept {
                                            collector.finish(partition, k, &cache, view);
                                        }
                                        None
                                    }
                                }
                            }
                        },
                    );
                    Box::pin(RecordBatchStreamAdapter::new(schema, tee))
                }
            };
            Ok::<_, DataFusionError>(batches)
        })
        .try_flatten();
        let schema = Arc::clone(&self.schema);
        let projected = stream.map(move |batch| {
            let b = batch?;
            let b = match &projection {
                Some(p) => b.project(p)?,
                None => b,
            };
            let options = datafusion::arrow::array::RecordBatchOptions::new()
                .with_row_count(Some(b.num_rows()));
            Ok(RecordBatch::try_new_with_options(
                Arc::clone(&schema),
                b.columns().to_vec(),
                &options,
            )?)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            projected,
        )))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::execution::FunctionRegistry;
    use datafusion::logical_expr::{col, lit};
    use datafusion::prelude::SessionContext;

    use super::*;

    #[test]
    fn policies_that_read_the_clock_are_not_cached() {
        let ctx = SessionContext::new();
        let now = ctx.udf("now").expect("now").call(vec![]);
        let random = ctx.udf("random").expect("random").call(vec![]);
        let upper = ctx.udf("upper").expect("upper").call(vec![col("text")]);
        assert!(not_immutable(&col("ts").gt(now)));
        assert!(not_immutable(&col("score").lt(random)));
        assert!(!not_immutable(&upper.eq(lit("X"))));
        assert!(!not_immutable(&col("channel").eq(lit("sms"))));
    }
}
