//! The fixtures read from a real S3-compatible server (moto) give the same rows as from local disk.
//!
//! The server is `$COLLOQUY_TEST_S3_ENDPOINT` when set; otherwise this test starts `.venv/bin/moto_server`
//! (installed by `scripts/test`) on a free port and stops it afterwards. Without either it fails: it never
//! skips silently.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::{Test, files_under, fixtures, root, rows};

pub const BUCKET: &str = "colloquy-test";

pub struct Moto {
    child: Option<Child>,
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn start_server() -> anyhow::Result<Moto> {
    if let Ok(endpoint) = std::env::var("COLLOQUY_TEST_S3_ENDPOINT") {
        return Ok(Moto {
            child: None,
            endpoint,
        });
    }
    let bin = root().join(".venv").join("bin").join("moto_server");
    if !bin.exists() {
        bail!(
            "no S3-compatible server: {} is missing and COLLOQUY_TEST_S3_ENDPOINT is not set; run ./scripts/test, which installs moto[server] into .venv",
            bin.display()
        );
    }
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = Command::new(&bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let moto = Moto {
        child: Some(child),
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("moto_server did not start listening on port {port} within 30 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(moto)
}

/// object_store cannot create buckets; moto accepts an unsigned CreateBucket.
pub fn create_bucket(endpoint: &str) -> anyhow::Result<()> {
    let hostport = endpoint.trim_start_matches("http://");
    let mut s = TcpStream::connect(hostport)?;
    write!(
        s,
        "PUT /{BUCKET} HTTP/1.1\r\nHost: {hostport}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    ensure!(
        resp.starts_with("HTTP/1.1 200"),
        "CreateBucket failed: {}",
        resp.lines().next().unwrap_or("")
    );
    Ok(())
}

/// A client of the test bucket, for uploading fixtures.
pub fn client(endpoint: &str) -> object_store::Result<object_store::aws::AmazonS3> {
    AmazonS3Builder::new()
        .with_endpoint(endpoint)
        .with_allow_http(true)
        .with_bucket_name(BUCKET)
        .with_region("us-east-1")
        .with_access_key_id("colloquy")
        .with_secret_access_key("colloquy")
        .build()
}

fn options(endpoint: &str) -> String {
    format!(
        "OPTIONS ('aws.endpoint' '{endpoint}', 'aws.access_key_id' 'colloquy', 'aws.secret_access_key' 'colloquy', 'aws.region' 'us-east-1')"
    )
}

const SUMMARY: &str = "SELECT channel, count(*), count(DISTINCT conversation_id), count(DISTINCT message_id), \
     min(ts), max(ts), sum(source_line), count(text), sum(length(text)) FROM t GROUP BY channel ORDER BY channel";

async fn same_rows_as_local_disk() -> anyhow::Result<()> {
    let moto = start_server()?;
    create_bucket(&moto.endpoint)?;
    let store: Arc<dyn ObjectStore> = Arc::new(client(&moto.endpoint)?);
    let base = fixtures();
    for f in files_under(&base)? {
        let rel = f.strip_prefix(&base)?.to_string_lossy().replace('\\', "/");
        store
            .put(
                &ObjectPath::from(format!("fixtures/{rel}")),
                PutPayload::from(std::fs::read(&f)?),
            )
            .await?;
    }

    for (local, remote) in [
        (
            "tests/fixtures/mixed/",
            "s3://colloquy-test/fixtures/mixed/",
        ),
        (
            "tests/fixtures/whatsapp/*.txt",
            "s3://colloquy-test/fixtures/whatsapp/*.txt",
        ),
        (
            "tests/fixtures/slack_folder/",
            "s3://colloquy-test/fixtures/slack_folder/",
        ),
        ("tests/fixtures/hive/", "s3://colloquy-test/fixtures/hive/"),
        (
            "tests/fixtures/social/",
            "s3://colloquy-test/fixtures/social/",
        ),
        (
            "tests/fixtures/telegram/",
            "s3://colloquy-test/fixtures/telegram/",
        ),
        (
            "tests/fixtures/discord/",
            "s3://colloquy-test/fixtures/discord/",
        ),
        (
            "tests/fixtures/teams/",
            "s3://colloquy-test/fixtures/teams/",
        ),
    ] {
        let ctx = colloquy::new_context();
        ctx.sql(&format!(
            "CREATE EXTERNAL TABLE t STORED AS ARCHIVE LOCATION '{local}'"
        ))
        .await?
        .collect()
        .await?;
        let expected = rows(&ctx, SUMMARY).await?;
        ensure!(!expected.is_empty(), "no rows from {local}");
        let ctx = colloquy::new_context();
        ctx.sql(&format!(
            "CREATE EXTERNAL TABLE t STORED AS ARCHIVE LOCATION '{remote}' {}",
            options(&moto.endpoint)
        ))
        .await?
        .collect()
        .await
        .with_context(|| format!("creating a table over {remote}"))?;
        let got = rows(&ctx, SUMMARY).await?;
        ensure!(
            got == expected,
            "{remote} differs from {local}:\n s3:    {got:?}\n local: {expected:?}"
        );
        let sources = rows(
            &ctx,
            "SELECT DISTINCT source FROM t WHERE source NOT LIKE 's3://colloquy-test/fixtures/%'",
        )
        .await?;
        ensure!(
            sources.is_empty(),
            "lineage should name the S3 objects: {sources:?}"
        );
    }

    // Partition columns come through from S3 paths too.
    let ctx = colloquy::new_context();
    ctx.sql(&format!(
        "CREATE EXTERNAL TABLE t STORED AS ARCHIVE LOCATION 's3://colloquy-test/fixtures/hive/' {}",
        options(&moto.endpoint)
    ))
    .await?
    .collect()
    .await?;
    let parts = rows(
        &ctx,
        "SELECT region, channel, count(*) FROM t GROUP BY 1, 2 ORDER BY 1",
    )
    .await?;
    ensure!(
        parts == [["eu", "sms", "2"], ["us", "webchat", "1"]],
        "partitions: {parts:?}"
    );

    // A bucket that does not exist is a clear error naming the location, at CREATE time.
    let ctx = colloquy::new_context();
    let err = ctx
        .sql(&format!(
            "CREATE EXTERNAL TABLE t STORED AS ARCHIVE LOCATION 's3://no-such-bucket/x/' {}",
            options(&moto.endpoint)
        ))
        .await
        .err()
        .context("a missing bucket must fail")?
        .to_string();
    ensure!(
        err.contains("s3://no-such-bucket/x/"),
        "error should name the location: {err}"
    );
    Ok(())
}

/// The server dies part-way through a scan: the query must fail with an error that says so, never end
/// quietly with the rows read so far.
async fn server_dying_mid_scan_fails_the_query() -> anyhow::Result<()> {
    use futures::StreamExt;

    let mut moto = start_server()?;
    if moto.child.is_none() {
        // Only a server this test started can be killed.
        bail!("this test needs to start its own moto_server; unset COLLOQUY_TEST_S3_ENDPOINT");
    }
    create_bucket(&moto.endpoint)?;
    let store = client(&moto.endpoint)?;
    let data = std::fs::read(fixtures().join("jsonl/webchat.jsonl"))?;
    let objects = 60;
    for i in 0..objects {
        store
            .put(
                &ObjectPath::from(format!("many/part-{i:03}.jsonl")),
                PutPayload::from(data.clone()),
            )
            .await?;
    }
    let config = datafusion::prelude::SessionConfig::new().with_target_partitions(1);
    let ctx = colloquy::new_context_with_config(config);
    ctx.sql(&format!(
        "CREATE EXTERNAL TABLE t STORED AS ARCHIVE LOCATION 's3://{BUCKET}/many/' {}",
        options(&moto.endpoint)
    ))
    .await?
    .collect()
    .await?;
    let mut stream = ctx
        .sql("SELECT message_id FROM t")
        .await?
        .execute_stream()
        .await?;
    let first = stream.next().await.context("the scan produced nothing")??;
    ensure!(first.num_rows() > 0);
    // Kill the server once the scan is under way.
    if let Some(child) = &mut moto.child {
        child.kill()?;
        child.wait()?;
    }
    let mut rows = first.num_rows();
    let started = Instant::now();
    let outcome = loop {
        match stream.next().await {
            Some(Ok(b)) => rows += b.num_rows(),
            Some(Err(e)) => break Err(e),
            None => break Ok(()),
        }
    };
    ensure!(
        started.elapsed() < Duration::from_secs(60),
        "the failure took {:?}: retries must give up",
        started.elapsed()
    );
    match outcome {
        Ok(()) => bail!(
            "the scan ended normally with {rows} of {} rows after the server died",
            objects * 5
        ),
        Err(e) => {
            let msg = e.to_string();
            ensure!(
                msg.contains("s3://colloquy-test/many/part-"),
                "the error should name the object: {msg}"
            );
        }
    }
    Ok(())
}

pub fn tests() -> Vec<Test> {
    vec![
        Test::new("s3::same_rows_as_local_disk", same_rows_as_local_disk),
        Test::new(
            "s3::server_dying_mid_scan_fails_the_query",
            server_dying_mid_scan_fails_the_query,
        ),
    ]
}
