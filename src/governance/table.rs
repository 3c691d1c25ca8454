//! A table as one session's roles may see it: only the rows its row policies let through, with hidden
//! columns left out and masked columns replaced by their masks.
//!
//! The policy is applied inside one execution node, [`GovernedExec`], that accepts nothing from the
//! optimizer: no filter, limit or projection is pushed through it, and it reports no statistics. So a
//! query's own expressions (a filter that divides by a value, a `min()` over a column) only ever see
//! rows and values the policy let out, and row counts are never answered from the table's statistics.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{BooleanArray, RecordBatch};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DFSchema, Result, exec_err};
use datafusion::datasource::TableType;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::StreamExt;

/// One output column: its name and the expression over the underlying table that computes it (the
/// column itself, or its mask).
#[derive(Debug, Clone)]
pub struct OutputColumn {
    pub expr: Expr,
    pub masked: bool,
}

/// The table behind a name in a governed session.
#[derive(Debug)]
pub struct GovernedTable {
    pub name: String,
    pub inner: Arc<dyn TableProvider>,
    /// Rows pass when this is true (the OR of the session's roles' row policies); `None`: all rows.
    pub predicate: Option<Expr>,
    /// The visible columns, in order, each from the inner table's columns.
    pub columns: Vec<OutputColumn>,
    /// The visible schema: `columns` with the inner table's names and types.
    pub schema: SchemaRef,
}

#[async_trait]
impl TableProvider for GovernedTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let wanted: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.columns.len()).collect(),
        };
        let mut outputs = Vec::with_capacity(wanted.len());
        for &i in &wanted {
            let Some(c) = self.columns.get(i) else {
                return exec_err!("column {i} of table {} does not exist", self.name);
            };
            outputs.push(c);
        }
        // Only the inner columns the policy and the wanted outputs read are built; no filter and no
        // limit go down: the policy decides first.
        let inner_schema = self.inner.schema();
        let mut read: Vec<usize> = self
            .predicate
            .iter()
            .chain(outputs.iter().map(|c| &c.expr))
            .flat_map(|e| e.column_refs())
            .filter_map(|c| inner_schema.index_of(&c.name).ok())
            .collect();
        read.sort_unstable();
        read.dedup();
        let input = self.inner.scan(state, Some(&read), &[], None).await?;
        let df_schema = DFSchema::try_from(inner_schema.project(&read)?)?;
        let predicate = self
            .predicate
            .as_ref()
            .map(|p| state.create_physical_expr(p.clone(), &df_schema))
            .transpose()?;
        let mut exprs = Vec::with_capacity(outputs.len());
        let mut fields = Vec::with_capacity(outputs.len());
        for (&i, c) in wanted.iter().zip(&outputs) {
            exprs.push(state.create_physical_expr(c.expr.clone(), &df_schema)?);
            fields.push(self.schema.field(i).clone());
        }
        let schema = Arc::new(Schema::new(fields));
        Ok(Arc::new(GovernedExec::new(
            self.name.clone(),
            input,
            predicate,
            exprs,
            schema,
            self.columns.iter().filter(|c| c.masked).count(),
        )))
    }
}

/// Applies a table's row and column policies to its scan.
#[derive(Debug)]
pub struct GovernedExec {
    table: String,
    input: Arc<dyn ExecutionPlan>,
    predicate: Option<Arc<dyn PhysicalExpr>>,
    exprs: Vec<Arc<dyn PhysicalExpr>>,
    schema: SchemaRef,
    masked: usize,
    properties: Arc<PlanProperties>,
}

impl GovernedExec {
    fn new(
        table: String,
        input: Arc<dyn ExecutionPlan>,
        predicate: Option<Arc<dyn PhysicalExpr>>,
        exprs: Vec<Arc<dyn PhysicalExpr>>,
        schema: SchemaRef,
        masked: usize,
    ) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            datafusion::physical_plan::Partitioning::UnknownPartitioning(
                input.properties().partitioning.partition_count(),
            ),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Self {
            table,
            input,
            predicate,
            exprs,
            schema,
            masked,
            properties,
        }
    }
}

impl DisplayAs for GovernedExec {
    // The policy's expressions are the operator's, not the data; they are still left out of EXPLAIN
    // so that a role learns which policies apply, not how they are written.
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "GovernedExec: table={}, row_policy={}, masked_columns={}",
            self.table,
            self.predicate.is_some(),
            self.masked
        )
    }
}

fn apply(
    batch: &RecordBatch,
    predicate: Option<&Arc<dyn PhysicalExpr>>,
    exprs: &[Arc<dyn PhysicalExpr>],
    schema: &SchemaRef,
) -> Result<RecordBatch> {
    let batch = match predicate {
        Some(p) => {
            let mask = p.evaluate(batch)?.into_array(batch.num_rows())?;
            let Some(mask) = mask.as_any().downcast_ref::<BooleanArray>() else {
                return exec_err!("a row policy must be a boolean condition");
            };
            // NULL counts as false, as in WHERE.
            filter_record_batch(batch, mask)?
        }
        None => batch.clone(),
    };
    let rows = batch.num_rows();
    let columns = exprs
        .iter()
        .map(|e| e.evaluate(&batch)?.into_array(rows))
        .collect::<Result<Vec<_>>>()?;
    let options = datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(rows));
    Ok(RecordBatch::try_new_with_options(
        Arc::clone(schema),
        columns,
        &options,
    )?)
}

impl ExecutionPlan for GovernedExec {
    fn name(&self) -> &str {
        "GovernedExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        for e in self.predicate.iter().chain(&self.exprs) {
            if f(e)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return exec_err!("GovernedExec takes one input");
        }
        Ok(Arc::new(Self::new(
            self.table.clone(),
            children.swap_remove(0),
            self.predicate.clone(),
            self.exprs.clone(),
            Arc::clone(&self.schema),
            self.masked,
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let predicate = self.predicate.clone();
        let exprs = self.exprs.clone();
        let schema = Arc::clone(&self.schema);
        let stream = input
            .map(move |batch| batch.and_then(|b| apply(&b, predicate.as_ref(), &exprs, &schema)));
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            stream,
        )))
    }
}
