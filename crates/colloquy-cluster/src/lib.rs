//! colloquy on an Apache DataFusion Ballista cluster.
//!
//! - [`scheduler::start`]: Ballista's scheduler, planning with colloquy's functions and codecs;
//! - [`executor::run`]: an executor process with colloquy's stores, functions and codecs built in;
//! - [`remote_context`]: a colloquy session whose queries run on the cluster (`colloquy sql --cluster`,
//!   `colloquy serve --cluster`). Statements that change the session (DDL, `CREATE FUNCTION`) still run
//!   in it; queries are sent to the scheduler.
//!
//! Plans carry no credentials: each executor builds its stores from its own environment, and a table
//! whose OPTIONS hold a secret is refused before anything is sent ([`codec`]).

pub mod codec;
pub mod executor;
pub mod models;
pub mod planner;
pub mod rules;
pub mod scheduler;

use std::sync::Arc;

use ballista_core::extension::{SessionConfigExt, SessionStateExt};
use colloquy_udfs::ColloquyOptions;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};

pub use codec::{ColloquyLogicalCodec, ColloquyPhysicalCodec};

/// Ballista's switch for its adaptive query planner.
const ADAPTIVE_PLANNER: &str = "ballista.planner.adaptive.enabled";

/// The port a scheduler listens on when `df://host` names none (Ballista's).
pub const DEFAULT_SCHEDULER_PORT: u16 = 50050;

/// `df://host:port` (or `host:port`) → the scheduler's gRPC address, `http://host:port`.
pub fn scheduler_url(cluster: &str) -> Result<String> {
    let rest = cluster
        .strip_prefix("df://")
        .or_else(|| cluster.strip_prefix("http://"))
        .unwrap_or(cluster)
        .trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>().map_err(|_| {
                DataFusionError::Configuration(format!(
                    "--cluster {cluster}: the port '{p}' is not a number (expected df://HOST:PORT)"
                ))
            })?,
        ),
        None => (rest, DEFAULT_SCHEDULER_PORT),
    };
    if host.is_empty() || host.contains('/') {
        return Err(DataFusionError::Configuration(format!(
            "--cluster {cluster}: expected df://HOST:PORT, e.g. df://127.0.0.1:50050"
        )));
    }
    Ok(format!("http://{host}:{port}"))
}

/// The configuration every process of a cluster starts from: Ballista's, with colloquy's options
/// (`colloquy.*`) known, so a client's settings reach the scheduler and executors.
pub fn cluster_config() -> SessionConfig {
    SessionConfig::new_with_ballista()
        .with_option_extension(ColloquyOptions::default())
        .with_information_schema(true)
}

/// A colloquy session state on `runtime`, ready for a scheduler or an executor: every colloquy
/// function, with Ballista's optimizer rules.
pub fn cluster_state(config: SessionConfig, runtime: Arc<RuntimeEnv>) -> SessionState {
    let config = if config
        .options()
        .extensions
        .get::<ColloquyOptions>()
        .is_none()
    {
        config.with_option_extension(ColloquyOptions::default())
    } else {
        config
    };
    let state = colloquy::new_context_with_runtime(config, runtime).state();
    SessionStateBuilder::new_from_existing(state)
        .with_optimizer_rules(ballista_core::optimizer::ballista_default_optimizer_rules())
        .with_physical_optimizer_rule(Arc::new(rules::WindowSortsKeepPartitionKeys))
        .with_physical_optimizer_rule(Arc::new(rules::UnevenUnionsInOneTask))
        .build()
}

/// A colloquy session whose queries run on the cluster at `cluster` (`df://host:port`). `config` and
/// `runtime` are the client's, as for [`colloquy::new_context_with_runtime`].
pub fn remote_context(
    cluster: &str,
    config: SessionConfig,
    runtime: Arc<RuntimeEnv>,
) -> Result<SessionContext> {
    let url = scheduler_url(cluster)?;
    let config = config
        .with_option_extension(ColloquyOptions::default())
        .with_ballista_logical_extension_codec(Arc::new(ColloquyLogicalCodec::default()))
        .with_ballista_physical_extension_codec(Arc::new(ColloquyPhysicalCodec::default()));
    let local = colloquy::new_context_with_runtime(config, runtime);
    let state = local.state();
    let scalars: Vec<_> = state.scalar_functions().values().cloned().collect();
    let aggregates: Vec<_> = state.aggregate_functions().values().cloned().collect();
    let windows: Vec<_> = state.window_functions().values().cloned().collect();
    // Ballista replaces the function lists with its own: colloquy's go back in afterwards.
    let state = state.upgrade_for_ballista(url)?;
    let ballista = Arc::clone(state.query_planner());
    let state = SessionStateBuilder::new_from_existing(state)
        .with_query_planner(Arc::new(planner::ClusterQueryPlanner { inner: ballista }))
        .build();
    let ctx = SessionContext::new_with_state(state);
    // Ballista's adaptive planner (55.0.0) re-plans stages without colloquy's plan rewrites
    // ([`rules`]) and waits forever on a UNION ALL of unlike inputs; the static planner runs them.
    // A session may still turn it on with SET.
    ctx.state_ref()
        .write()
        .config_mut()
        .options_mut()
        .set(ADAPTIVE_PLANNER, "false")?;
    for f in scalars {
        ctx.register_udf(f.as_ref().clone());
    }
    for f in aggregates {
        ctx.register_udaf(f.as_ref().clone());
    }
    for f in windows {
        ctx.register_udwf(f.as_ref().clone());
    }
    Ok(ctx)
}
