//! Statements: planning at the gate, running commands within the limits, parking results under tickets,
//! streaming them, describing them (GetSchema) and cancelling them.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::sql::{Any, ProstMessageExt, TicketStatementQuery};
use arrow_flight::{
    FlightDescriptor, FlightEndpoint, FlightInfo, SchemaAsIpc, SchemaResult, Ticket,
};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::ipc::writer::IpcWriteOptions;
use datafusion::common::ScalarValue;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::execute_stream;
use datafusion::prelude::SessionContext;
use futures::{StreamExt, TryStreamExt};
use prost::Message;
use tonic::{Request, Status};

use crate::audit::{AuditLog, Record};
use crate::auth::random_handle;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::params::number_placeholders;
use crate::query_pool::QueryPool;
use crate::redact::redact_sql;

use super::metadata::{MetadataCommand, foreign_keys_schema, metadata_schema, primary_keys_schema};
use super::session::Slot;
use super::{ColloquyFlightSql, DoGetStream, Pending, Session, Ticketed};

impl ColloquyFlightSql {
    /// Parses and plans a client's SQL on the query runtime (deep statements need its larger stacks;
    /// a table function may list an object store while planning), then checks the plan at the gate.
    /// Planning holds one of the owner's statement slots: a flood of plannings (each may list a slow
    /// store) is capped like a flood of queries. A statement refused here is written to the audit trail
    /// (as `kind`): probing is worth a record even when nothing ran.
    pub(super) async fn plan_sql(
        &self,
        caller: &Caller,
        kind: &'static str,
        owner: &str,
        session: &Session,
        sql: &str,
    ) -> Result<LogicalPlan> {
        if let Err(e) = self.options.gate.check_sql(sql) {
            // Too long or too deep to keep whole: its start says what it was.
            let mut end = sql.len().min(REFUSED_SQL_KEPT);
            while !sql.is_char_boundary(end) {
                end -= 1;
            }
            self.audit_refused(
                caller,
                session,
                kind,
                &format!("{} … ({} bytes)", &sql[..end], sql.len()),
            );
            return Err(e);
        }
        if let Some(rules) = self
            .options
            .rule_statements
            .as_ref()
            .filter(|r| r.claims(sql))
        {
            return match kind {
                "query" | "update" => {
                    self.rule_statement(rules.as_ref(), caller, session, kind, sql)
                        .await
                }
                // Prepared, or only described: its result's shape; a prepared statement runs when it
                // is executed (see `rule_statement`'s other callers).
                "prepare" | "schema" => result_plan(String::new()),
                _ => Err(Error::invalid(
                    "CREATE RULE and DROP RULE run as statements, not here",
                )),
            };
        }
        let planned = self.plan_checked(owner, session, sql).await;
        if planned.is_err() {
            self.audit_refused(caller, session, kind, sql);
        }
        planned
    }

    /// Runs a `CREATE RULE` or `DROP RULE` (its result is a plan of one row); a refusal is audited.
    pub(super) async fn rule_statement(
        &self,
        rules: &dyn super::RuleStatements,
        caller: &Caller,
        session: &Session,
        kind: &'static str,
        sql: &str,
    ) -> Result<LogicalPlan> {
        match rules.run(sql, &caller.user).await {
            Ok(message) => result_plan(message),
            Err(e) => {
                self.audit_refused(caller, session, kind, sql);
                Err(e)
            }
        }
    }

    /// Writes a statement refused before it ran to the audit trail, if there is one.
    fn audit_refused(&self, caller: &Caller, session: &Session, kind: &'static str, sql: &str) {
        if self.options.audit.is_none() {
            return;
        }
        let record = self.record(caller, session, kind, sql, None, None);
        self.audit_outcome(&record, Err(()));
    }

    /// Plans a statement that passed the gate's text checks, then checks the plan.
    async fn plan_checked(&self, owner: &str, session: &Session, sql: &str) -> Result<LogicalPlan> {
        let _slot = self.slot(owner)?;
        let sql = number_placeholders(sql);
        let ctx = session.ctx.clone();
        let plan = self
            .on_query_runtime("planning the statement", async move {
                ctx.state().create_logical_plan(&sql).await
            })
            .await?;
        self.options
            .gate
            .check_plan(&plan, session.ctx.state().config())?;
        Ok(plan)
    }

