//! The trained classifier as an ONNX model.
//!
//! Only the handful of `onnx.proto` messages a graph of standard operators needs are declared, with the
//! field numbers of the ONNX specification; prost encodes them.
//!
//! Graph (`text` is `[N, 1]` strings like scikit-learn exports, so tools that take skl2onnx models take it):
//! Reshape → StringNormalizer (lower case) → { Tokenizer (words) → TfIdfVectorizer → L2 Normalizer,
//! Tokenizer (characters) → TfIdfVectorizer → L2 Normalizer } → Concat → LinearClassifier (softmax) →
//! `label` and `probabilities`; with an out-of-scope threshold, ReduceMax → Less → Where picks the
//! out-of-scope label for rows whose top probability is below it.

use prost::Message;

use crate::features::{Branch, PAD, WORD_PATTERN, key_len, key_tokens};
use crate::options::Options;
use crate::train::{Classifier, Vocabulary};

#[derive(Clone, PartialEq, Message)]
struct ModelProto {
    #[prost(int64, tag = "1")]
    ir_version: i64,
    #[prost(string, tag = "2")]
    producer_name: String,
    #[prost(string, tag = "3")]
    producer_version: String,
    #[prost(string, tag = "6")]
    doc_string: String,
    #[prost(message, optional, tag = "7")]
    graph: Option<GraphProto>,
    #[prost(message, repeated, tag = "8")]
    opset_import: Vec<OperatorSetIdProto>,
    #[prost(message, repeated, tag = "14")]
    metadata_props: Vec<StringStringEntryProto>,
}

#[derive(Clone, PartialEq, Message)]
struct OperatorSetIdProto {
    #[prost(string, tag = "1")]
    domain: String,
    #[prost(int64, tag = "2")]
    version: i64,
}

#[derive(Clone, PartialEq, Message)]
struct StringStringEntryProto {
    #[prost(string, tag = "1")]
    key: String,
    #[prost(string, tag = "2")]
    value: String,
}

#[derive(Clone, PartialEq, Message)]
struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    node: Vec<NodeProto>,
    #[prost(string, tag = "2")]
    name: String,
    #[prost(message, repeated, tag = "5")]
    initializer: Vec<TensorProto>,
    #[prost(message, repeated, tag = "11")]
    input: Vec<ValueInfoProto>,
    #[prost(message, repeated, tag = "12")]
    output: Vec<ValueInfoProto>,
}

#[derive(Clone, PartialEq, Message)]
struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    output: Vec<String>,
    #[prost(string, tag = "3")]
    name: String,
    #[prost(string, tag = "4")]
    op_type: String,
    #[prost(message, repeated, tag = "5")]
    attribute: Vec<AttributeProto>,
    #[prost(string, tag = "7")]
    domain: String,
}

/// `AttributeProto.AttributeType` values.
const INT: i32 = 2;
const STRING: i32 = 3;
const FLOATS: i32 = 6;
const INTS: i32 = 7;
const STRINGS: i32 = 8;

#[derive(Clone, PartialEq, Message)]
struct AttributeProto {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(float, tag = "2")]
    f: f32,
    #[prost(int64, tag = "3")]
    i: i64,
    #[prost(bytes = "vec", tag = "4")]
    s: Vec<u8>,
    #[prost(float, repeated, tag = "7")]
    floats: Vec<f32>,
    #[prost(int64, repeated, tag = "8")]
    ints: Vec<i64>,
    #[prost(bytes = "vec", repeated, tag = "9")]
    strings: Vec<Vec<u8>>,
    #[prost(int32, tag = "20")]
    r#type: i32,
}

/// `TensorProto.DataType` values.
const T_FLOAT: i32 = 1;
const T_STRING: i32 = 8;
const T_INT64: i32 = 7;

#[derive(Clone, PartialEq, Message)]
struct TensorProto {
    #[prost(int64, repeated, tag = "1")]
    dims: Vec<i64>,
    #[prost(int32, tag = "2")]
    data_type: i32,
    #[prost(float, repeated, tag = "4")]
    float_data: Vec<f32>,
    #[prost(bytes = "vec", repeated, tag = "6")]
    string_data: Vec<Vec<u8>>,
    #[prost(int64, repeated, tag = "7")]
    int64_data: Vec<i64>,
    #[prost(string, tag = "8")]
    name: String,
}

