//! A loaded ONNX model: what kind it is, what the SQL function returns from it, and inference over a batch
//! of texts.
//!
//! Two kinds take text:
//! - **text-tensor models** (scikit-learn pipelines exported with skl2onnx): one string tensor input,
//!   `[N]` or `[N, 1]`; a label output (strings or integers) and/or a probability matrix `[N, C]`.
//! - **transformers**: `input_ids` (and usually `attention_mask`, `token_type_ids`) made by the Hugging
//!   Face `tokenizer.json` stored next to the model; a float output `[N, T, H]` (token embeddings, mean
//!   pooled over the attention mask and L2-normalised into a sentence embedding) or `[N, C]` (logits).

use std::sync::Mutex;

use colloquy_classifier::{Classifier, Scratch};
use datafusion::arrow::datatypes::DataType;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::{DynTensor, Tensor, TensorElementType, ValueType};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer};

use crate::error::{OnnxError, Result};

/// What the SQL function returns, chosen by the declared return type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Output {
    /// A string type: the predicted label.
    Label,
    /// A floating type: the top probability, or the single score of a regression/binary model.
    Score,
    /// A list type: the probability vector, the logits, or the sentence embedding.
    Vector,
}

impl Output {
    pub fn for_type(t: &DataType) -> Option<Self> {
        match t {
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => Some(Output::Label),
            DataType::Float32 | DataType::Float64 => Some(Output::Score),
            DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _)
                if matches!(f.data_type(), DataType::Float32 | DataType::Float64) =>
            {
                Some(Output::Vector)
            }
            _ => None,
        }
    }
}

/// The answers for a batch of texts, one per text.
#[derive(Debug)]
pub enum Answers {
    Labels(Vec<String>),
    Scores(Vec<f64>),
    Vectors(Vec<Vec<f32>>),
}

/// How a model takes its text and where its answers are.
enum Kind {
    TextTensor {
        input: String,
        rank: usize,
        /// A rank-1 output of strings or integers.
        label: Option<String>,
        /// A float output `[N, C]` or `[N]`.
        scores: Option<String>,
    },
    /// A model train_classifier() wrote, read back into its Rust scorer.
    Native(Box<Classifier>),
    Transformer {
        tokenizer: Box<Tokenizer>,
        input_ids: String,
        attention_mask: Option<String>,
        token_type_ids: Option<String>,
        output: String,
        /// 3: token embeddings to pool; 2: one vector (logits or a pooled embedding) per text.
        output_rank: usize,
    },
}

/// One `CREATE FUNCTION ... LANGUAGE ONNX` model.
pub struct OnnxModel {
    pub name: String,
    pub source: String,
    /// blake3 of the model file, hex.
    pub checksum: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub output: Output,
    /// Class names for labels from scores (model metadata `labels`, or `id2label` of a `config.json`).
    pub labels: Vec<String>,
    bytes: Vec<u8>,
    kind: Kind,
    threads: usize,
    /// Sessions not in use; one is created whenever every existing one is busy (one per partition).
    pool: Mutex<Vec<Session>>,
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxModel")
            .field("name", &self.name)
            .field("source", &self.source)
            .field("checksum", &self.checksum)
            .finish()
    }
}

/// Texts per run of a transformer: padding is to the longest text of the run, so small runs waste less.
const TRANSFORMER_BATCH: usize = 32;
/// Texts per run of a string-tensor model: TF-IDF graphs build a dense `[rows, vocabulary]` matrix, so a
/// whole 8,192-row Arrow batch against a 60,000-n-gram vocabulary would need 2 GB.
const TEXT_BATCH: usize = 256;

fn describe(name: &str, t: &ValueType) -> String {
    match t {
        ValueType::Tensor { ty, shape, .. } => {
            let dims: Vec<String> = shape
                .iter()
                .map(|d| {
                    if *d < 0 {
                        "?".to_string()
                    } else {
                        d.to_string()
                    }
                })
                .collect();
            format!("{name}: {ty} [{}]", dims.join(", "))
        }
        other => format!("{name}: {other}"),
    }
}

fn tensor_info(t: &ValueType) -> Option<(TensorElementType, Vec<i64>)> {
    match t {
        ValueType::Tensor { ty, shape, .. } => Some((*ty, shape.to_vec())),
        _ => None,
    }
}

