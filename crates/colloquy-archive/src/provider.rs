//! The SQL surface: `STORED AS ARCHIVE` tables, `read_archive(url [, format [, key, value]...])` and
//! `archive_errors()`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::{
    MemTable, Session, TableFunctionArgs, TableFunctionImpl, TableProvider, TableProviderFactory,
};
use datafusion::common::DFSchema;
use datafusion::common::{ScalarValue, plan_err};
use datafusion::error::{DataFusionError, Result as DFResult};
use datafusion::execution::context::ExecutionProps;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{CreateExternalTable, Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_expr::create_physical_expr;
use datafusion::physical_plan::ExecutionPlan;
use object_store::ObjectStore;

use crate::cache::ParsedCache;
use crate::errlog::ErrorLog;
use crate::error::{ArchiveError, Result};
use crate::exec::{ArchiveScanExec, ScanSpec, TableSpec};
use crate::listing::{Feeds, partition_columns};
use crate::local::LocalFiles;
use crate::options::ArchiveOptions;
use crate::scan::{PlacePruner, ScanCache, ScanShared};
use crate::schema::table_schema;
use colloquy_store::{AccessPolicy, GuardedStore, Location, build_client_store, build_store};

/// A table over every message in an archive location. Objects are listed again at each scan, so new
/// exports dropped under a prefix show up without re-creating the table.
#[derive(Debug)]
pub struct ArchiveTable {
    name: String,
    url: Location,
    options: Arc<ArchiveOptions>,
    store: Arc<dyn ObjectStore>,
    /// Set when `store` is the local file system: listed and read without it.
    local: Option<LocalFiles>,
    partition_cols: Vec<String>,
    schema: SchemaRef,
    log: ErrorLog,
    /// Rebuilt from a spec by a cluster's scheduler: scans are planned to be read by shares.
    for_cluster: bool,
}

impl ArchiveTable {
    /// Resolves the store, lists the location once (to find partition columns and fail early on a
    /// location with nothing in it) and returns the table.
    pub async fn try_new(
        name: impl Into<String>,
        location: &str,
        options: ArchiveOptions,
        session: &dyn Session,
        log: ErrorLog,
    ) -> Result<Self> {
        let url = Location::parse(location)?;
        let policy = session.config().get_extension::<AccessPolicy>();
        if let Some(policy) = &policy {
            policy
                .check_url(&url.base, &url.prefix, false)
                .map_err(ArchiveError::Denied)?;
        }
        let store = resolve_store(
            session.runtime_env().as_ref(),
            &url,
            &options,
            policy.clone(),
        )?;
        let local = LocalFiles::for_store(store.as_ref(), &url.base, policy.as_ref());
        let partition_cols = partition_columns(Arc::clone(&store), local.clone(), &url).await?;
        Ok(Self {
            name: name.into(),
            schema: table_schema(&partition_cols),
            url,
            options: Arc::new(options),
            store,
            local,
            partition_cols,
            log,
            for_cluster: false,
        })
    }

    pub fn location(&self) -> &str {
        &self.url.original
    }

    /// The table as it travels to another process (see [`TableSpec`]).
    pub fn spec(&self) -> TableSpec {
        let mut options = self.options.given.clone();
        options.extend(self.options.store.clone());
        TableSpec {
            name: self.name.clone(),
            location: self.url.portable(),
            options,
            partition_cols: self.partition_cols.clone(),
        }
    }

    /// The table rebuilt from its spec in another process (a cluster's scheduler), with that process's
    /// stores and `policy`. Unlike [`Self::try_new`] it does not list the location: the spec carries
    /// the partition columns.
    pub fn from_spec(
        spec: &TableSpec,
        env: &RuntimeEnv,
        policy: Option<Arc<AccessPolicy>>,
    ) -> Result<Self> {
        let url = Location::parse(&spec.location)?;
        if let Some(policy) = &policy {
            policy
                .check_url(&url.base, &url.prefix, false)
                .map_err(ArchiveError::Denied)?;
        }
        let options = spec.parse_options()?;
        let store = resolve_plan_store(env, &url, &options, policy.clone())?;
        let local = LocalFiles::for_store(store.as_ref(), &url.base, policy.as_ref());
        Ok(Self {
            name: spec.name.clone(),
            schema: table_schema(&spec.partition_cols),
            url,
            options: Arc::new(options),
            store,
            local,
            partition_cols: spec.partition_cols.clone(),
            log: ErrorLog::default(),
            for_cluster: true,
        })
    }

    /// What a scan would read now, as a hash of the options and each object's location, size and
    /// version (modification time and entity tag): it changes when an export is added, replaced or
    /// removed. Lists the location, as a scan does.
    pub async fn version(&self) -> DFResult<u64> {
        use std::hash::{Hash, Hasher};
        let (tx, mut rx) = tokio::sync::mpsc::channel(256);
        let lister = tokio::spawn(crate::listing::list_units(
            Arc::clone(&self.store),
            self.local.clone(),
            self.url.clone(),
            None,
            None,
            tx,
        ));
        let mut hasher = std::hash::DefaultHasher::new();
        let fingerprint = format!("{:?}", self.options);
        fingerprint.hash(&mut hasher);
        while let Some(chunk) = rx.recv().await {
            for unit in chunk? {
                crate::cache::unit_key(&self.url.original, "", &unit).hash(&mut hasher);
            }
        }
        lister
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(hasher.finish())
    }
}

/// A table with store options gets a store built from them. Under a server policy the table alone keeps
/// it (guarded): never registered in the runtime, which the server's sessions share, so one client's
/// credentials never sign another's requests. Otherwise the session's store for the URL (made from the
/// environment on first use); a server's runtime ([`crate::GuardedRegistry`]) hands it out guarded already.
pub(crate) fn resolve_store(
    env: &RuntimeEnv,
    url: &Location,
    options: &ArchiveOptions,
    policy: Option<Arc<AccessPolicy>>,
) -> Result<Arc<dyn ObjectStore>> {
    let key = url.store_url();
    if !options.store.is_empty() {
        return Ok(match policy {
            Some(p) => GuardedStore::wrap(build_client_store(&key, &options.store, &p)?, &key, p),
            None => {
                // `colloquy sql` has one user: later statements on the same bucket reuse the store.
                let store = build_store(&key, &options.store)?;
                env.register_object_store(&key, Arc::clone(&store));
                store
            }
        });
    }
    match env.object_store_registry.get_store(&key) {
        Ok(s) => Ok(s),
        Err(e) if policy.is_some() => Err(ArchiveError::DataFusion(e)),
        Err(_) => {
            let store = build_store(&key, &options.store)?;
            env.register_object_store(&key, Arc::clone(&store));
            Ok(store)
        }
    }
}

/// The store of a table rebuilt from a spec in another process (a cluster's scheduler or executor):
/// this process's own credentials (its environment) with the options the spec carried (only those that
/// may travel: region and the like, never an endpoint or a credential), checked against this process's
/// policy when it has one. Never registered in the runtime: the next job's table may carry other options.
pub(crate) fn resolve_plan_store(
    env: &RuntimeEnv,
    url: &Location,
    options: &ArchiveOptions,
    policy: Option<Arc<AccessPolicy>>,
) -> Result<Arc<dyn ObjectStore>> {
    let key = url.store_url();
    if options.store.is_empty() {
        return resolve_store(env, url, options, policy);
    }
    let store = build_store(&key, &options.store)?;
    Ok(match policy {
        Some(p) => GuardedStore::wrap(store, &key, p),
        None => store,
    })
}

impl ArchiveTable {
    /// Filters that use partition columns only can skip whole objects before they are read.
    fn on_partitions_only(&self, e: &Expr) -> bool {
        let cols = e.column_refs();
        !cols.is_empty() && cols.iter().all(|c| self.partition_cols.contains(&c.name))
    }
}

/// Compiles the partition-only filters, checked against each unit's place before it is read.
pub(crate) fn pruner(
    partition_cols: &[String],
    filters: &[Expr],
    props: &ExecutionProps,
) -> DFResult<Option<Arc<PlacePruner>>> {
    if filters.is_empty() {
        return Ok(None);
    }
    let schema = Arc::new(Schema::new(
        partition_cols
            .iter()
            .map(|c| Field::new(c, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let df_schema = DFSchema::try_from(Arc::clone(&schema))?;
    let filters = filters
        .iter()
        .map(|f| {
            let cols = f.column_refs().iter().map(|c| c.name.clone()).collect();
            Ok((
                create_physical_expr(f, &df_schema, props, &PhysicalPlanningContext::default())?,
                cols,
            ))
        })
        .collect::<DFResult<Vec<_>>>()?;
    Ok(Some(Arc::new(PlacePruner { schema, filters })))
}

#[async_trait]
impl TableProvider for ArchiveTable {
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DFResult<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if self.on_partitions_only(f) {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        self.log.begin(&self.name);
        let target = state.config().target_partitions().max(1);
        let projected_schema = match projection {
            Some(p) => Arc::new(self.schema.project(p)?),
            None => Arc::clone(&self.schema),
        };
        let filters: Vec<Expr> = filters
            .iter()
            .filter(|f| self.on_partitions_only(f))
            .cloned()
            .collect();
        let cache = state.config().get_extension::<ParsedCache>();
        let spec = ScanSpec {
            table: self.spec(),
            projection: projection.cloned(),
            limit,
            partitions: target,
        };
        if self.for_cluster {
            return Ok(Arc::new(ArchiveScanExec::planned_for_cluster(
                spec, filters,
            )?));
        }
        let shared = Arc::new(ScanShared {
            store: Arc::clone(&self.store),
            local: self.local.clone(),
            url: self.url.clone(),
            options: Arc::clone(&self.options),
            partition_cols: self.partition_cols.clone(),
            full_schema: Arc::clone(&self.schema),
            projection: projection.cloned(),
            projected_schema,
            table: self.name.clone(),
            log: self.log.clone(),
            partitions: target,
            spread: false,
            feeds: Feeds::default(),
            prune: pruner(&self.partition_cols, &filters, state.execution_props())?,
            cache: cache.map(|cache| ScanCache {
                cache,
                options_fingerprint: format!("{:?}", self.options),
            }),
        });
        Ok(Arc::new(ArchiveScanExec::local(spec, filters, shared)))
    }
}

/// `CREATE EXTERNAL TABLE t STORED AS ARCHIVE LOCATION '...' OPTIONS (...)`.
#[derive(Debug, Default)]
pub struct ArchiveTableFactory {
    log: ErrorLog,
}

impl ArchiveTableFactory {
    pub fn new(log: ErrorLog) -> Self {
        Self { log }
    }
}

#[async_trait]
impl TableProviderFactory for ArchiveTableFactory {
    async fn create(
        &self,
        state: &dyn Session,
        cmd: &CreateExternalTable,
    ) -> DFResult<Arc<dyn TableProvider>> {
        if !cmd.schema.fields().is_empty() {
            return plan_err!(
                "STORED AS ARCHIVE tables have the fixed message schema; remove the column list from CREATE EXTERNAL TABLE {}",
                cmd.name
            );
        }
        if !cmd.table_partition_cols.is_empty() {
            return plan_err!(
                "STORED AS ARCHIVE finds partition columns from key=value path segments; remove PARTITIONED BY"
            );
        }
        let options = ArchiveOptions::parse(&cmd.options).map_err(ArchiveError::from)?;
        let location = cmd
            .locations
            .first()
            .map(String::as_str)
            .unwrap_or_default();
        let table = ArchiveTable::try_new(
            cmd.name.to_string(),
            location,
            options,
            state,
            self.log.clone(),
        )
        .await?;
        Ok(Arc::new(table))
    }
}

/// `read_archive(url [, format [, option_name, option_value]...])`.
#[derive(Debug, Default)]
pub struct ReadArchiveFunc {
    log: ErrorLog,
}

impl ReadArchiveFunc {
    pub fn new(log: ErrorLog) -> Self {
        Self { log }
    }
}

fn literal_string(e: &Expr, what: &str) -> DFResult<String> {
    match e {
        Expr::Literal(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)),
            _,
        ) => Ok(s.clone()),
        other => plan_err!("read_archive: {what} must be a string literal, got {other}"),
    }
}

impl TableFunctionImpl for ReadArchiveFunc {
    fn call_with_args(&self, args: TableFunctionArgs) -> DFResult<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        let Some(first) = exprs.first() else {
            return plan_err!(
                "read_archive(url [, format [, option, value]...]) needs at least the URL"
            );
        };
        let url = literal_string(first, "the URL (argument 1)")?;
        let mut raw = HashMap::new();
        if let Some(f) = exprs.get(1) {
            raw.insert(
                "format".to_string(),
                literal_string(f, "the format (argument 2)")?,
            );
        }
        let rest = exprs.get(2..).unwrap_or_default();
        if rest.len() % 2 != 0 {
            return plan_err!(
                "read_archive: options come in name, value pairs after the format; got an odd number"
            );
        }
        for (i, pair) in rest.chunks(2).enumerate() {
            let key = literal_string(&pair[0], &format!("option name (argument {})", 3 + 2 * i))?;
            let value =
                literal_string(&pair[1], &format!("option value (argument {})", 4 + 2 * i))?;
            raw.insert(key.to_ascii_lowercase(), value);
        }
        let options = ArchiveOptions::parse(&raw).map_err(ArchiveError::from)?;
        let session = args.session();
        let name = format!("read_archive('{url}')");
        let log = self.log.clone();
        let table = block_on(ArchiveTable::try_new(name, &url, options, session, log))??;
        Ok(Arc::new(table))
    }
}

/// Table functions are planned synchronously, but listing an object store is async. On a multi-thread
/// runtime we block this worker in place; elsewhere (a current-thread runtime) we must not, so we run
/// the future on a scoped thread with its own runtime.
pub fn block_on<F: Future + Send>(fut: F) -> DFResult<F::Output>
where
    F::Output: Send,
{
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            Ok(tokio::task::block_in_place(|| h.block_on(fut)))
        }
        _ => std::thread::scope(|s| {
            s.spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map(|rt| rt.block_on(fut))
            })
            .join()
        })
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
        .map_err(|e| {
            DataFusionError::Execution(format!("cannot start a runtime for read_archive: {e}"))
        }),
    }
}

/// `archive_errors()`: the records skipped by `on_error 'skip'` in this session's latest scans.
#[derive(Debug, Default)]
pub struct ArchiveErrorsFunc {
    log: ErrorLog,
}

impl ArchiveErrorsFunc {
    pub fn new(log: ErrorLog) -> Self {
        Self { log }
    }
}

impl TableFunctionImpl for ArchiveErrorsFunc {
    fn call_with_args(&self, args: TableFunctionArgs) -> DFResult<Arc<dyn TableProvider>> {
        if !args.exprs().is_empty() {
            return plan_err!("archive_errors() takes no arguments");
        }
        let batch = self.log.to_batch();
        Ok(Arc::new(MemTable::try_new(
            ErrorLog::schema(),
            vec![vec![batch]],
        )?))
    }
}
