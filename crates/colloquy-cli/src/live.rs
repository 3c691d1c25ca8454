//! `[live]`: messages posted to `colloquy serve` join the `messages` table.
//!
//! The live store (colloquy-live) flushes what it accepts into JSON Lines files under `<dir>/data/`. Each
//! session reads them as the archive table `live_messages`, and `messages` becomes a view over the
//! operator's archive (renamed `archived_messages`) and the live messages together, so every analytics
//! view sees both. `colloquy sql --config` reads the same store (without serving it).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::{MemTable, TableType};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;

use crate::config::LiveSection;

pub const LIVE_TABLE: &str = "live_messages";
pub const RULE_EVENTS_TABLE: &str = "rule_events";
pub const ARCHIVED_TABLE: &str = "archived_messages";
/// The columns `messages` has with live ingest on (the archive's partition columns are not among them).
const COLUMNS: &str = "channel, conversation_id, message_id, ts, sender_id, sender_name, sender_role, \
                       text, reply_to, attachments, source, source_line";
/// Shorter tokens are refused: the endpoint faces the network.
const MIN_TOKEN_BYTES: usize = 16;

/// Where the store keeps its flushed messages on the local disk.
pub fn data_dir(live: &LiveSection) -> anyhow::Result<PathBuf> {
    let dir = std::path::absolute(&live.dir)
        .with_context(|| format!("[live] dir {}", live.dir.display()))?;
    Ok(dir.join("data"))
}

/// The archive location of the flushed messages: `[live] data` (a prefix URL), else `<dir>/data/`.
pub fn data_location(live: &LiveSection) -> anyhow::Result<String> {
    Ok(match &live.data {
        Some(url) => format!("{}/", url.trim().trim_end_matches('/')),
        None => format!("{}/", data_dir(live)?.display()),
    })
}

/// Where flushes write: the local folder, or the object-store prefix of `[live] data`.
fn data_target(live: &LiveSection) -> anyhow::Result<colloquy_live::store::DataTarget> {
    let Some(url) = &live.data else {
        return Ok(colloquy_live::store::DataTarget::Local);
    };
    let location = data_location(live)?;
    let wanted = "an object-store prefix (s3://, gs://, az://), not a local path (that is dir)";
    anyhow::ensure!(
        location.contains("://") && !location.starts_with("file://"),
        "[live] data {url}: {wanted}"
    );
    let (store, prefix) =
        crate::serve::store_prefix(&location, &format!("[live] data {url}"), wanted)?;
    Ok(colloquy_live::store::DataTarget::Store {
        store,
        prefix,
        runtime: tokio::runtime::Handle::current(),
    })
}

/// `text` (RFC 3339) as a SQL timestamp literal in UTC: parsed, then written back in one shape, so the
/// text never reaches the SQL as given. `what` names the setting in the error.
pub fn sql_timestamp(text: &str, what: &str) -> anyhow::Result<String> {
    let t = chrono::DateTime::parse_from_rfc3339(text)
        .with_context(|| format!("{what} \"{text}\" is not an RFC 3339 time"))?;
    Ok(format!(
        "TIMESTAMP '{}'",
        t.with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    ))
}

/// Registers `live_messages` and makes `messages` the archive and the live messages together.
pub async fn attach(ctx: &SessionContext, live: &LiveSection) -> anyhow::Result<()> {
    let location = match &live.data {
        Some(_) => data_location(live)?,
        None => {
            let data = data_dir(live)?;
            std::fs::create_dir_all(&data)
                .with_context(|| format!("[live] cannot create {}", data.display()))?;
            format!("{}/", data.canonicalize()?.display())
        }
    };
    colloquy::register_archive(ctx, LIVE_TABLE, &location, &[("format", "jsonl")])
        .await
        .context("[live] the live table")?;
    let until = match &live.history_until {
        Some(t) => format!(" WHERE ts < {}", sql_timestamp(t, "[live] history_until")?),
        None => String::new(),
    };
    let sql = match ctx.deregister_table(colloquy::MESSAGES_TABLE)? {
        Some(archived) => {
            ctx.register_table(ARCHIVED_TABLE, archived)?;
            format!(
                "CREATE OR REPLACE VIEW {} AS SELECT {COLUMNS} FROM {ARCHIVED_TABLE}{until} \
                 UNION ALL SELECT {COLUMNS} FROM {LIVE_TABLE}",
                colloquy::MESSAGES_TABLE
            )
        }
        None => format!(
            "CREATE OR REPLACE VIEW {} AS SELECT {COLUMNS} FROM {LIVE_TABLE}",
            colloquy::MESSAGES_TABLE
        ),
    };
    ctx.sql(&sql).await?.collect().await?;
    let rules = rules_dir(live)?;
    std::fs::create_dir_all(&rules)
        .with_context(|| format!("[live] cannot create {}", rules.display()))?;
    ctx.register_table(
        RULE_EVENTS_TABLE,
        Arc::new(RuleEventsTable::new(
            rules.join(colloquy_live::rules::EVENTS),
        )),
    )?;
    Ok(())
}

