//! The Flight SQL service: statements, prepared statements, updates, bulk ingest and metadata over
//! per-session DataFusion contexts.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::metadata::{
    SqlInfoData, SqlInfoDataBuilder, XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder,
};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, Any, CommandGetCatalogs, CommandGetCrossReference,
    CommandGetDbSchemas, CommandGetExportedKeys, CommandGetImportedKeys, CommandGetPrimaryKeys,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandGetXdbcTypeInfo,
    CommandPreparedStatementQuery, CommandPreparedStatementUpdate, CommandStatementIngest,
    CommandStatementQuery, CommandStatementUpdate, DoPutPreparedStatementResult, Nullable,
    ProstMessageExt, Searchable, SqlInfo, SqlSupportedTransaction, TableExistsOption,
    TableNotExistOption, TicketStatementQuery, XdbcDataType,
};
use arrow_flight::{
    Action, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse,
    IpcMessage, SchemaAsIpc, SchemaResult, Ticket,
};
use datafusion::arrow::array::{Array, RecordBatch, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::ipc::writer::IpcWriteOptions;
use datafusion::catalog::TableProvider;
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{LogicalPlan, TableType};
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::SessionContext;
use futures::future::BoxFuture;
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::{Authenticator, Principal, bearer, random_handle};
use crate::error::{Error, Result};
use crate::gate::Gate;
use crate::metrics::Metrics;
use crate::params::{bind, number_placeholders, parameter_schema, row_values};
use crate::query_pool::QueryPool;
use crate::redact::{is_secret_name, redact_sql};
use crate::schema::Normalizer;
use crate::session_options as so;

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
}

struct Session {
    ctx: SessionContext,
    /// Milliseconds since the service started, at the last call: idle sessions are swept.
    last_used: AtomicU64,
}

