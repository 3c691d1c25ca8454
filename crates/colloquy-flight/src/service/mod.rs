//! The Flight SQL service: statements, prepared statements, updates, bulk ingest and metadata over
//! per-session DataFusion contexts. One file per concern: `session`, `query`, `metadata`,
//! `ingest`, `actions` (the custom actions, one table); `flight_sql` routes each Flight SQL call.

mod actions;
mod flight_sql;
mod ingest;
mod metadata;
mod query;
mod session;

use metadata::{sql_info, xdbc_types};

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arrow_flight::sql::metadata::{SqlInfoData, XdbcTypeInfoData};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use futures::Stream;
use futures::future::BoxFuture;
use tonic::Status;

use crate::auth::Authenticator;
use crate::error::Result;
use crate::gate::Gate;
use crate::metrics::Metrics;
use crate::schema::Normalizer;

/// Builds a fresh session context: every session gets its own settings and temporary objects.
pub type ContextFactory = Arc<dyn Fn() -> BoxFuture<'static, Result<SessionContext>> + Send + Sync>;

type DoGetStream =
    Pin<Box<dyn Stream<Item = Result<arrow_flight::FlightData, Status>> + Send + 'static>>;

/// What the server was started with.
#[derive(Clone)]
pub struct ServiceOptions {
    pub factory: ContextFactory,
    pub auth: Arc<Authenticator>,
    pub normalizer: Normalizer,
    /// The runtime that executes queries, apart from the one serving gRPC, so that scoring millions of
    /// messages never delays a handshake or a metadata call.
    pub cpu: tokio::runtime::Handle,
    /// The most memory one query may reserve (inside the pool all sessions share).
    pub query_memory_limit: Option<usize>,
    /// Queries running longer are stopped with `DeadlineExceeded`.
    pub query_timeout: Option<std::time::Duration>,
    /// Sessions without a call for this long are closed, and results not fetched for this long dropped.
    pub session_idle: std::time::Duration,
    pub metrics: Arc<Metrics>,
    /// The access policy and limits every client statement passes ([`Gate`]).
    pub gate: Gate,
    /// Roles, grants, row and column policies: how each user's sessions are shaped.
    pub governance: Arc<crate::grants::GovernanceSlot>,
    /// Where every statement is recorded ([`crate::audit`]), when the operator keeps a trail.
    pub audit: Option<Arc<crate::audit::AuditLog>>,
    /// Bulk ingest into this table goes to the live store (`[live] flight_ingest`).
    pub live_sink: Option<Arc<dyn LiveSink>>,
    /// `CREATE RULE` and `DROP RULE` (`[live] client_rules`).
    pub rule_statements: Option<Arc<dyn RuleStatements>>,
}

/// Statements about the live rules, which DataFusion does not parse: a statement this claims is run by
/// it (after the gate's text checks, recorded in the audit trail like any statement) and answers with
/// one row, `result`.
#[tonic::async_trait]
pub trait RuleStatements: Send + Sync {
    /// Whether `sql` is one of its statements.
    fn claims(&self, sql: &str) -> bool;
    /// Runs it for `user`; the text is what the client is told.
    async fn run(&self, sql: &str, user: &str) -> Result<String>;
}

/// The live store as a bulk-ingest target: rows a client pushes with DoPut join the live messages, durable
/// before the call returns, deduplicated like the HTTP endpoint's.
#[tonic::async_trait]
pub trait LiveSink: Send + Sync {
    /// The table clients ingest into.
    fn table(&self) -> &str;
    /// Stores the rows; returns how many were new (the others were stored before).
    async fn append(&self, batches: Vec<RecordBatch>) -> Result<i64>;
}

struct Session {
    ctx: SessionContext,
    /// The governance generation the session was shaped under (see [`crate::grants`]).
    generation: u64,
    /// Milliseconds since the service started, at the last call: idle sessions are swept.
    last_used: AtomicU64,
}

struct Prepared {
    session: String,
    /// The governance generation its plan was made under: a plan of an older one holds the tables as
    /// the old rules shaped them, so it must be prepared again.
    generation: u64,
    /// Who may use, bind and close it (see [`ColloquyFlightSql::owner`]).
    owner: String,
    /// The statement as the client sent it, for the query log.
    sql: Arc<str>,
    plan: LogicalPlan,
    params: Option<Vec<ScalarValue>>,
}

/// A result waiting for its DoGet: a physical plan not yet run, or the rows of a command already run.
enum Pending {
    Plan {
        plan: Arc<dyn ExecutionPlan>,
        ctx: SessionContext,
    },
    Rows(Vec<RecordBatch>),
}

struct Ticketed {
    handle: String,
    session: String,
    owner: String,
    created: Instant,
    user: Arc<str>,
    sql: String,
    /// The governance generation of the session it was planned in (see [`crate::grants`]).
    generation: u64,
    record: crate::audit::Record,
    schema: SchemaRef,
    pending: Pending,
}

pub struct ColloquyFlightSql {
    options: ServiceOptions,
    sessions: tokio::sync::Mutex<HashMap<String, Arc<Session>>>,
    prepared: Mutex<HashMap<String, Prepared>>,
    tickets: Mutex<HashMap<String, Ticketed>>,
    /// Queries being streamed, by ticket handle, with their owner, for CancelFlightInfo.
    running: Arc<Mutex<HashMap<String, (String, tokio::task::AbortHandle)>>>,
    /// Statements running now, per owner, against `max_queries_per_user`.
    busy: Arc<Mutex<HashMap<String, usize>>>,
    started: Instant,
    /// Every ONNX model registered in any session, for `onnx_model_history()`.
    models: Arc<colloquy::onnx::ModelLedger>,
    sql_info: SqlInfoData,
    xdbc: XdbcTypeInfoData,
}

fn poisoned() -> Status {
    Status::internal("server state lock poisoned")
}

impl ColloquyFlightSql {
    pub fn new(options: ServiceOptions) -> Result<Self> {
        Ok(Self {
            options,
            sessions: tokio::sync::Mutex::new(HashMap::new()),
            prepared: Mutex::new(HashMap::new()),
            tickets: Mutex::new(HashMap::new()),
            running: Arc::new(Mutex::new(HashMap::new())),
            busy: Arc::new(Mutex::new(HashMap::new())),
            started: Instant::now(),
            models: Arc::default(),
            sql_info: sql_info()?,
            xdbc: xdbc_types()?,
        })
    }
}
