//! `classification_report(predicted, actual)`: precision, recall, F1 and support per label, with the
//! accuracy and the macro and weighted averages, as one list of rows. Validates a model against reviewed
//! labels inside the query (`GROUP BY channel, week`), the way scikit-learn's report of the same name does.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Float64Builder, Int64Builder, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, DocSection, Documentation, Signature, Volatility,
};

use crate::label_counts::{self, LabelAccumulator, LabelCounts, Scores};

const NAME: &str = "classification_report";

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ClassificationReportFunc {
    signature: Signature,
}

impl ClassificationReportFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl Default for ClassificationReportFunc {
    fn default() -> Self {
        Self::new()
    }
}

fn row_fields() -> Fields {
    Fields::from(vec![
        Field::new("label", DataType::Utf8, false),
        Field::new("precision", DataType::Float64, true),
        Field::new("recall", DataType::Float64, true),
        Field::new("f1", DataType::Float64, false),
        Field::new("support", DataType::Int64, false),
    ])
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DocSection { include: true, label: "Model validation", description: None },
        "Scores predicted labels against actual (reviewed) labels. Returns a list of rows {label, precision, recall, f1, support}: one per label seen as predicted or actual, in label order, then 'accuracy' (f1 holds the share of rows predicted right; precision and recall are NULL), 'macro avg' (the unweighted mean over labels) and 'weighted avg' (weighted by support); support of the last three is the number of rows. A ratio over zero rows is 0 (a label never predicted has precision 0). Rows where either label is NULL are skipped. Labels may be text, integers or booleans. The state is one count per distinct (predicted, actual) pair, so it runs under GROUP BY over any number of rows.",
        "classification_report(predicted, actual)",
    )
    .with_argument("predicted", "The model's label, e.g. intent(text).")
    .with_argument("actual", "The reviewed label.")
    .with_sql_example("SELECT channel, unnest(classification_report(intent(m.text), l.label)) FROM messages m JOIN labels l USING (message_id) GROUP BY channel;")
    .build()
});

impl AggregateUDFImpl for ClassificationReportFunc {
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
        Ok(Box::new(LabelAccumulator::new(report)))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

/// One row of the report: label, precision, recall, F1, support (precision and recall are NULL on the
/// accuracy row).
type Row = (String, Option<f64>, Option<f64>, f64, i64);

/// The report of the counted pairs, as one list value.
fn report(counts: &LabelCounts) -> Result<ScalarValue> {
    let (per_label, accuracy, total) = label_counts::scores(counts);
    let mut rows: Vec<Row> = per_label
        .iter()
        .map(|(l, s)| {
            (
                l.clone(),
                Some(s.precision),
                Some(s.recall),
                s.f1,
                s.support,
            )
        })
        .collect();
    if !per_label.is_empty() {
        let n = per_label.len() as f64;
        let mean = |f: fn(&Scores) -> f64| per_label.iter().map(|(_, s)| f(s)).sum::<f64>() / n;
        let weighted = |f: fn(&Scores) -> f64| {
            if total == 0 {
                0.0
            } else {
                per_label
                    .iter()
                    .map(|(_, s)| f(s) * s.support as f64)
                    .sum::<f64>()
                    / total as f64
            }
        };
        rows.push(("accuracy".into(), None, None, accuracy, total));
        rows.push((
            "macro avg".into(),
            Some(mean(|s| s.precision)),
            Some(mean(|s| s.recall)),
            mean(|s| s.f1),
            total,
        ));
        rows.push((
            "weighted avg".into(),
            Some(weighted(|s| s.precision)),
            Some(weighted(|s| s.recall)),
            weighted(|s| s.f1),
            total,
        ));
    }
    let (mut label, mut precision, mut recall, mut f1, mut support) = (
        StringBuilder::new(),
        Float64Builder::new(),
        Float64Builder::new(),
        Float64Builder::new(),
        Int64Builder::new(),
    );
    for (l, p, r, f, s) in &rows {
        label.append_value(l);
        precision.append_option(*p);
        recall.append_option(*r);
        f1.append_value(*f);
        support.append_value(*s);
    }
    label_counts::list_of_rows(
        row_fields(),
        vec![
            Arc::new(label.finish()),
            Arc::new(precision.finish()),
            Arc::new(recall.finish()),
            Arc::new(f1.finish()),
            Arc::new(support.finish()),
        ],
        rows.len(),
    )
}
