//! sqllogictest over a fresh colloquy session per file.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use sqllogictest::{DBOutput, DefaultColumnType};

use super::Test;

pub struct Colloquy {
    ctx: SessionContext,
}

#[async_trait]
impl sqllogictest::AsyncDB for Colloquy {
    type Error = DataFusionError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<Self::ColumnType>, Self::Error> {
        // As the CLI and the server do: the analytics views follow `messages` and `customer_identities`.
        let plan = self.ctx.state().create_logical_plan(sql).await?;
        let refresh_views = colloquy::analytics::affects_views(&plan);
        let df = self.ctx.execute_logical_plan(plan).await?;
        let schema = df.schema().as_arrow().clone();
        let batches = df.collect().await?;
        if refresh_views {
            let installed = colloquy::analytics::install_views(&self.ctx).await?;
            if let Some((name, e)) = installed.failed.into_iter().next() {
                return Err(DataFusionError::Plan(format!(
                    "the analytics view {name} was not created: {e}"
                )));
            }
        }
        if schema.fields().is_empty() {
            return Ok(DBOutput::StatementComplete(0));
        }
        let rows = super::render(&batches)?
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .map(|v| {
                        if v.is_empty() {
                            "(empty)".to_string()
                        } else {
                            v.replace('\n', "\\n")
                        }
                    })
                    .collect()
            })
            .collect();
        Ok(DBOutput::Rows {
            types: vec![DefaultColumnType::Any; schema.fields().len()],
            rows,
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "colloquy"
    }
}

pub fn slt_files() -> Vec<PathBuf> {
    let dir = super::root().join("tests").join("slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "slt"));
    files.sort();
    files
}

/// Where a file's statements run.
#[derive(Clone, Copy)]
pub enum Mode {
    /// A plain session.
    Plain,
    /// A session that keeps `conversation_messages` and `conversations` (`colloquy sql` and the server
    /// do), so the analytics files prove the kept results give the same rows.
    ViewCache,
    /// A session whose queries run on the test's Ballista cluster (a scheduler and two executors in
    /// this process, see `support::cluster`): the same expected rows prove the cluster gives the
    /// single-node results.
    Cluster,
}

/// Runs one file in a fresh session per connection.
pub async fn run_file(path: &Path, mode: Mode) -> anyhow::Result<()> {
    let cluster = match mode {
        Mode::Cluster => Some(super::cluster::url().await?),
        _ => None,
    };
    let mut runner = sqllogictest::Runner::new(move || {
        let cluster = cluster.clone();
        async move {
            let ctx = match (&cluster, mode) {
                (Some(url), _) => colloquy_cluster::remote_context(
                    url,
                    datafusion::prelude::SessionConfig::new(),
                    colloquy::runtime_env(None),
                )?,
                (None, Mode::ViewCache) => {
                    let ctx = colloquy::new_context();
                    std::sync::Arc::new(colloquy::view_cache::ViewCache::new(256 << 20))
                        .install(&ctx);
                    ctx
                }
                (None, _) => colloquy::new_context(),
            };
            Ok(Colloquy { ctx })
        }
    });
    if std::env::var_os("COLLOQUY_SLT_COMPLETE").is_some() {
        runner
            .update_test_file(
                path,
                " ",
                sqllogictest::default_validator,
                sqllogictest::default_normalizer,
                sqllogictest::default_column_validator,
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        return Ok(());
    }
    runner
        .run_file_async(path)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.display(true)))?;
    Ok(())
}

pub fn tests() -> Vec<Test> {
    let mut tests = Vec::new();
    for p in slt_files() {
        let stem = p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if stem.starts_with("analytics_") {
            let p = p.clone();
            tests.push(Test::new(format!("slt_view_cache::{stem}"), move || {
                let p = p.clone();
                async move { run_file(&p, Mode::ViewCache).await }
            }));
        }
        tests.push(Test::new(format!("slt::{stem}"), move || {
            let p = p.clone();
            async move { run_file(&p, Mode::Plain).await }
        }));
    }
    tests
}
