//! The `.slt` suite on a Ballista cluster: a scheduler and two executors (one task slot each) in this
//! process on loopback, started once for the whole run. Every file runs with the same expected output
//! as on a single node.

use tokio::sync::OnceCell;

use super::Test;
use super::slt::{Mode, run_file, slt_files};

static CLUSTER: OnceCell<String> = OnceCell::const_new();

/// The test cluster's address (`df://127.0.0.1:PORT`), started on first use.
pub async fn url() -> anyhow::Result<String> {
    CLUSTER
        .get_or_try_init(|| async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = colloquy_cluster::scheduler::start(
                listener,
                colloquy_cluster::scheduler::SchedulerOptions::default(),
            )
            .await?;
            let url = format!("df://{addr}");
            for _ in 0..2 {
                colloquy_cluster::executor::start_in_process(&url, 1).await?;
            }
            Ok::<_, anyhow::Error>(url)
        })
        .await
        .cloned()
}

/// Files that test what only a single process has, and why.
const SINGLE_PROCESS_ONLY: &[(&str, &str)] = &[(
    "errors",
    "archive_errors() lists the records this session's own scans skipped; on a cluster the executors skip them",
)];

pub fn tests() -> Vec<Test> {
    let mut tests = unit_tests();
    for p in slt_files() {
        let stem = p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some((_, why)) = SINGLE_PROCESS_ONLY.iter().find(|(f, _)| *f == stem) {
            // Listed, not run: the name says why.
            tests.push(Test::new(
                format!("slt_cluster::{stem} [single process only: {why}]"),
                || async { Ok(()) },
            ));
            continue;
        }
        tests.push(Test::new(format!("slt_cluster::{stem}"), move || {
            let p = p.clone();
            async move { run_file(&p, Mode::Cluster).await }
        }));
    }
    tests
}

async fn cluster_context() -> anyhow::Result<datafusion::prelude::SessionContext> {
    Ok(colloquy_cluster::remote_context(
        &url().await?,
        datafusion::prelude::SessionConfig::new(),
        colloquy::runtime_env(None),
    )?)
}

/// A table whose OPTIONS hold a credential is refused before anything is sent, naming the option;
/// the options that may travel do, and the plan the scheduler gets holds no credential.
async fn plans_carry_no_credentials() -> anyhow::Result<()> {
    let ctx = cluster_context().await?;
    let location = super::fixtures().join("whatsapp");
    let location = format!("{}/", location.display());
    ctx.sql(&format!(
        "CREATE EXTERNAL TABLE leaky STORED AS ARCHIVE LOCATION '{location}' OPTIONS ('aws.secret_access_key' 'TOPSECRET-42', 'aws.region' 'eu-west-1')"
    ))
    .await?;
    let err = match ctx.sql("SELECT count(*) FROM leaky").await {
        Ok(df) => df.collect().await.err(),
        Err(e) => Some(e),
    }
    .map(|e| e.to_string())
    .unwrap_or_default();
    anyhow::ensure!(
        err.contains("'aws.secret_access_key'") && err.contains("executor's environment"),
        "{err}"
    );
    anyhow::ensure!(
        !err.contains("TOPSECRET"),
        "the error repeats the secret: {err}"
    );

    ctx.sql(&format!(
        "CREATE EXTERNAL TABLE regional STORED AS ARCHIVE LOCATION '{location}' OPTIONS ('aws.region' 'eu-west-1')"
    ))
    .await?;
    let counted = super::rows(&ctx, "SELECT count(*) FROM regional").await?;
    anyhow::ensure!(counted == vec![vec!["18"]], "{counted:?}");
    // The bytes a client sends for such a table: its location and region, and nothing else of the store.
    let plan = ctx
        .sql("SELECT count(*) FROM regional")
        .await?
        .into_optimized_plan()?;
    let bytes = datafusion_proto::bytes::logical_plan_to_bytes_with_extension_codec(
        &plan,
        &colloquy_cluster::ColloquyLogicalCodec::default(),
    )?;
    let text = String::from_utf8_lossy(&bytes);
    anyhow::ensure!(
        text.contains("eu-west-1") && text.contains("whatsapp"),
        "{text}"
    );
    anyhow::ensure!(!text.contains("TOPSECRET"), "{text}");
    Ok(())
}

/// Each unit is read by exactly one task: counts, sums and the rows themselves equal a single node's,
/// over an archive of many objects and formats.
async fn every_message_once() -> anyhow::Result<()> {
    let cluster = cluster_context().await?;
    let local = colloquy::new_context();
    let query = "SELECT channel, count(*), count(DISTINCT message_id), sum(length(text)) FROM read_archive('tests/fixtures/', 'auto', 'on_error', 'skip') GROUP BY channel ORDER BY channel";
    let a = super::rows(&cluster, query).await?;
    let b = super::rows(&local, query).await?;
    anyhow::ensure!(a == b, "cluster {a:?}\nsingle node {b:?}");
    anyhow::ensure!(a.len() >= 5, "too few channels to prove anything: {a:?}");
    Ok(())
}