#[derive(Clone, PartialEq, Message)]
struct ValueInfoProto {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(message, optional, tag = "2")]
    r#type: Option<TypeProto>,
}

#[derive(Clone, PartialEq, Message)]
struct TypeProto {
    #[prost(message, optional, tag = "1")]
    tensor_type: Option<TensorTypeProto>,
}

#[derive(Clone, PartialEq, Message)]
struct TensorTypeProto {
    #[prost(int32, tag = "1")]
    elem_type: i32,
    #[prost(message, optional, tag = "2")]
    shape: Option<TensorShapeProto>,
}

#[derive(Clone, PartialEq, Message)]
struct TensorShapeProto {
    #[prost(message, repeated, tag = "1")]
    dim: Vec<Dimension>,
}

#[derive(Clone, PartialEq, Message)]
struct Dimension {
    #[prost(int64, optional, tag = "1")]
    dim_value: Option<i64>,
    #[prost(string, optional, tag = "2")]
    dim_param: Option<String>,
}

fn attr(name: &str, r#type: i32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type,
        ..Default::default()
    }
}
fn int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        i,
        ..attr(name, INT)
    }
}
fn string(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        s: s.as_bytes().to_vec(),
        ..attr(name, STRING)
    }
}
fn ints(name: &str, ints: Vec<i64>) -> AttributeProto {
    AttributeProto {
        ints,
        ..attr(name, INTS)
    }
}
fn floats(name: &str, floats: Vec<f32>) -> AttributeProto {
    AttributeProto {
        floats,
        ..attr(name, FLOATS)
    }
}
fn strings(name: &str, strings: Vec<String>) -> AttributeProto {
    AttributeProto {
        strings: strings.into_iter().map(String::into_bytes).collect(),
        ..attr(name, STRINGS)
    }
}

fn node(
    op: &str,
    domain: &str,
    input: &[&str],
    output: &[&str],
    attribute: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        input: input.iter().map(|s| s.to_string()).collect(),
        output: output.iter().map(|s| s.to_string()).collect(),
        name: output[0].to_string(),
        op_type: op.into(),
        attribute,
        domain: domain.into(),
    }
}

fn value(name: &str, elem_type: i32, dims: &[Option<i64>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| match d {
            Some(v) => Dimension {
                dim_value: Some(*v),
                dim_param: None,
            },
            None => Dimension {
                dim_value: None,
                dim_param: Some("N".into()),
            },
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type,
                shape: Some(TensorShapeProto { dim }),
            }),
        }),
    }
}

const ML: &str = "ai.onnx.ml";
const MS: &str = "com.microsoft";

/// Tokenizer → TfIdfVectorizer → L2 Normalizer for one tokenizer's n-grams; returns the output name.
fn branch_nodes(
    nodes: &mut Vec<NodeProto>,
    branch: Branch,
    vocab: &Vocabulary,
    (lo, hi): (usize, usize),
) -> String {
    let prefix = match branch {
        Branch::Word => "word",
        Branch::Char => "char",
    };
    let tokens = format!("{prefix}_tokens");
    let mut tokenizer = vec![
        int("mark", 0),
        int("mincharnum", 1),
        string("pad_value", &PAD.to_string()),
    ];
    tokenizer.push(match branch {
        Branch::Word => string("tokenexp", WORD_PATTERN),
        Branch::Char => strings("separators", vec![String::new()]),
    });
    nodes.push(node("Tokenizer", MS, &["lowered"], &[&tokens], tokenizer));
    // The pool lists all 1-grams, then all 2-grams, ...; ngram_counts[n-1] is where the n-grams start.
    let mut counts = vec![0i64; hi];
    let mut pool = Vec::new();
    for key in &vocab.keys {
        pool.extend(key_tokens(branch, key));
    }
    for n in 1..=hi {
        let before = vocab
            .keys
            .iter()
            .filter(|k| key_len(branch, k) < n)
            .map(|k| key_len(branch, k))
            .sum::<usize>();
        counts[n - 1] = before as i64;
    }
    let tfidf = format!("{prefix}_tfidf");
    nodes.push(node(
        "TfIdfVectorizer",
        "",
        &[&tokens],
        &[&tfidf],
        vec![
            int("min_gram_length", lo as i64),
            int("max_gram_length", hi as i64),
            int("max_skip_count", 0),
            string("mode", "TFIDF"),
            ints("ngram_counts", counts),
            ints("ngram_indexes", (0..vocab.len() as i64).collect()),
            strings("pool_strings", pool),
            floats("weights", vocab.idf.clone()),
        ],
    ));
    let normalised = format!("{prefix}_features");
    nodes.push(node(
        "Normalizer",
        ML,
        &[&tfidf],
        &[&normalised],
        vec![string("norm", "L2")],
    ));
    normalised
}

