//! `intent(text)`: the customer-service request the message makes, or 'none', from the built-in model.
//! `intent(text, labels)`: zero-shot, the label of the list nearest (cosine) to the text, with a
//! sentence-embedding model the session registered; an analyst gets a classifier for labels of their
//! own without a single labelled row.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    Volatility,
};

use colloquy_textmodels::Scratch;
use colloquy_textmodels::builtin;

use crate::ColloquyOptions;
use crate::embedding::SentenceEmbedder;
use crate::scoring::{coerce_one_text, intent_threshold, model_error, text_to_label};
use crate::strings::{is_text_or_null, text_values};

const NAME: &str = "intent";

#[derive(Debug)]
pub struct IntentFunc {
    signature: Signature,
    /// What the two-argument form embeds with; `None` in a session without ONNX functions.
    embedder: Option<Arc<dyn SentenceEmbedder>>,
}

impl IntentFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
            embedder: None,
        }
    }

    /// `intent` with its zero-shot form backed by `embedder`.
    pub fn with_embedder(embedder: Arc<dyn SentenceEmbedder>) -> Self {
        Self {
            embedder: Some(embedder),
            ..Self::new()
        }
    }

    fn zero_shot(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let Some(embedder) = &self.embedder else {
            return exec_err!(
                "{NAME}(text, labels) needs a sentence-embedding model, and this session has no ONNX functions (sessions built by colloquy::new_context have them)"
            );
        };
        let setting = args
            .config_options
            .extensions
            .get::<ColloquyOptions>()
            .map(|o| o.intent.embedding_model.clone())
            .unwrap_or_default();
        let n = args.number_rows;
        let texts = args.args[0].to_array(n)?;
        let labels = args.args[1].to_array(n)?;
        let answers = zero_shot(&|t: &[&str]| embedder.embed(&setting, t), &texts, &labels)?;
        Ok(ColumnarValue::Array(answers))
    }
}

impl PartialEq for IntentFunc {
    fn eq(&self, other: &Self) -> bool {
        match (&self.embedder, &other.embedder) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for IntentFunc {}

impl std::hash::Hash for IntentFunc {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        NAME.hash(state);
        self.embedder.is_some().hash(state);
    }
}

impl Default for IntentFunc {
    fn default() -> Self {
        Self::new()
    }
}

pub(crate) const TAXONOMY_DOC: &str = "Labels: track_order, delivery, shipping_address, place_order, change_order, cancel_order, billing, payment, refund, return, account, complaint, feedback, human_agent, and none for messages that make no request (greetings, thanks, small talk) or that no label fits with enough confidence (the threshold chosen in training, or the session setting colloquy.intent.threshold).";

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DocSection { include: true, label: "Text functions", description: None },
        format!("intent(text): the customer-service intent of the message, from a model built into colloquy and trained on English support messages (with some Spanish, French, German, Portuguese and Italian). {TAXONOMY_DOC} intent(text, labels): zero-shot, the label of the list whose embedding is nearest (cosine) to the text's, with a registered sentence-embedding model (CREATE FUNCTION ... RETURNS FLOAT[] LANGUAGE ONNX; the only one registered, or the one named by colloquy.intent.embedding_model); labels are embedded as written, with '_' read as a space. NULL for NULL text."),
        "intent(text [, labels])",
    )
    .with_argument("text", "A customer message.")
    .with_argument("labels", "Optional list of candidate labels, e.g. ['billing', 'shipping', 'returns'] (a constant or a column of lists).")
    .with_sql_example("SELECT intent('where is my package? it was due on monday');\n-- track_order\nSELECT intent('thanks, have a nice day!');\n-- none\nCREATE FUNCTION embed(TEXT) RETURNS FLOAT[384] LANGUAGE ONNX AS 'models/minilm/model.onnx';\nSELECT intent('my parcel never came', ['billing', 'shipping', 'returns']);\n-- shipping")
    .with_related_udf("intent_confidence")
    .with_related_udf("intent_scores")
    .build()
});