pub fn unit_tests() -> Vec<Test> {
    vec![
        Test::new(
            "cluster::plans_carry_no_credentials",
            plans_carry_no_credentials,
        ),
        Test::new("cluster::every_message_once", every_message_once),
        Test::new(
            "cluster::session_tables_and_unions",
            session_tables_and_unions,
        ),
        Test::new(
            "cluster::onnx_functions_on_the_cluster",
            onnx_functions_on_the_cluster,
        ),
    ]
}

/// ONNX functions on the cluster: a model registered from a file and one trained by a query give the
/// single node's answers; a model file replaced after `CREATE FUNCTION` is refused by the executors.
async fn onnx_functions_on_the_cluster() -> anyhow::Result<()> {
    use super::onnx::{fixtures_dir, quote};
    let dir = fixtures_dir()?;
    let tmp = tempfile::tempdir()?;
    let model = tmp.path().join("intent.onnx");
    std::fs::copy(dir.join("intent_tfidf.onnx"), &model)?;
    let cluster = cluster_context().await?;
    let local = colloquy::new_context();
    let labelled = "CREATE EXTERNAL TABLE labelled STORED AS CSV LOCATION 'tests/fixtures/onnx/intents.csv' OPTIONS ('format.has_header' 'true')";
    let statements = [
        labelled.to_string(),
        format!(
            "CREATE FUNCTION intent_of(TEXT) RETURNS TEXT LANGUAGE ONNX AS {}",
            quote(&model.to_string_lossy())
        ),
        format!(
            "CREATE FUNCTION intent_probs(TEXT) RETURNS FLOAT[] LANGUAGE ONNX AS {}",
            quote(&model.to_string_lossy())
        ),
        "CREATE FUNCTION topic(TEXT) RETURNS TEXT LANGUAGE ONNX RETURN (SELECT train_classifier(text, label, 'epochs=40, learning_rate=0.5') FROM labelled)".to_string(),
    ];
    for ctx in [&cluster, &local] {
        for s in &statements {
            ctx.sql(s).await?.collect().await?;
        }
    }
    let query = "SELECT text, intent_of(text), CAST(intent_probs(text) AS VARCHAR), topic(text) FROM labelled ORDER BY text";
    let a = super::rows(&cluster, query).await?;
    let b = super::rows(&local, query).await?;
    anyhow::ensure!(a.len() == 92, "{} rows", a.len());
    anyhow::ensure!(
        a == b,
        "the cluster's answers differ from the single node's"
    );

    // Another model under the registered name's file: the executors fetch it and refuse it.
    let replaced = tmp.path().join("replaced.onnx");
    std::fs::copy(dir.join("intent_tfidf.onnx"), &replaced)?;
    cluster
        .sql(&format!(
            "CREATE FUNCTION later(TEXT) RETURNS TEXT LANGUAGE ONNX AS {}",
            quote(&replaced.to_string_lossy())
        ))
        .await?
        .collect()
        .await?;
    let trained = local
        .sql("SELECT train_classifier(text, label) FROM labelled")
        .await?
        .collect()
        .await?;
    let bytes = datafusion::arrow::array::AsArray::as_binary::<i32>(
        trained
            .first()
            .map(|b| b.column(0))
            .ok_or_else(|| anyhow::anyhow!("no model"))?,
    )
    .value(0)
    .to_vec();
    std::fs::write(&replaced, bytes)?;
    let err = match cluster.sql("SELECT later(text) FROM labelled").await {
        Ok(df) => df.collect().await.err(),
        Err(e) => Some(e),
    }
    .map(|e| e.to_string())
    .unwrap_or_default();
    anyhow::ensure!(
        err.contains("is not the one CREATE FUNCTION registered"),
        "expected a refusal of the replaced model, got: {err}"
    );
    Ok(())
}

/// What a session holds itself, on the cluster: two calls of one table function, a union of a table and
/// a constant kept in order, and rows inserted into a session table, all as on a single node.
async fn session_tables_and_unions() -> anyhow::Result<()> {
    let cluster = cluster_context().await?;
    let local = colloquy::new_context();
    for ctx in [&cluster, &local] {
        ctx.sql("CREATE TABLE t AS VALUES (1), (2), (4)")
            .await?
            .collect()
            .await?;
        ctx.sql("INSERT INTO t VALUES (5)").await?.collect().await?;
    }
    for query in [
        "SELECT a.value, b.value FROM generate_series(1, 3) a CROSS JOIN generate_series(10, 12) b ORDER BY 1, 2",
        "SELECT column1 FROM t UNION ALL SELECT 3 ORDER BY 1 DESC",
        "SELECT column1 FROM t UNION ALL SELECT 3 ORDER BY 1 LIMIT 3",
        "SELECT count(*), sum(column1) FROM t",
        "SELECT m.channel, t.column1 FROM read_archive('tests/fixtures/whatsapp/') m CROSS JOIN t UNION ALL SELECT 'none', 0 ORDER BY 2, 1 LIMIT 4",
    ] {
        let a = super::rows(&cluster, query).await?;
        let b = super::rows(&local, query).await?;
        anyhow::ensure!(a == b, "{query}\ncluster {a:?}\nsingle node {b:?}");
    }
    let counted = super::rows(&cluster, "SELECT count(*) FROM t").await?;
    anyhow::ensure!(counted == vec![vec!["4"]], "the insert: {counted:?}");
    Ok(())
}
