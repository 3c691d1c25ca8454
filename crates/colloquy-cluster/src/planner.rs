//! The client side of a cluster query: what is sent, what stays, and what errors read like.

use std::sync::Arc;

use async_trait::async_trait;
use colloquy_archive::ArchiveTable;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::{Transformed, TreeNodeRecursion};
use datafusion::datasource::listing::ListingTable;
use datafusion::datasource::{MemTable, ViewTable, provider_as_source, source_as_provider};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{LogicalPlan, TableScan, TableScanBuilder};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, collect_partitioned,
};
use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};
use futures::StreamExt;

/// Tables a session makes up as it plans (`generate_series()`, `range()`, ...) are computed here and
/// travel as rows, up to this many bytes in memory.
const GENERATED_TABLE_LIMIT: usize = 8 << 20;

/// Plans a client's statement: one that reads no table runs in this process; tables the cluster cannot
/// rebuild are computed here first; the rest goes to the scheduler (`inner`).
pub struct ClusterQueryPlanner {
    pub inner: Arc<dyn QueryPlanner + Send + Sync>,
}

impl std::fmt::Debug for ClusterQueryPlanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterQueryPlanner")
    }
}

/// Whether the cluster's codecs can rebuild `provider` on the scheduler.
fn travels(provider: &dyn TableProvider) -> bool {
    provider.downcast_ref::<ArchiveTable>().is_some()
        || provider.downcast_ref::<MemTable>().is_some()
        || provider.downcast_ref::<ListingTable>().is_some()
        || provider.downcast_ref::<ViewTable>().is_some()
}

fn writes_session_memory(plan: &LogicalPlan) -> bool {
    match plan {
        LogicalPlan::Dml(dml) => source_as_provider(&dml.target)
            .map(|p| p.downcast_ref::<ListingTable>().is_none())
            .unwrap_or(true),
        _ => false,
    }
}

fn reads_a_table(plan: &LogicalPlan) -> Result<bool> {
    let mut found = false;
    plan.apply_with_subqueries(|node| {
        if matches!(node, LogicalPlan::TableScan(_)) {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(found)
}

/// `scan`'s rows, computed in this process, as an in-memory table.
async fn materialize(scan: &TableScan, session: &dyn Session) -> Result<Arc<dyn TableProvider>> {
    let provider = source_as_provider(&scan.source)?;
    let plan = provider
        .scan(session, scan.projection.as_ref(), &scan.filters, scan.fetch)
        .await?;
    let partitions = collect_partitioned(plan, session.task_ctx()).await?;
    let bytes: usize = partitions
        .iter()
        .flatten()
        .map(|b| b.get_array_memory_size())
        .sum();
    if bytes > GENERATED_TABLE_LIMIT {
        return Err(DataFusionError::Plan(format!(
            "{} makes {} MB of rows in this session; a cluster's executors cannot compute it: write it to storage (COPY ... TO '<location>') and read that",
            scan.table_name,
            bytes >> 20
        )));
    }
    let schema = partitions
        .iter()
        .flatten()
        .next()
        .map(|b| b.schema())
        .unwrap_or_else(|| Arc::clone(scan.projected_schema.inner()));
    Ok(Arc::new(MemTable::try_new(schema, partitions)?))
}

#[async_trait]
impl QueryPlanner for ClusterQueryPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session_state: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !reads_a_table(logical_plan)? || writes_session_memory(logical_plan) {
            // Constants and empty relations: nothing for the cluster to read. Rows inserted into a
            // table held in this session's memory must land here, not in a copy on an executor.
            return DefaultPhysicalPlanner::default()
                .create_physical_plan(logical_plan, session_state)
                .await;
        }
        let mut pending = Vec::new();
        let mut refused = None;
        logical_plan.apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = node
                && let Ok(p) = source_as_provider(&scan.source)
            {
                if let Some(archive) = p.downcast_ref::<ArchiveTable>()
                    && let Err(e) = crate::codec::plan_safe(&archive.spec())
                {
                    // Said here, before anything is sent, rather than as a serialization failure.
                    refused = Some(e);
                    return Ok(TreeNodeRecursion::Stop);
                }
                if !travels(p.as_ref()) {
                    pending.push(scan.clone());
                }
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        if let Some(e) = refused {
            return Err(e);
        }
        let plan = if pending.is_empty() {
            logical_plan.clone()
        } else {
            let mut computed = Vec::with_capacity(pending.len());
            for scan in &pending {
                computed.push((scan.clone(), materialize(scan, session_state).await?));
            }
            logical_plan
                .clone()
                .transform_up_with_subqueries(|node| {
                    let LogicalPlan::TableScan(scan) = &node else {
                        return Ok(Transformed::no(node));
                    };
                    // Two calls of one table function share a name: the source tells them apart.
                    let Some((_, table)) = computed
                        .iter()
                        .find(|(s, _)| s == scan && Arc::ptr_eq(&s.source, &scan.source))
                    else {
                        return Ok(Transformed::no(node));
                    };
                    // The rows are already projected, filtered and limited.
                    let replaced = TableScanBuilder::new(
                        scan.table_name.clone(),
                        provider_as_source(Arc::clone(table)),
                    )
                    .build()?;
                    Ok(Transformed::yes(LogicalPlan::TableScan(replaced)))
                })?
                .data
        };
        let plan = self
            .inner
            .create_physical_plan(&plan, session_state)
            .await?;
        Ok(Arc::new(ClearErrorsExec::new(plan)))
    }
}

/// The cluster's plan, with its errors told as the failing function told them: Ballista wraps a
/// task's error in the job's and the stage's, as debug text.
#[derive(Debug)]
pub struct ClearErrorsExec {
    input: Arc<dyn ExecutionPlan>,
}

impl ClearErrorsExec {
    pub fn new(input: Arc<dyn ExecutionPlan>) -> Self {
        Self { input }
    }
}

impl DisplayAs for ClearErrorsExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClearErrorsExec")
    }
}