/// A session over the model's bytes. The runtime is checked first: every `ort` call, even building an
/// `ort::Error`, needs the library loaded.
pub fn new_session(bytes: &[u8], threads: usize) -> Result<Session> {
    let env = crate::runtime::environment()?;
    open_session(env, bytes, threads).map_err(|e| OnnxError::Runtime(e.to_string()))
}

fn open_session(
    env: &ort::environment::Environment,
    bytes: &[u8],
    threads: usize,
) -> ort::Result<Session> {
    Session::builder(env)?
        .with_intra_threads(threads.max(1))?
        .with_optimization_level(GraphOptimizationLevel::Level3)?
        .commit_from_memory(bytes)
}

/// Says what to do about the errors users meet with exported text models.
fn explain(source: &str, e: impl std::fmt::Display) -> OnnxError {
    let text = e.to_string();
    let hint = if text.contains("Failed to construct locale") {
        " (the model's StringNormalizer names a locale this machine does not have; re-export it with locale 'C.UTF-8', or install that locale)"
    } else {
        ""
    };
    OnnxError::model(source, format!("{text}{hint}"))
}

impl OnnxModel {
    /// The model file's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Opens the model, works out its kind, and checks that it can answer with `return_type`.
    /// `tokenizer` is the `tokenizer.json` next to the model, when there is one; `config` its
    /// `config.json` (labels of a classifier).
    pub fn load(
        name: &str,
        source: &str,
        bytes: Vec<u8>,
        tokenizer: Option<Vec<u8>>,
        config: Option<Vec<u8>>,
        return_type: &DataType,
        threads: usize,
    ) -> Result<Self> {
        let output = Output::for_type(return_type).ok_or_else(|| {
            OnnxError::Statement(format!(
                "CREATE FUNCTION {name}: RETURNS {return_type} is not something an ONNX model can give; declare a string type (the label), a floating type (the score) or a list of floats such as FLOAT[] or FLOAT[384] (probabilities or embedding)"
            ))
        })?;
        let model = match Classifier::from_onnx(&bytes) {
            // A model train_classifier() wrote: scored in Rust over sparse features, which gives ONNX
            // Runtime's answers (tests/support/onnx.rs compares them) without its dense TF-IDF matrix.
            Some(classifier) => Self::native(name, source, bytes, classifier, output),
            None => Self::with_runtime(name, source, bytes, tokenizer, config, output, threads)?,
        };
        // One real run now, so that a shape or type mismatch is an error of CREATE FUNCTION, not of the
        // first query.
        let probe = model.run(&["hello"])?;
        if let (DataType::FixedSizeList(_, n), Answers::Vectors(v)) = (return_type, &probe) {
            let got = v.first().map_or(0, Vec::len);
            if got != *n as usize {
                return Err(OnnxError::model(
                    source,
                    format!(
                        "RETURNS declares {n} values but the model gives {got}: declare FLOAT[{got}] (or FLOAT[])"
                    ),
                ));
            }
        }
        Ok(model)
    }

    /// A train_classifier() model, scored by [`Classifier`] itself.
    fn native(
        name: &str,
        source: &str,
        bytes: Vec<u8>,
        classifier: Classifier,
        output: Output,
    ) -> Self {
        let classes = classifier.labels.len();
        OnnxModel {
            name: name.to_string(),
            source: source.to_string(),
            checksum: blake3::hash(&bytes).to_hex().to_string(),
            inputs: vec!["text: string [N, 1]".into()],
            outputs: vec![
                "label: string [N]".into(),
                format!("probabilities: float [N, {classes}]"),
            ],
            output,
            labels: classifier.labels.clone(),
            bytes,
            kind: Kind::Native(Box::new(classifier)),
            threads: 1,
            pool: Mutex::new(Vec::new()),
        }
    }

