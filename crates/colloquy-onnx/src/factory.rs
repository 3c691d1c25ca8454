//! `CREATE [OR REPLACE] FUNCTION name(TEXT) RETURNS <type> LANGUAGE ONNX AS '<url>'`: DataFusion's
//! FunctionFactory for ONNX models read from any object store colloquy can read archives from.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};

use async_trait::async_trait;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::dataframe::DataFrame;
use datafusion::execution::context::{FunctionFactory, RegisterFunction, SessionState};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::{CreateFunction, Expr, LogicalPlan, ScalarUDF};
use object_store::ObjectStoreExt;
use object_store::path::Path;

use colloquy_store::Location;
use colloquy_udfs::ColloquyOptions;

use crate::error::OnnxError;
use crate::model::OnnxModel;
use crate::registry::ModelRegistry;
use crate::udf::OnnxFunc;

/// Creates ONNX-backed functions and records them in the session's [`ModelRegistry`].
#[derive(Debug, Default)]
pub struct OnnxFunctionFactory {
    registry: Arc<ModelRegistry>,
}

impl OnnxFunctionFactory {
    pub fn new(registry: Arc<ModelRegistry>) -> Self {
        Self { registry }
    }
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8)
}

#[async_trait]
impl FunctionFactory for OnnxFunctionFactory {
    async fn create(&self, state: &SessionState, stmt: CreateFunction) -> Result<RegisterFunction> {
        // Unquoted names are looked up in lower case.
        let name = stmt.name.to_ascii_lowercase();
        let language = stmt
            .params
            .language
            .as_ref()
            .map(|l| l.value.to_ascii_lowercase());
        if language.as_deref() != Some("onnx") {
            return plan_err!(
                "CREATE FUNCTION {name}: colloquy creates functions from ONNX models only (LANGUAGE ONNX AS '<url of the .onnx file>'), got LANGUAGE {}",
                language.as_deref().unwrap_or("(none)")
            );
        }
        if let Some(args) = &stmt.args
            && (args.len() != 1 || !is_text(&args[0].data_type))
        {
            let got: Vec<String> = args.iter().map(|a| a.data_type.to_string()).collect();
            return plan_err!(
                "CREATE FUNCTION {name}: an ONNX function takes one text argument, e.g. {name}(TEXT); got ({})",
                got.join(", ")
            );
        }
        let Some(return_type) = stmt.return_type.clone() else {
            return plan_err!(
                "CREATE FUNCTION {name}: RETURNS is required (a string type for the label, a floating type for the score, FLOAT[] or FLOAT[n] for probabilities or embeddings)"
            );
        };
        let source = match &stmt.params.function_body {
            Some(Expr::Literal(
                ScalarValue::Utf8(Some(s))
                | ScalarValue::Utf8View(Some(s))
                | ScalarValue::LargeUtf8(Some(s)),
                _,
            )) => Source::Url(s.clone()),
            Some(Expr::ScalarSubquery(q)) => Source::Query(q.subquery.as_ref().clone()),
            _ => {
                return plan_err!(
                    "CREATE FUNCTION {name}: give the model as AS '<url>' (a path or an s3://, gs://, az://, http(s):// URL of the .onnx file) or RETURN (SELECT train_classifier(text, label) FROM ...)"
                );
            }
        };
        if !stmt.or_replace && state.scalar_functions().contains_key(&name) {
            return plan_err!(
                "CREATE FUNCTION {name}: a function named {name} already exists (CREATE OR REPLACE FUNCTION replaces it)"
            );
        }
        let threads = state
            .config_options()
            .extensions
            .get::<ColloquyOptions>()
            .map_or(1, |o| o.onnx.intra_threads);
        let model = match source {
            Source::Url(url) => {
                load_url(state.runtime_env(), &name, url, &return_type, threads).await?
            }
            Source::Query(plan) => from_query(state, &name, plan, &return_type, threads).await?,
        };
        let owner = state
            .config()
            .get_extension::<crate::registry::ModelOwner>()
            .map_or_else(|| "operator".to_string(), |o| o.0.clone());
        let ledger = state
            .config()
            .get_extension::<crate::registry::ModelLedgerView>();
        self.registry
            .record(&model, &return_type, &owner, ledger.as_deref());
        tracing::info!(function = %name, source = %model.source, checksum = %model.checksum, "registered ONNX model");
        Ok(RegisterFunction::Scalar(Arc::new(
            ScalarUDF::new_from_impl(OnnxFunc::new(model, return_type)),
        )))
    }
}

/// Where the model of a CREATE FUNCTION comes from.
enum Source {
    Url(String),
    /// A query returning the model's bytes, e.g. `SELECT train_classifier(text, label) FROM t`.
    Query(LogicalPlan),
}

