//! `colloquy save-model --sql "SELECT train_classifier(text, label) FROM ..." --to s3://models/topic.onnx`:
//! runs a query that returns a model's bytes and writes them to a file or an object store, so a classifier
//! trained in SQL can be versioned, registered by URL and run outside colloquy.

use std::path::PathBuf;

use anyhow::{Context, bail};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::execution::object_store::ObjectStoreUrl;
use object_store::{ObjectStoreExt, PutPayload};

use colloquy::store::Location;

#[derive(clap::Args)]
pub struct SaveModelArgs {
    /// A query returning one row with one BINARY column, e.g. SELECT train_classifier(text, label) FROM t.
    #[arg(long, value_name = "SQL")]
    sql: String,
    /// Where to write the model: a path or an s3://, gs://, az:// URL.
    #[arg(long, value_name = "URL")]
    to: String,
    /// SQL statements run first (CREATE EXTERNAL TABLE ... for the labelled rows); may be repeated.
    #[arg(short = 'c', long = "command", value_name = "SQL")]
    setup: Vec<String>,
    /// A TOML file declaring archives and session settings.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Register the demo archive as the table `messages`.
    #[arg(long)]
    demo: bool,
}

pub async fn run(args: SaveModelArgs) -> anyhow::Result<()> {
    let ctx = crate::session(args.config.as_deref(), args.demo, None).await?;
    for sql in &args.setup {
        ctx.sql(sql)
            .await?
            .collect()
            .await
            .with_context(|| sql.clone())?;
    }
    let batches = ctx
        .sql(&args.sql)
        .await
        .context("--sql")?
        .collect()
        .await
        .context("--sql")?;
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
        bail!("--sql returned no row; it must return one row with the model's bytes");
    };
    if rows != 1 || batch.num_columns() != 1 {
        bail!(
            "--sql must return one row with one column (the model's bytes); it returned {rows} row(s) of {} column(s)",
            batch.num_columns()
        );
    }
    let column = batch.column(0);
    if column.data_type() != &DataType::Binary {
        bail!(
            "--sql must return BINARY (what train_classifier returns), got {}",
            column.data_type()
        );
    }
    let values = column.as_binary::<i32>();
    if values.is_null(0) {
        bail!("--sql returned NULL instead of a model");
    }
    let bytes = values.value(0).to_vec();
    let location = Location::parse(&args.to).with_context(|| format!("--to {}", args.to))?;
    let store = ctx
        .runtime_env()
        .object_store(ObjectStoreUrl::parse(location.store_url().as_str())?)?;
    let size = bytes.len();
    store
        .put(&location.prefix, PutPayload::from(bytes))
        .await
        .with_context(|| format!("writing {}", args.to))?;
    eprintln!("wrote {size} bytes to {}", args.to);
    Ok(())
}