pub(crate) fn export(m: &Classifier) -> Vec<u8> {
    let c = m.labels.len();
    let mut nodes = vec![
        node("Reshape", "", &["text", "flat_shape"], &["flat"], vec![]),
        // C.UTF-8 is the one locale every glibc system has (en_US.UTF-8, StringNormalizer's default, is
        // missing on minimal images and makes ONNX Runtime refuse the model).
        node(
            "StringNormalizer",
            "",
            &["flat"],
            &["lowered"],
            vec![
                string("case_change_action", "LOWER"),
                int("is_case_sensitive", 0),
                string("locale", "C.UTF-8"),
            ],
        ),
    ];
    let mut parts = Vec::new();
    if !m.words.is_empty() {
        parts.push(branch_nodes(
            &mut nodes,
            Branch::Word,
            &m.words,
            m.options.word_ngrams,
        ));
    }
    if !m.chars.is_empty() {
        parts.push(branch_nodes(
            &mut nodes,
            Branch::Char,
            &m.chars,
            m.options.char_ngrams,
        ));
    }
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    nodes.push(node(
        "Concat",
        "",
        &parts,
        &["features"],
        vec![int("axis", 1)],
    ));
    // LinearClassifier wants the coefficients class by class.
    let n_features = m.words.len() + m.chars.len();
    let mut coefficients = Vec::with_capacity(n_features * c);
    for j in 0..c {
        coefficients.extend((0..n_features).map(|f| m.weights[f * c + j]));
    }
    let label = if m.options.oos_threshold.is_some() {
        "top_label"
    } else {
        "label"
    };
    nodes.push(node(
        "LinearClassifier",
        ML,
        &["features"],
        &[label, "probabilities"],
        vec![
            strings("classlabels_strings", m.labels.clone()),
            floats("coefficients", coefficients),
            floats("intercepts", m.bias.clone()),
            int("multi_class", 1),
            string("post_transform", "SOFTMAX"),
        ],
    ));
    let mut initializer = vec![TensorProto {
        dims: vec![1],
        data_type: T_INT64,
        int64_data: vec![-1],
        name: "flat_shape".into(),
        ..Default::default()
    }];
    if let Some(threshold) = m.options.oos_threshold {
        nodes.push(node(
            "ReduceMax",
            "",
            &["probabilities"],
            &["top_probability"],
            vec![ints("axes", vec![1]), int("keepdims", 0)],
        ));
        nodes.push(node(
            "Less",
            "",
            &["top_probability", "oos_threshold"],
            &["is_oos"],
            vec![],
        ));
        nodes.push(node(
            "Where",
            "",
            &["is_oos", "oos_label", "top_label"],
            &["label"],
            vec![],
        ));
        initializer.push(TensorProto {
            dims: vec![1],
            data_type: T_FLOAT,
            float_data: vec![threshold],
            name: "oos_threshold".into(),
            ..Default::default()
        });
        initializer.push(TensorProto {
            dims: vec![1],
            data_type: T_STRING,
            string_data: vec![m.options.oos_label.clone().into_bytes()],
            name: "oos_label".into(),
            ..Default::default()
        });
    }
    let graph = GraphProto {
        node: nodes,
        name: "colloquy_text_classifier".into(),
        initializer,
        input: vec![value("text", T_STRING, &[None, Some(1)])],
        output: vec![
            value("label", T_STRING, &[None]),
            value("probabilities", T_FLOAT, &[None, Some(c as i64)]),
        ],
    };
    let labels = serde_json::to_string(&m.labels).unwrap_or_default();
    let model = ModelProto {
        ir_version: 8,
        producer_name: PRODUCER.into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: format!(
            "TF-IDF word and character n-grams + softmax regression, trained on {} rows",
            m.report.rows
        ),
        graph: Some(graph),
        opset_import: vec![
            OperatorSetIdProto {
                domain: String::new(),
                version: 17,
            },
            OperatorSetIdProto {
                domain: ML.into(),
                version: 1,
            },
            OperatorSetIdProto {
                domain: MS.into(),
                version: 1,
            },
        ],
        metadata_props: vec![
            StringStringEntryProto {
                key: "labels".into(),
                value: labels,
            },
            StringStringEntryProto {
                key: "options".into(),
                value: m.options.describe(),
            },
            StringStringEntryProto {
                key: "word_tokens".into(),
                value: WORD_PATTERN.into(),
            },
        ],
    };
    model.encode_to_vec()
}