/// `rule_events`: the rule log, read again at every scan (it grows while the server runs; a listing
/// table's cached file sizes would hide the new lines).
#[derive(Debug)]
struct RuleEventsTable {
    path: PathBuf,
    schema: SchemaRef,
}

impl RuleEventsTable {
    fn new(path: PathBuf) -> Self {
        let text = |name: &str| Field::new(name, DataType::Utf8, false);
        let schema = Arc::new(Schema::new(vec![
            text("rule"),
            text("key"),
            text("at"),
            text("status"),
            Field::new("attempts", DataType::Int64, false),
            text("detail"),
        ]));
        Self { path, schema }
    }

    fn read(&self) -> datafusion::error::Result<RecordBatch> {
        let events: Vec<colloquy_live::RuleEvent> = match std::fs::read(&self.path) {
            Ok(bytes) => bytes
                .split(|&b| b == b'\n')
                .filter_map(|line| serde_json::from_slice(line).ok())
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(datafusion::error::DataFusionError::IoError(e)),
        };
        let col = |f: fn(&colloquy_live::RuleEvent) -> &str| -> ArrayRef {
            Arc::new(StringArray::from_iter_values(events.iter().map(f)))
        };
        Ok(RecordBatch::try_new(
            Arc::clone(&self.schema),
            vec![
                col(|e| &e.rule),
                col(|e| &e.key),
                col(|e| &e.at),
                col(|e| &e.status),
                Arc::new(Int64Array::from_iter_values(
                    events.iter().map(|e| i64::from(e.attempts)),
                )),
                col(|e| &e.detail),
            ],
        )?)
    }
}

#[async_trait::async_trait]
impl TableProvider for RuleEventsTable {
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
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let table = MemTable::try_new(Arc::clone(&self.schema), vec![vec![self.read()?]])?;
        table.scan(state, projection, filters, limit).await
    }
}

/// Where the rule log is: the table `rule_events`.
pub fn rules_dir(live: &LiveSection) -> anyhow::Result<PathBuf> {
    Ok(store_dir(live)?.join(colloquy_live::rules::RULES_DIR))
}

/// Opens the store and serves the live endpoint; returns the address it listens on and the store.
pub async fn start(
    live: &LiveSection,
    allow_plaintext: bool,
) -> anyhow::Result<(std::net::SocketAddr, colloquy_live::LiveStore)> {
    if let Some(token) = &live.token {
        anyhow::ensure!(
            token.len() >= MIN_TOKEN_BYTES,
            "[live] token must be at least {MIN_TOKEN_BYTES} bytes: it guards POST /v1/messages"
        );
    }
    let secrets = [
        live.whatsapp
            .as_ref()
            .map(|w| ("[live.whatsapp] app_secret", &w.app_secret)),
        live.whatsapp
            .as_ref()
            .map(|w| ("[live.whatsapp] verify_token", &w.verify_token)),
        live.twilio
            .as_ref()
            .map(|t| ("[live.twilio] auth_token", &t.auth_token)),
        live.slack
            .as_ref()
            .map(|s| ("[live.slack] signing_secret", &s.signing_secret)),
    ];
    for (name, secret) in secrets.into_iter().flatten() {
        anyhow::ensure!(!secret.trim().is_empty(), "{name} is empty");
    }
    anyhow::ensure!(
        live.token.is_some()
            || live.whatsapp.is_some()
            || live.twilio.is_some()
            || live.slack.is_some(),
        "[live] has no source: set token (POST /v1/messages) or a [live.whatsapp], [live.twilio] or [live.slack] section"
    );
    let bind = live
        .bind
        .clone()
        .unwrap_or_else(|| "127.0.0.1:8081".to_owned());
    let options = colloquy_live::StoreOptions {
        flush_every: std::time::Duration::from_millis(live.flush_ms.unwrap_or(1000).max(10)),
        data: data_target(live)?,
        ..Default::default()
    };
    let dir = std::path::absolute(&live.dir)?;
    let opening = dir.clone();
    // Opening reads back every stored message's id (from the object store, too): off the async threads.
    let store =
        tokio::task::spawn_blocking(move || colloquy_live::LiveStore::open(&opening, options))
            .await?
            .map_err(|e| {
                anyhow::anyhow!("[live] cannot open the store in {}: {e}", dir.display())
            })?;
    let listener = tokio::net::TcpListener::bind(&bind)
        .await
        .with_context(|| format!("[live] cannot listen on {bind}"))?;
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() {
        anyhow::ensure!(
            allow_plaintext,
            "[live] refusing to take tokens and signed webhooks over plain HTTP on {addr}: bind to 127.0.0.1 behind a TLS proxy, or set allow_plaintext_passwords = true in [server]"
        );
        eprintln!(
            "colloquy serve: WARNING: the live endpoint's token travels unencrypted on {addr}"
        );
    }
    let endpoint = Arc::new(colloquy_live::Endpoint {
        store: store.clone(),
        token: live.token.clone(),
        whatsapp: live
            .whatsapp
            .as_ref()
            .map(|w| colloquy_live::WhatsAppSource {
                app_secret: w.app_secret.clone(),
                verify_token: w.verify_token.clone(),
            }),
        twilio: live.twilio.as_ref().map(|t| colloquy_live::TwilioSource {
            auth_token: t.auth_token.clone(),
            url: t.url.clone(),
        }),
        slack: live.slack.as_ref().map(|s| colloquy_live::SlackSource {
            signing_secret: s.signing_secret.clone(),
        }),
        max_body_bytes: live.max_body_bytes.unwrap_or(1 << 20),
    });
    tokio::spawn(colloquy_live::serve(listener, endpoint));
    Ok((addr, store))
}

