//! Test plumbing shared by the integration suite.

pub mod cache;
pub mod cluster;
pub mod demo;
pub mod differential;
pub mod onnx;
pub mod s3;
pub mod slt;
pub mod stores;
pub mod view_cache;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

pub type TestFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>>>>;

pub struct Test {
    pub name: String,
    pub run: Box<dyn Fn() -> TestFuture>,
}

impl Test {
    pub fn new<F, Fut>(name: impl Into<String>, f: F) -> Self
    where
        F: Fn() -> Fut + 'static,
        Fut: Future<Output = anyhow::Result<()>> + 'static,
    {
        Self {
            name: name.into(),
            run: Box::new(move || Box::pin(f())),
        }
    }
}

/// The workspace root (tests run with it as the working directory, but be explicit).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixtures() -> PathBuf {
    root().join("tests").join("fixtures")
}

/// Runs SQL and renders the result as rows of strings, NULL as "NULL".
pub async fn rows(
    ctx: &datafusion::prelude::SessionContext,
    sql: &str,
) -> anyhow::Result<Vec<Vec<String>>> {
    use anyhow::Context;
    let batches = ctx
        .sql(sql)
        .await
        .with_context(|| sql.to_string())?
        .collect()
        .await
        .with_context(|| sql.to_string())?;
    Ok(render(&batches)?)
}

/// Renders batches as rows of strings, NULL as "NULL".
pub fn render(
    batches: &[datafusion::arrow::array::RecordBatch],
) -> Result<Vec<Vec<String>>, datafusion::arrow::error::ArrowError> {
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    let opts = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for b in batches {
        let fmts = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts))
            .collect::<Result<Vec<_>, _>>()?;
        for r in 0..b.num_rows() {
            out.push(fmts.iter().map(|f| f.value(r).to_string()).collect());
        }
    }
    Ok(out)
}

/// Every file below `dir`, recursively.
pub fn files_under(dir: &std::path::Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}
