//! `[[live.rule]]`: standing queries over the live table, each match acted on once.
//!
//! After every flush of the live store (new messages became readable), each rule's query runs in a
//! session built like a client's (the same tables, views and access policy). A row whose `key` value the
//! rule has not matched before fires: the event is synced to the rule log (`rule_events`), then, when the
//! rule has a webhook, POSTed there with retries and backoff, and dead-lettered if every try fails.
//!
//! The queries are the operator's (from the config file), and they are evaluated in full each time, with
//! the parsed-archive cache sparing the re-parse of unchanged files: incremental evaluation is next.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use colloquy_live::{Delivery, LiveStore, RuleEvent, RuleLog};
use datafusion::prelude::SessionContext;

use crate::config::RuleSection;

/// The rules of `sql/rules/`: name, key column, query.
pub const BUILTIN: &[(&str, &str, &str)] = &[
    (
        "negative_streak",
        "conversation_key",
        include_str!("../../../sql/rules/negative_streak.sql"),
    ),
    (
        "negative_spike",
        "spike_key",
        include_str!("../../../sql/rules/negative_spike.sql"),
    ),
    (
        "customer_waiting",
        "conversation_key",
        include_str!("../../../sql/rules/customer_waiting.sql"),
    ),
];

/// A rule ready to run.
#[derive(Clone, Debug)]
pub struct Rule {
    pub name: String,
    pub sql: String,
    pub key: String,
    pub webhook: Option<String>,
}

impl RuleSection {
    /// The rule this section describes: a built-in one (its name, query and key, unless overridden) or
    /// its own `name`, `sql` and `key`.
    pub fn resolve(&self) -> anyhow::Result<Rule> {
        let builtin = match &self.builtin {
            Some(b) => Some(BUILTIN.iter().find(|(n, _, _)| n == b).ok_or_else(|| {
                let names: Vec<&str> = BUILTIN.iter().map(|(n, _, _)| *n).collect();
                anyhow::anyhow!(
                    "[[live.rule]] builtin '{b}' is not one of {}",
                    names.join(", ")
                )
            })?),
            None => None,
        };
        let pick = |own: &Option<String>, from: Option<&str>, what: &str| {
            own.clone()
                .or_else(|| from.map(str::to_owned))
                .ok_or_else(|| anyhow::anyhow!("[[live.rule]] needs {what} (or builtin = \"…\")"))
        };
        Ok(Rule {
            name: pick(&self.name, builtin.map(|b| b.0), "a name")?,
            key: pick(&self.key, builtin.map(|b| b.1), "a key column")?,
            sql: pick(&self.sql, builtin.map(|b| b.2), "sql")?,
            webhook: self.webhook.clone(),
        })
    }
}

/// The rows of `rule`'s query whose key has not fired yet, as JSON objects. The keys that fired are
/// left out by the query itself (an anti-join), so an evaluation converts only new matches.
async fn new_rows(
    ctx: &SessionContext,
    rule: &Rule,
    log: &RuleLog,
) -> anyhow::Result<Vec<serde_json::Map<String, serde_json::Value>>> {
    use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::DataType;
    use datafusion::logical_expr::{JoinType, cast, ident};
    let mut df = rule_frame(ctx, rule).await?;
    let fired = log.fired_keys(&rule.name)?;
    if !fired.is_empty() {
        let keys: ArrayRef = Arc::new(StringArray::from(fired));
        let fired = ctx.read_batch(RecordBatch::try_from_iter([("__fired_key", keys)])?)?;
        df = df
            .with_column("__rule_key", cast(ident(&rule.key), DataType::Utf8))?
            .join(
                fired,
                JoinType::LeftAnti,
                &["__rule_key"],
                &["__fired_key"],
                None,
            )?
            .drop_columns(&["__rule_key"])?;
    }
    let batches = df.collect().await?;
    let mut writer = datafusion::arrow::json::ArrayWriter::new(Vec::new());
    for b in &batches {
        writer.write(b)?;
    }
    writer.finish()?;
    let bytes = writer.into_inner();
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let values: Vec<serde_json::Value> = serde_json::from_slice(&bytes)?;
    Ok(values
        .into_iter()
        .filter_map(|v| match v {
            serde_json::Value::Object(m) => Some(m),
            _ => None,
        })
        .collect())
}

