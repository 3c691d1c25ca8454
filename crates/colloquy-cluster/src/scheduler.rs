//! The scheduler: Ballista's, with sessions that know colloquy's functions and codecs that know its
//! tables. It never reads an archive: it plans, and hands tasks to executors that ask for them.

use std::net::SocketAddr;
use std::sync::Arc;

use ballista_core::config::TaskSchedulingPolicy;
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::{create_scheduler, start_grpc_service_with_listener};
use colloquy_store::AccessPolicy;
use datafusion::error::{DataFusionError, Result};
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use tokio::net::TcpListener;

use crate::codec::{ColloquyLogicalCodec, ColloquyPhysicalCodec};

/// The shortest executor timeout the scheduler accepts. Under pull scheduling an executor's polls are
/// its heartbeats, and one whose every slot is busy polls only every 5 s (Ballista's
/// `HEARTBEAT_POLL_INTERVAL`): a timeout near that declares healthy, busy executors lost and runs
/// their tasks again and again (measured: a 3 s timeout kept a 10 s query going for 340 s).
pub const MIN_EXECUTOR_TIMEOUT_SECS: u64 = 10;

/// How the scheduler treats its executors.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// An executor that has not been heard from for this long is lost: its tasks run again elsewhere
    /// (at least [`MIN_EXECUTOR_TIMEOUT_SECS`]).
    pub executor_timeout_secs: u64,
    /// The scheduler's own access policy for the archive tables it plans (the operator's `[server]`
    /// rules, when started with a config).
    pub policy: Option<Arc<AccessPolicy>>,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        Self {
            executor_timeout_secs: 30,
            policy: None,
        }
    }
}

/// Starts a scheduler on `listener` (its port may be 0: the address it got is returned) and serves
/// it in the background until the runtime stops.
pub async fn start(listener: TcpListener, options: SchedulerOptions) -> Result<SocketAddr> {
    if options.executor_timeout_secs < MIN_EXECUTOR_TIMEOUT_SECS {
        return Err(DataFusionError::Configuration(format!(
            "executor timeout {} s is below {MIN_EXECUTOR_TIMEOUT_SECS} s: an executor busy on every \
             slot is heard from only every 5 s and would be declared lost",
            options.executor_timeout_secs
        )));
    }
    let addr = listener
        .local_addr()
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    let policy = options.policy.clone();
    let session_builder = Arc::new(move |config| {
        let runtime = match &policy {
            Some(p) => colloquy::server_runtime_env(None, Arc::clone(p)),
            None => colloquy::runtime_env(None),
        };
        Ok(crate::cluster_state(config, runtime))
    });
    let config = SchedulerConfig {
        bind_host: addr.ip().to_string(),
        bind_port: addr.port(),
        external_host: addr.ip().to_string(),
        // Executors ask for work (no port of theirs needs to be reachable from the scheduler).
        scheduling_policy: TaskSchedulingPolicy::PullStaged,
        executor_timeout_seconds: options.executor_timeout_secs,
        // Checked twice per timeout: a lost executor is dropped within 1.5 timeouts.
        expire_dead_executor_interval_seconds: (options.executor_timeout_secs / 2).clamp(1, 15),
        override_session_builder: Some(session_builder),
        override_config_producer: Some(Arc::new(crate::cluster_config)),
        override_logical_codec: Some(Arc::new(ColloquyLogicalCodec::with_policy(
            options.policy.clone(),
        ))),
        override_physical_codec: Some(Arc::new(ColloquyPhysicalCodec::default())),
        ..SchedulerConfig::default()
    };
    let config = Arc::new(config);
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    let scheduler = create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(cluster, config)
        .await
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    tokio::spawn(async move {
        if let Err(e) = start_grpc_service_with_listener(listener, scheduler).await {
            tracing::error!(error = %e, "the scheduler stopped");
        }
    });
    Ok(addr)
}
