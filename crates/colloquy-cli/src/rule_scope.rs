//! What a rule reads when it is evaluated after a flush: not every message, only the ones the flush
//! can have changed the answer for.
//!
//! The rule runner's session wraps `messages` and `live_messages` in a [`ScopedTable`]; before each
//! evaluation it sets the filter of the rule's [`Scope`] (the new messages, the conversations they belong
//! to, or the conversations active in a recent window), and the analytics views, created over the wrapped
//! `messages`, compute sentiment, intents and conversation state for those rows alone.

use std::sync::{Arc, Mutex};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{Column, ScalarValue};
use datafusion::datasource::{TableType, provider_as_source};
use datafusion::logical_expr::{Expr, LogicalPlanBuilder, col, lit};
use datafusion::physical_plan::ExecutionPlan;

/// What a rule reads at an evaluation after a flush (the first evaluation reads everything).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every message, every time.
    All,
    /// The messages of the flushes since the last evaluation.
    New,
    /// Every message of the conversations those messages belong to.
    Conversation,
    /// Every message of the conversations that have a message within this many microseconds of the
    /// newest message.
    Window(i64),
}

impl Scope {
    /// From a rule's `scope` and `window` settings; `what` names the rule in errors.
    pub fn parse(scope: Option<&str>, window: Option<&str>, what: &str) -> anyhow::Result<Self> {
        match (scope, window) {
            (Some(s), Some(_)) if s != "window" => {
                anyhow::bail!(
                    "{what}: window is set, so scope must be \"window\" (or left out), not \"{s}\""
                )
            }
            (_, Some(w)) => Ok(Self::Window(parse_duration(w).ok_or_else(|| {
                anyhow::anyhow!(
                    "{what}: window \"{w}\" is not a duration like \"25 hours\" or \"90 minutes\""
                )
            })?)),
            (None | Some("conversation"), None) => Ok(Self::Conversation),
            (Some("new"), None) => Ok(Self::New),
            (Some("all"), None) => Ok(Self::All),
            (Some("window"), None) => {
                anyhow::bail!("{what}: scope \"window\" needs window = \"…\"")
            }
            (Some(other), None) => anyhow::bail!(
                "{what}: scope \"{other}\" is not one of conversation, new, all, window"
            ),
        }
    }
}

/// `25 hours`, `90 minutes`, `1 day`, `30 s`: microseconds.
fn parse_duration(text: &str) -> Option<i64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let n: i64 = text[..split].parse().ok()?;
    let unit: i64 = match text[split..].trim() {
        "s" | "sec" | "second" | "seconds" => 1,
        "m" | "min" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3_600,
        "d" | "day" | "days" => 86_400,
        _ => return None,
    };
    n.checked_mul(unit)?.checked_mul(1_000_000)
}

/// The messages flushed since the last evaluation.
#[derive(Debug, Default)]
pub struct Delta {
    pub messages: Vec<(String, String)>,
    pub conversations: std::collections::HashSet<(String, String)>,
}

impl Delta {
    pub fn add(&mut self, flushed: &colloquy_live::Flushed) {
        self.messages.extend(flushed.messages.iter().cloned());
        self.conversations
            .extend(flushed.conversations.iter().cloned());
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }
}

/// What an evaluation reads of a scoped table.
#[derive(Clone, Debug)]
pub enum Filter {
    /// The rows whose `channel` and `column` (message_id or conversation_id) are a pair of `keys`.
    Pairs {
        column: &'static str,
        keys: Vec<(String, String)>,
    },
    /// No row.
    Nothing,
}

impl Filter {
    pub fn pairs<'a>(
        column: &'static str,
        pairs: impl Iterator<Item = &'a (String, String)>,
    ) -> Self {
        let keys: Vec<(String, String)> = pairs.cloned().collect();
        if keys.is_empty() {
            Self::Nothing
        } else {
            Self::Pairs { column, keys }
        }
    }
}

/// Names of the key columns joined in, unlike any column of the message schema.
const KEY_CHANNEL: &str = "__scope_channel";
const KEY_ID: &str = "__scope_id";

/// `plan` semi-joined with `keys` on `channel` and `column`: a hash join, whatever the number of keys
/// (an `IN` list of ten thousand literals took longer to plan than the evaluation it restricted).
fn semi_join(
    plan: LogicalPlanBuilder,
    schema: &SchemaRef,
    column: &str,
    keys: &[(String, String)],
) -> datafusion::error::Result<LogicalPlanBuilder> {
    use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::logical_expr::JoinType;
    let channel_type = schema.field_with_name("channel")?.data_type().clone();
    let id_type = schema.field_with_name(column)?.data_type().clone();
    let channels: ArrayRef = Arc::new(StringArray::from_iter_values(keys.iter().map(|k| &k.0)));
    let ids: ArrayRef = Arc::new(StringArray::from_iter_values(keys.iter().map(|k| &k.1)));
    // Typed like the table's columns, so the join compares like with like.
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new(KEY_CHANNEL, channel_type.clone(), false),
            Field::new(KEY_ID, id_type.clone(), false),
        ])),
        vec![cast(&channels, &channel_type)?, cast(&ids, &id_type)?],
    )?;
    let table = datafusion::datasource::MemTable::try_new(batch.schema(), vec![vec![batch]])?;
    let keys = LogicalPlanBuilder::scan("scope_keys", provider_as_source(Arc::new(table)), None)?
        .build()?;
    plan.join(
        keys,
        JoinType::LeftSemi,
        (
            vec![Column::from_name("channel"), Column::from_name(column)],
            vec![Column::from_name(KEY_CHANNEL), Column::from_name(KEY_ID)],
        ),
        None,
    )
}