    /// Any other model, opened in ONNX Runtime.
    fn with_runtime(
        name: &str,
        source: &str,
        bytes: Vec<u8>,
        tokenizer: Option<Vec<u8>>,
        config: Option<Vec<u8>>,
        output: Output,
        threads: usize,
    ) -> Result<Self> {
        let session = new_session(&bytes, threads).map_err(|e| explain(source, e))?;
        let inputs: Vec<String> = session
            .inputs()
            .iter()
            .map(|i| describe(i.name(), i.dtype()))
            .collect();
        let outputs: Vec<String> = session
            .outputs()
            .iter()
            .map(|o| describe(o.name(), o.dtype()))
            .collect();
        let mut labels: Vec<String> = session
            .metadata()
            .ok()
            .and_then(|m| m.custom("labels"))
            .map(|l| parse_labels(&l))
            .unwrap_or_default();
        if let Some(l) = config.as_deref().and_then(id2label) {
            labels = l;
        }
        let input_names: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        let kind = if input_names.contains(&"input_ids") {
            let Some(tok) = tokenizer else {
                return Err(OnnxError::model(
                    source,
                    "the model takes input_ids: put its tokenizer.json in the same folder as the model",
                ));
            };
            let mut tokenizer = Tokenizer::from_bytes(&tok)
                .map_err(|e| OnnxError::model(source, format!("tokenizer.json: {e}")))?;
            // Pad each run to its longest text rather than a fixed length: the pooled result is the same.
            let padding = tokenizer.get_padding().cloned().unwrap_or_default();
            tokenizer.with_padding(Some(PaddingParams {
                strategy: PaddingStrategy::BatchLongest,
                ..padding
            }));
            for i in session.inputs() {
                let ok = matches!(tensor_info(i.dtype()), Some((TensorElementType::Int64, _)));
                if !ok || !matches!(i.name(), "input_ids" | "attention_mask" | "token_type_ids") {
                    return Err(OnnxError::model(
                        source,
                        format!(
                            "input {} is not one colloquy can fill (a transformer takes int64 input_ids, attention_mask and token_type_ids)",
                            describe(i.name(), i.dtype())
                        ),
                    ));
                }
            }
            let out = session
                .outputs()
                .iter()
                .find(|o| {
                    matches!(
                        tensor_info(o.dtype()),
                        Some((TensorElementType::Float32, ref s)) if s.len() == 2 || s.len() == 3
                    )
                })
                .ok_or_else(|| {
                    OnnxError::model(
                        source,
                        format!(
                            "no float32 output of rank 2 or 3 (outputs: {})",
                            outputs.join(", ")
                        ),
                    )
                })?;
            let output_rank = tensor_info(out.dtype()).map_or(0, |(_, s)| s.len());
            if output_rank == 3 && output != Output::Vector {
                return Err(OnnxError::model(
                    source,
                    format!(
                        "{} holds token embeddings: declare RETURNS FLOAT[] (or FLOAT[n]) to get the mean-pooled sentence embedding",
                        describe(out.name(), out.dtype())
                    ),
                ));
            }
            Kind::Transformer {
                tokenizer: Box::new(tokenizer),
                input_ids: "input_ids".into(),
                attention_mask: input_names
                    .contains(&"attention_mask")
                    .then(|| "attention_mask".into()),
                token_type_ids: input_names
                    .contains(&"token_type_ids")
                    .then(|| "token_type_ids".into()),
                output: out.name().to_string(),
                output_rank,
            }
        } else {
            let [input] = session.inputs() else {
                return Err(OnnxError::model(
                    source,
                    format!(
                        "colloquy feeds a model one text: either one string tensor input (scikit-learn via skl2onnx) or input_ids with a tokenizer.json (transformers); this one takes {}",
                        inputs.join(", ")
                    ),
                ));
            };
            let (ty, shape) =
                tensor_info(input.dtype()).unwrap_or((TensorElementType::Float32, vec![]));
            if ty != TensorElementType::String || !(1..=2).contains(&shape.len()) {
                return Err(OnnxError::model(
                    source,
                    format!(
                        "its input {} is not text: colloquy feeds a string tensor [N] or [N, 1], or input_ids with a tokenizer.json",
                        describe(input.name(), input.dtype())
                    ),
                ));
            }
            let mut label = None;
            let mut scores = None;
            for o in session.outputs() {
                match tensor_info(o.dtype()) {
                    Some((TensorElementType::String | TensorElementType::Int64, s))
                        if s.len() == 1 && label.is_none() =>
                    {
                        label = Some(o.name().to_string());
                    }
                    Some((TensorElementType::Float32, s))
                        if (1..=2).contains(&s.len()) && scores.is_none() =>
                    {
                        scores = Some(o.name().to_string());
                    }
                    None if matches!(o.dtype(), ValueType::Sequence(_)) => {
                        return Err(OnnxError::model(
                            source,
                            format!(
                                "output {} is a sequence of maps (skl2onnx's ZipMap): export with options={{'zipmap': False}}",
                                o.name()
                            ),
                        ));
                    }
                    _ => {}
                }
            }
            let usable = match output {
                Output::Label => label.is_some() || scores.is_some(),
                Output::Score | Output::Vector => scores.is_some(),
            };
            if !usable {
                return Err(OnnxError::model(
                    source,
                    format!(
                        "no output gives {} (outputs: {})",
                        match output {
                            Output::Label => "a label",
                            Output::Score => "a score",
                            Output::Vector => "a probability vector",
                        },
                        outputs.join(", ")
                    ),
                ));
            }
            Kind::TextTensor {
                input: input.name().to_string(),
                rank: shape.len(),
                label,
                scores,
            }
        };
        let model = OnnxModel {
            name: name.to_string(),
            source: source.to_string(),
            checksum: blake3::hash(&bytes).to_hex().to_string(),
            inputs,
            outputs,
            output,
            labels,
            bytes,
            kind,
            threads,
            pool: Mutex::new(vec![session]),
        };
        Ok(model)
    }

