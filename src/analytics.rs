//! The conversation-analytics library: the views in `sql/views/`, built into the binary and created in a
//! session whenever it has a table named `messages`.
//!
//! Front ends call [`install_views`] after registering tables, and again after any statement for which
//! [`affects_views`] is true (creating or dropping `messages` or `customer_identities`): a DataFusion view
//! keeps the table it was planned against, so views must be planned again when those tables change.

use datafusion::common::TableReference;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{DdlStatement, LogicalPlan};
use datafusion::prelude::SessionContext;

use crate::MESSAGES_TABLE;

/// The optional table that maps (channel, sender_id) to one customer_id across channels.
pub const IDENTITIES_TABLE: &str = "customer_identities";

/// The optional table of reviewed labels (message_id, task, label) that `model_quality` scores models on.
pub const LABELS_TABLE: &str = "labels";

/// One view of the library: its name, the `CREATE OR REPLACE VIEW` statement of its file, and the
/// optional table it needs besides `messages` (it exists only while that table does).
#[derive(Debug, Clone, Copy)]
pub struct View {
    pub name: &'static str,
    pub sql: &'static str,
    pub needs: Option<&'static str>,
}

macro_rules! views {
    ($($name:literal $(needs $table:expr)?),* $(,)?) => {
        &[$(View {
            name: $name,
            sql: include_str!(concat!("../sql/views/", $name, ".sql")),
            needs: views!(@needs $($table)?),
        }),*]
    };
    (@needs) => { None };
    (@needs $table:expr) => { Some($table) };
}

/// Every view, in an order where each comes after the views it reads.
pub const VIEWS: &[View] = views![
    "conversation_messages",
    "conversations",
    "first_contact_resolution",
    "response_times",
    "escalations",
    "escalation_rates",
    "sentiment_trajectory",
    "sentiment_outcomes",
    "intent_trends",
    "agent_scorecards",
    "language_mix",
    "drift_weekly",
    "routing_alerts",
    "model_quality" needs LABELS_TABLE,
];

/// The join in `conversation_messages.sql` that reads the identity map; replaced by an empty relation of
/// the same columns when the session has no `customer_identities` table.
const IDENTITIES_JOIN: &str = "LEFT JOIN customer_identities AS ci";
const NO_IDENTITIES_JOIN: &str = "LEFT JOIN (SELECT CAST(NULL AS VARCHAR) AS channel, CAST(NULL AS VARCHAR) AS sender_id, CAST(NULL AS VARCHAR) AS customer_id WHERE false) AS ci";

