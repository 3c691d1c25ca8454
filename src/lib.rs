//! colloquy: customer-conversation archives as SQL tables for Apache DataFusion.
//!
//! [`new_context`] builds the session every colloquy front end uses (`colloquy sql`, the Flight SQL
//! server, notebooks through it): DataFusion's own formats and table factories, the information schema,
//! object stores created on demand from URLs, and everything colloquy adds. The server's sessions also
//! carry its access policy ([`server_runtime_env`], [`restrict`]).
//!
//! ```no_run
//! # async fn demo() -> datafusion::error::Result<()> {
//! let ctx = colloquy::new_context();
//! ctx.sql("CREATE EXTERNAL TABLE support STORED AS ARCHIVE LOCATION 'exports/'").await?;
//! ctx.sql("SELECT channel, count(*) FROM support GROUP BY channel").await?.show().await?;
//! # Ok(()) }
//! ```

use std::sync::Arc;

use colloquy_archive::errlog::ErrorLog;
use colloquy_store::AccessPolicy;
use datafusion::execution::context::SessionContext;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::SessionConfig;

pub mod analytics;
pub mod governance;
pub mod view_cache;

pub use colloquy_archive as archive;
pub use colloquy_onnx as onnx;
pub use colloquy_store as store;
pub use datafusion;

/// The table name every view and notebook builds on.
pub const MESSAGES_TABLE: &str = "messages";

/// A session with everything registered and DataFusion's defaults.
pub fn new_context() -> SessionContext {
    new_context_with_config(SessionConfig::new())
}

/// A session with everything registered, on top of the given configuration.
pub fn new_context_with_config(config: SessionConfig) -> SessionContext {
    new_context_with_runtime(config, runtime_env(None))
}

/// The runtime environment colloquy sessions use: object stores resolved from URLs, and DataFusion's
/// memory pool — unbounded, or a fair spilling pool of `memory_limit` bytes. Sessions that share one
/// share its memory limit (the server builds one for all its sessions).
pub fn runtime_env(
    memory_limit: Option<usize>,
) -> Arc<datafusion::execution::runtime_env::RuntimeEnv> {
    runtime_env_with_registry(
        memory_limit,
        Arc::new(colloquy_store::AutoStoreRegistry::new()),
    )
}

/// The runtime environment of a shared server's sessions: as [`runtime_env`], but every object store
/// it hands out checks each path against `policy` (see [`colloquy_store::policy`]).
pub fn server_runtime_env(
    memory_limit: Option<usize>,
    policy: Arc<AccessPolicy>,
) -> Arc<datafusion::execution::runtime_env::RuntimeEnv> {
    runtime_env_with_registry(
        memory_limit,
        Arc::new(colloquy_store::GuardedRegistry::new(policy)),
    )
}

/// Puts a server's policy on a session (after the operator's own archives and models are registered):
/// archive tables and `read_archive` then check their locations while planning and build stores from a
/// client's OPTIONS without the server's credentials. The session's runtime must come from
/// [`server_runtime_env`] with the same policy: its registry guards every other store.
pub fn restrict(ctx: &SessionContext, policy: Arc<AccessPolicy>) {
    ctx.state_ref().write().config_mut().set_extension(policy);
}

fn runtime_env_with_registry(
    memory_limit: Option<usize>,
    registry: Arc<dyn datafusion::execution::object_store::ObjectStoreRegistry>,
) -> Arc<datafusion::execution::runtime_env::RuntimeEnv> {
    let mut builder = RuntimeEnvBuilder::new().with_object_store_registry(registry);
    if let Some(limit) = memory_limit {
        builder = builder.with_memory_pool(Arc::new(
            datafusion::execution::memory_pool::FairSpillPool::new(limit),
        ));
    }
    builder
        .build_arc()
        .expect("a runtime environment with a registry and a pool always builds")
}

/// A session with everything registered, on a given runtime environment (see [`runtime_env`]).
pub fn new_context_with_runtime(
    config: SessionConfig,
    runtime: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
) -> SessionContext {
    let mut config = config.with_information_schema(true);
    if config
        .options()
        .extensions
        .get::<colloquy_udfs::ColloquyOptions>()
        .is_none()
    {
        config = config.with_option_extension(colloquy_udfs::ColloquyOptions::default());
    }
    let builder = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features();
    // CREATE FUNCTION ... LANGUAGE ONNX
    let (builder, models) = colloquy_onnx::with_factory(builder);
    let mut state = builder.build();
    // For `models_used`: which model versions a statement ran.
    state.config_mut().set_extension(Arc::clone(&models));
    let log = ErrorLog::default();
    colloquy_archive::add_table_factory(&mut state, &log);
    let ctx = SessionContext::new_with_state(state);
    colloquy_archive::register_functions(&ctx, &log);
    let providers = colloquy_udfs::Providers {
        embedder: Some(colloquy_onnx::embedder(Arc::clone(&models))),
    };
    colloquy_udfs::register_all_with(&ctx, &providers);
    colloquy_onnx::register(&ctx, models);
    ctx
}