struct Prepared {
    session: String,
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
            sql_info: sql_info()?,
            xdbc: xdbc_types()?,
        })
    }

    /// Who owns a handle and whose limits a statement counts against: a logged-in user across their
    /// sessions, an anonymous client only in its own session.
    fn owner<T>(req: &Request<T>) -> String {
        let p = Self::principal(req);
        if p.user.as_ref() == "anonymous" {
            Self::session_key(req)
        } else {
            format!("user:{}", p.user)
        }
    }

    /// A slot among the owner's concurrent statements, given back when dropped.
    fn slot(&self, owner: &str) -> Result<Slot> {
        let max = self.options.gate.limits.max_queries_per_user;
        let mut busy = self
            .busy
            .lock()
            .map_err(|_| Error::Internal("busy table poisoned".into()))?;
        let n = busy.entry(owner.to_owned()).or_insert(0);
        if *n >= max {
            return Err(Error::ResourceExhausted(format!(
                "{max} statements of yours are running already: wait for one to finish (max_queries_per_user in [server])"
            )));
        }
        *n += 1;
        Ok(Slot {
            owner: owner.to_owned(),
            busy: Arc::clone(&self.busy),
        })
    }

    /// Parses and plans a client's SQL on the query runtime (deep statements need its larger stacks;
    /// a table function may list an object store while planning), then checks the plan at the gate.
    async fn plan_sql(&self, session: &Session, sql: &str) -> Result<LogicalPlan> {
        self.options.gate.check_sql(sql)?;
        let sql = number_placeholders(sql);
        let ctx = session.ctx.clone();
        let timeout = self.options.query_timeout;
        let plan = self
            .options
            .cpu
            .spawn(async move {
                let planning = async { ctx.state().create_logical_plan(&sql).await };
                match timeout {
                    Some(t) => tokio::time::timeout(t, planning)
                        .await
                        .map_err(|_| deadline("planning the statement", t))?
                        .map_err(Error::from),
                    None => planning.await.map_err(Error::from),
                }
            })
            .await
            .map_err(|e| Error::Internal(format!("planning task failed: {e}")))??;
        self.options.gate.check_plan(&plan)?;
        Ok(plan)
    }

    /// Runs a command plan (DDL, DML, SET, COPY) on the query runtime, within the query timeout and,
    /// for statements that read or write data, the per-query memory limit.
    async fn run_command(
        &self,
        ctx: &SessionContext,
        plan: LogicalPlan,
    ) -> Result<Vec<RecordBatch>> {
        let timeout = self.options.query_timeout;
        // SET, PREPARE and CREATE/DROP FUNCTION change the session state itself; everything else
        // changes only the catalog, which a context on a limited runtime shares with the session.
        let keeps_state = matches!(
            plan,
            LogicalPlan::Statement(_)
                | LogicalPlan::Ddl(
                    datafusion::logical_expr::DdlStatement::CreateFunction(_)
                        | datafusion::logical_expr::DdlStatement::DropFunction(_)
                )
        );
        let run_ctx = match self.options.query_memory_limit {
            Some(limit) if !keeps_state => limited_ctx(ctx, limit),
            _ => ctx.clone(),
        };
        self.options
            .cpu
            .spawn(async move {
                let run = async {
                    let df = run_ctx.execute_logical_plan(plan).await?;
                    df.collect().await
                };
                match timeout {
                    Some(t) => tokio::time::timeout(t, run)
                        .await
                        .map_err(|_| deadline("the statement", t))?
                        .map_err(Error::from),
                    None => run.await.map_err(Error::from),
                }
            })
            .await
            .map_err(|e| Error::Internal(format!("statement task failed: {e}")))?
    }

    fn principal<T>(req: &Request<T>) -> Principal {
        req.extensions()
            .get::<Principal>()
            .cloned()
            .unwrap_or(Principal {
                user: "anonymous".into(),
                token: None,
            })
    }

    /// The session key: the bearer token if there is one, else the client's address (one HTTP/2
    /// connection per ADBC or pyarrow connection).
    fn session_key<T>(req: &Request<T>) -> String {
        let p = Self::principal(req);
        match (&p.token, req.remote_addr()) {
            (Some(t), _) => format!("token:{t}"),
            (None, Some(addr)) => format!("addr:{addr}"),
            (None, None) => format!("user:{}", p.user),
        }
    }

    async fn session(&self, key: &str) -> Result<Arc<Session>> {
        let now = self.started.elapsed().as_millis() as u64;
        {
            let sessions = self.sessions.lock().await;
            if let Some(s) = sessions.get(key) {
                s.last_used.store(now, Ordering::Relaxed);
                return Ok(s.clone());
            }
            self.check_session_room(sessions.len())?;
        }
        // Built without holding the table: a new session registers archives (and may list them), on
        // the query runtime, while other clients' calls go on.
        let ctx = self
            .options
            .cpu
            .spawn((self.options.factory)())
            .await
            .map_err(|e| Error::Internal(format!("session task failed: {e}")))??;
        let mut sessions = self.sessions.lock().await;
        if let Some(s) = sessions.get(key) {
            // Another call of the same client won the race: use its session.
            return Ok(s.clone());
        }
        self.check_session_room(sessions.len())?;
        let s = Arc::new(Session {
            ctx,
            last_used: AtomicU64::new(now),
        });
        sessions.insert(key.to_owned(), s.clone());
        Ok(s)
    }

    fn check_session_room(&self, open: usize) -> Result<()> {
        let max = self.options.gate.limits.max_sessions;
        if open >= max {
            return Err(Error::ResourceExhausted(format!(
                "the server has its maximum of {max} sessions open: close sessions or wait for idle ones to end (max_sessions in [server])"
            )));
        }
        Ok(())
    }

    async fn session_for<T>(&self, req: &Request<T>) -> Result<Arc<Session>> {
        self.session(&Self::session_key(req)).await
    }

    /// Runs a command plan (DDL, DML, SET) now; plans a query for its DoGet. Either way the result is
    /// parked under a ticket and described by a FlightInfo.
    #[allow(clippy::too_many_arguments)]
    async fn plan_result(
        &self,
        session_key: &str,
        owner: &str,
        session: &Session,
        user: Arc<str>,
        sql: &str,
        plan: LogicalPlan,
        descriptor: FlightDescriptor,
    ) -> Result<FlightInfo> {
        let started = Instant::now();
        self.options.metrics.queries.fetch_add(1, Ordering::Relaxed);
        let is_command = matches!(
            plan,
            LogicalPlan::Ddl(_)
                | LogicalPlan::Dml(_)
                | LogicalPlan::Statement(_)
                | LogicalPlan::Copy(_)
        );
        let ctx = session.ctx.clone();
        let normalizer = self.options.normalizer;
        let (schema, pending) = if is_command {
            // A command (a CREATE FUNCTION may train a classifier, a CREATE TABLE AS may read a whole
            // archive) counts against the owner's running statements while it runs.
            let _slot = self.slot(owner)?;
            let refresh_views = colloquy::analytics::affects_views(&plan);
            let arrow_schema: Schema = plan.schema().as_arrow().clone();
            let rows = self.run_command(&ctx, plan).await;
            if let Err(e) = &rows {
                tracing::info!(target: "colloquy::query", user = %user, sql = %redact_sql(sql), kind = "command", duration_ms = started.elapsed().as_millis() as u64, status = "error", error = %e);
            }
            let rows = rows?;
            if refresh_views {
                colloquy::analytics::install_views_and_warn(&ctx).await?;
            }
            tracing::info!(target: "colloquy::query", user = %user, sql = %redact_sql(sql), kind = "command", duration_ms = started.elapsed().as_millis() as u64, status = "ok");
            (normalizer.schema(&arrow_schema), Pending::Rows(rows))
        } else {
            // Optimising a plan is CPU work: on the query runtime, so that the gRPC runtime keeps
            // answering other clients meanwhile.
            self.options
                .cpu
                .spawn(async move {
                    let df = ctx.execute_logical_plan(plan).await?;
                    let physical = df.create_physical_plan().await?;
                    let schema = normalizer.schema(physical.schema().as_ref());
                    Ok::<_, Error>((
                        schema,
                        Pending::Plan {
                            plan: physical,
                            ctx,
                        },
                    ))
                })
                .await
                .map_err(|e| Error::Internal(format!("planning task failed: {e}")))??
        };
        let handle = random_handle("q").map_err(|s| Error::Internal(s.message().to_owned()))?;
        let ticket = Ticket::new(
            TicketStatementQuery {
                statement_handle: handle.clone().into(),
            }
            .as_any()
            .encode_to_vec(),
        );
        let info = FlightInfo::new()
            .try_with_schema(&schema)?
            .with_endpoint(FlightEndpoint::new().with_ticket(ticket))
            .with_descriptor(descriptor)
            .with_total_records(-1)
            .with_ordered(true);
        self.tickets
            .lock()
            .map_err(|_| Error::Internal("ticket table poisoned".into()))?
            .insert(
                handle.clone(),
                Ticketed {
                    handle,
                    session: session_key.to_owned(),
                    owner: owner.to_owned(),
                    created: Instant::now(),
                    user,
                    sql: redact_sql(sql),
                    schema,
                    pending,
                },
            );
        Ok(info)
    }

    /// Streams a parked result. The query runs on the CPU runtime and hands batches over a small channel;
    /// when the client goes away the channel closes, the task stops and dropping the DataFusion stream
    /// cancels the query.
    fn stream(&self, t: Ticketed) -> Result<DoGetStream> {
        let Ticketed {
            handle,
            owner,
            user,
            sql,
            schema,
            pending,
            ..
        } = t;
        // A query counts against its owner's running statements until its stream ends.
        let slot = match &pending {
            Pending::Plan { .. } => Some(self.slot(&owner)?),
            Pending::Rows(_) => None,
        };
        let norm = self.options.normalizer;
        let metrics = self.options.metrics.clone();
        let log = QueryLog::new(
            user,
            sql,
            metrics.clone(),
            handle.clone(),
            self.running.clone(),
            slot,
        );
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<RecordBatch>>(2);
        let deadline = self
            .options
            .query_timeout
            .map(|t| (tokio::time::Instant::now() + t, t));
        let out_schema = schema.clone();
        let query_memory_limit = self.options.query_memory_limit;
        let task = self.options.cpu.spawn(async move {
            let mut batches: SendableRecordBatchStream = match pending {
                Pending::Plan { plan, ctx } => {
                    match execute_stream(plan, task_ctx(&ctx, query_memory_limit)) {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = tx.send(Err(e.into())).await;
                            return;
                        }
                    }
                }
                Pending::Rows(rows) => {
                    let schema = rows
                        .first()
                        .map(|b| b.schema())
                        .unwrap_or_else(|| Arc::new(Schema::empty()));
                    Box::pin(
                        datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
                            schema,
                            futures::stream::iter(rows.into_iter().map(Ok)),
                        ),
                    )
                }
            };
            loop {
                let next = match deadline {
                    Some((at, limit)) => match tokio::time::timeout_at(at, batches.next()).await {
                        Ok(n) => n,
                        Err(_) => {
                            let msg = format!(
                                "the query ran longer than the server's limit of {}s",
                                limit.as_secs_f64()
                            );
                            let _ = tx.send(Err(Error::DeadlineExceeded(msg))).await;
                            return;
                        }
                    },
                    None => batches.next().await,
                };
                let Some(item) = next else { return };
                let item = item
                    .map_err(Error::from)
                    .and_then(|b| norm.batch(&b, &out_schema).map_err(Error::from));
                if tx.send(item).await.is_err() {
                    // The client went away.
                    return;
                }
            }
        });
        if let Ok(mut running) = self.running.lock() {
            running.insert(handle, (owner, task.abort_handle()));
        }
        let received = futures::stream::unfold((rx, log), |(mut rx, log)| async move {
            let Some(item) = rx.recv().await else {
                log.finished.store(true, Ordering::Relaxed);
                return None;
            };
            match &item {
                Ok(b) => log.rows.fetch_add(b.num_rows() as u64, Ordering::Relaxed),
                Err(_) => log.failed.fetch_add(1, Ordering::Relaxed),
            };
            Some((
                item.map_err(|e| FlightError::Tonic(Box::new(Status::from(e)))),
                (rx, log),
            ))
        });
        let out = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(received)
            .map_err(Status::from)
            .inspect_ok(move |d| {
                metrics.bytes_sent.fetch_add(
                    (d.data_body.len() + d.data_header.len()) as u64,
                    Ordering::Relaxed,
                );
            });
        Ok(Box::pin(out))
    }

    /// GetSchema: the columns a statement, prepared statement or metadata command returns, without
    /// running anything (ADBC's `execute_schema`).
    pub async fn describe(&self, request: Request<FlightDescriptor>) -> Result<SchemaResult> {
        use arrow_flight::sql::Command;
        let any = Any::decode(&*request.get_ref().cmd).map_err(|e| {
            Error::invalid(format!(
                "GetSchema: the descriptor's command is not a Flight SQL command ({e})"
            ))
        })?;
        let command =
            Command::try_from(any).map_err(|e| Error::invalid(format!("GetSchema: {e}")))?;
        let schema: SchemaRef = match command {
            Command::CommandStatementQuery(q) => {
                let session = self.session_for(&request).await?;
                let plan = self.plan_sql(&session, &q.query).await?;
                Arc::new(plan.schema().as_arrow().clone())
            }
            Command::CommandPreparedStatementQuery(cmd) => {
                let owner = Self::owner(&request);
                let handle = String::from_utf8_lossy(&cmd.prepared_statement_handle).into_owned();
                let prepared = self
                    .prepared
                    .lock()
                    .map_err(|_| Error::Internal("prepared statements lock poisoned".into()))?;
                let ps = prepared.get(&handle).ok_or_else(|| {
                    Error::NotFound(format!("unknown prepared statement '{handle}'"))
                })?;
                if ps.owner != owner {
                    return Err(Error::PermissionDenied(
                        "this prepared statement belongs to another user".into(),
                    ));
                }
                Arc::new(ps.plan.schema().as_arrow().clone())
            }
            Command::CommandGetCatalogs(q) => metadata_schema(&MetadataCommand::Catalogs(q)),
            Command::CommandGetDbSchemas(q) => metadata_schema(&MetadataCommand::Schemas(q)),
            Command::CommandGetTables(q) => metadata_schema(&MetadataCommand::Tables(q)),
            Command::CommandGetTableTypes(q) => metadata_schema(&MetadataCommand::TableTypes(q)),
            Command::CommandGetPrimaryKeys(_) => primary_keys_schema(),
            Command::CommandGetExportedKeys(_)
            | Command::CommandGetImportedKeys(_)
            | Command::CommandGetCrossReference(_) => foreign_keys_schema(),
            other => {
                return Err(Error::invalid(format!(
                    "GetSchema describes queries, prepared statements and catalog commands, not {}",
                    other.type_url()
                )));
            }
        };
        let schema = self.options.normalizer.schema(&schema);
        Ok(SchemaAsIpc::new(&schema, &IpcWriteOptions::default()).try_into()?)
    }

    fn take_ticket(&self, handle: &[u8], owner: &str) -> Result<Ticketed> {
        let handle = std::str::from_utf8(handle)
            .map_err(|_| Error::invalid("ticket is not a colloquy ticket"))?;
        let mut tickets = self
            .tickets
            .lock()
            .map_err(|_| Error::Internal("ticket table poisoned".into()))?;
        match tickets.get(handle) {
            Some(t) if t.owner != owner => Err(Error::PermissionDenied(
                "this ticket belongs to another user".into(),
            )),
            Some(_) => tickets
                .remove(handle)
                .ok_or_else(|| Error::NotFound("ticket vanished".into())),
            None => Err(Error::NotFound(format!(
                "unknown or already used ticket '{handle}': tickets are good for one DoGet"
            ))),
        }
    }

    async fn metadata_batch(
        &self,
        session: &Session,
        cmd: &MetadataCommand,
    ) -> Result<RecordBatch> {
        let ctx = &session.ctx;
        match cmd {
            MetadataCommand::Catalogs(q) => {
                let mut b = q.into_builder();
                for c in ctx.catalog_names() {
                    b.append(c);
                }
                Ok(b.build()?)
            }
            MetadataCommand::Schemas(q) => {
                let mut b = q.clone().into_builder();
                for c in ctx.catalog_names() {
                    if let Some(cat) = ctx.catalog(&c) {
                        for s in cat.schema_names() {
                            b.append(&c, s);
                        }
                    }
                }
                Ok(b.build()?)
            }
            MetadataCommand::Tables(q) => {
                let mut b = q.clone().into_builder();
                for c in ctx.catalog_names() {
                    let Some(cat) = ctx.catalog(&c) else { continue };
                    for s in cat.schema_names() {
                        let Some(schema) = cat.schema(&s) else {
                            continue;
                        };
                        for t in schema.table_names() {
                            let Some(table) = schema.table(&t).await? else {
                                continue;
                            };
                            let kind = table_type_name(table.as_ref());
                            let arrow_schema =
                                self.options.normalizer.schema(table.schema().as_ref());
                            b.append(&c, &s, &t, kind, &arrow_schema)?;
                        }
                    }
                }
                Ok(b.build()?)
            }
            MetadataCommand::TableTypes(q) => {
                let mut b = q.into_builder();
                b.append("TABLE");
                b.append("VIEW");
                Ok(b.build()?)
            }
        }
    }
}