impl ScalarUDFImpl for IntentFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [_] => coerce_one_text(NAME, arg_types),
            [text, labels] => {
                if !is_text_or_null(text) {
                    return plan_err!("{NAME}(): argument 1 must be text, got {text}");
                }
                let ok = match labels {
                    DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
                        is_text_or_null(f.data_type())
                    }
                    _ => false,
                };
                if !ok {
                    return plan_err!(
                        "{NAME}(text, labels): labels must be a list of strings, e.g. ['billing', 'shipping'], got {labels}"
                    );
                }
                Ok(vec![DataType::Utf8, label_list_type()])
            }
            _ => plan_err!(
                "{NAME}() takes (text) or (text, labels), e.g. intent(text, ['billing', 'shipping']); got {} arguments",
                arg_types.len()
            ),
        }
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if args.args.len() == 2 {
            return self.zero_shot(args);
        }
        let model = builtin::intent().map_err(model_error)?;
        let threshold = intent_threshold(NAME, &args.config_options, model.threshold())?;
        let mut scratch = Scratch::pooled(model.model());
        let mut probs = Vec::new();
        text_to_label(&args.args, args.number_rows, |text| {
            let i = model.classify_with(text, threshold, &mut scratch, &mut probs);
            Some(model.labels()[i.label].as_str())
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

fn label_list_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
}

/// Embeds a batch of texts.
type Embed<'a> = dyn Fn(&[&str]) -> Result<Vec<Vec<f32>>> + 'a;

/// The label nearest to each text; each distinct label list is embedded once per batch.
fn zero_shot(embed: &Embed<'_>, texts: &ArrayRef, labels: &ArrayRef) -> Result<ArrayRef> {
    let texts = text_values(texts)?;
    let lists = labels.as_list::<i32>();
    // Label list → the embeddings of its labels.
    let mut by_list: HashMap<Vec<String>, Vec<Vec<f32>>> = HashMap::new();
    // Which rows need an answer, and their label list.
    let mut row_lists: Vec<Option<Vec<String>>> = Vec::with_capacity(texts.len());
    for (row, text) in texts.iter().enumerate() {
        if text.is_none() || lists.is_null(row) {
            row_lists.push(None);
            continue;
        }
        let values = lists.value(row);
        let names: Vec<String> = text_values(&values)?
            .into_iter()
            .flatten()
            .map(str::to_string)
            .collect();
        if names.is_empty() {
            return exec_err!("{NAME}(text, labels): the label list of row {row} is empty");
        }
        if !by_list.contains_key(&names) {
            let prompts: Vec<String> = names.iter().map(|l| l.replace('_', " ")).collect();
            let refs: Vec<&str> = prompts.iter().map(String::as_str).collect();
            by_list.insert(names.clone(), embed(&refs)?);
        }
        row_lists.push(Some(names));
    }
    let wanted: Vec<&str> = texts
        .iter()
        .zip(&row_lists)
        .filter_map(|(t, l)| l.as_ref().and(*t))
        .collect();
    let embedded = embed(&wanted)?;
    let mut next = embedded.iter();
    let mut out = StringBuilder::new();
    for list in &row_lists {
        let (Some(list), Some(v)) = (list, list.as_ref().and_then(|_| next.next())) else {
            out.append_null();
            continue;
        };
        let Some(label_vectors) = by_list.get(list) else {
            out.append_null();
            continue;
        };
        let best = label_vectors
            .iter()
            .map(|l| l.iter().zip(v).map(|(a, b)| a * b).sum::<f32>())
            .enumerate()
            .fold(
                (0, f32::NEG_INFINITY),
                |b, (i, s)| if s > b.1 { (i, s) } else { b },
            )
            .0;
        out.append_value(&list[best]);
    }
    Ok(Arc::new(out.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{ListBuilder, StringArray};

    /// A stand-in embedder whose vectors the test fixes: one axis per keyword.
    fn embed(texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        Ok(texts
            .iter()
            .map(|t| {
                let hit = |w: &str| f32::from(u8::from(t.contains(w)));
                vec![hit("parcel"), hit("charge"), hit("weather")]
            })
            .collect())
    }

    #[test]
    fn zero_shot_picks_the_nearest_label_per_row() {
        let texts: ArrayRef = Arc::new(StringArray::from(vec![
            Some("where is my parcel"),
            Some("double charge on my card"),
            None,
            Some("weather tomorrow?"),
        ]));
        let mut lists = ListBuilder::new(StringBuilder::new());
        for _ in 0..3 {
            lists.values().append_value("billing charge");
            lists.values().append_value("parcel_delivery");
            lists.append(true);
        }
        lists.values().append_value("parcel_delivery");
        lists.values().append_value("weather");
        lists.append(true);
        let labels: ArrayRef = Arc::new(lists.finish());
        let got = zero_shot(&embed, &texts, &labels).expect("labels");
        let got = got.as_string::<i32>();
        assert_eq!(got.value(0), "parcel_delivery");
        assert_eq!(got.value(1), "billing charge");
        assert!(got.is_null(2));
        assert_eq!(got.value(3), "weather");
    }
}