fn key_of(row: &serde_json::Map<String, serde_json::Value>, key: &str) -> Option<String> {
    match row.get(key)? {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The rule's query, planned and run the way every statement of the server is ([`colloquy::execute`]).
/// Only a query may be a rule: DDL, DML, COPY and SET are refused.
async fn rule_frame(
    ctx: &SessionContext,
    rule: &Rule,
) -> anyhow::Result<datafusion::dataframe::DataFrame> {
    use datafusion::logical_expr::LogicalPlan;
    let plan = ctx.state().create_logical_plan(&rule.sql).await?;
    anyhow::ensure!(
        !matches!(
            plan,
            LogicalPlan::Ddl(_)
                | LogicalPlan::Dml(_)
                | LogicalPlan::Copy(_)
                | LogicalPlan::Statement(_)
        ),
        "only a query (SELECT …) can be a rule"
    );
    Ok(colloquy::execute(ctx, plan).await?)
}

/// Checks every rule once (a query that does not plan, or lacks its key column, stops the server), then
/// evaluates them after each flush for as long as the server runs.
pub async fn start(
    rules: Vec<Rule>,
    log: Arc<RuleLog>,
    pending: Vec<RuleEvent>,
    store: LiveStore,
    factory: colloquy_flight::ContextFactory,
    every: Duration,
    delivery: Delivery,
) -> anyhow::Result<()> {
    let ctx = factory().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    for r in &rules {
        let df = rule_frame(&ctx, r)
            .await
            .with_context(|| format!("[[live.rule]] {}: the query", r.name))?;
        anyhow::ensure!(
            df.schema().fields().iter().any(|f| f.name() == &r.key),
            "[[live.rule]] {}: the query has no column '{}' (the rule's key)",
            r.name,
            r.key
        );
    }
    let client = reqwest::Client::new();
    let rules = Arc::new(rules);
    let delivery = Arc::new(delivery);
    // Deliveries a stop interrupted.
    for event in pending {
        if let Some(url) = rules
            .iter()
            .find(|r| r.name == event.rule)
            .and_then(|r| r.webhook.clone())
        {
            spawn_delivery(&client, &log, &delivery, url, event);
        }
    }
    // One session for the life of the server: its archive tables list their objects again at each scan,
    // so it sees every flush, and building a session per evaluation (tables, views) cost more than most
    // evaluations.
    tokio::spawn(async move {
        let mut seen = None;
        loop {
            let now = store.flushes();
            if seen != Some(now) {
                seen = Some(now);
                for r in rules.iter() {
                    if let Err(e) = evaluate(&ctx, r, &log, &client, &delivery).await {
                        tracing::error!("rule {}: {e}", r.name);
                        eprintln!("colloquy serve: rule {}: {e}", r.name);
                    }
                }
            }
            tokio::time::sleep(every).await;
        }
    });
    Ok(())
}

async fn evaluate(
    ctx: &SessionContext,
    rule: &Rule,
    log: &Arc<RuleLog>,
    client: &reqwest::Client,
    delivery: &Arc<Delivery>,
) -> anyhow::Result<()> {
    for row in new_rows(ctx, rule, log).await? {
        let Some(key) = key_of(&row, &rule.key) else {
            continue;
        };
        let detail = serde_json::Value::Object(row).to_string();
        if let Some(event) = log.fire(&rule.name, &key, detail)? {
            match &rule.webhook {
                Some(url) => spawn_delivery(client, log, delivery, url.clone(), event),
                None => log.outcome(&event, "recorded", 0, String::new())?,
            }
        }
    }
    Ok(())
}

fn spawn_delivery(
    client: &reqwest::Client,
    log: &Arc<RuleLog>,
    delivery: &Arc<Delivery>,
    url: String,
    event: RuleEvent,
) {
    let client = client.clone();
    let log = Arc::clone(log);
    let delivery = Arc::clone(delivery);
    tokio::spawn(async move {
        if let Err(e) = colloquy_live::rules::deliver(&client, &log, &url, &event, &delivery).await
        {
            tracing::error!("rule {}: {e}", event.rule);
        }
    });
}