/// One structured log line per query, written when its result stream ends (finished, failed or dropped
/// by the client), and the stream's share of the metrics.
struct QueryLog {
    user: Arc<str>,
    sql: String,
    started: Instant,
    rows: AtomicU64,
    failed: AtomicU64,
    /// The stream reached its end (else the client dropped it or it was cancelled).
    finished: std::sync::atomic::AtomicBool,
    metrics: Arc<Metrics>,
    handle: String,
    running: Arc<Mutex<HashMap<String, (String, tokio::task::AbortHandle)>>>,
    /// Given back when the stream ends.
    _slot: Option<Slot>,
}

impl QueryLog {
    fn new(
        user: Arc<str>,
        sql: String,
        metrics: Arc<Metrics>,
        handle: String,
        running: Arc<Mutex<HashMap<String, (String, tokio::task::AbortHandle)>>>,
        slot: Option<Slot>,
    ) -> Self {
        metrics.active_streams.fetch_add(1, Ordering::Relaxed);
        Self {
            user,
            sql,
            started: Instant::now(),
            rows: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            finished: std::sync::atomic::AtomicBool::new(false),
            metrics,
            handle,
            running,
            _slot: slot,
        }
    }
}

/// One of an owner's running statements; dropping it gives the slot back.
struct Slot {
    owner: String,
    busy: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut busy) = self.busy.lock()
            && let Some(n) = busy.get_mut(&self.owner)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                busy.remove(&self.owner);
            }
        }
    }
}