/// What [`install_views`] did.
#[derive(Debug, Default)]
pub struct Installed {
    /// The views created (all of them when the session has `messages`, none otherwise).
    pub created: Vec<&'static str>,
    /// Views that could not be created, with the reason (e.g. a `messages` table without the message
    /// schema's columns); the views that depend on them are listed too.
    pub failed: Vec<(&'static str, DataFusionError)>,
}

/// Creates (or re-creates) every view of the library when the session has a `messages` table, and drops
/// them when it has none; a view that needs another optional table (`labels`) likewise. A view that
/// fails does not stop the others.
pub async fn install_views(ctx: &SessionContext) -> Result<Installed> {
    let mut installed = Installed::default();
    if !ctx.table_exist(MESSAGES_TABLE)? {
        for v in VIEWS.iter().rev() {
            if ctx.table_exist(v.name)? && is_view(ctx, v.name).await {
                ctx.deregister_table(v.name)?;
            }
        }
        return Ok(installed);
    }
    let has_identities = ctx.table_exist(IDENTITIES_TABLE)?;
    for v in VIEWS {
        if let Some(table) = v.needs
            && !ctx.table_exist(table)?
        {
            if ctx.table_exist(v.name)? && is_view(ctx, v.name).await {
                ctx.deregister_table(v.name)?;
            }
            continue;
        }
        let sql = if has_identities {
            v.sql.to_string()
        } else {
            v.sql.replace(IDENTITIES_JOIN, NO_IDENTITIES_JOIN)
        };
        match run(ctx, &sql).await {
            Ok(()) => {
                if CACHED.contains(&v.name) {
                    cache_view(ctx, v.name).await?;
                }
                installed.created.push(v.name)
            }
            Err(e) => {
                // A view made before (over an earlier `messages`: in a governed session, the
                // ungoverned one) must not outlive the one that could not be made.
                if ctx.table_exist(v.name)? && is_view(ctx, v.name).await {
                    ctx.deregister_table(v.name)?;
                }
                installed.failed.push((v.name, e))
            }
        }
    }
    Ok(installed)
}

/// The views every other view reads: kept per archive version when the session has a
/// [`ViewCache`](crate::view_cache::ViewCache) (see [`crate::view_cache`]).
pub const CACHED: [&str; 2] = ["conversation_messages", "conversations"];

/// Replaces the view `name` by a [`CachedView`](crate::view_cache::CachedView) when the session has a
/// cache and every table under the view can say its version.
async fn cache_view(ctx: &SessionContext, name: &'static str) -> Result<()> {
    let Some(cache) = ctx
        .state()
        .config()
        .get_extension::<crate::view_cache::ViewCache>()
    else {
        return Ok(());
    };
    let view = ctx.table_provider(name).await?;
    if let Some(cached) = crate::view_cache::CachedView::wrap(name, &view, cache) {
        ctx.deregister_table(name)?;
        ctx.register_table(name, std::sync::Arc::new(cached))?;
    }
    Ok(())
}

async fn run(ctx: &SessionContext, sql: &str) -> Result<()> {
    ctx.sql(sql).await?.collect().await?;
    Ok(())
}

async fn is_view(ctx: &SessionContext, name: &str) -> bool {
    match ctx.table_provider(name).await {
        Ok(t) => t.table_type() == datafusion::datasource::TableType::View,
        Err(_) => false,
    }
}

/// True for a statement that creates, replaces or drops `messages`, `customer_identities` or `labels`, or
/// a function: run [`install_views`] after it.
pub fn affects_views(plan: &LogicalPlan) -> bool {
    let LogicalPlan::Ddl(ddl) = plan else {
        return false;
    };
    // Views keep the functions they were planned with: CREATE OR REPLACE FUNCTION sentiment(...) (an
    // ONNX model in place of the built-in) must reach them.
    if matches!(
        ddl,
        DdlStatement::CreateFunction(_) | DdlStatement::DropFunction(_)
    ) {
        return true;
    }
    let name: &TableReference = match ddl {
        DdlStatement::CreateExternalTable(c) => &c.name,
        DdlStatement::CreateMemoryTable(c) => &c.name,
        DdlStatement::CreateView(c) => &c.name,
        DdlStatement::DropTable(d) => &d.name,
        DdlStatement::DropView(d) => &d.name,
        _ => return false,
    };
    is_input_table(name)
}

/// True when `name` is one of the tables the views read (bulk ingest creates tables without a plan).
pub fn is_input_table(name: &TableReference) -> bool {
    let table = name.table();
    [MESSAGES_TABLE, IDENTITIES_TABLE, LABELS_TABLE]
        .iter()
        .any(|t| table.eq_ignore_ascii_case(t))
}

/// Installs the views and reports the ones that failed on standard error: for front ends that have no
/// better place for it (the CLI, the server's session set-up).
pub async fn install_views_and_warn(ctx: &SessionContext) -> Result<Installed> {
    let installed = install_views(ctx).await?;
    for (name, e) in &installed.failed {
        eprintln!("warning: the analytics view {name} was not created: {e}");
    }
    Ok(installed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_creates_its_own_view() {
        for v in VIEWS {
            let head = format!("CREATE OR REPLACE VIEW {} AS", v.name);
            assert!(
                v.sql.contains(&head),
                "sql/views/{}.sql must contain `{head}`",
                v.name
            );
            assert!(
                v.sql.trim_start().starts_with("--"),
                "sql/views/{}.sql must start with its header comment",
                v.name
            );
        }
    }

    #[test]
    fn the_identity_join_is_where_the_loader_expects_it() {
        let base = VIEWS
            .iter()
            .find(|v| v.name == "conversation_messages")
            .expect("conversation_messages");
        assert_eq!(base.sql.matches(IDENTITIES_JOIN).count(), 1);
        for v in VIEWS.iter().filter(|v| v.name != "conversation_messages") {
            assert!(
                !v.sql.contains(IDENTITIES_TABLE),
                "{} reads {IDENTITIES_TABLE}",
                v.name
            );
        }
    }
}