    /// Describes the model for `onnx_models()`.
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            Kind::TextTensor { .. } => "text classifier (string tensor)",
            Kind::Transformer { output_rank: 3, .. } => {
                "transformer encoder (mean-pooled embedding)"
            }
            Kind::Transformer { .. } => "transformer (one vector per text)",
            Kind::Native(_) => "text classifier (train_classifier, scored in Rust)",
        }
    }

    /// A transformer encoder answering mean-pooled, normalised sentence embeddings.
    pub fn is_sentence_encoder(&self) -> bool {
        matches!(self.kind, Kind::Transformer { output_rank: 3, .. })
            && matches!(self.output, Output::Vector)
    }

    /// Runs the model over `texts` (no NULLs: the caller skips them) and returns one answer per text.
    pub fn run(&self, texts: &[&str]) -> Result<Answers> {
        if texts.is_empty() {
            // Some exported graphs reject an empty batch: nothing to ask.
            return Ok(match self.output {
                Output::Label => Answers::Labels(Vec::new()),
                Output::Score => Answers::Scores(Vec::new()),
                Output::Vector => Answers::Vectors(Vec::new()),
            });
        }
        if let Kind::Native(classifier) = &self.kind {
            return Ok(self.run_native(classifier, texts));
        }
        let mut session = match self.pool.lock().map(|mut p| p.pop()) {
            Ok(Some(s)) => s,
            _ => new_session(&self.bytes, self.threads).map_err(|e| self.failed(e))?,
        };
        let result = match &self.kind {
            Kind::TextTensor {
                input,
                rank,
                label,
                scores,
            } => in_chunks(texts, TEXT_BATCH, |chunk| {
                self.run_text(&mut session, chunk, input, *rank, label, scores)
            }),
            Kind::Transformer { .. } => in_chunks(texts, TRANSFORMER_BATCH, |chunk| {
                self.run_transformer(&mut session, chunk)
            }),
            Kind::Native(_) => Ok(Answers::Labels(Vec::new())),
        };
        if let Ok(mut p) = self.pool.lock() {
            p.push(session);
        }
        result
    }

    fn run_native(&self, classifier: &Classifier, texts: &[&str]) -> Answers {
        let (mut scratch, mut p) = (Scratch::default(), Vec::new());
        let mut each = |text: &str, answer: &mut dyn FnMut(&[f32])| {
            classifier.probabilities_into(text, &mut scratch, &mut p);
            answer(&p);
        };
        match self.output {
            Output::Label => {
                let mut labels = Vec::with_capacity(texts.len());
                for t in texts {
                    each(t, &mut |p| labels.push(classifier.label_for(p).to_string()));
                }
                Answers::Labels(labels)
            }
            Output::Score => {
                let mut scores = Vec::with_capacity(texts.len());
                for t in texts {
                    each(t, &mut |p| scores.push(score_of(p)));
                }
                Answers::Scores(scores)
            }
            Output::Vector => {
                let mut vectors = Vec::with_capacity(texts.len());
                for t in texts {
                    each(t, &mut |p| vectors.push(p.to_vec()));
                }
                Answers::Vectors(vectors)
            }
        }
    }

    fn failed(&self, e: impl std::fmt::Display) -> OnnxError {
        OnnxError::Inference {
            function: self.name.clone(),
            reason: e.to_string(),
        }
    }

    fn run_text(
        &self,
        session: &mut Session,
        texts: &[&str],
        input: &str,
        rank: usize,
        label: &Option<String>,
        scores: &Option<String>,
    ) -> Result<Answers> {
        // ONNX Runtime's strings are C strings: a NUL would end the text early, so it becomes a space.
        let owned: Vec<String> = texts.iter().map(|t| t.replace('\0', " ")).collect();
        let n = owned.len();
        let tensor = if rank == 2 {
            Tensor::from_string_array(([n, 1usize], &*owned))
        } else {
            Tensor::from_string_array(([n], &*owned))
        }
        .map_err(|e| self.failed(e))?;
        let outputs = session
            .run(ort::inputs![input => tensor])
            .map_err(|e| self.failed(e))?;
        let probs = |name: &str| -> Result<(usize, Vec<f32>)> {
            let (shape, data) = outputs[name]
                .try_extract_tensor::<f32>()
                .map_err(|e| self.failed(e))?;
            let cols = if shape.len() == 2 {
                shape[1].max(1) as usize
            } else {
                1
            };
            Ok((cols, data.to_vec()))
        };
        match self.output {
            Output::Label => {
                if let Some(name) = label {
                    let value = &outputs[name.as_str()];
                    if let Ok((_, strings)) = value.try_extract_strings() {
                        return Ok(Answers::Labels(strings));
                    }
                    let (_, ints) = value
                        .try_extract_tensor::<i64>()
                        .map_err(|e| self.failed(e))?;
                    return Ok(Answers::Labels(
                        ints.iter().map(|&i| self.label_of(i as usize)).collect(),
                    ));
                }
                let (cols, data) = probs(scores.as_deref().unwrap_or_default())?;
                Ok(Answers::Labels(
                    data.chunks(cols)
                        .map(|row| self.label_of(argmax(row)))
                        .collect(),
                ))
            }
            Output::Score => {
                let (cols, data) = probs(scores.as_deref().unwrap_or_default())?;
                Ok(Answers::Scores(data.chunks(cols).map(score_of).collect()))
            }
            Output::Vector => {
                let (cols, data) = probs(scores.as_deref().unwrap_or_default())?;
                Ok(Answers::Vectors(
                    data.chunks(cols).map(<[f32]>::to_vec).collect(),
                ))
            }
        }
    }

    fn run_transformer(&self, session: &mut Session, texts: &[&str]) -> Result<Answers> {
        let Kind::Transformer {
            tokenizer,
            input_ids,
            attention_mask,
            token_type_ids,
            output,
            output_rank,
        } = &self.kind
        else {
            return Err(self.failed("not a transformer"));
        };
        let encodings = tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| self.failed(format!("tokenizer: {e}")))?;
        let b = encodings.len();
        let l = encodings.first().map_or(0, |e| e.get_ids().len()).max(1);
        let flat = |f: fn(&tokenizers::Encoding) -> &[u32]| -> Vec<i64> {
            encodings
                .iter()
                .flat_map(|e| {
                    let v = f(e);
                    (0..l).map(move |j| v.get(j).map_or(0, |&x| i64::from(x)))
                })
                .collect()
        };
        let mask = flat(|e| e.get_attention_mask());
        let mut inputs: Vec<(String, DynTensor)> = vec![(
            input_ids.clone(),
            Tensor::from_array(([b, l], flat(|e| e.get_ids())))
                .map_err(|e| self.failed(e))?
                .upcast(),
        )];
        if let Some(name) = attention_mask {
            inputs.push((
                name.clone(),
                Tensor::from_array(([b, l], mask.clone()))
                    .map_err(|e| self.failed(e))?
                    .upcast(),
            ));
        }
        if let Some(name) = token_type_ids {
            inputs.push((
                name.clone(),
                Tensor::from_array(([b, l], flat(|e| e.get_type_ids())))
                    .map_err(|e| self.failed(e))?
                    .upcast(),
            ));
        }
        let outputs = session.run(inputs).map_err(|e| self.failed(e))?;
        let (shape, data) = outputs[output.as_str()]
            .try_extract_tensor::<f32>()
            .map_err(|e| self.failed(e))?;
        if *output_rank == 3 {
            let (t, h) = (shape[1] as usize, shape[2] as usize);
            let vectors = (0..b)
                .map(|i| {
                    let mut v = vec![0f32; h];
                    let mut count = 0f32;
                    for j in 0..t.min(l) {
                        if mask[i * l + j] == 1 {
                            count += 1.0;
                            let row = &data[(i * t + j) * h..(i * t + j + 1) * h];
                            v.iter_mut().zip(row).for_each(|(a, x)| *a += x);
                        }
                    }
                    let count = count.max(1.0);
                    v.iter_mut().for_each(|a| *a /= count);
                    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                    v.iter_mut().for_each(|a| *a /= norm);
                    v
                })
                .collect();
            return Ok(Answers::Vectors(vectors));
        }
        let cols = (shape[1] as usize).max(1);
        let rows = data.chunks(cols);
        Ok(match self.output {
            Output::Label => Answers::Labels(rows.map(|r| self.label_of(argmax(r))).collect()),
            Output::Score => Answers::Scores(rows.map(|r| score_of(&softmax(r))).collect()),
            Output::Vector => Answers::Vectors(rows.map(<[f32]>::to_vec).collect()),
        })
    }

    fn label_of(&self, i: usize) -> String {
        self.labels
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("LABEL_{i}"))
    }
}