fn deadline(what: &str, limit: std::time::Duration) -> Error {
    Error::DeadlineExceeded(format!(
        "{what} ran longer than the server's limit of {}s (query_timeout_secs in [server])",
        limit.as_secs_f64()
    ))
}

/// `ctx` on a runtime whose pool holds this statement to `limit` bytes. The catalog is shared, so tables
/// and views a command creates land in the session.
fn limited_ctx(ctx: &SessionContext, limit: usize) -> SessionContext {
    let state = ctx.state();
    let runtime = QueryPool::runtime_for_query(state.runtime_env().as_ref(), limit);
    let state = datafusion::execution::session_state::SessionStateBuilder::new_from_existing(state)
        .with_runtime_env(runtime)
        .build();
    SessionContext::new_with_state(state)
}

impl Drop for QueryLog {
    fn drop(&mut self) {
        let failed = self.failed.load(Ordering::Relaxed) > 0;
        let rows = self.rows.load(Ordering::Relaxed);
        self.metrics.active_streams.fetch_sub(1, Ordering::Relaxed);
        self.metrics.rows_sent.fetch_add(rows, Ordering::Relaxed);
        if failed {
            self.metrics.errors.fetch_add(1, Ordering::Relaxed);
        }
        // A stream dropped early leaves its task to notice the closed channel; abort it now instead.
        if let Ok(mut running) = self.running.lock()
            && let Some((_, task)) = running.remove(&self.handle)
        {
            task.abort();
        }
        tracing::info!(
            target: "colloquy::query",
            query_id = %self.handle,
            user = %self.user,
            sql = %self.sql,
            rows,
            duration_ms = self.started.elapsed().as_millis() as u64,
            status = if failed {
                "error"
            } else if self.finished.load(Ordering::Relaxed) {
                "ok"
            } else {
                "cancelled"
            },
            "query"
        );
    }
}

enum MetadataCommand {
    Catalogs(CommandGetCatalogs),
    Schemas(CommandGetDbSchemas),
    Tables(CommandGetTables),
    TableTypes(CommandGetTableTypes),
}

/// The context a query runs in: the session's, with a pool of its own when queries have a memory limit.
fn task_ctx(ctx: &SessionContext, query_memory_limit: Option<usize>) -> Arc<TaskContext> {
    let task = TaskContext::from(&*ctx.state_ref().read());
    Arc::new(match query_memory_limit {
        None => task,
        Some(limit) => {
            let runtime = QueryPool::runtime_for_query(task.runtime_env().as_ref(), limit);
            task.with_runtime(runtime)
        }
    })
}

fn table_type_name(t: &dyn TableProvider) -> &'static str {
    match t.table_type() {
        TableType::View => "VIEW",
        TableType::Base | TableType::Temporary => "TABLE",
    }
}

fn metadata_schema(cmd: &MetadataCommand) -> SchemaRef {
    match cmd {
        MetadataCommand::Catalogs(q) => q.into_builder().schema(),
        MetadataCommand::Schemas(q) => q.clone().into_builder().schema(),
        MetadataCommand::Tables(q) => q.clone().into_builder().schema(),
        MetadataCommand::TableTypes(q) => q.into_builder().schema(),
    }
}

fn info_for(
    schema: &Schema,
    command: impl ProstMessageExt,
    descriptor: FlightDescriptor,
) -> Result<FlightInfo> {
    let ticket = Ticket::new(command.as_any().encode_to_vec());
    Ok(FlightInfo::new()
        .try_with_schema(schema)?
        .with_endpoint(FlightEndpoint::new().with_ticket(ticket))
        .with_descriptor(descriptor)
        .with_total_records(-1))
}

fn one_batch(schema: SchemaRef, batch: RecordBatch) -> DoGetStream {
    let s = futures::stream::iter([Ok(batch)]);
    Box::pin(
        FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(s)
            .map_err(Status::from),
    )
}

/// The answer to the key commands: colloquy tables declare no keys, so the spec's schema with no rows.
fn empty_result(schema: SchemaRef) -> DoGetStream {
    one_batch(schema.clone(), RecordBatch::new_empty(schema))
}

fn primary_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_name", DataType::Utf8, true),
        Field::new("key_sequence", DataType::Int32, false),
    ]))
}

fn foreign_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("pk_catalog_name", DataType::Utf8, true),
        Field::new("pk_db_schema_name", DataType::Utf8, true),
        Field::new("pk_table_name", DataType::Utf8, false),
        Field::new("pk_column_name", DataType::Utf8, false),
        Field::new("fk_catalog_name", DataType::Utf8, true),
        Field::new("fk_db_schema_name", DataType::Utf8, true),
        Field::new("fk_table_name", DataType::Utf8, false),
        Field::new("fk_column_name", DataType::Utf8, false),
        Field::new("key_sequence", DataType::Int32, false),
        Field::new("fk_key_name", DataType::Utf8, true),
        Field::new("pk_key_name", DataType::Utf8, true),
        Field::new("update_rule", DataType::UInt8, false),
        Field::new("delete_rule", DataType::UInt8, false),
    ]))
}

fn sql_info() -> Result<SqlInfoData> {
    let mut b = SqlInfoDataBuilder::new();
    b.append(SqlInfo::FlightSqlServerName, "colloquy");
    b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    b.append(SqlInfo::FlightSqlServerArrowVersion, "1.3");
    b.append(SqlInfo::FlightSqlServerReadOnly, false);
    b.append(SqlInfo::FlightSqlServerSql, true);
    b.append(SqlInfo::FlightSqlServerSubstrait, false);
    b.append(
        SqlInfo::FlightSqlServerTransaction,
        SqlSupportedTransaction::None as i32,
    );
    b.append(SqlInfo::FlightSqlServerCancel, true);
    b.append(SqlInfo::FlightSqlServerBulkIngestion, true);
    b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    Ok(b.build()?)
}

