//! Physical plan rewrites the scheduler applies before splitting a plan into stages.

use std::sync::Arc;

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{Distribution, EquivalenceProperties, PhysicalExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    replace_children_if_necessary,
};

/// Sorts a window's input by its `PARTITION BY` keys first, even where a filter made them constant.
///
/// DataFusion drops a sort key that an equality filter below made constant (`WHERE conversation_key =
/// '…'`). On a cluster a shuffle can sit between that filter and the window: the executor's plan no
/// longer knows the key is constant and refuses to run the window ("Expects PARTITION BY expression to
/// be ordered"). Sorting by a constant first costs a comparison per row.
#[derive(Debug, Default)]
pub struct WindowSortsKeepPartitionKeys;

impl PhysicalOptimizerRule for WindowSortsKeepPartitionKeys {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
        use datafusion::physical_plan::sorts::sort::SortExec;
        use datafusion::physical_plan::windows::{BoundedWindowAggExec, WindowAggExec};
        plan.transform_up(|p| {
            let (keys, input) = if let Some(w) = p.downcast_ref::<BoundedWindowAggExec>() {
                (w.partition_keys(), Arc::clone(w.input()))
            } else if let Some(w) = p.downcast_ref::<WindowAggExec>() {
                (w.partition_keys(), Arc::clone(w.input()))
            } else {
                return Ok(Transformed::no(p));
            };
            let Some(sort) = input.downcast_ref::<SortExec>() else {
                return Ok(Transformed::no(p));
            };
            let existing: Vec<PhysicalSortExpr> = sort.expr().iter().cloned().collect();
            let missing: Vec<PhysicalSortExpr> = keys
                .iter()
                .filter(|k| !existing.iter().any(|e| e.expr.eq(*k)))
                .map(|k| {
                    PhysicalSortExpr::new_default(Arc::clone(k))
                        .asc()
                        .nulls_last()
                })
                .collect();
            if missing.is_empty() {
                return Ok(Transformed::no(p));
            }
            let Some(ordering) = LexOrdering::new(missing.into_iter().chain(existing)) else {
                return Ok(Transformed::no(p));
            };
            let new_sort: Arc<dyn ExecutionPlan> = Arc::new(
                SortExec::new(ordering, Arc::clone(sort.input()))
                    .with_preserve_partitioning(sort.preserve_partitioning())
                    .with_fetch(sort.fetch()),
            );
            Ok(Transformed::yes(replace_children_if_necessary(
                p,
                vec![new_sort],
            )?))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "colloquy_window_sorts_keep_partition_keys"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Runs a `UNION ALL` of differently shaped inputs in one task.
///
/// Ballista 55.0.0 cuts a stage's plan to each task's partitions; the inputs of a union then differ
/// between tasks, their tasks report different numbers of operator metrics, the scheduler cannot
/// record them and the query never ends (`SELECT column1 FROM t UNION ALL SELECT 3` on a cluster).
/// Ballista makes a `CoalescePartitionsExec` a stage boundary, so the union goes under an operator of
/// colloquy's ([`OneTaskExec`]) that Ballista leaves alone: one task, the same operators every time.
/// Unions of identically shaped inputs (`SELECT ... FROM a UNION ALL SELECT ... FROM b` over tables of
/// one kind) are left to run in parallel.
#[derive(Debug, Default)]
pub struct UnevenUnionsInOneTask;

fn shape(plan: &Arc<dyn ExecutionPlan>) -> String {
    let mut out = plan.name().to_string();
    for c in plan.children() {
        out.push('(');
        out.push_str(&shape(c));
        out.push(')');
    }
    out
}

impl PhysicalOptimizerRule for UnevenUnionsInOneTask {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        use datafusion::physical_plan::sorts::sort::SortExec;
        use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
        use datafusion::physical_plan::union::UnionExec;
        plan.transform_up(|p| {
            // The merge of sorted partitions above such a union now gets one partition in no order:
            // sort it whole instead.
            if let Some(merge) = p.downcast_ref::<SortPreservingMergeExec>()
                && merge.input().is::<OneTaskExec>()
            {
                let sort = SortExec::new(merge.expr().clone(), Arc::clone(merge.input()))
                    .with_fetch(merge.fetch());
                return Ok(Transformed::yes(Arc::new(sort) as Arc<dyn ExecutionPlan>));
            }
            if !p.is::<UnionExec>() || p.properties().partitioning.partition_count() <= 1 {
                return Ok(Transformed::no(p));
            }
            let children = p.children();
            let first = children.first().map(|c| shape(c));
            if children.iter().all(|c| Some(shape(c)) == first) {
                return Ok(Transformed::no(p));
            }
            Ok(Transformed::yes(
                Arc::new(OneTaskExec::new(p)) as Arc<dyn ExecutionPlan>
            ))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "colloquy_uneven_unions_in_one_task"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Merges every partition of its input into one, like `CoalescePartitionsExec`, but is not a stage
/// boundary for Ballista: see [`UnevenUnionsInOneTask`].
#[derive(Debug)]
pub struct OneTaskExec {
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl OneTaskExec {
    pub fn new(input: Arc<dyn ExecutionPlan>) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(input.schema()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Self { input, properties }
    }
}

impl DisplayAs for OneTaskExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OneTaskExec")
    }
}

impl ExecutionPlan for OneTaskExec {
    fn name(&self) -> &str {
        "OneTaskExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    // Ballista does not cut the plan below an operator that needs all of its input in one place.
    fn required_input_distribution(&self) -> Vec<Distribution> {
        vec![Distribution::SinglePartition]
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
            return datafusion::common::internal_err!("OneTaskExec takes one input");
        }
        Ok(Arc::new(Self::new(children.swap_remove(0))))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
        CoalescePartitionsExec::new(Arc::clone(&self.input)).execute(partition, context)
    }
}
