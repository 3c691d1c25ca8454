//! The models a session has registered, for `onnx_models()`, and every version of them, for
//! `onnx_model_history()`: who registered which file (by its BLAKE3) when, and when it was replaced.
//!
//! A server keeps one [`ModelLedger`] for all its sessions: a user's history then holds what they
//! registered in every session (a notebook's connection of yesterday included), and a user cleared for
//! the audit trail sees everybody's. Without a ledger (`colloquy sql`) the history is the session's.
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

/// Who registers models in a session: the server puts the client's user name here; without one the
/// models are the operator's (the config's `[[model]]`, `colloquy sql`).
#[derive(Debug, Clone)]
pub struct ModelOwner(pub String);

/// One registration of a function's model.
#[derive(Debug, Clone)]
pub struct ModelVersion {
    pub name: String,
    pub checksum: String,
    pub source: String,
    pub returns: String,
    pub owner: String,
    pub registered_at: String,
    /// When `CREATE OR REPLACE FUNCTION` put another model under the name.
    pub replaced_at: Option<String>,
    /// The session it was registered in (a hash of its key), for models in a server's ledger.
    pub session: Option<String>,
}

/// Every model registered on a server, from every session, oldest first.
#[derive(Debug, Default)]
pub struct ModelLedger {
    versions: Mutex<Vec<ModelVersion>>,
}

impl ModelLedger {
    fn record(&self, version: ModelVersion) {
        if let Ok(mut h) = self.versions.lock() {
            replace(&mut h, &version);
            h.push(version);
        }
    }

    /// What `user` may see: their own registrations, or every one when `everything`.
    pub fn visible(&self, user: &str, everything: bool) -> Vec<ModelVersion> {
        self.versions
            .lock()
            .map(|h| {
                h.iter()
                    .filter(|v| everything || v.owner == user)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A server session's place in the ledger: set by the server with [`ModelLedgerView::attach`].
#[derive(Debug, Clone)]
pub struct ModelLedgerView {
    pub ledger: Arc<ModelLedger>,
    /// The session's tag in the ledger.
    pub session: String,
    /// Whether the session's user sees every user's models.
    pub everything: bool,
}

impl ModelLedgerView {
    /// From now on the session's models go to `ledger` too, and its history reads from it.
    pub fn attach(config: &mut datafusion::prelude::SessionConfig, view: ModelLedgerView) {
        config.set_extension(Arc::new(view));
    }
}

/// Marks the versions `next` replaces (the same name in the same session) as replaced now.
fn replace(history: &mut [ModelVersion], next: &ModelVersion) {
    for v in history
        .iter_mut()
        .filter(|v| v.name == next.name && v.session == next.session && v.replaced_at.is_none())
    {
        v.replaced_at = Some(next.registered_at.clone());
    }
}

#[derive(Debug, Default)]
pub struct ModelRegistry {
    models: Mutex<BTreeMap<String, (Weak<OnnxModel>, DataType)>>,
    history: Mutex<Vec<ModelVersion>>,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl ModelRegistry {
    /// Records a model registered in the session (and in the server's ledger, when `ledger` is set).
    pub fn record(
        &self,
        model: &Arc<OnnxModel>,
        returns: &DataType,
        owner: &str,
        ledger: Option<&ModelLedgerView>,
    ) {
        if let Ok(mut m) = self.models.lock() {
            m.insert(model.name.clone(), (Arc::downgrade(model), returns.clone()));
        }
        let version = ModelVersion {
            name: model.name.clone(),
            checksum: model.checksum.clone(),
            source: model.source.clone(),
            returns: returns.to_string(),
            owner: owner.to_string(),
            registered_at: now(),
            replaced_at: None,
            session: ledger.map(|l| l.session.clone()),
        };
        if let Some(l) = ledger {
            l.ledger.record(version.clone());
        }
        if let Ok(mut h) = self.history.lock() {
            replace(&mut h, &version);
            h.push(version);
        }
    }

    /// Every model registered in the session, replaced ones included, oldest first.
    pub fn history(&self) -> Vec<ModelVersion> {
        self.history.lock().map(|h| h.clone()).unwrap_or_default()
    }

    /// The history a session shows: with a ledger, the models registered before the session joined it
    /// (the operator's) and what the ledger lets its user see; else the session's own.
    pub fn history_for(&self, view: Option<&ModelLedgerView>, user: &str) -> Vec<ModelVersion> {
        let own = self.history();
        match view {
            None => own,
            Some(view) => own
                .into_iter()
                .filter(|v| v.session.is_none())
                .chain(view.ledger.visible(user, view.everything))
                .collect(),
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

fn history_schema() -> SchemaRef {
    let f = |n: &str, nullable: bool| Field::new(n, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        f("name", false),
        f("checksum", false),
        f("source", false),
        f("returns", false),
        f("owner", false),
        f("registered_at", false),
        f("replaced_at", true),
        f("session", true),
    ]))
}

/// `SELECT * FROM onnx_model_history()`: every model the session may know of (see the module), in
/// order, with its owner, when it was registered, when another replaced it, and in which session.
#[derive(Debug)]
pub struct OnnxModelHistoryFunc {
    registry: Arc<ModelRegistry>,
}

impl OnnxModelHistoryFunc {
    pub fn new(registry: Arc<ModelRegistry>) -> Self {
        Self { registry }
    }
}

impl TableFunctionImpl for OnnxModelHistoryFunc {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        if !args.exprs().is_empty() {
            return plan_err!("onnx_model_history() takes no arguments");
        }
        let config = args.session().config();
        let user = config
            .get_extension::<ModelOwner>()
            .map_or_else(|| "operator".to_string(), |o| o.0.clone());
        let view = config.get_extension::<ModelLedgerView>();
        let h = self.registry.history_for(view.as_deref(), &user);
        let col = |f: &dyn Fn(&ModelVersion) -> Option<String>| {
            Arc::new(StringArray::from(h.iter().map(f).collect::<Vec<_>>())) as _
        };
        let batch = RecordBatch::try_new(
            history_schema(),
            vec![
                col(&|v| Some(v.name.clone())),
                col(&|v| Some(v.checksum.clone())),
                col(&|v| Some(v.source.clone())),
                col(&|v| Some(v.returns.clone())),
                col(&|v| Some(v.owner.clone())),
                col(&|v| Some(v.registered_at.clone())),
                col(&|v| v.replaced_at.clone()),
                col(&|v| v.session.clone()),
            ],
        )?;
        Ok(Arc::new(MemTable::try_new(
            history_schema(),
            vec![vec![batch]],
        )?))
    }
}