/// Runs `run` over `texts` in chunks of `size` and joins the answers; the first error stops it.
fn in_chunks<'a>(
    texts: &[&'a str],
    size: usize,
    mut run: impl FnMut(&[&'a str]) -> Result<Answers>,
) -> Result<Answers> {
    let mut all: Option<Answers> = None;
    for chunk in texts.chunks(size) {
        all = Some(append(all, run(chunk)?));
    }
    Ok(all.unwrap_or(Answers::Labels(Vec::new())))
}

fn append(acc: Option<Answers>, next: Answers) -> Answers {
    match (acc, next) {
        (None, n) => n,
        (Some(Answers::Labels(mut a)), Answers::Labels(b)) => {
            a.extend(b);
            Answers::Labels(a)
        }
        (Some(Answers::Scores(mut a)), Answers::Scores(b)) => {
            a.extend(b);
            Answers::Scores(a)
        }
        (Some(Answers::Vectors(mut a)), Answers::Vectors(b)) => {
            a.extend(b);
            Answers::Vectors(a)
        }
        (Some(a), _) => a,
    }
}

fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv { (i, v) } else { (bi, bv) }
        })
        .0
}

/// One column: the value itself; two: the probability of the second (positive) class; more: the top one.
fn score_of(row: &[f32]) -> f64 {
    match row {
        [v] => f64::from(*v),
        [_, p] => f64::from(*p),
        _ => f64::from(row.iter().copied().fold(f32::NEG_INFINITY, f32::max)),
    }
}