fn xdbc_types() -> Result<XdbcTypeInfoData> {
    let mut b = XdbcTypeInfoDataBuilder::new();
    let mut add = |name: &str, data_type: XdbcDataType, size: Option<i32>, prefix: Option<&str>| {
        b.append(XdbcTypeInfo {
            type_name: name.to_owned(),
            data_type,
            column_size: size,
            literal_prefix: prefix.map(str::to_owned),
            literal_suffix: prefix.map(str::to_owned),
            create_params: None,
            nullable: Nullable::NullabilityNullable,
            case_sensitive: prefix.is_some(),
            searchable: Searchable::Full,
            unsigned_attribute: Some(false),
            fixed_prec_scale: false,
            auto_increment: Some(false),
            local_type_name: Some(name.to_owned()),
            minimum_scale: None,
            maximum_scale: None,
            sql_data_type: data_type,
            datetime_subcode: None,
            num_prec_radix: None,
            interval_precision: None,
        });
    };
    add("BOOLEAN", XdbcDataType::XdbcBit, Some(1), None);
    add("TINYINT", XdbcDataType::XdbcTinyint, Some(3), None);
    add("SMALLINT", XdbcDataType::XdbcSmallint, Some(5), None);
    add("INTEGER", XdbcDataType::XdbcInteger, Some(10), None);
    add("BIGINT", XdbcDataType::XdbcBigint, Some(19), None);
    add("FLOAT", XdbcDataType::XdbcFloat, Some(24), None);
    add("DOUBLE", XdbcDataType::XdbcDouble, Some(53), None);
    add("DECIMAL", XdbcDataType::XdbcDecimal, Some(38), None);
    add("VARCHAR", XdbcDataType::XdbcVarchar, None, Some("'"));
    add("DATE", XdbcDataType::XdbcDate, Some(10), Some("'"));
    add(
        "TIMESTAMP",
        XdbcDataType::XdbcTimestamp,
        Some(29),
        Some("'"),
    );
    add("BINARY", XdbcDataType::XdbcBinary, None, None);
    Ok(b.build()?)
}

/// Rows a command reports: DataFusion's DML returns one `count` column.
fn affected_rows(batches: &[RecordBatch]) -> i64 {
    batches
        .iter()
        .filter_map(|b| {
            b.column_by_name("count")
                .and_then(|c| c.as_any().downcast_ref::<UInt64Array>().cloned())
        })
        .map(|c| c.iter().flatten().sum::<u64>() as i64)
        .sum()
}

/// The batches a client uploads, refused past `max_bytes` (in Arrow memory) with the data read so far
/// dropped.
async fn read_batches(
    req: Request<PeekableFlightDataStream>,
    max_bytes: usize,
) -> Result<(Option<SchemaRef>, Vec<RecordBatch>)> {
    // Descriptor-only messages (no IPC header) precede the data from some clients: skip them.
    let data = req
        .into_inner()
        .try_filter(|d| futures::future::ready(!d.data_header.is_empty()))
        .map_err(FlightError::from);
    let mut stream = FlightRecordBatchStream::new_from_flight_data(data);
    let mut batches = Vec::new();
    let mut bytes = 0usize;
    while let Some(b) = stream.next().await {
        let b = b.map_err(|e| Error::invalid(format!("cannot read the uploaded batches: {e}")))?;
        bytes += b.get_array_memory_size();
        if bytes > max_bytes {
            return Err(Error::ResourceExhausted(format!(
                "the upload is larger than this server accepts in one call ({max_bytes} bytes; max_ingest_bytes in [server]): send it in parts with mode 'append'"
            )));
        }
        batches.push(b);
    }
    let schema = stream
        .schema()
        .cloned()
        .or_else(|| batches.first().map(|b| b.schema()));
    Ok((schema, batches))
}