/// Runs a planned statement as every front end must: DDL takes effect now (DataFusion runs it while
/// building the DataFrame), and when it changed what the analytics views read (`messages`,
/// `customer_identities`, a function), the views are planned again. Queries come back unexecuted, as a
/// DataFrame to stream or collect.
pub async fn execute(
    ctx: &SessionContext,
    plan: datafusion::logical_expr::LogicalPlan,
) -> datafusion::error::Result<datafusion::dataframe::DataFrame> {
    let refresh = analytics::affects_views(&plan);
    let df = ctx.execute_logical_plan(plan).await?;
    if refresh {
        analytics::install_views_and_warn(ctx).await?;
    }
    Ok(df)
}

/// Names the user of a server session: the owner of the models it registers (see `onnx_model_history()`).
pub fn set_user(ctx: &SessionContext, user: &str) {
    ctx.state_ref()
        .write()
        .config_mut()
        .set_extension(Arc::new(colloquy_onnx::ModelOwner(user.to_string())));
}

/// Puts a server session on the server's model ledger: its registrations are kept there for the
/// server's lifetime, and `onnx_model_history()` shows the user's models from every session (everyone's
/// when `everything`). `session` tags its entries.
pub fn share_model_history(
    ctx: &SessionContext,
    ledger: Arc<colloquy_onnx::ModelLedger>,
    session: &str,
    everything: bool,
) {
    colloquy_onnx::ModelLedgerView::attach(
        ctx.state_ref().write().config_mut(),
        colloquy_onnx::ModelLedgerView {
            ledger,
            session: session.to_string(),
            everything,
        },
    );
}

/// The ONNX functions `plan` calls (views included), as `name@checksum` with the first 16 hex digits
/// of the model's BLAKE3: the model versions a statement used, for the audit trail.
pub fn models_used(
    ctx: &SessionContext,
    plan: &datafusion::logical_expr::LogicalPlan,
) -> Vec<String> {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::logical_expr::{Expr, LogicalPlan};
    let Some(registry) = ctx
        .state()
        .config()
        .get_extension::<colloquy_onnx::ModelRegistry>()
    else {
        return Vec::new();
    };
    let live = registry.live();
    if live.is_empty() {
        return Vec::new();
    }
    fn collect(plan: &LogicalPlan, names: &mut std::collections::BTreeSet<String>, depth: usize) {
        let _ = plan.apply_with_subqueries(|node| {
            for e in node.expressions() {
                let _ = e.apply(|e| {
                    if let Expr::ScalarFunction(f) = e {
                        names.insert(f.name().to_string());
                    }
                    Ok(TreeNodeRecursion::Continue)
                });
            }
            // A view's plan is inlined only when the statement is optimised: look into it here.
            if let LogicalPlan::TableScan(scan) = node
                && depth < 16
                && let Ok(provider) = datafusion::datasource::source_as_provider(&scan.source)
            {
                if let Some(inner) = provider.get_logical_plan() {
                    collect(&inner, names, depth + 1);
                } else if let Some(cached) = provider.downcast_ref::<view_cache::CachedView>() {
                    collect(cached.view_plan(), names, depth + 1);
                }
            }
            Ok(TreeNodeRecursion::Continue)
        });
    }
    let mut names = std::collections::BTreeSet::new();
    collect(plan, &mut names, 0);
    live.iter()
        .filter(|(m, _)| names.contains(&m.name))
        .map(|(m, _)| format!("{}@{}", m.name, &m.checksum[..m.checksum.len().min(16)]))
        .collect()
}

/// For tables replaced outside SQL (Flight bulk ingest): plans the views again when `table` is one they
/// read.
pub async fn table_replaced(ctx: &SessionContext, table: &str) -> datafusion::error::Result<()> {
    if analytics::is_input_table(&datafusion::common::TableReference::from(table)) {
        analytics::install_views_and_warn(ctx).await?;
    }
    Ok(())
}

/// Registers an archive location as a table, as `CREATE EXTERNAL TABLE ... STORED AS ARCHIVE` would.
pub async fn register_archive(
    ctx: &SessionContext,
    name: &str,
    location: &str,
    options: &[(&str, &str)],
) -> datafusion::error::Result<()> {
    let mut sql = format!(
        "CREATE OR REPLACE EXTERNAL TABLE {} STORED AS ARCHIVE LOCATION '{}'",
        quote_ident(name),
        location.replace('\'', "''")
    );
    if !options.is_empty() {
        let opts: Vec<String> = options
            .iter()
            .map(|(k, v)| format!("'{}' '{}'", k.replace('\'', "''"), v.replace('\'', "''")))
            .collect();
        sql.push_str(&format!(" OPTIONS ({})", opts.join(", ")));
    }
    ctx.sql(&sql).await?.collect().await?;
    Ok(())
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