const PRODUCER: &str = "colloquy train_classifier";

/// Reads back a model that [`export`] wrote: the vocabulary from the TfIdfVectorizer pools, the idf from
/// their weights, the weights from the LinearClassifier, the options from the metadata. `None` for a
/// model from anywhere else or one that does not have the expected shape.
pub(crate) fn import(bytes: &[u8]) -> Option<Classifier> {
    let model = ModelProto::decode(bytes).ok()?;
    if model.producer_name != PRODUCER {
        return None;
    }
    let meta = |key: &str| {
        model
            .metadata_props
            .iter()
            .find(|p| p.key == key)
            .map(|p| p.value.as_str())
    };
    let options = Options::parse(meta("options")?).ok()?;
    let graph = model.graph.as_ref()?;
    let node = |output: &str| {
        graph
            .node
            .iter()
            .find(|n| n.output.first().is_some_and(|o| o == output))
    };
    let attr = |n: &NodeProto, name: &str| n.attribute.iter().find(|a| a.name == name).cloned();
    let vocabulary = |branch: Branch, output: &str, range: (usize, usize)| -> Option<Vocabulary> {
        if range.1 == 0 {
            return Some(Vocabulary::default());
        }
        let Some(n) = node(output) else {
            // A branch without features is left out of the graph.
            return Some(Vocabulary::default());
        };
        let pool: Vec<String> = attr(n, "pool_strings")?
            .strings
            .into_iter()
            .map(String::from_utf8)
            .collect::<Result<_, _>>()
            .ok()?;
        let counts = attr(n, "ngram_counts")?.ints;
        let idf = attr(n, "weights")?.floats;
        let indexes = attr(n, "ngram_indexes")?.ints;
        let mut keys = Vec::with_capacity(idf.len());
        for (i, &start) in counts.iter().enumerate() {
            let len = i + 1;
            let end = counts.get(i + 1).map_or(pool.len() as i64, |&e| e) as usize;
            let start = start as usize;
            if start > end || end > pool.len() || !(end - start).is_multiple_of(len) {
                return None;
            }
            for gram in pool[start..end].chunks(len) {
                keys.push(match branch {
                    Branch::Word => gram.join(" "),
                    Branch::Char => gram.concat(),
                });
            }
        }
        let in_order = indexes.iter().enumerate().all(|(i, &x)| x == i as i64);
        (keys.len() == idf.len() && indexes.len() == keys.len() && in_order)
            .then(|| Vocabulary::new(keys, idf))
    };
    let words = vocabulary(Branch::Word, "word_tfidf", options.word_ngrams)?;
    let chars = vocabulary(Branch::Char, "char_tfidf", options.char_ngrams)?;
    let classifier = graph
        .node
        .iter()
        .find(|n| n.op_type == "LinearClassifier")?;
    let labels: Vec<String> = attr(classifier, "classlabels_strings")?
        .strings
        .into_iter()
        .map(String::from_utf8)
        .collect::<Result<_, _>>()
        .ok()?;
    let coefficients = attr(classifier, "coefficients")?.floats;
    let bias = attr(classifier, "intercepts")?.floats;
    let (c, f) = (labels.len(), words.len() + chars.len());
    if c < 2 || coefficients.len() != c * f || bias.len() != c {
        return None;
    }
    // Back to one row per feature.
    let mut weights = vec![0.0f32; f * c];
    for j in 0..c {
        for i in 0..f {
            weights[i * c + j] = coefficients[j * f + i];
        }
    }
    Some(Classifier::from_parts(
        labels, options, words, chars, weights, bias,
    ))
}