#[tonic::async_trait]
impl FlightSqlService for ColloquyFlightSql {
    type FlightService = ColloquyFlightSql;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        let p = Self::principal(&request);
        // The interceptor has checked the credentials; a session token ties the next calls to this login.
        let token = match &p.token {
            Some(t) => t.to_string(),
            None => self.options.auth.issue(&p.user)?,
        };
        let out = futures::stream::iter([Ok(HandshakeResponse {
            protocol_version: 0,
            payload: token.clone().into(),
        })]);
        let mut resp = Response::new(Box::pin(out) as Pin<Box<dyn Stream<Item = _> + Send>>);
        resp.metadata_mut().insert("authorization", bearer(&token)?);
        Ok(resp)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let p = Self::principal(&request);
        let key = Self::session_key(&request);
        let owner = Self::owner(&request);
        let session = self.session(&key).await?;
        let plan = self.plan_sql(&session, &query.query).await?;
        if !plan.get_parameter_types().map_err(Error::from)?.is_empty() {
            return Err(
                Error::invalid("the statement has parameters: prepare it and bind values").into(),
            );
        }
        let info = self
            .plan_result(
                &key,
                &owner,
                &session,
                p.user,
                &query.query,
                plan,
                request.into_inner(),
            )
            .await?;
        Ok(Response::new(info))
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let p = Self::principal(&request);
        let owner = Self::owner(&request);
        let handle = String::from_utf8_lossy(&cmd.prepared_statement_handle).into_owned();
        let (session_key, plan, sql) = {
            let prepared = self.prepared.lock().map_err(|_| poisoned())?;
            let Some(ps) = prepared.get(&handle) else {
                return Err(
                    Error::NotFound(format!("unknown prepared statement '{handle}'")).into(),
                );
            };
            if ps.owner != owner {
                return Err(Error::PermissionDenied(
                    "this prepared statement belongs to another user".into(),
                )
                .into());
            }
            let plan = match &ps.params {
                Some(values) => bind(&ps.plan, values)?,
                None => {
                    if !ps
                        .plan
                        .get_parameter_types()
                        .map_err(Error::from)?
                        .is_empty()
                    {
                        return Err(Error::invalid(
                            "bind values to the statement's parameters first",
                        )
                        .into());
                    }
                    ps.plan.clone()
                }
            };
            (ps.session.clone(), plan, Arc::clone(&ps.sql))
        };
        let session = self.session(&session_key).await?;
        let info = self
            .plan_result(
                &session_key,
                &owner,
                &session,
                p.user,
                &sql,
                plan,
                request.into_inner(),
            )
            .await?;
        Ok(Response::new(info))
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = metadata_schema(&MetadataCommand::Catalogs(query));
        Ok(Response::new(info_for(
            &schema,
            query,
            request.into_inner(),
        )?))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = metadata_schema(&MetadataCommand::Schemas(query.clone()));
        Ok(Response::new(info_for(
            &schema,
            query,
            request.into_inner(),
        )?))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = metadata_schema(&MetadataCommand::Tables(query.clone()));
        Ok(Response::new(info_for(
            &schema,
            query,
            request.into_inner(),
        )?))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = metadata_schema(&MetadataCommand::TableTypes(query));
        Ok(Response::new(info_for(
            &schema,
            query,
            request.into_inner(),
        )?))
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(&self.sql_info).schema();
        Ok(Response::new(info_for(
            &schema,
            query,
            request.into_inner(),
        )?))
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder(&self.xdbc).schema();
        Ok(Response::new(info_for(
            &schema,
            query,
            request.into_inner(),
        )?))
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Ok(Response::new(info_for(
            &primary_keys_schema(),
            query,
            request.into_inner(),
        )?))
    }

    async fn get_flight_info_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Ok(Response::new(info_for(
            &foreign_keys_schema(),
            query,
            request.into_inner(),
        )?))
    }

    async fn get_flight_info_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Ok(Response::new(info_for(
            &foreign_keys_schema(),
            query,
            request.into_inner(),
        )?))
    }

    async fn get_flight_info_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Ok(Response::new(info_for(
            &foreign_keys_schema(),
            query,
            request.into_inner(),
        )?))
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let t = self.take_ticket(&ticket.statement_handle, &Self::owner(&request))?;
        Ok(Response::new(self.stream(t)?))
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let cmd = MetadataCommand::Catalogs(query);
        let session = self.session_for(&request).await?;
        let batch = self.metadata_batch(&session, &cmd).await?;
        Ok(Response::new(one_batch(metadata_schema(&cmd), batch)))
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let cmd = MetadataCommand::Schemas(query);
        let session = self.session_for(&request).await?;
        let batch = self.metadata_batch(&session, &cmd).await?;
        Ok(Response::new(one_batch(metadata_schema(&cmd), batch)))
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let cmd = MetadataCommand::Tables(query);
        let session = self.session_for(&request).await?;
        let batch = self.metadata_batch(&session, &cmd).await?;
        Ok(Response::new(one_batch(metadata_schema(&cmd), batch)))
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let cmd = MetadataCommand::TableTypes(query);
        let session = self.session_for(&request).await?;
        let batch = self.metadata_batch(&session, &cmd).await?;
        Ok(Response::new(one_batch(metadata_schema(&cmd), batch)))
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let builder = query.into_builder(&self.sql_info);
        let schema = builder.schema();
        let batch = builder.build().map_err(Error::from)?;
        Ok(Response::new(one_batch(schema, batch)))
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let builder = query.into_builder(&self.xdbc);
        let schema = builder.schema();
        let batch = builder.build().map_err(Error::from)?;
        Ok(Response::new(one_batch(schema, batch)))
    }

    async fn do_get_primary_keys(
        &self,
        _query: CommandGetPrimaryKeys,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Ok(Response::new(empty_result(primary_keys_schema())))
    }

    async fn do_get_exported_keys(
        &self,
        _query: CommandGetExportedKeys,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Ok(Response::new(empty_result(foreign_keys_schema())))
    }

    async fn do_get_imported_keys(
        &self,
        _query: CommandGetImportedKeys,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Ok(Response::new(empty_result(foreign_keys_schema())))
    }

    async fn do_get_cross_reference(
        &self,
        _query: CommandGetCrossReference,
        _request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Ok(Response::new(empty_result(foreign_keys_schema())))
    }

    async fn do_put_statement_update(
        &self,
        cmd: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let p = Self::principal(&request);
        let owner = Self::owner(&request);
        let session = self.session_for(&request).await?;
        let plan = self.plan_sql(&session, &cmd.query).await?;
        let refresh_views = colloquy::analytics::affects_views(&plan);
        let started = Instant::now();
        let batches = {
            let _slot = self.slot(&owner)?;
            self.run_command(&session.ctx, plan).await?
        };
        if refresh_views {
            colloquy::analytics::install_views_and_warn(&session.ctx)
                .await
                .map_err(Error::from)?;
        }
        tracing::info!(target: "colloquy::query", user = %p.user, sql = %redact_sql(&cmd.query), kind = "update", duration_ms = started.elapsed().as_millis() as u64, status = "ok");
        Ok(affected_rows(&batches))
    }

    async fn do_put_statement_ingest(
        &self,
        cmd: CommandStatementIngest,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        // Ingest holds the upload in memory: it counts as a running statement, and is held to the
        // upload cap and the query timeout.
        let _slot = self.slot(&Self::owner(&request))?;
        let max_bytes = self.options.gate.limits.max_ingest_bytes;
        let timeout = self.options.query_timeout;
        let work = async {
            let session = self.session_for(&request).await?;
            let (schema, batches) = read_batches(request, max_bytes).await?;
            let Some(schema) = schema else {
                return Err(Error::invalid("bulk ingest sent no schema").into());
            };
            let name = match &cmd.schema {
                Some(s) if !s.is_empty() => format!("{s}.{}", cmd.table),
                _ => cmd.table.clone(),
            };
            let options = cmd.table_definition_options.unwrap_or_default();
            let if_exists = TableExistsOption::try_from(options.if_exists)
                .unwrap_or(TableExistsOption::Unspecified);
            let if_not_exist = TableNotExistOption::try_from(options.if_not_exist)
                .unwrap_or(TableNotExistOption::Unspecified);
            let ctx = &session.ctx;
            let exists = ctx.table_exist(name.as_str()).map_err(Error::from)?;
            let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
            let mut all = Vec::new();
            if exists {
                match if_exists {
                    TableExistsOption::Fail | TableExistsOption::Unspecified => {
                        return Err(Error::invalid(format!(
                            "table '{name}' already exists (mode 'create')"
                        ))
                        .into());
                    }
                    TableExistsOption::Append => {
                        let old = ctx.table(name.as_str()).await.map_err(Error::from)?;
                        let old_schema: Schema = old.schema().as_arrow().clone();
                        if old_schema.fields().len() != schema.fields().len() {
                            return Err(Error::invalid(format!(
                                "cannot append to '{name}': it has {} columns, the data has {}",
                                old_schema.fields().len(),
                                schema.fields().len()
                            ))
                            .into());
                        }
                        let target = Arc::new(old_schema);
                        all = old.collect().await.map_err(Error::from)?;
                        for b in &batches {
                            let cols = b
                                .columns()
                                .iter()
                                .zip(target.fields())
                                .map(|(c, f)| datafusion::arrow::compute::cast(c, f.data_type()))
                                .collect::<Result<Vec<_>, _>>()
                                .map_err(Error::from)?;
                            all.push(
                                RecordBatch::try_new(target.clone(), cols).map_err(Error::from)?,
                            );
                        }
                        ctx.deregister_table(name.as_str()).map_err(Error::from)?;
                        let table = MemTable::try_new(target, vec![all]).map_err(Error::from)?;
                        ctx.register_table(name.as_str(), Arc::new(table))
                            .map_err(Error::from)?;
                        refresh_views_after_ingest(ctx, &name).await?;
                        return Ok(rows as i64);
                    }
                    TableExistsOption::Replace => {
                        ctx.deregister_table(name.as_str()).map_err(Error::from)?;
                    }
                }
            } else if if_not_exist == TableNotExistOption::Fail {
                return Err(Error::NotFound(format!(
                    "table '{name}' does not exist (mode 'append')"
                ))
                .into());
            }
            all.extend(batches);
            let table = MemTable::try_new(schema, vec![all]).map_err(Error::from)?;
            ctx.register_table(name.as_str(), Arc::new(table))
                .map_err(Error::from)?;
            refresh_views_after_ingest(ctx, &name).await?;
            Ok(rows as i64)
        };
        match timeout {
            Some(t) => tokio::time::timeout(t, work)
                .await
                .map_err(|_| Status::from(deadline("the ingest", t)))?,
            None => work.await,
        }
    }

    async fn do_put_prepared_statement_query(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let owner = Self::owner(&request);
        let handle = String::from_utf8_lossy(&cmd.prepared_statement_handle).into_owned();
        let (_, batches) = read_batches(request, self.options.gate.limits.max_ingest_bytes).await?;
        let values = match batches.iter().find(|b| b.num_rows() > 0) {
            Some(b) => row_values(b, 0)?,
            None => vec![],
        };
        let mut prepared = self.prepared.lock().map_err(|_| poisoned())?;
        let Some(ps) = prepared.get_mut(&handle) else {
            return Err(Error::NotFound(format!("unknown prepared statement '{handle}'")).into());
        };
        if ps.owner != owner {
            return Err(Error::PermissionDenied(
                "this prepared statement belongs to another user".into(),
            )
            .into());
        }
        // Check the values now, so a wrong type is reported at bind time.
        bind(&ps.plan, &values)?;
        ps.params = Some(values);
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(handle.into()),
        })
    }

    async fn do_put_prepared_statement_update(
        &self,
        cmd: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let owner = Self::owner(&request);
        let handle = String::from_utf8_lossy(&cmd.prepared_statement_handle).into_owned();
        let (_, batches) = read_batches(request, self.options.gate.limits.max_ingest_bytes).await?;
        let (session_key, base, remembered) = {
            let prepared = self.prepared.lock().map_err(|_| poisoned())?;
            let Some(ps) = prepared.get(&handle) else {
                return Err(
                    Error::NotFound(format!("unknown prepared statement '{handle}'")).into(),
                );
            };
            if ps.owner != owner {
                return Err(Error::PermissionDenied(
                    "this prepared statement belongs to another user".into(),
                )
                .into());
            }
            (ps.session.clone(), ps.plan.clone(), ps.params.clone())
        };
        let session = self.session(&session_key).await?;
        let mut rows: Vec<Vec<ScalarValue>> = Vec::new();
        for b in batches.iter().filter(|b| b.num_columns() > 0) {
            for r in 0..b.num_rows() {
                rows.push(row_values(b, r)?);
            }
        }
        if rows.is_empty() {
            rows.push(remembered.unwrap_or_default());
        }
        let _slot = self.slot(&owner)?;
        let mut total = 0;
        for values in rows {
            let plan = bind(&base, &values)?;
            total += affected_rows(&self.run_command(&session.ctx, plan).await?);
        }
        Ok(total)
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let key = Self::session_key(&request);
        let owner = Self::owner(&request);
        let session = self.session(&key).await?;
        // Planning only: nothing runs until GetFlightInfo, so DDL is executed exactly once.
        let plan = self.plan_sql(&session, &query.query).await?;
        let dataset = self.options.normalizer.schema(plan.schema().as_arrow());
        let params = parameter_schema(&plan)?;
        let opts = IpcWriteOptions::default();
        let IpcMessage(dataset_schema) = SchemaAsIpc::new(&dataset, &opts)
            .try_into()
            .map_err(Error::from)?;
        let IpcMessage(parameter_schema) = SchemaAsIpc::new(&params, &opts)
            .try_into()
            .map_err(Error::from)?;
        let handle = random_handle("ps")?;
        self.prepared.lock().map_err(|_| poisoned())?.insert(
            handle.clone(),
            Prepared {
                session: key,
                owner,
                sql: query.query.as_str().into(),
                plan,
                params: None,
            },
        );
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.into(),
            dataset_schema,
            parameter_schema,
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        let owner = Self::owner(&request);
        let handle = String::from_utf8_lossy(&query.prepared_statement_handle).into_owned();
        let mut prepared = self.prepared.lock().map_err(|_| poisoned())?;
        match prepared.get(&handle) {
            Some(ps) if ps.owner != owner => Err(Error::PermissionDenied(
                "this prepared statement belongs to another user".into(),
            )
            .into()),
            _ => {
                prepared.remove(&handle);
                Ok(())
            }
        }
    }

    async fn do_get_fallback(
        &self,
        _request: Request<Ticket>,
        message: Any,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        Err(Status::invalid_argument(format!(
            "unknown ticket type {}",
            message.type_url
        )))
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<<Self as FlightService>::DoActionStream>, Status> {
        let key = Self::session_key(&request);
        let owner = Self::owner(&request);
        let principal = Self::principal(&request);
        let action = request.into_inner();
        let body = match action.r#type.as_str() {
            "SetSessionOptions" => {
                let req = so::SetSessionOptionsRequest::decode(action.body)
                    .map_err(|e| Status::invalid_argument(e.to_string()))?;
                let session = self.session(&key).await?;
                let mut errors = HashMap::new();
                for (name, value) in req.session_options {
                    let setting = match name.as_str() {
                        // The keys ADBC uses for the current catalog and schema.
                        "catalog" => "datafusion.catalog.default_catalog".to_owned(),
                        "schema" => "datafusion.catalog.default_schema".to_owned(),
                        other => other.to_owned(),
                    };
                    // A name is a dotted identifier, never SQL: it is spliced into a SET statement.
                    if setting.is_empty()
                        || !setting
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
                    {
                        errors.insert(
                            name,
                            so::SetSessionOptionsError {
                                value: so::INVALID_NAME,
                            },
                        );
                        continue;
                    }
                    let sql = match so::value_text(&value) {
                        Some(v) => format!("SET {setting} = '{}'", v.replace('\'', "''")),
                        None => format!("RESET {setting}"),
                    };
                    // The same way in as a SET statement: the gate's rules and limits apply.
                    let result = match self.plan_sql(&session, &sql).await {
                        Ok(plan) => self.run_command(&session.ctx, plan).await.map(|_| ()),
                        Err(e) => Err(e),
                    };
                    if let Err(e) = result {
                        let text = e.to_string();
                        let code = if matches!(e, Error::PermissionDenied(_)) {
                            so::ERROR
                        } else if text.contains("not found") || text.contains("Unrecognized") {
                            so::INVALID_NAME
                        } else {
                            so::INVALID_VALUE
                        };
                        errors.insert(name, so::SetSessionOptionsError { value: code });
                    }
                }
                so::SetSessionOptionsResult { errors }.encode_to_vec()
            }
            "GetSessionOptions" => {
                let session = self.session(&key).await?;
                let state = session.ctx.state();
                let options = state.config().options();
                let mut session_options: HashMap<String, so::SessionOptionValue> = options
                    .entries()
                    .into_iter()
                    .filter_map(|e| {
                        e.value.map(|v| {
                            let v = if is_secret_name(&e.key) {
                                "***".to_owned()
                            } else {
                                v
                            };
                            (e.key, so::string_value(v))
                        })
                    })
                    .collect();
                session_options.insert(
                    "catalog".into(),
                    so::string_value(options.catalog.default_catalog.clone()),
                );
                session_options.insert(
                    "schema".into(),
                    so::string_value(options.catalog.default_schema.clone()),
                );
                so::GetSessionOptionsResult { session_options }.encode_to_vec()
            }
            "CloseSession" => {
                self.sessions.lock().await.remove(&key);
                // The session's token ends with it.
                if let Some(token) = &principal.token {
                    self.options.auth.revoke(token);
                }
                // Its parked results and prepared statements go with it.
                self.tickets
                    .lock()
                    .map_err(|_| poisoned())?
                    .retain(|_, t| t.session != key);
                self.prepared
                    .lock()
                    .map_err(|_| poisoned())?
                    .retain(|_, p| p.session != key);
                so::CloseSessionResult { status: so::CLOSED }.encode_to_vec()
            }
            "CancelFlightInfo" => {
                let req = arrow_flight::CancelFlightInfoRequest::decode(action.body)
                    .map_err(|e| Status::invalid_argument(e.to_string()))?;
                let status = self.cancel(req.info.as_ref(), &owner)?;
                arrow_flight::CancelFlightInfoResult::new(status).encode_to_vec()
            }
            other => {
                return Err(Status::unimplemented(format!(
                    "unknown action '{other}': this server supports CreatePreparedStatement, ClosePreparedStatement, SetSessionOptions, GetSessionOptions, CloseSession and CancelFlightInfo"
                )));
            }
        };
        let out = futures::stream::iter([Ok(arrow_flight::Result::new(body))]);
        Ok(Response::new(Box::pin(out)))
    }

    async fn list_custom_actions(&self) -> Option<Vec<Result<arrow_flight::ActionType, Status>>> {
        let action = |name: &str, description: &str| {
            Ok(arrow_flight::ActionType {
                r#type: name.to_owned(),
                description: description.to_owned(),
            })
        };
        Some(vec![
            action(
                "SetSessionOptions",
                "Set session options (DataFusion settings; 'catalog' and 'schema').",
            ),
            action("GetSessionOptions", "Get the session's options."),
            action(
                "CloseSession",
                "Close the session and drop its temporary tables and views.",
            ),
            action("CancelFlightInfo", "Cancel a query by its FlightInfo."),
        ])
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

impl ColloquyFlightSql {
    /// Forgets sessions idle for longer than `idle` (clients that vanished without CloseSession), with
    /// their parked results and prepared statements, and results parked longer than `idle` anywhere.
    pub async fn sweep(&self, idle: std::time::Duration) {
        let now = self.started.elapsed().as_millis() as u64;
        let limit = idle.as_millis() as u64;
        let mut gone: Vec<String> = Vec::new();
        self.sessions.lock().await.retain(|key, s| {
            let keep = now.saturating_sub(s.last_used.load(Ordering::Relaxed)) <= limit;
            if !keep {
                gone.push(key.clone());
            }
            keep
        });
        if let Ok(mut tickets) = self.tickets.lock() {
            tickets.retain(|_, t| !gone.contains(&t.session) && t.created.elapsed() <= idle);
        }
        if let Ok(mut prepared) = self.prepared.lock() {
            prepared.retain(|_, p| !gone.contains(&p.session));
        }
        self.options.auth.sweep();
        if !gone.is_empty() {
            tracing::info!(sessions = gone.len(), "closed idle sessions");
        }
    }

    /// Sessions open now.
    pub async fn session_count(&self) -> usize {
        self.sessions.lock().await.len()
    }

    /// Cancels the query behind a FlightInfo: forgets it if it has not started, stops it if it runs.
    fn cancel(&self, info: Option<&FlightInfo>, owner: &str) -> Result<arrow_flight::CancelStatus> {
        let ticket = info
            .and_then(|i| i.endpoint.first())
            .and_then(|e| e.ticket.as_ref())
            .ok_or_else(|| {
                Error::invalid("CancelFlightInfo needs the FlightInfo with its ticket")
            })?;
        let any = Any::decode(ticket.ticket.clone()).map_err(|e| Error::invalid(e.to_string()))?;
        let Some(t) = any
            .unpack::<TicketStatementQuery>()
            .map_err(|e| Error::invalid(e.to_string()))?
        else {
            return Ok(arrow_flight::CancelStatus::NotCancellable);
        };
        let handle = String::from_utf8_lossy(&t.statement_handle).into_owned();
        let not_yours = || {
            Error::PermissionDenied(
                "this query belongs to another user: it was not cancelled".into(),
            )
        };
        let parked = {
            let mut tickets = self
                .tickets
                .lock()
                .map_err(|_| Error::Internal("ticket table poisoned".into()))?;
            if tickets.get(&handle).is_some_and(|t| t.owner != owner) {
                return Err(not_yours());
            }
            tickets.remove(&handle)
        };
        let running = {
            let mut running = self
                .running
                .lock()
                .map_err(|_| Error::Internal("running table poisoned".into()))?;
            if running.get(&handle).is_some_and(|(o, _)| o != owner) {
                return Err(not_yours());
            }
            running.remove(&handle)
        };
        if let Some((_, task)) = &running {
            task.abort();
        }
        Ok(if parked.is_some() || running.is_some() {
            arrow_flight::CancelStatus::Cancelled
        } else {
            arrow_flight::CancelStatus::NotCancellable
        })
    }
}

/// Ingesting into `messages` or `customer_identities` replaces the table the analytics views were planned
/// against: plan them again.
async fn refresh_views_after_ingest(ctx: &SessionContext, name: &str) -> Result<(), Error> {
    if colloquy::analytics::is_input_table(&datafusion::common::TableReference::from(name)) {
        colloquy::analytics::install_views_and_warn(ctx).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affected_rows_reads_count() {
        let b =
            RecordBatch::try_from_iter([("count", Arc::new(UInt64Array::from(vec![3u64])) as _)])
                .expect("batch");
        assert_eq!(affected_rows(&[b]), 3);
        assert_eq!(affected_rows(&[]), 0);
    }
}