impl ExecutionPlan for ClearErrorsExec {
    fn name(&self) -> &str {
        "ClearErrorsExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return datafusion::common::internal_err!("ClearErrorsExec takes one input");
        }
        Ok(Arc::new(Self::new(children.swap_remove(0))))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let stream = self.input.execute(partition, context).map_err(clear)?;
        let schema = stream.schema();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            schema,
            stream.map(|r| r.map_err(clear)),
        )))
    }
}

/// The innermost error of a failed cluster job (`Job … failed: … Task failed due to runtime execution
/// error: DataFusionError(Shared(External(DataFusionError(Execution("…")))))`) as the error it was.
pub fn clear(e: DataFusionError) -> DataFusionError {
    let text = e.to_string();
    if !text.contains("Job ") || !text.contains(" failed") {
        return e;
    }
    let Some((variant, message)) = innermost(&text) else {
        return e;
    };
    match variant.as_str() {
        "Plan" => DataFusionError::Plan(message),
        "NotImplemented" => DataFusionError::NotImplemented(message),
        "Configuration" => DataFusionError::Configuration(message),
        "ResourcesExhausted" => DataFusionError::ResourcesExhausted(message),
        _ => DataFusionError::Execution(message),
    }
}

/// DataFusion's error variants that carry a message, as Ballista's debug text names them.
const VARIANTS: &[&str] = &[
    "Execution",
    "Plan",
    "NotImplemented",
    "Configuration",
    "ResourcesExhausted",
    "Internal",
];

/// The innermost `Variant("message")` of Rust debug text, when nothing but closing parentheses
/// follows it (the error is wrapped, not followed by more), with the message's escapes undone.
fn innermost(text: &str) -> Option<(String, String)> {
    for variant in VARIANTS {
        let opener = format!("{variant}(\"");
        let Some(start) = text.rfind(&opener) else {
            continue;
        };
        let body = &text[start + opener.len()..];
        let mut message = String::new();
        let mut chars = body.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => message.push('\n'),
                    Some((_, 't')) => message.push('\t'),
                    Some((_, other)) => message.push(other),
                    None => break,
                },
                '"' => {
                    end = Some(i + 1);
                    break;
                }
                other => message.push(other),
            }
        }
        let Some(end) = end else {
            continue;
        };
        let rest = &body[end..];
        if rest.trim().chars().all(|c| c == ')') {
            return Some((variant.to_string(), message));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jobs_error_becomes_the_functions_own() {
        let e = DataFusionError::Execution(
            r#"Job 038JERJ2TA000 failed: Job failed due to stage 1 failed: Task failed due to runtime execution error: DataFusionError(Shared(External(DataFusionError(Execution("intent_scores(): k must be between 1 and 15, got 0")))))"#.into(),
        );
        assert_eq!(
            clear(e).to_string(),
            "Execution error: intent_scores(): k must be between 1 and 15, got 0"
        );
        let e = DataFusionError::Execution(
            r#"Job 1 failed: Task failed: DataFusionError(Plan("a \"quoted\" name\nnext"))"#.into(),
        );
        assert_eq!(
            clear(e).to_string(),
            "Error during planning: a \"quoted\" name\nnext"
        );
        // Anything else is left as it was: plain errors, and a message that only quotes other text.
        let e = DataFusionError::Execution("no objects found".into());
        assert_eq!(clear(e).to_string(), "Execution error: no objects found");
        let text = r#"Job 2 failed: ConnectError("tcp connect error", Os { code: 111 }) at http://10.0.0.1/"#;
        let e = DataFusionError::Execution(text.into());
        assert_eq!(clear(e).to_string(), format!("Execution error: {text}"));
        // Odd text does not panic.
        for text in [
            "Job x failed: Execution(\"\\é",
            "Job failed Plan(\"",
            "Job failed Plan(\"é\")x",
        ] {
            let _ = clear(DataFusionError::Execution(text.into()));
        }
    }
}