fn softmax(row: &[f32]) -> Vec<f32> {
    if row.len() < 2 {
        return row.to_vec();
    }
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = row.iter().map(|x| (x - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.iter().map(|x| x / sum).collect()
}

/// Labels stored in model metadata: a JSON list, or comma-separated.
fn parse_labels(text: &str) -> Vec<String> {
    if let Ok(serde_json::Value::Array(items)) = serde_json::from_str::<serde_json::Value>(text) {
        return items
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect();
    }
    text.split(',').map(|s| s.trim().to_string()).collect()
}

/// `id2label` of a Hugging Face `config.json`, in id order.
fn id2label(config: &[u8]) -> Option<Vec<String>> {
    let v: serde_json::Value = serde_json::from_slice(config).ok()?;
    let map = v.get("id2label")?.as_object()?;
    let mut pairs: Vec<(usize, String)> = map
        .iter()
        .filter_map(|(k, v)| Some((k.parse().ok()?, v.as_str()?.to_string())))
        .collect();
    pairs.sort();
    Some(pairs.into_iter().map(|(_, l)| l).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_and_labels() {
        assert_eq!(score_of(&[0.25]), 0.25);
        assert_eq!(score_of(&[0.25, 0.75]), 0.75);
        assert_eq!(score_of(&[0.1, 0.7, 0.2]), f64::from(0.7f32));
        assert_eq!(argmax(&[0.1, 0.7, 0.2]), 1);
        assert_eq!(parse_labels("[\"a\", \"b\"]"), vec!["a", "b"]);
        assert_eq!(parse_labels("a, b"), vec!["a", "b"]);
        assert_eq!(
            id2label(br#"{"id2label": {"1": "POSITIVE", "0": "NEGATIVE"}}"#),
            Some(vec!["NEGATIVE".to_string(), "POSITIVE".to_string()])
        );
        let p = softmax(&[1.0, 1.0]);
        assert!((p[0] - 0.5).abs() < 1e-6);
    }
}