/// Reads the model (and a transformer's tokenizer.json and config.json beside it) from an object store
/// of `env`; a model already loaded from the same unchanged files is shared.
pub async fn load_url(
    env: &RuntimeEnv,
    name: &str,
    url: String,
    return_type: &DataType,
    threads: usize,
) -> Result<Arc<OnnxModel>> {
    let name = name.to_string();
    let return_type = return_type.clone();
    let location = Location::parse(&url).map_err(|e| OnnxError::Statement(e.to_string()))?;
    let store = env.object_store(ObjectStoreUrl::parse(location.store_url().as_str())?)?;
    // A transformer's tokenizer (and a classifier's labels) sit next to the model, as Hugging Face
    // exports them.
    let sibling = |file: &str| {
        let p = location.prefix.as_ref();
        let dir = p.rsplit_once('/').map_or("", |(d, _)| d);
        Path::from(if dir.is_empty() {
            file.to_string()
        } else {
            format!("{dir}/{file}")
        })
    };
    let (tokenizer_path, config_path) = (sibling("tokenizer.json"), sibling("config.json"));
    // Every client session of the server has a context of its own: the same files, unchanged, under
    // the same name and type, give the model already in memory.
    let Some(model_version) = version(&store, &location.prefix, &url).await? else {
        return Err(OnnxError::Fetch {
            url: url.clone(),
            reason: "no such object".into(),
        }
        .into());
    };
    let key = format!(
        "{name}|{url}|{return_type}|{threads}|{model_version}|{:?}|{:?}",
        version(&store, &tokenizer_path, &url).await?,
        version(&store, &config_path, &url).await?
    );
    let cached = LOADED
        .lock()
        .ok()
        .and_then(|m| m.get(&key).and_then(Weak::upgrade));
    let model = match cached {
        Some(m) => m,
        None => {
            let bytes = fetch(&store, &location.prefix, &url)
                .await?
                .ok_or_else(|| OnnxError::Fetch {
                    url: url.clone(),
                    reason: "no such object".into(),
                })?;
            let tokenizer = fetch(&store, &tokenizer_path, &url).await?;
            let config = fetch(&store, &config_path, &url).await?;
            let (n, u, rt) = (name.clone(), url.clone(), return_type.clone());
            // Opening a session compiles the graph (up to a second for a transformer): not on an IO
            // thread.
            let model = tokio::task::spawn_blocking(move || {
                OnnxModel::load(&n, &u, bytes, tokenizer, config, &rt, threads)
            })
            .await
            .map_err(|e| OnnxError::model(&url, format!("loading was interrupted: {e}")))??;
            let model = Arc::new(model);
            if let Ok(mut m) = LOADED.lock() {
                m.retain(|_, w| w.strong_count() > 0);
                m.insert(key, Arc::downgrade(&model));
            }
            model
        }
    };
    Ok(model)
}

/// Runs the query and loads the one binary value it returns.
async fn from_query(
    state: &SessionState,
    name: &str,
    plan: LogicalPlan,
    return_type: &DataType,
    threads: usize,
) -> Result<Arc<OnnxModel>> {
    let batches = DataFrame::new(state.clone(), plan).collect().await?;
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let columns = batches.first().map_or(0, |b| b.num_columns());
    if rows != 1 || columns != 1 {
        return plan_err!(
            "CREATE FUNCTION {name}: the query must return one row with one column (the model's bytes, e.g. SELECT train_classifier(text, label) FROM t); it returned {rows} row(s) of {columns} column(s)"
        );
    }
    let Some(batch) = batches.iter().find(|b| b.num_rows() == 1) else {
        return plan_err!("CREATE FUNCTION {name}: the query returned no row");
    };
    let column = batch.column(0);
    let bytes = match column.data_type() {
        DataType::Binary => column.as_binary::<i32>(),
        other => {
            return plan_err!(
                "CREATE FUNCTION {name}: the query must return the model as BINARY (what train_classifier returns), got {other}"
            );
        }
    };
    if bytes.is_null(0) {
        return plan_err!(
            "CREATE FUNCTION {name}: the query returned NULL instead of a model (train_classifier gives NULL when no row has both a text and a label)"
        );
    }
    let bytes = bytes.value(0).to_vec();
    load_bytes(name, bytes, return_type, threads).await
}

/// Loads a model given as bytes (a query's result, or a model sent in a cluster's plan).
pub async fn load_bytes(
    name: &str,
    bytes: Vec<u8>,
    return_type: &DataType,
    threads: usize,
) -> Result<Arc<OnnxModel>> {
    let source = format!("query ({} bytes of ONNX)", bytes.len());
    let (n, rt) = (name.to_string(), return_type.clone());
    let model = tokio::task::spawn_blocking(move || {
        OnnxModel::load(&n, &source, bytes, None, None, &rt, threads)
    })
    .await
    .map_err(|e| OnnxError::model("query", format!("loading was interrupted: {e}")))??;
    Ok(Arc::new(model))
}

/// Models loaded in this process, by name, source, type, threads and the versions of their files.
static LOADED: LazyLock<Mutex<HashMap<String, Weak<OnnxModel>>>> = LazyLock::new(Default::default);

/// An object's version (ETag, modification time, size), `None` when it does not exist.
async fn version(
    store: &Arc<dyn object_store::ObjectStore>,
    path: &Path,
    url: &str,
) -> Result<Option<String>, OnnxError> {
    match store.head(path).await {
        Ok(m) => Ok(Some(format!(
            "{:?}/{}/{}",
            m.e_tag, m.last_modified, m.size
        ))),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(OnnxError::Fetch {
            url: url.to_string(),
            reason: e.to_string(),
        }),
    }
}

/// The bytes of one object, `None` when it does not exist.
async fn fetch(
    store: &Arc<dyn object_store::ObjectStore>,
    path: &Path,
    url: &str,
) -> Result<Option<Vec<u8>>, OnnxError> {
    let fail = |e: object_store::Error| OnnxError::Fetch {
        url: url.to_string(),
        reason: e.to_string(),
    };
    match store.get(path).await {
        Ok(r) => Ok(Some(r.bytes().await.map_err(fail)?.to_vec())),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(fail(e)),
    }
}
