//! The models a session has registered, for `onnx_models()`.
//!
//! DROP FUNCTION goes straight to the session's function registry, not through the factory; the registry
//! holds models weakly, so a dropped function's model disappears from the list (and from memory) once no
//! query uses it any more.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl};
use datafusion::common::{Result, plan_err};
use datafusion::datasource::{MemTable, TableProvider};

use crate::model::OnnxModel;

#[derive(Debug, Default)]
pub struct ModelRegistry {
    models: Mutex<BTreeMap<String, (Weak<OnnxModel>, DataType)>>,
}

impl ModelRegistry {
    pub fn record(&self, model: &Arc<OnnxModel>, returns: &DataType) {
        if let Ok(mut m) = self.models.lock() {
            m.insert(model.name.clone(), (Arc::downgrade(model), returns.clone()));
        }
    }

    /// The models still registered, by function name.
    pub fn live(&self) -> Vec<(Arc<OnnxModel>, DataType)> {
        let Ok(mut m) = self.models.lock() else {
            return Vec::new();
        };
        m.retain(|_, (w, _)| w.strong_count() > 0);
        m.values()
            .filter_map(|(w, t)| Some((w.upgrade()?, t.clone())))
            .collect()
    }
}

fn schema() -> SchemaRef {
    let f = |n: &str, nullable: bool| Field::new(n, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        f("name", false),
        f("kind", false),
        f("source", false),
        f("checksum", false),
        f("returns", false),
        f("inputs", false),
        f("outputs", false),
        f("labels", true),
    ]))
}

/// `SELECT * FROM onnx_models()`: the session's ONNX functions with their model's source, blake3
/// checksum, inputs and outputs.
#[derive(Debug)]
pub struct OnnxModelsFunc {
    registry: Arc<ModelRegistry>,
}

impl OnnxModelsFunc {
    pub fn new(registry: Arc<ModelRegistry>) -> Self {
        Self { registry }
    }
}

impl TableFunctionImpl for OnnxModelsFunc {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        if !args.exprs().is_empty() {
            return plan_err!("onnx_models() takes no arguments");
        }
        let live = self.registry.live();
        let col = |f: &dyn Fn(&OnnxModel, &DataType) -> Option<String>| {
            Arc::new(StringArray::from(
                live.iter().map(|(m, t)| f(m, t)).collect::<Vec<_>>(),
            )) as _
        };
        let batch = RecordBatch::try_new(
            schema(),
            vec![
                col(&|m, _| Some(m.name.clone())),
                col(&|m, _| Some(m.kind_name().to_string())),
                col(&|m, _| Some(m.source.clone())),
                col(&|m, _| Some(m.checksum.clone())),
                col(&|_, t| Some(t.to_string())),
                col(&|m, _| Some(m.inputs.join("; "))),
                col(&|m, _| Some(m.outputs.join("; "))),
                col(&|m, _| (!m.labels.is_empty()).then(|| m.labels.join(", "))),
            ],
        )?;
        Ok(Arc::new(MemTable::try_new(schema(), vec![vec![batch]])?))
    }
}
