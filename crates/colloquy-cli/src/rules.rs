//! `[[live.rule]]`: standing queries over the live table, each match acted on once.
//!
//! At start each rule's query runs over everything; after that, after every flush of the live store, over
//! what the flush can have changed: the rule's [`Scope`] (the new messages, their conversations, or the
//! conversations active in a recent window) is the only content of `messages` and `live_messages` in the
//! rule runner's session, so the views compute sentiment and conversation state for those rows alone. A
//! row whose `key` value the rule has not matched before fires: the events of one evaluation are synced
//! to the rule log (`rule_events`) together, then, when the rule has a webhook, POSTed there with retries
//! and backoff, and dead-lettered if every try fails.

use std::sync::{Arc, Mutex};

use anyhow::Context;
use colloquy_live::{Delivery, LiveStore, RuleEvent, RuleLog};
use datafusion::catalog::TableProvider;
use datafusion::prelude::SessionContext;
use tokio::sync::broadcast::error::RecvError;

use crate::config::RuleSection;
use crate::rule_scope::{Delta, Filter, Scope, ScopedTable};

/// A rule of `sql/rules/`.
pub struct Builtin {
    pub name: &'static str,
    pub key: &'static str,
    pub sql: &'static str,
    /// Its `window` (none: the conversations that got new messages).
    pub window: Option<&'static str>,
}

/// The rules of `sql/rules/`.
pub const BUILTIN: &[Builtin] = &[
    Builtin {
        name: "negative_streak",
        key: "conversation_key",
        sql: include_str!("../../../sql/rules/negative_streak.sql"),
        window: None,
    },
    // Compares the newest hour with the week before it.
    Builtin {
        name: "negative_spike",
        key: "spike_key",
        sql: include_str!("../../../sql/rules/negative_spike.sql"),
        window: Some("8 days"),
    },
    // Fires as time passes (a conversation that gets nothing new): every conversation of the last day.
    Builtin {
        name: "customer_waiting",
        key: "conversation_key",
        sql: include_str!("../../../sql/rules/customer_waiting.sql"),
        window: Some("1 day"),
    },
];

/// A rule ready to run.
#[derive(Clone, Debug)]
pub struct Rule {
    pub name: String,
    pub sql: String,
    pub key: String,
    pub webhook: Option<String>,
    /// The webhook's body, `{{column}}` placeholders filled in ([`colloquy_live::rules::render`]).
    pub template: Option<String>,
    pub scope: Scope,
    /// Made with `CREATE RULE` (only those can be dropped).
    pub from_client: bool,
    /// Who made it with `CREATE RULE` (only they can drop it).
    pub owner: Option<String>,
}

