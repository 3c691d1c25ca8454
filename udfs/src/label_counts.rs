//! The state of `classification_report()` and `confusion_matrix()`: how many rows had each (predicted,
//! actual) pair. It is as large as the number of distinct pairs, never the number of rows, and partial
//! states add up, so both aggregates run under `GROUP BY` (per channel, week or model version) on any
//! number of partitions with the same answer.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListArray, StructArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Int64Type};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::Accumulator;

use crate::strings::{is_text_type, text_values};

/// Labels may be text, integers or booleans (class ids, `is_escalated`): compared as their text.
pub(crate) fn coerce(function: &str, arg_types: &[DataType]) -> Result<Vec<DataType>> {
    let [predicted, actual] = arg_types else {
        return plan_err!(
            "{function}() takes (predicted, actual), e.g. {function}(intent(text), label); got {} arguments",
            arg_types.len()
        );
    };
    for (position, (name, t)) in [("predicted", predicted), ("actual", actual)]
        .into_iter()
        .enumerate()
    {
        let label_like =
            is_text_type(t) || t.is_integer() || t.is_null() || *t == DataType::Boolean;
        if !label_like {
            return plan_err!(
                "{function}(): argument {} ({name}) must be a label: text, an integer or a boolean, got {t}",
                position + 1
            );
        }
    }
    Ok(vec![DataType::Utf8, DataType::Utf8])
}

/// The three state columns: the pairs' predicted and actual labels and their counts, as lists.
pub(crate) fn state_fields(name: &str) -> Vec<FieldRef> {
    let list = |t: DataType| DataType::List(Arc::new(Field::new_list_field(t, true)));
    vec![
        Arc::new(Field::new(
            format!("{name}[predicted]"),
            list(DataType::Utf8),
            true,
        )),
        Arc::new(Field::new(
            format!("{name}[actual]"),
            list(DataType::Utf8),
            true,
        )),
        Arc::new(Field::new(
            format!("{name}[count]"),
            list(DataType::Int64),
            true,
        )),
    ]
}

#[derive(Debug, Default)]
pub(crate) struct LabelCounts {
    /// predicted → actual → rows.
    pairs: HashMap<String, HashMap<String, i64>>,
}

impl LabelCounts {
    fn add(&mut self, predicted: &str, actual: &str, n: i64) {
        // Look up by `&str` first: a String is made only for a pair not seen before.
        match self.pairs.get_mut(predicted) {
            Some(row) => match row.get_mut(actual) {
                Some(c) => *c += n,
                None => {
                    row.insert(actual.to_string(), n);
                }
            },
            None => {
                self.pairs.insert(
                    predicted.to_string(),
                    HashMap::from([(actual.to_string(), n)]),
                );
            }
        }
    }

    /// Counts the rows of a batch; a row with either label NULL is skipped.
    pub(crate) fn update(&mut self, values: &[ArrayRef]) -> Result<()> {
        let [predicted, actual] = values else {
            return exec_err!("expected (predicted, actual), got {} columns", values.len());
        };
        let predicted = text_values(predicted)?;
        let actual = text_values(actual)?;
        for (p, a) in predicted.into_iter().zip(actual) {
            if let (Some(p), Some(a)) = (p, a) {
                self.add(p, a, 1);
            }
        }
        Ok(())
    }

    pub(crate) fn state(&self) -> Vec<ScalarValue> {
        let (mut p, mut a, mut n) = (Vec::new(), Vec::new(), Vec::new());
        for (predicted, row) in &self.pairs {
            for (actual, count) in row {
                p.push(ScalarValue::Utf8(Some(predicted.clone())));
                a.push(ScalarValue::Utf8(Some(actual.clone())));
                n.push(ScalarValue::Int64(Some(*count)));
            }
        }
        vec![
            ScalarValue::List(ScalarValue::new_list_nullable(&p, &DataType::Utf8)),
            ScalarValue::List(ScalarValue::new_list_nullable(&a, &DataType::Utf8)),
            ScalarValue::List(ScalarValue::new_list_nullable(&n, &DataType::Int64)),
        ]
    }

