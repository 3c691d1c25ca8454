//! `confusion_matrix(predicted, actual)`: how many rows had each (actual, predicted) pair, as a list of
//! rows in label order; the off-diagonal rows are the model's mistakes. Mergeable like
//! `classification_report()`, so it runs per channel, week or model version.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Int64Builder, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, DocSection, Documentation, Signature, Volatility,
};

use crate::label_counts::{self, LabelAccumulator, LabelCounts};

const NAME: &str = "confusion_matrix";

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ConfusionMatrixFunc {
    signature: Signature,
}

impl ConfusionMatrixFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl Default for ConfusionMatrixFunc {
    fn default() -> Self {
        Self::new()
    }
}

fn row_fields() -> Fields {
    Fields::from(vec![
        Field::new("actual", DataType::Utf8, false),
        Field::new("predicted", DataType::Utf8, false),
        Field::new("count", DataType::Int64, false),
    ])
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DocSection { include: true, label: "Model validation", description: None },
        "Counts the rows of each (actual, predicted) pair of labels. Returns a list of rows {actual, predicted, count} ordered by actual, then predicted; pairs that never occur are left out. Rows where either label is NULL are skipped. Labels may be text, integers or booleans. Mergeable, so it runs under GROUP BY.",
        "confusion_matrix(predicted, actual)",
    )
    .with_argument("predicted", "The model's label, e.g. intent(text).")
    .with_argument("actual", "The reviewed label.")
    .with_sql_example("SELECT c['actual'], c['predicted'], c['count'] FROM (SELECT unnest(confusion_matrix(intent(m.text), l.label)) AS c FROM messages m JOIN labels l USING (message_id)) WHERE c['actual'] <> c['predicted'];")
    .build()
});

impl AggregateUDFImpl for ConfusionMatrixFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        label_counts::coerce(NAME, arg_types)
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::List(label_counts::item_field(row_fields())))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(label_counts::state_fields(args.name))
    }

    fn accumulator(&self, _: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(LabelAccumulator::new(matrix)))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

/// The counted pairs as one list value, in label order.
fn matrix(counts: &LabelCounts) -> Result<ScalarValue> {
    let pairs = counts.by_actual();
    let (mut actual, mut predicted, mut count) = (
        StringBuilder::new(),
        StringBuilder::new(),
        Int64Builder::new(),
    );
    for ((a, p), n) in &pairs {
        actual.append_value(a);
        predicted.append_value(p);
        count.append_value(*n);
    }
    label_counts::list_of_rows(
        row_fields(),
        vec![
            Arc::new(actual.finish()),
            Arc::new(predicted.finish()),
            Arc::new(count.finish()),
        ],
        pairs.len(),
    )
}