impl RuleSection {
    /// The rule this section describes: a built-in one (its name, query and key, unless overridden) or
    /// its own `name`, `sql` and `key`.
    pub fn resolve(&self) -> anyhow::Result<Rule> {
        let builtin = match &self.builtin {
            Some(b) => Some(BUILTIN.iter().find(|x| x.name == b).ok_or_else(|| {
                let names: Vec<&str> = BUILTIN.iter().map(|x| x.name).collect();
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
        let name = pick(&self.name, builtin.map(|b| b.name), "a name")?;
        // A built-in rule's window holds unless the section sets its own scope or window.
        let window = match (&self.scope, &self.window) {
            (None, None) => builtin.and_then(|b| b.window.map(str::to_owned)),
            _ => self.window.clone(),
        };
        let scope = Scope::parse(
            self.scope.as_deref(),
            window.as_deref(),
            &format!("[[live.rule]] {name}"),
        )?;
        Ok(Rule {
            key: pick(&self.key, builtin.map(|b| b.key), "a key column")?,
            sql: pick(&self.sql, builtin.map(|b| b.sql), "sql")?,
            name,
            webhook: self.webhook.clone(),
            template: self.template.clone(),
            scope,
            from_client: false,
            owner: None,
        })
    }
}

/// The rows of `rule`'s query whose key has not fired yet, as JSON objects. The keys that fired are
/// left out by the query itself (an anti-join), so an evaluation converts only new matches.
async fn new_rows(
    ctx: &SessionContext,
    rule: &Rule,
    log: &RuleLog,
    full: bool,
) -> anyhow::Result<Vec<serde_json::Map<String, serde_json::Value>>> {
    use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::DataType;
    use datafusion::logical_expr::{JoinType, cast, ident};
    let mut df = rule_frame(ctx, rule).await?;
    // A scoped evaluation returns few rows, and the log drops the keys that fired before; the anti-join
    // is for the evaluations over everything.
    let fired = if full {
        log.fired_keys(&rule.name)?
    } else {
        Vec::new()
    };
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

/// The rule runner's session: a client's, with `messages` and `live_messages` seen through the scope
/// of the evaluation under way, and the views created again over them.
struct Runner {
    ctx: SessionContext,
    /// `messages` itself, for the window scopes' "which conversations were active".
    messages: Option<Arc<dyn TableProvider>>,
    filter: Arc<Mutex<Option<Filter>>>,
}

impl Runner {
    async fn new(ctx: SessionContext) -> anyhow::Result<Self> {
        let filter = Arc::new(Mutex::new(None));
        let mut messages = None;
        for name in [colloquy::MESSAGES_TABLE, crate::live::LIVE_TABLE] {
            if let Some(table) = ctx.deregister_table(name)? {
                if name == colloquy::MESSAGES_TABLE {
                    messages = Some(Arc::clone(&table));
                }
                ctx.register_table(name, Arc::new(ScopedTable::new(table, Arc::clone(&filter))))?;
            }
        }
        colloquy::analytics::install_views(&ctx).await?;
        Ok(Self {
            ctx,
            messages,
            filter,
        })
    }

    /// The scope's filter for `rule` after `delta` (`None`: a full evaluation).
    async fn filter_for(
        &self,
        rule: &Rule,
        delta: Option<&Delta>,
    ) -> anyhow::Result<Option<Filter>> {
        let Some(delta) = delta else {
            return Ok(None);
        };
        Ok(Some(match rule.scope {
            Scope::All => return Ok(None),
            Scope::New => Filter::pairs("message_id", delta.messages.iter()),
            Scope::Conversation => Filter::pairs("conversation_id", delta.conversations.iter()),
            Scope::Window(span) => match &self.messages {
                Some(m) => {
                    let active =
                        crate::rule_scope::window_conversations(&self.ctx, m, span).await?;
                    Filter::pairs("conversation_id", active.iter())
                }
                None => Filter::Nothing,
            },
        }))
    }

    fn set_filter(&self, filter: Option<Filter>) -> anyhow::Result<()> {
        *self
            .filter
            .lock()
            .map_err(|_| anyhow::anyhow!("the rule scope's lock is poisoned"))? = filter;
        Ok(())
    }
}

/// A change to the rules while the server runs (`CREATE RULE`, `DROP RULE`), answered once done.
pub enum Command {
    Add(Rule, tokio::sync::oneshot::Sender<anyhow::Result<()>>),
    /// The rule's name and who asks.
    Drop(
        String,
        String,
        tokio::sync::oneshot::Sender<anyhow::Result<()>>,
    ),
}

/// How long one evaluation (or the check of a new rule) may take: a rule that takes longer is
/// stopped, so one slow rule cannot hold the others back for long.
const EVALUATION_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

async fn within_limit<T>(
    rule: &Rule,
    work: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::time::timeout(EVALUATION_LIMIT, work)
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "{}: took longer than {} s, stopped",
                rule.name,
                EVALUATION_LIMIT.as_secs()
            )
        })?
}

/// Whether `rule` can run: its query plans, is a query, and has the key column.
async fn check(ctx: &SessionContext, rule: &Rule) -> anyhow::Result<()> {
    within_limit(rule, check_now(ctx, rule)).await
}

async fn check_now(ctx: &SessionContext, rule: &Rule) -> anyhow::Result<()> {
    let df = rule_frame(ctx, rule)
        .await
        .with_context(|| format!("{}: the query", rule.name))?;
    anyhow::ensure!(
        df.schema().fields().iter().any(|f| f.name() == &rule.key),
        "{}: the query has no column '{}' (the rule's key)",
        rule.name,
        rule.key
    );
    if let Some(template) = &rule.template {
        anyhow::ensure!(
            rule.webhook.is_some(),
            "{}: a template is the body of a webhook, and the rule has none",
            rule.name
        );
        let columns: Vec<&str> = df
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        for name in colloquy_live::rules::placeholders(template)? {
            anyhow::ensure!(
                ["rule", "key", "fired_at"].contains(&name.as_str())
                    || columns.contains(&name.as_str()),
                "{}: the template's {{{{{name}}}}} is not a column of the query ({}) nor rule, key or fired_at",
                rule.name,
                columns.join(", ")
            );
        }
        // With every value null it must still be JSON.
        let event = RuleEvent {
            rule: rule.name.clone(),
            key: String::new(),
            at: String::new(),
            status: String::new(),
            attempts: 0,
            detail: String::new(),
        };
        // With every value null, and with every value a text: a placeholder inside a JSON string
        // would pass the first and fail at every delivery.
        let texts: serde_json::Map<String, serde_json::Value> = columns
            .iter()
            .map(|c| ((*c).to_owned(), serde_json::Value::from("a \"text\"")))
            .collect();
        for row in [serde_json::Value::Null, serde_json::Value::Object(texts)] {
            colloquy_live::rules::render(template, &event, &row)
                .map_err(|e| anyhow::anyhow!("{}: {e}", rule.name))?;
        }
    }
    Ok(())
}

/// What the rule runner is connected to.
pub struct Wiring {
    pub store: LiveStore,
    /// Builds its session, like a client's.
    pub factory: colloquy_flight::ContextFactory,
    pub delivery: Delivery,
    /// Where the rounds run: the query runtime.
    pub runtime: tokio::runtime::Handle,
}

/// Checks every rule once (a query that does not plan, or lacks its key column, stops the server),
/// evaluates each over everything, then after each flush over its scope, for as long as the server runs.
/// `commands` add and drop rules meanwhile; a rule added is evaluated over everything first. The rounds run
/// on `runtime` (the query runtime).
pub async fn start(
    rules: Vec<Rule>,
    log: Arc<RuleLog>,
    pending: Vec<RuleEvent>,
    wiring: Wiring,
    commands: Option<tokio::sync::mpsc::Receiver<Command>>,
) -> anyhow::Result<()> {
    let Wiring {
        store,
        factory,
        delivery,
        runtime,
    } = wiring;
    let runner = Runner::new(factory().await.map_err(|e| anyhow::anyhow!("{e}"))?).await?;
    let mut kept = Vec::with_capacity(rules.len());
    for r in rules {
        match check(&runner.ctx, &r).await {
            Ok(()) => kept.push(r),
            // A client's rule that no longer runs (a view it read is gone) is left out, not fatal.
            Err(e) if r.from_client => {
                tracing::warn!("CREATE RULE {e:#}: left out");
                eprintln!(
                    "colloquy serve: rule {e:#}: left out (DROP RULE {} to forget it)",
                    r.name
                );
            }
            Err(e) => anyhow::bail!("[[live.rule]] {e:#}"),
        }
    }
    let rules = kept;
    // A webhook is called at the URL its rule names, never where a redirect points (an allowed host
    // must not lead the server to another).
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let delivery = Arc::new(delivery);
    // Deliveries a stop interrupted.
    for event in pending {
        if let Some(rule) = rules
            .iter()
            .find(|r| r.name == event.rule && r.webhook.is_some())
        {
            spawn_delivery(&client, &log, &delivery, rule, event);
        }
    }
    if rules.is_empty() && commands.is_none() {
        return Ok(());
    }
    let mut rules = rules;
    let mut commands = commands;
    // Subscribed before the first evaluation: a flush during it is evaluated again after it.
    let mut flushes = store.subscribe();
    // Evaluations score text: on the query runtime, off the one that answers requests.
    runtime.spawn(async move {
        // The first round reads everything: what arrived while the server was down.
        let mut full = true;
        loop {
            let mut delta = Delta::default();
            if !full {
                let first = tokio::select! {
                    f = flushes.recv() => f,
                    Some(command) = async {
                        match commands.as_mut() {
                            Some(c) => c.recv().await,
                            None => std::future::pending().await,
                        }
                    } => {
                        apply(command, &mut rules, &runner, &log, &client, &delivery).await;
                        continue;
                    }
                };
                match first {
                    Ok(f) => delta.add(&f),
                    Err(RecvError::Lagged(_)) => full = true,
                    Err(RecvError::Closed) => return,
                }
                // Every flush queued meanwhile joins this round.
                loop {
                    match flushes.try_recv() {
                        Ok(f) => delta.add(&f),
                        Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => full = true,
                        Err(_) => break,
                    }
                }
                if delta.is_empty() && !full {
                    continue;
                }
            }
            let scope = (!full).then_some(&delta);
            for r in rules.iter() {
                if let Err(e) = evaluate(&runner, r, scope, &log, &client, &delivery).await {
                    tracing::error!("rule {}: {e}", r.name);
                    eprintln!("colloquy serve: rule {}: {e}", r.name);
                }
            }
            full = false;
        }
    });
    Ok(())
}

/// Adds or drops a rule; a rule added is evaluated over everything at once.
async fn apply(
    command: Command,
    rules: &mut Vec<Rule>,
    runner: &Runner,
    log: &Arc<RuleLog>,
    client: &reqwest::Client,
    delivery: &Arc<Delivery>,
) {
    match command {
        Command::Add(rule, done) => {
            let checked = if rules.iter().any(|r| r.name == rule.name) {
                Err(anyhow::anyhow!("a rule named '{}' exists", rule.name))
            } else {
                check(&runner.ctx, &rule).await
            };
            if checked.is_ok() {
                if let Err(e) = evaluate(runner, &rule, None, log, client, delivery).await {
                    tracing::error!("rule {}: {e}", rule.name);
                }
                rules.push(rule);
            }
            let _ = done.send(checked);
        }
        Command::Drop(name, user, done) => {
            let result = match rules.iter().position(|r| r.name == name) {
                Some(i)
                    if rules[i].from_client && rules[i].owner.as_deref() == Some(user.as_str()) =>
                {
                    rules.remove(i);
                    Ok(())
                }
                Some(i) if rules[i].from_client => Err(anyhow::anyhow!(
                    "rule '{name}' is {}'s: only they can drop it",
                    rules[i].owner.as_deref().unwrap_or("another user")
                )),
                Some(_) => Err(anyhow::anyhow!(
                    "rule '{name}' is the operator's ([[live.rule]] in the config file)"
                )),
                None => Err(anyhow::anyhow!("there is no rule '{name}'")),
            };
            let _ = done.send(result);
        }
    }
}

async fn evaluate(
    runner: &Runner,
    rule: &Rule,
    delta: Option<&Delta>,
    log: &Arc<RuleLog>,
    client: &reqwest::Client,
    delivery: &Arc<Delivery>,
) -> anyhow::Result<()> {
    let filter = runner.filter_for(rule, delta).await?;
    let full = filter.is_none();
    runner.set_filter(filter)?;
    let rows = within_limit(rule, new_rows(&runner.ctx, rule, log, full)).await;
    runner.set_filter(None)?;
    let matches: Vec<(String, String)> = rows?
        .into_iter()
        .filter_map(|row| {
            let key = key_of(&row, &rule.key)?;
            Some((key, serde_json::Value::Object(row).to_string()))
        })
        .collect();
    if matches.is_empty() {
        return Ok(());
    }
    // Without a webhook the event in `rule_events` is the action.
    let status = if rule.webhook.is_some() {
        "fired"
    } else {
        "recorded"
    };
    let events = log.fire_all(&rule.name, matches, status)?;
    if rule.webhook.is_some() {
        for event in events {
            spawn_delivery(client, log, delivery, rule, event);
        }
    }
    Ok(())
}
fn spawn_delivery(
    client: &reqwest::Client,
    log: &Arc<RuleLog>,
    delivery: &Arc<Delivery>,
    rule: &Rule,
    event: RuleEvent,
) {
    let Some(url) = rule.webhook.clone() else {
        return;
    };
    let template = rule.template.clone();
    let client = client.clone();
    let log = Arc::clone(log);
    let delivery = Arc::clone(delivery);
    tokio::spawn(async move {
        let sent = colloquy_live::rules::deliver(
            &client,
            &log,
            &url,
            template.as_deref(),
            &event,
            &delivery,
        )
        .await;
        if let Err(e) = sent {
            tracing::error!("rule {}: {e}", event.rule);
        }
    });
}
