//! `intent(text, ['billing', 'shipping', 'returns'])`: zero-shot intent with a registered sentence-embedding
//! model. The text and each label are embedded by the same model and the label nearest in cosine wins, so an
//! analyst gets a classifier for labels of their own without a single labelled row.
//!
//! This function takes over the name `intent` in every session; with one argument it is the built-in
//! `intent(text)` unchanged.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};

use colloquy_udfs::ColloquyOptions;
use colloquy_udfs::strings::{is_text_type, text_values};

use crate::model::{Answers, OnnxModel};
use crate::registry::ModelRegistry;

const NAME: &str = "intent";

#[derive(Debug)]
pub struct ZeroShotIntent {
    builtin: ScalarUDF,
    registry: Arc<ModelRegistry>,
    signature: Signature,
}

impl ZeroShotIntent {
    pub fn new(builtin: ScalarUDF, registry: Arc<ModelRegistry>) -> Self {
        Self {
            builtin,
            registry,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }

    /// The encoder named by `colloquy.intent.embedding_model`, else the only one registered.
    fn encoder(&self, setting: &str) -> Result<Arc<OnnxModel>> {
        let encoders: Vec<Arc<OnnxModel>> = self
            .registry
            .live()
            .into_iter()
            .map(|(m, _)| m)
            .filter(|m| m.is_sentence_encoder())
            .collect();
        if !setting.is_empty() {
            return match encoders
                .into_iter()
                .find(|m| m.name == setting.to_ascii_lowercase())
            {
                Some(m) => Ok(m),
                None => exec_err!(
                    "{NAME}(text, labels): colloquy.intent.embedding_model is '{setting}', but no sentence-embedding function of that name is registered (CREATE FUNCTION {setting}(TEXT) RETURNS FLOAT[] LANGUAGE ONNX AS '<transformer .onnx with tokenizer.json beside it>')"
                ),
            };
        }
        match encoders.len() {
            1 => Ok(Arc::clone(&encoders[0])),
            0 => exec_err!(
                "{NAME}(text, labels) needs a sentence-embedding model: register one first, e.g. CREATE FUNCTION embed(TEXT) RETURNS FLOAT[] LANGUAGE ONNX AS 'models/minilm/model.onnx' (tokenizer.json beside it)"
            ),
            _ => {
                let names: Vec<&str> = encoders.iter().map(|m| m.name.as_str()).collect();
                exec_err!(
                    "{NAME}(text, labels): several sentence-embedding functions are registered ({}); choose one with SET colloquy.intent.embedding_model = '<name>'",
                    names.join(", ")
                )
            }
        }
    }
}

impl PartialEq for ZeroShotIntent {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.registry, &other.registry)
    }
}

impl Eq for ZeroShotIntent {}

impl std::hash::Hash for ZeroShotIntent {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        NAME.hash(state);
    }
}

fn is_text(t: &DataType) -> bool {
    is_text_type(t) || t.is_null()
}

fn label_list_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DocSection { include: true, label: "Text functions", description: None },
        "intent(text): the customer-service intent from the built-in model (see intent_scores for its labels). intent(text, labels): zero-shot — the label of the list whose embedding is nearest (cosine) to the text's, with a registered sentence-embedding model (CREATE FUNCTION ... RETURNS FLOAT[] LANGUAGE ONNX; the only one registered, or the one named by colloquy.intent.embedding_model). Labels are embedded as written, with '_' read as a space. NULL for NULL text.",
        "intent(text [, labels])",
    )
    .with_argument("text", "A customer message.")
    .with_argument("labels", "Optional list of candidate labels, e.g. ['billing', 'shipping', 'returns'] (a constant or a column of lists).")
    .with_sql_example("CREATE FUNCTION embed(TEXT) RETURNS FLOAT[384] LANGUAGE ONNX AS 'models/minilm/model.onnx';\nSELECT intent('my parcel never came', ['billing', 'shipping', 'returns']);\n-- shipping")
    .with_related_udf("intent_confidence")
    .build()
});

impl ScalarUDFImpl for ZeroShotIntent {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [_] => self.builtin.coerce_types(arg_types),
            [text, labels] => {
                if !is_text(text) {
                    return plan_err!("{NAME}(): argument 1 must be text, got {text}");
                }
                let ok = match labels {
                    DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
                        is_text(f.data_type())
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

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types.len() {
            1 => self.builtin.return_type(arg_types),
            _ => Ok(DataType::Utf8),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if args.args.len() == 1 {
            return self.builtin.invoke_with_args(args);
        }
        let setting = args
            .config_options
            .extensions
            .get::<ColloquyOptions>()
            .map(|o| o.intent.embedding_model.clone())
            .unwrap_or_default();
        let n = args.number_rows;
        let texts = args.args[0].to_array(n)?;
        let labels = args.args[1].to_array(n)?;
        let model = self.encoder(&setting)?;
        let answers = zero_shot(&model, &texts, &labels)?;
        Ok(ColumnarValue::Array(answers))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

fn vectors(model: &OnnxModel, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
    match model.run(texts)? {
        Answers::Vectors(v) => Ok(v),
        _ => exec_err!(
            "{NAME}(text, labels): {} did not return embeddings",
            model.name
        ),
    }
}

/// Labels nearest to each text; label embeddings computed once per distinct label list.
fn zero_shot(model: &OnnxModel, texts: &ArrayRef, labels: &ArrayRef) -> Result<ArrayRef> {
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
            let v = vectors(model, &refs)?;
            by_list.insert(names.clone(), v);
        }
        row_lists.push(Some(names));
    }
    let wanted: Vec<&str> = texts
        .iter()
        .zip(&row_lists)
        .filter_map(|(t, l)| l.as_ref().and(*t))
        .collect();
    let embedded = vectors(model, &wanted)?;
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

/// Wraps the session's built-in `intent` so that `intent(text, labels)` works too.
pub fn register(ctx: &datafusion::prelude::SessionContext, registry: Arc<ModelRegistry>) {
    use datafusion::execution::FunctionRegistry;
    if let Ok(builtin) = ctx.udf(NAME) {
        ctx.register_udf(ScalarUDF::new_from_impl(ZeroShotIntent::new(
            builtin.as_ref().clone(),
            registry,
        )));
    }
}
