//! ONNX functions on a cluster. `CREATE FUNCTION` runs in the client's session; its plans then carry
//! the function as a [`ModelSpec`]: the model's URL and content hash (or, for a model trained by a
//! query, its bytes). The scheduler plans with a stand-in that knows the name and type
//! ([`RemoteOnnxFunc`]); each executor fetches the model once, checks its hash and keeps it ([`Models`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use colloquy_onnx::udf::OnnxFunc;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, plan_err};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use prost::Message;
use serde::{Deserialize, Serialize};

/// An ONNX function as it travels in a plan.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelSpec {
    pub name: String,
    /// Where the model file is; for a model trained by a query, a description and `bytes`.
    pub source: String,
    /// BLAKE3 of the model file, hex: what the executor checks the file it fetches against.
    pub checksum: String,
    pub return_type: DataType,
    /// The model itself, when no store holds it (trained by `train_classifier` in the query of
    /// `CREATE FUNCTION ... RETURN (SELECT ...)`).
    pub bytes: Option<Vec<u8>>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    name: String,
    source: String,
    checksum: String,
    /// Lengths of the return type (DataFusion's protobuf) and of the inline model, after the header.
    type_len: usize,
    bytes_len: Option<usize>,
}

impl ModelSpec {
    /// The spec of an ONNX function (or of the scheduler's stand-in); `None` for any other function.
    pub fn of(udf: &ScalarUDF) -> Result<Option<Self>> {
        if let Some(remote) = udf.inner().downcast_ref::<RemoteOnnxFunc>() {
            return Ok(Some(remote.spec.clone()));
        }
        let Some(f) = udf.inner().downcast_ref::<OnnxFunc>() else {
            return Ok(None);
        };
        let model = f.model();
        // A relative path is the client's: executors run elsewhere.
        let location = colloquy_store::Location::parse(&model.source)
            .ok()
            .filter(|_| !model.source.starts_with("query ("));
        let fetchable = location.is_some();
        Ok(Some(Self {
            name: model.name.clone(),
            source: location.map_or_else(|| model.source.clone(), |l| l.portable()),
            checksum: model.checksum.clone(),
            return_type: f.declared_type().clone(),
            bytes: (!fetchable).then(|| model.bytes().to_vec()),
        }))
    }

    /// Header length (4 bytes), the header (JSON), the return type, the inline model.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let arrow_type = datafusion_proto::protobuf::ArrowType::try_from(&self.return_type)
            .map_err(|e| DataFusionError::Internal(format!("encoding {}: {e}", self.name)))?
            .encode_to_vec();
        let header = serde_json::to_vec(&Header {
            name: self.name.clone(),
            source: self.source.clone(),
            checksum: self.checksum.clone(),
            type_len: arrow_type.len(),
            bytes_len: self.bytes.as_ref().map(Vec::len),
        })
        .map_err(|e| DataFusionError::Internal(e.to_string()))?;
        let mut out = Vec::with_capacity(4 + header.len() + arrow_type.len());
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&arrow_type);
        if let Some(b) = &self.bytes {
            out.extend_from_slice(b);
        }
        Ok(out)
    }

    pub fn decode(buf: &[u8]) -> Result<Self> {
        let cut = || DataFusionError::Internal("an ONNX function was cut short in the plan".into());
        let (len, rest) = buf.split_at_checked(4).ok_or_else(cut)?;
        let len = u32::from_le_bytes(len.try_into().map_err(|_| cut())?) as usize;
        let (header, rest) = rest.split_at_checked(len).ok_or_else(cut)?;
        let header: Header = serde_json::from_slice(header)
            .map_err(|e| DataFusionError::Internal(format!("an ONNX function in the plan: {e}")))?;
        let (arrow_type, rest) = rest.split_at_checked(header.type_len).ok_or_else(cut)?;
        let arrow_type = datafusion_proto::protobuf::ArrowType::decode(arrow_type)
            .map_err(|e| DataFusionError::Internal(e.to_string()))?;
        let return_type = DataType::try_from(&arrow_type)
            .map_err(|e| DataFusionError::Internal(e.to_string()))?;
        let bytes = match header.bytes_len {
            Some(n) if n == rest.len() => Some(rest.to_vec()),
            Some(_) => return Err(cut()),
            None => None,
        };
        Ok(Self {
            name: header.name,
            source: header.source,
            checksum: header.checksum,
            return_type,
            bytes,
        })
    }
}

/// The scheduler's stand-in for an ONNX function: it has the name and type to plan with and never
/// runs (the scheduler does not load models; executors do).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RemoteOnnxFunc {
    spec: ModelSpec,
    signature: Signature,
}

impl RemoteOnnxFunc {
    pub fn new(spec: ModelSpec) -> Self {
        Self {
            spec,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for RemoteOnnxFunc {
    fn name(&self) -> &str {
        &self.spec.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [t] => Ok(vec![t.clone()]),
            _ => plan_err!("{}() takes one text argument", self.spec.name),
        }
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(self.spec.return_type.clone())
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        exec_err!(
            "{}() runs on the cluster's executors, which load its model ({}); it was asked to run where the plan was made",
            self.spec.name,
            self.spec.source
        )
    }
}

/// An executor's ONNX functions, loaded once per model (name, content hash and type).
#[derive(Debug, Default)]
pub struct Models {
    loaded: Mutex<HashMap<ModelSpecKey, Arc<ScalarUDF>>>,
    /// Where models are fetched from: the executor's stores (credentials from its environment).
    env: Mutex<Option<Arc<RuntimeEnv>>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ModelSpecKey {
    name: String,
    checksum: String,
    return_type: DataType,
}

impl Models {
    /// Models are fetched through `env`'s object stores.
    pub fn with_env(env: Arc<RuntimeEnv>) -> Self {
        Self {
            loaded: Mutex::default(),
            env: Mutex::new(Some(env)),
        }
    }

    /// The function for `spec`: loaded on first use, its file's hash checked against the one the
    /// client registered.
    pub fn function(&self, spec: ModelSpec) -> Result<Arc<ScalarUDF>> {
        let key = ModelSpecKey {
            name: spec.name.clone(),
            checksum: spec.checksum.clone(),
            return_type: spec.return_type.clone(),
        };
        if let Some(f) = self
            .loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return Ok(Arc::clone(f));
        }
        let env = self
            .env
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or_else(|| colloquy::runtime_env(None));
        let load = async {
            match spec.bytes.clone() {
                Some(bytes) => {
                    colloquy_onnx::load_bytes(&spec.name, bytes, &spec.return_type, 1).await
                }
                None => {
                    colloquy_onnx::load_url(
                        &env,
                        &spec.name,
                        spec.source.clone(),
                        &spec.return_type,
                        1,
                    )
                    .await
                }
            }
        };
        let model = colloquy_archive::provider::block_on(load)??;
        if model.checksum != spec.checksum {
            return exec_err!(
                "{}(): the model file at {} is not the one CREATE FUNCTION registered (BLAKE3 {} then, {} now); run CREATE OR REPLACE FUNCTION {} again",
                spec.name,
                spec.source,
                spec.checksum.get(..16).unwrap_or(&spec.checksum),
                model.checksum.get(..16).unwrap_or(&model.checksum),
                spec.name
            );
        }
        let f = Arc::new(ScalarUDF::new_from_impl(OnnxFunc::new(
            model,
            spec.return_type.clone(),
        )));
        self.loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, Arc::clone(&f));
        Ok(f)
    }
}
