//! Executors: Ballista's, with colloquy's object stores (credentials from the executor's own
//! environment), functions, ONNX models and codecs built in.

use std::sync::Arc;

use ballista_core::config::TaskSchedulingPolicy;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::serde::BallistaCodec;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use colloquy_archive::{ParsedCache, RemoteScanEnv};
use colloquy_store::AccessPolicy;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::runtime_env::RuntimeEnv;

use crate::codec::{ColloquyLogicalCodec, ColloquyPhysicalCodec};
use crate::models::Models;

/// One executor's settings.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler, `df://host:port` or `host:port`.
    pub scheduler: String,
    /// The address this executor's Flight service (shuffle reads) listens on, and its port.
    pub bind_host: String,
    pub port: u16,
    /// The address other executors reach it at, when it differs from `bind_host`.
    pub external_host: Option<String>,
    /// Tasks it runs at once.
    pub slots: usize,
    /// Shuffle files go here (a temporary folder when unset).
    pub work_dir: Option<String>,
    /// The operator's access policy: every store this executor builds checks its paths against it.
    pub policy: Option<Arc<AccessPolicy>>,
    /// Bytes of parsed archive units kept between queries (0: none).
    pub cache_bytes: usize,
}

impl Default for ExecutorOptions {
    fn default() -> Self {
        Self {
            scheduler: format!("127.0.0.1:{}", crate::DEFAULT_SCHEDULER_PORT),
            bind_host: "127.0.0.1".into(),
            port: 50051,
            external_host: None,
            slots: std::thread::available_parallelism().map_or(1, |n| n.get()),
            work_dir: None,
            policy: None,
            cache_bytes: 256 << 20,
        }
    }
}

/// What an executor brings to every task: its runtime, functions and codecs.
struct Parts {
    runtime: Arc<RuntimeEnv>,
    registry: BallistaFunctionRegistry,
    logical: Arc<ColloquyLogicalCodec>,
    physical: Arc<ColloquyPhysicalCodec>,
}

fn parts(policy: Option<Arc<AccessPolicy>>, cache_bytes: usize) -> Parts {
    let runtime = match &policy {
        Some(p) => colloquy::server_runtime_env(None, Arc::clone(p)),
        None => colloquy::runtime_env(None),
    };
    let state = crate::cluster_state(crate::cluster_config(), Arc::clone(&runtime));
    let registry = BallistaFunctionRegistry::from(&state);
    let scans = RemoteScanEnv {
        policy: policy.clone(),
        cache: (cache_bytes > 0).then(|| Arc::new(ParsedCache::new(cache_bytes))),
        log: Default::default(),
    };
    let models = Arc::new(Models::with_env(Arc::clone(&runtime)));
    Parts {
        runtime,
        registry,
        logical: Arc::new(ColloquyLogicalCodec::with_policy(policy)),
        physical: Arc::new(ColloquyPhysicalCodec::new(scans, models)),
    }
}

/// Runs an executor until it is stopped (Ctrl-C or SIGTERM).
pub async fn run(options: ExecutorOptions) -> Result<()> {
    let url = crate::scheduler_url(&options.scheduler)?;
    let (host, port) = url
        .trim_start_matches("http://")
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
        .ok_or_else(|| DataFusionError::Configuration(format!("bad scheduler {url}")))?;
    let parts = parts(options.policy.clone(), options.cache_bytes);
    let runtime = Arc::clone(&parts.runtime);
    let config = ExecutorProcessConfig {
        bind_host: options.bind_host.clone(),
        external_host: options.external_host.clone(),
        port: options.port,
        // Unused with pull scheduling, but bound: the next port up.
        grpc_port: options.port.saturating_add(1),
        scheduler_host: host,
        scheduler_port: port,
        scheduler_connect_timeout_seconds: 30,
        vcores: options.slots.max(1),
        task_scheduling_policy: TaskSchedulingPolicy::PullStaged,
        work_dir: options.work_dir.clone(),
        print_thread_info: false,
        // No heartbeat setting: under pull scheduling the executor's polls are its heartbeats (every
        // 50 ms to 1 s when a slot is free, every 5 s when all are busy; see `MIN_EXECUTOR_TIMEOUT_SECS`).
        override_function_registry: Some(Arc::new(parts.registry)),
        override_runtime_producer: Some(Arc::new(move |_| Ok(Arc::clone(&runtime)))),
        override_config_producer: Some(Arc::new(crate::cluster_config)),
        override_logical_codec: Some(parts.logical),
        override_physical_codec: Some(parts.physical),
        ..ExecutorProcessConfig::default()
    };
    start_executor_process(Arc::new(config))
        .await
        .map_err(|e| DataFusionError::External(Box::new(e)))
}

/// Starts an executor inside this process (for tests and `colloquy sql --local-cluster`): it asks the
/// scheduler at `scheduler` for work and serves its shuffle files on a free loopback port.
pub async fn start_in_process(scheduler: &str, slots: usize) -> Result<()> {
    let url = crate::scheduler_url(scheduler)?;
    let client = SchedulerGrpcClient::connect(url.clone())
        .await
        .map_err(|e| {
            DataFusionError::Execution(format!("cannot reach the scheduler at {url}: {e}"))
        })?;
    let parts = parts(None, 64 << 20);
    let runtime = Arc::clone(&parts.runtime);
    let codec = BallistaCodec::new(parts.logical, parts.physical);
    ballista_executor::new_standalone_executor_from_builder(
        client,
        slots.max(1),
        Arc::new(crate::cluster_config),
        Arc::new(move |_| Ok(Arc::clone(&runtime))),
        codec,
        parts.registry,
    )
    .await
    .map_err(|e| DataFusionError::External(Box::new(e)))
}