    /// Runs a command plan (DDL, DML, SET, COPY) on the query runtime, within the query timeout and,
    /// for statements that read or write data, the per-query memory limit.
    pub(super) async fn run_command(
        &self,
        ctx: &SessionContext,
        plan: LogicalPlan,
    ) -> Result<Vec<RecordBatch>> {
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
        self.on_query_runtime("the statement", async move {
            let df = colloquy::execute(&run_ctx, plan).await?;
            df.collect().await
        })
        .await
    }

    /// Runs `work` on the query runtime within the query timeout; `what` names it in the timeout error.
    async fn on_query_runtime<T: Send + 'static>(
        &self,
        what: &'static str,
        work: impl Future<Output = datafusion::error::Result<T>> + Send + 'static,
    ) -> Result<T> {
        let timeout = self.options.query_timeout;
        self.options
            .cpu
            .spawn(async move {
                match timeout {
                    Some(t) => tokio::time::timeout(t, work)
                        .await
                        .map_err(|_| deadline(what, t))?
                        .map_err(Error::from),
                    None => work.await.map_err(Error::from),
                }
            })
            .await
            .map_err(|e| Error::Internal(format!("{what}: task failed: {e}")))?
    }

    /// Runs a command plan (DDL, DML, SET) now; plans a query for its DoGet. Either way the result is
    /// parked under a ticket and described by a FlightInfo.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn plan_result(
        &self,
        session_key: &str,
        owner: &str,
        session: &Session,
        record: Record,
        sql: &str,
        plan: LogicalPlan,
        descriptor: FlightDescriptor,
    ) -> Result<FlightInfo> {
        let started = Instant::now();
        let user: Arc<str> = record.user.as_str().into();
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
            let arrow_schema: Schema = plan.schema().as_arrow().clone();
            let rows = self.run_command(&ctx, plan).await;
            if let Err(e) = &rows {
                tracing::info!(target: "colloquy::query", user = %user, sql = %redact_sql(sql), kind = "command", duration_ms = started.elapsed().as_millis() as u64, status = "error", error = %e);
            }
            self.audit(&record, &rows);
            let rows = rows?;
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
                    generation: session.generation,
                    record,
                    schema,
                    pending,
                },
            );
        Ok(info)
    }

    /// Streams a parked result. The query runs on the CPU runtime and hands batches over a small channel;
    /// when the client goes away the channel closes, the task stops and dropping the DataFusion stream
    /// cancels the query.
    pub(super) fn stream(&self, t: Ticketed) -> Result<DoGetStream> {
        let Ticketed {
            handle,
            owner,
            user,
            sql,
            record,
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
            // A command was written to the trail when it ran; a query is when its stream ends.
            self.options
                .audit
                .clone()
                .filter(|_| matches!(pending, Pending::Plan { .. }))
                .map(|a| (a, record)),
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
                let plan = self
                    .plan_sql(
                        &Self::caller(&request),
                        "schema",
                        &Self::owner(&request),
                        &session,
                        &q.query,
                    )
                    .await?;
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

    pub(super) fn take_ticket(&self, handle: &[u8], owner: &str) -> Result<Ticketed> {
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
            // Planned over tables shaped by rules no longer in force.
            Some(t) if t.generation != self.options.governance.get().0 => {
                tickets.remove(handle);
                Err(Error::invalid(
                    "the server's access rules changed since this query was planned: run it again",
                ))
            }
            Some(_) => tickets
                .remove(handle)
                .ok_or_else(|| Error::NotFound("ticket vanished".into())),
            None => Err(Error::NotFound(format!(
                "unknown or already used ticket '{handle}': tickets are good for one DoGet"
            ))),
        }
    }

    /// Cancels the query behind a FlightInfo: forgets it if it has not started, stops it if it runs.
    pub(super) fn cancel(
        &self,
        info: Option<&FlightInfo>,
        owner: &str,
    ) -> Result<arrow_flight::CancelStatus> {
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

/// One structured log line per query, written when its result stream ends (finished, failed or dropped
/// by the client), and the stream's share of the metrics.
pub(super) struct QueryLog {
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
    /// The audit trail and the statement's record, written when the stream ends.
    audit: Option<(Arc<AuditLog>, Record)>,
}

impl QueryLog {
    fn new(
        user: Arc<str>,
        sql: String,
        metrics: Arc<Metrics>,
        handle: String,
        running: Arc<Mutex<HashMap<String, (String, tokio::task::AbortHandle)>>>,
        slot: Option<Slot>,
        audit: Option<(Arc<AuditLog>, Record)>,
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
            audit,
        }
    }
}

pub(super) fn deadline(what: &str, limit: std::time::Duration) -> Error {
    Error::DeadlineExceeded(format!(
        "{what} ran longer than the server's limit of {}s (query_timeout_secs in [server])",
        limit.as_secs_f64()
    ))
}

/// `ctx` on a runtime whose pool holds this statement to `limit` bytes. The catalog is shared, so tables
/// and views a command creates land in the session.
pub(super) fn limited_ctx(ctx: &SessionContext, limit: usize) -> SessionContext {
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
        let outcome = if failed {
            "error"
        } else if self.finished.load(Ordering::Relaxed) {
            "ok"
        } else {
            "cancelled"
        };
        if let Some((audit, record)) = &self.audit {
            audit.append(record, outcome, rows);
        }
        tracing::info!(
            target: "colloquy::query",
            query_id = %self.handle,
            user = %self.user,
            sql = %self.sql,
            rows,
            duration_ms = self.started.elapsed().as_millis() as u64,
            status = outcome,
            "query"
        );
    }
}

