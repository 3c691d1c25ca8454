//! Object stores other than S3: `memory://` (registered on first use and shared by the session) and plain
//! HTTP, served by Python's http.server from the fixtures folder.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};
use url::Url;

use super::{Test, fixtures, rows};

async fn memory_store() -> anyhow::Result<()> {
    let ctx = colloquy::new_context();
    let store = ctx.runtime_env().object_store(
        datafusion::execution::object_store::ObjectStoreUrl::parse("memory://")?,
    )?;
    for name in ["csv/sms.csv", "jsonl/webchat.jsonl"] {
        let data = std::fs::read(fixtures().join(name))?;
        store
            .put(
                &ObjectPath::from(format!("exports/{name}")),
                PutPayload::from(data),
            )
            .await?;
    }
    let got = rows(
        &ctx,
        "SELECT channel, count(*) FROM read_archive('memory:///exports/') GROUP BY 1 ORDER BY 1",
    )
    .await?;
    ensure!(
        got == [["sms", "3"], ["webchat", "5"]],
        "memory store rows: {got:?}"
    );
    let src = rows(
        &ctx,
        "SELECT DISTINCT source FROM read_archive('memory:///exports/csv/') ",
    )
    .await?;
    ensure!(
        src == [["memory:///exports/csv/sms.csv"]],
        "lineage: {src:?}"
    );
    Ok(())
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn http_store() -> anyhow::Result<()> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let _server = Server(
        Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .current_dir(fixtures())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting python3 -m http.server")?,
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("http.server did not listen on {port}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let base = Url::parse(&format!("http://127.0.0.1:{port}/"))?;
    let ctx = colloquy::new_context();
    for (path, expected) in [
        ("csv/sms.csv", "3"),
        ("mixed/slack-export.zip", "9"),
        ("mixed/sms.csv.gz", "3"),
    ] {
        let url = base.join(path)?;
        let got = rows(&ctx, &format!("SELECT count(*) FROM read_archive('{url}')")).await?;
        ensure!(got == [[expected]], "{url}: {got:?}");
    }
    let err = ctx
        .sql(&format!(
            "SELECT * FROM read_archive('{}')",
            base.join("csv/missing.csv")?
        ))
        .await
        .err()
        .context("a missing object must fail")?
        .to_string();
    ensure!(err.contains("missing.csv"), "error names the object: {err}");
    Ok(())
}

/// One physical plan executed twice, with several partitions, gives the same rows both times: each run
/// gets its own listing, shared by that run's partitions only.
async fn plan_runs_twice() -> anyhow::Result<()> {
    use datafusion::physical_plan::collect;

    let config = datafusion::prelude::SessionConfig::new().with_target_partitions(4);
    let ctx = colloquy::new_context_with_config(config);
    let location = fixtures().to_string_lossy().into_owned();
    let df = ctx
        .sql(&format!(
            "SELECT channel, message_id FROM read_archive('{location}/', 'auto', 'on_error', 'skip')"
        ))
        .await?;
    let plan = df.create_physical_plan().await?;
    let count = |batches: Vec<datafusion::arrow::array::RecordBatch>| -> usize {
        batches.iter().map(|b| b.num_rows()).sum()
    };
    let first = count(collect(plan.clone(), ctx.task_ctx()).await?);
    let second = count(collect(plan, ctx.task_ctx()).await?);
    ensure!(
        first > 50,
        "the fixtures hold more than 50 messages, got {first}"
    );
    ensure!(
        first == second,
        "first run {first} rows, second run {second}"
    );
    let one = colloquy::new_context_with_config(
        datafusion::prelude::SessionConfig::new().with_target_partitions(1),
    );
    let alone = rows(
        &one,
        &format!("SELECT count(*) FROM read_archive('{location}/', 'auto', 'on_error', 'skip')"),
    )
    .await?;
    ensure!(
        alone == [[first.to_string()]],
        "one partition read {alone:?} rows, four read {first}"
    );
    Ok(())
}

pub fn tests() -> Vec<Test> {
    vec![
        Test::new("stores::plan_runs_twice", plan_runs_twice),
        Test::new("stores::memory", memory_store),
        Test::new("stores::http", http_store),
    ]
}
