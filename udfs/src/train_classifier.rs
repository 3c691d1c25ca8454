//! `train_classifier(text, label [, options])`: trains a text classifier on the labelled rows of each group
//! and returns it as ONNX model bytes, ready for `CREATE FUNCTION ... LANGUAGE ONNX RETURN (SELECT
//! train_classifier(...) ...)` or to be saved with `colloquy save-model` and run by any ONNX Runtime.

use std::any::Any;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::utils::SingleRowListArrayBuilder;
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, DocSection, Documentation, Signature, Volatility,
};
use datafusion::physical_expr::expressions::Literal;

use colloquy_classifier::Options;

use crate::strings::{is_text_type, text_values};

const NAME: &str = "train_classifier";

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TrainClassifierFunc {
    signature: Signature,
}

impl TrainClassifierFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Volatile),
        }
    }
}

impl Default for TrainClassifierFunc {
    fn default() -> Self {
        Self::new()
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DocSection { include: true, label: "Text functions", description: None },
        "Trains a text classifier on the rows of the group and returns it as an ONNX model (BINARY): TF-IDF over word 1-2-grams and character 2-5-grams (lower-cased; words are runs of letters, marks, digits and _), then multinomial logistic regression fitted by AdaGrad SGD. Rows with a NULL text or label are skipped; a group without labelled rows gives NULL, and one with fewer than two different labels is an error. Register the result with CREATE FUNCTION name(TEXT) RETURNS TEXT LANGUAGE ONNX RETURN (SELECT train_classifier(...) FROM ...), save it with the colloquy save-model command, or run it in any ONNX Runtime (input 'text' [N,1] strings; outputs 'label' and 'probabilities'). All rows of a group are held in memory while it trains.",
        "train_classifier(text, label [, options])",
    )
    .with_argument("text", "The text to classify.")
    .with_argument("label", "Its label (any type, used as text).")
    .with_argument("options", "Optional constant 'key=value, ...': word_ngrams (1-2), char_ngrams (2-5), min_df (1), max_word_features (20000), max_char_features (40000), epochs (6), learning_rate (0.05), oos_threshold (off; below this top probability the label is oos_label), oos_label ('oos'), seed (1).")
    .with_sql_example("CREATE FUNCTION ticket_topic(TEXT) RETURNS TEXT LANGUAGE ONNX RETURN\n  (SELECT train_classifier(text, topic, 'oos_threshold=0.4') FROM labelled_tickets);\nSELECT ticket_topic(text), count(*) FROM messages GROUP BY 1;")
    .build()
});

impl AggregateUDFImpl for TrainClassifierFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let (text, label) = match arg_types {
            [t, l] | [t, l, _] => (t, l),
            _ => {
                return plan_err!(
                    "{NAME}() takes (text, label [, options]), e.g. train_classifier(text, intent); got {} arguments",
                    arg_types.len()
                );
            }
        };
        if !(is_text_type(text) || text.is_null()) {
            return plan_err!("{NAME}(): argument 1 (text) must be text, got {text}");
        }
        if matches!(
            label,
            DataType::List(_) | DataType::Struct(_) | DataType::Map(..)
        ) {
            return plan_err!("{NAME}(): argument 2 (label) must be a single value, got {label}");
        }
        let mut out = vec![DataType::Utf8, DataType::Utf8];
        if let Some(options) = arg_types.get(2) {
            if !(is_text_type(options) || options.is_null()) {
                return plan_err!(
                    "{NAME}(): argument 3 (options) must be a string like 'epochs=10, oos_threshold=0.5', got {options}"
                );
            }
            out.push(DataType::Utf8);
        }
        Ok(out)
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Binary)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let list = DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)));
        Ok(vec![
            Arc::new(Field::new(
                format!("{}[texts]", args.name),
                list.clone(),
                true,
            )),
            Arc::new(Field::new(format!("{}[labels]", args.name), list, true)),
        ])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let options = match args.exprs.get(2) {
            None => Options::default(),
            Some(e) => {
                let any: &dyn Any = e.as_ref();
                let Some(lit) = any.downcast_ref::<Literal>() else {
                    return plan_err!("{NAME}(): argument 3 (options) must be a constant string");
                };
                match lit.value() {
                    ScalarValue::Utf8(Some(s))
                    | ScalarValue::LargeUtf8(Some(s))
                    | ScalarValue::Utf8View(Some(s)) => match Options::parse(s) {
                        Ok(o) => o,
                        Err(e) => return plan_err!("{e}"),
                    },
                    ScalarValue::Utf8(None) | ScalarValue::Null => Options::default(),
                    other => {
                        return plan_err!(
                            "{NAME}(): argument 3 (options) must be a constant string, got {other}"
                        );
                    }
                }
            }
        };
        Ok(Box::new(TrainAccumulator {
            options,
            texts: Vec::new(),
            labels: Vec::new(),
            bytes: 0,
        }))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

/// Holds the labelled rows of one group until it trains on them.
#[derive(Debug)]
struct TrainAccumulator {
    options: Options,
    texts: Vec<String>,
    labels: Vec<String>,
    bytes: usize,
}

impl TrainAccumulator {
    fn push(&mut self, text: &str, label: &str) {
        self.bytes += text.len() + label.len() + 2 * size_of::<String>();
        self.texts.push(text.to_string());
        self.labels.push(label.to_string());
    }

    fn list(values: &[String]) -> ScalarValue {
        let array: ArrayRef = Arc::new(StringArray::from_iter_values(values));
        SingleRowListArrayBuilder::new(array).build_list_scalar()
    }
}

impl Accumulator for TrainAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let texts = text_values(&values[0])?;
        let labels = text_values(&values[1])?;
        for (text, label) in texts.iter().zip(&labels) {
            if let (Some(t), Some(l)) = (text, label) {
                self.push(t, l);
            }
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (texts, labels) = (states[0].as_list::<i32>(), states[1].as_list::<i32>());
        for row in 0..texts.len() {
            if texts.is_null(row) || labels.is_null(row) {
                continue;
            }
            let (t, l) = (texts.value(row), labels.value(row));
            let (t, l) = (t.as_string::<i32>(), l.as_string::<i32>());
            for i in 0..t.len().min(l.len()) {
                self.push(t.value(i), l.value(i));
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![Self::list(&self.texts), Self::list(&self.labels)])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        // Like any aggregate over no rows: NULL, so that one empty group does not fail a GROUP BY.
        if self.texts.is_empty() {
            return Ok(ScalarValue::Binary(None));
        }
        let texts: Vec<&str> = self.texts.iter().map(String::as_str).collect();
        let labels: Vec<&str> = self.labels.iter().map(String::as_str).collect();
        match colloquy_classifier::train(&texts, &labels, &self.options) {
            Ok(model) => Ok(ScalarValue::Binary(Some(model.to_onnx()))),
            Err(e) => exec_err!("{e}"),
        }
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.bytes
    }
}