    pub(crate) fn merge(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [predicted, actual, counts] = states else {
            return exec_err!("expected 3 state columns, got {}", states.len());
        };
        let (predicted, actual, counts) = (
            predicted.as_list::<i32>(),
            actual.as_list::<i32>(),
            counts.as_list::<i32>(),
        );
        for row in 0..predicted.len() {
            if predicted.is_null(row) {
                continue;
            }
            let p = predicted.value(row);
            let a = actual.value(row);
            let n = counts.value(row);
            let n = n.as_primitive::<Int64Type>();
            for ((p, a), n) in text_values(&p)?.into_iter().zip(text_values(&a)?).zip(n) {
                if let (Some(p), Some(a), Some(n)) = (p, a, n) {
                    self.add(p, a, n);
                }
            }
        }
        Ok(())
    }

    /// The pairs in label order: `(actual, predicted) → rows`.
    pub(crate) fn by_actual(&self) -> BTreeMap<(&str, &str), i64> {
        let mut out = BTreeMap::new();
        for (p, row) in &self.pairs {
            for (a, n) in row {
                out.insert((a.as_str(), p.as_str()), *n);
            }
        }
        out
    }

    pub(crate) fn size(&self) -> usize {
        size_of_val(self)
            + self
                .pairs
                .iter()
                .map(|(p, row)| p.capacity() + row.keys().map(|a| a.capacity() + 48).sum::<usize>())
                .sum::<usize>()
    }
}

/// One list value of `rows` structs with `fields`, from their columns: the result of both aggregates.
pub(crate) fn list_of_rows(
    fields: Fields,
    columns: Vec<ArrayRef>,
    rows: usize,
) -> Result<ScalarValue> {
    let items = StructArray::try_new(fields.clone(), columns, None)?;
    let list = ListArray::try_new(
        item_field(fields),
        OffsetBuffer::from_lengths([rows]),
        Arc::new(items),
        None,
    )?;
    Ok(ScalarValue::List(Arc::new(list)))
}

/// The item field of the list both aggregates return.
pub(crate) fn item_field(fields: Fields) -> FieldRef {
    Arc::new(Field::new_list_field(DataType::Struct(fields), true))
}

/// The accumulator of both aggregates: they count the same pairs and differ only in what they make of
/// the counts at the end.
#[derive(Debug)]
pub(crate) struct LabelAccumulator {
    counts: LabelCounts,
    evaluate: fn(&LabelCounts) -> Result<ScalarValue>,
}

impl LabelAccumulator {
    pub(crate) fn new(evaluate: fn(&LabelCounts) -> Result<ScalarValue>) -> Self {
        Self {
            counts: LabelCounts::default(),
            evaluate,
        }
    }
}

impl Accumulator for LabelAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.counts.update(values)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.counts.merge(states)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(self.counts.state())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        (self.evaluate)(&self.counts)
    }

    fn size(&self) -> usize {
        self.counts.size()
    }
}

/// Precision, recall, F1 and support of one label, with the convention that a ratio over zero rows is 0
/// (a label never predicted has precision 0, as in scikit-learn's `zero_division=0`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Scores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: i64,
}

fn ratio(a: i64, b: i64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Per label (every label seen as predicted or actual, in order), and the accuracy over all rows.
pub(crate) fn scores(counts: &LabelCounts) -> (Vec<(String, Scores)>, f64, i64) {
    let mut tp: BTreeMap<&str, i64> = BTreeMap::new();
    let mut predicted: BTreeMap<&str, i64> = BTreeMap::new();
    let mut actual: BTreeMap<&str, i64> = BTreeMap::new();
    let mut total = 0;
    for (p, row) in &counts.pairs {
        for (a, n) in row {
            *predicted.entry(p).or_default() += n;
            *actual.entry(a).or_default() += n;
            tp.entry(p).or_default();
            tp.entry(a).or_default();
            if p == a {
                *tp.entry(p).or_default() += n;
            }
            total += n;
        }
    }
    let correct: i64 = tp.values().sum();
    let per_label = tp
        .iter()
        .map(|(label, &hits)| {
            let support = actual.get(label).copied().unwrap_or(0);
            let precision = ratio(hits, predicted.get(label).copied().unwrap_or(0));
            let recall = ratio(hits, support);
            let f1 = if precision + recall == 0.0 {
                0.0
            } else {
                2.0 * precision * recall / (precision + recall)
            };
            (
                label.to_string(),
                Scores {
                    precision,
                    recall,
                    f1,
                    support,
                },
            )
        })
        .collect();
    (per_label, ratio(correct, total), total)
}