/// The context a query runs in: the session's, with a pool of its own when queries have a memory limit.
pub(super) fn task_ctx(
    ctx: &SessionContext,
    query_memory_limit: Option<usize>,
) -> Arc<TaskContext> {
    let task = TaskContext::from(&*ctx.state_ref().read());
    Arc::new(match query_memory_limit {
        None => task,
        Some(limit) => {
            let runtime = QueryPool::runtime_for_query(task.runtime_env().as_ref(), limit);
            task.with_runtime(runtime)
        }
    })
}

impl ColloquyFlightSql {
    /// Who sent a request, for its statements' audit records.
    pub(super) fn caller<T>(req: &Request<T>) -> Caller {
        Caller {
            user: Self::principal(req).user.to_string(),
            session_key: Self::session_key(req),
            client: req
                .remote_addr()
                .map_or_else(|| "unknown".to_string(), |a| a.to_string()),
        }
    }

    /// The audit record of statement `sql` (planned as `plan`), sent by `caller` in `session`.
    pub(super) fn record(
        &self,
        caller: &Caller,
        session: &Session,
        kind: &'static str,
        sql: &str,
        plan: Option<&LogicalPlan>,
        params: Option<&[ScalarValue]>,
    ) -> Record {
        let grants = session
            .ctx
            .state()
            .config()
            .get_extension::<colloquy::governance::SessionGrants>();
        let mut text = redact_sql(sql);
        if self
            .options
            .audit
            .as_ref()
            .is_some_and(|a| a.elide_literals)
        {
            text = crate::redact::elide_literals(&text);
        }
        Record {
            started: std::time::SystemTime::now(),
            user: caller.user.clone(),
            roles: grants.map(|g| g.roles.clone()).unwrap_or_default(),
            session: super::session::session_tag(&caller.session_key),
            client: caller.client.clone(),
            kind,
            sql: text,
            params: params.map(|p| {
                blake3::hash(format!("{p:?}").as_bytes())
                    .to_hex()
                    .to_string()
            }),
            models: plan.map_or_else(Vec::new, |p| colloquy::models_used(&session.ctx, p)),
        }
    }

    /// Writes a finished command to the audit trail, if there is one.
    pub(super) fn audit(&self, record: &Record, result: &Result<Vec<RecordBatch>>) {
        self.audit_outcome(record, result.as_ref().map(|b| affected(b)).map_err(|_| ()));
    }

    /// Writes a finished statement (its rows, or that it failed) to the audit trail, if there is one.
    pub(super) fn audit_outcome(&self, record: &Record, rows: std::result::Result<u64, ()>) {
        if let Some(audit) = &self.options.audit {
            match rows {
                Ok(n) => audit.append(record, "ok", n),
                Err(()) => audit.append(record, "error", 0),
            }
        }
    }
}

/// The bytes of a statement refused for its size or depth that the audit trail keeps.
const REFUSED_SQL_KEPT: usize = 1024;

/// Who sent a statement: the user, their session's key (hashed before it is written) and address.
#[derive(Clone)]
pub(super) struct Caller {
    user: String,
    session_key: String,
    client: String,
}

/// The rows a command reports (DML's `count`), else the rows it returned.
fn affected(batches: &[RecordBatch]) -> u64 {
    batches.iter().map(|b| b.num_rows() as u64).sum()
}

/// One row, `result`: what a statement the server runs itself answers.
fn result_plan(message: String) -> Result<LogicalPlan> {
    use datafusion::logical_expr::{LogicalPlanBuilder, col, lit};
    Ok(LogicalPlanBuilder::values(vec![vec![lit(message)]])?
        .project(vec![col("column1").alias("result")])?
        .build()?)
}