/// The store's folder, for the access policy: clients read `data/`, and nobody writes anywhere in it.
pub fn store_dir(live: &LiveSection) -> anyhow::Result<PathBuf> {
    Ok(std::path::absolute(&live.dir)?)
}

/// Bulk ingest into `live_messages` (`[live] flight_ingest = true`): each row a message of the generic
/// endpoint's shape, checked the same way, stored and deduplicated by the same store.
pub struct FlightSink {
    pub store: colloquy_live::LiveStore,
}

#[async_trait::async_trait]
impl colloquy_flight::LiveSink for FlightSink {
    fn table(&self) -> &str {
        LIVE_TABLE
    }

    async fn append(&self, batches: Vec<RecordBatch>) -> colloquy_flight::Result<i64> {
        use colloquy_flight::Error;
        let messages = messages_of(&batches).map_err(|e| Error::invalid(e.to_string()))?;
        if messages.is_empty() {
            return Ok(0);
        }
        match self.store.append(messages).await {
            Ok(o) => Ok(o.accepted as i64),
            Err(colloquy_live::LiveError::BadRequest(m)) => Err(Error::invalid(m)),
            Err(e) => Err(Error::Unavailable(format!(
                "the live store did not take the rows (none was stored): {e}"
            ))),
        }
    }
}

/// The rows of `batches` as live messages; an error names the column or the row (from 1) and field.
fn messages_of(batches: &[RecordBatch]) -> anyhow::Result<Vec<colloquy_live::LiveMessage>> {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::compute::cast;
    let mut out = Vec::new();
    for batch in batches {
        let mut columns = Vec::new();
        for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
            let name = field.name().as_str();
            anyhow::ensure!(
                colloquy_live::LiveMessage::FIELDS.contains(&name),
                "column '{name}' is not a field of a live message ({})",
                colloquy_live::LiveMessage::FIELDS.join(", ")
            );
            let text: ArrayRef = match field.data_type() {
                DataType::Timestamp(_, zone) => {
                    // A timestamp without a zone is taken as UTC; written as RFC 3339 for the checks.
                    let utc = cast(
                        column,
                        &DataType::Timestamp(
                            datafusion::arrow::datatypes::TimeUnit::Microsecond,
                            zone.clone(),
                        ),
                    )?;
                    let micros = utc
                        .as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>();
                    Arc::new(
                        micros
                            .iter()
                            .map(|v| {
                                v.and_then(chrono::DateTime::from_timestamp_micros)
                                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
                            })
                            .collect::<StringArray>(),
                    )
                }
                _ => cast(column, &DataType::Utf8).map_err(|e| {
                    anyhow::anyhow!("column '{name}' ({}) is not text: {e}", field.data_type())
                })?,
            };
            columns.push((name.to_owned(), text));
        }
        for row in 0..batch.num_rows() {
            let mut object = serde_json::Map::new();
            for (name, column) in &columns {
                let text = column.as_string::<i32>();
                if text.is_valid(row) {
                    object.insert(name.clone(), text.value(row).into());
                }
            }
            let at = format!("row {}", out.len() + 1);
            out.push(colloquy_live::message::parse_value(
                serde_json::Value::Object(object),
                &at,
            )?);
        }
    }
    Ok(out)
}