/// The conversations of `messages` with a message within `window` µs of its newest one.
pub async fn window_conversations(
    ctx: &datafusion::prelude::SessionContext,
    messages: &Arc<dyn TableProvider>,
    window: i64,
) -> anyhow::Result<Vec<(String, String)>> {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::IntervalMonthDayNano;
    use datafusion::functions_aggregate::expr_fn::max;
    let all = ctx.read_table(Arc::clone(messages))?;
    let newest = all
        .clone()
        .aggregate(vec![], vec![max(col("ts")).alias("newest")])?
        .collect()
        .await?;
    let Some(batch) = newest.first().filter(|b| b.num_rows() > 0) else {
        return Ok(Vec::new());
    };
    let newest = ScalarValue::try_from_array(batch.column(0), 0)?;
    if newest.is_null() {
        return Ok(Vec::new());
    }
    let span = ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano::new(
        0,
        0,
        window.saturating_mul(1_000),
    )));
    let keys = all
        .filter(col("ts").gt_eq(lit(newest) - lit(span)))?
        .select(vec![col("channel"), col("conversation_id")])?
        .distinct()?
        .collect()
        .await?;
    let mut out = Vec::new();
    for b in &keys {
        let channel = datafusion::arrow::compute::cast(
            b.column(0),
            &datafusion::arrow::datatypes::DataType::Utf8,
        )?;
        let id = datafusion::arrow::compute::cast(
            b.column(1),
            &datafusion::arrow::datatypes::DataType::Utf8,
        )?;
        let (channel, id) = (channel.as_string::<i32>(), id.as_string::<i32>());
        for i in 0..b.num_rows() {
            if channel.is_valid(i) && id.is_valid(i) {
                out.push((channel.value(i).to_owned(), id.value(i).to_owned()));
            }
        }
    }
    Ok(out)
}

/// A table seen through the filter of the evaluation under way (none: every row).
#[derive(Debug)]
pub struct ScopedTable {
    inner: Arc<dyn TableProvider>,
    filter: Arc<Mutex<Option<Filter>>>,
}

impl ScopedTable {
    pub fn new(inner: Arc<dyn TableProvider>, filter: Arc<Mutex<Option<Filter>>>) -> Self {
        Self { inner, filter }
    }
}

#[async_trait::async_trait]
impl TableProvider for ScopedTable {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    /// The query's own filters and limit are applied above this scan (filter pushdown is left
    /// unsupported), so they are not needed here.
    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let filter = self
            .filter
            .lock()
            .map_err(|_| datafusion::error::DataFusionError::Internal("scope lock".into()))?
            .clone();
        let mut plan =
            LogicalPlanBuilder::scan("scoped", provider_as_source(Arc::clone(&self.inner)), None)?;
        let schema = self.inner.schema();
        match filter {
            None => {}
            Some(Filter::Nothing) => plan = plan.filter(lit(false))?,
            Some(Filter::Pairs { column, keys }) => {
                plan = semi_join(plan, &schema, column, &keys)?;
            }
        }
        if let Some(p) = projection {
            plan = plan.project(p.iter().map(|&i| col(schema.field(i).name())))?;
        }
        state.create_physical_plan(&plan.build()?).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_and_windows_parse_or_say_what_is_wrong() {
        let p = |s, w| Scope::parse(s, w, "rule r");
        assert_eq!(p(None, None).expect("default"), Scope::Conversation);
        assert_eq!(p(Some("new"), None).expect("new"), Scope::New);
        assert_eq!(p(Some("all"), None).expect("all"), Scope::All);
        assert_eq!(
            p(None, Some("25 hours")).expect("window"),
            Scope::Window(25 * 3_600 * 1_000_000)
        );
        assert_eq!(
            p(Some("window"), Some("90 minutes")).expect("window"),
            Scope::Window(90 * 60 * 1_000_000)
        );
        let err = |s, w| p(s, w).expect_err("refused").to_string();
        assert!(err(Some("every"), None).contains("scope \"every\" is not one of"));
        assert!(err(None, Some("soon")).contains("window \"soon\" is not a duration"));
        assert!(err(Some("new"), Some("1 day")).contains("scope must be \"window\""));
        assert!(err(Some("window"), None).contains("needs window"));
        assert!(err(None, Some("99999999999999 days")).contains("not a duration"));
    }
}
