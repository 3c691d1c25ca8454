//! The `colloquy` binary as a user runs it: output formats, exit codes, config files and the demo.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn colloquy(args: &[&str], cache: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_colloquy"))
        .args(args)
        .env("COLLOQUY_CACHE_DIR", cache)
        .output()
        .expect("run colloquy")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn csv_output_has_a_header_and_statements_run_in_order() {
    let cache = tempfile::tempdir().expect("tempdir");
    let loc = fixtures().join("csv/sms.csv");
    let out = colloquy(
        &[
            "sql",
            "--format",
            "csv",
            "-c",
            &format!(
                "CREATE EXTERNAL TABLE s STORED AS ARCHIVE LOCATION '{}'",
                loc.display()
            ),
            "-c",
            "SELECT message_id, sender_role FROM s ORDER BY message_id; SELECT count(*) AS n FROM s WHERE false",
        ],
        cache.path(),
    );
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "message_id,sender_role\nSM1,customer\nSM2,agent\nSM3,customer\nn\n0\n"
    );
}

#[test]
fn an_error_exits_non_zero_names_the_problem_and_keeps_earlier_output() {
    let cache = tempfile::tempdir().expect("tempdir");
    let bad = fixtures().join("bad/broken.jsonl");
    let out = colloquy(
        &[
            "sql",
            "--format",
            "csv",
            "-c",
            "SELECT 1 AS one",
            "-c",
            &format!("SELECT * FROM read_archive('{}')", bad.display()),
            "-c",
            "SELECT 2 AS two",
        ],
        cache.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout),
        "one\n1\n",
        "the statement after the error must not run"
    );
    let err = text(&out.stderr);
    assert!(
        err.contains("broken.jsonl:3:") && err.contains("invalid JSON"),
        "stderr: {err}"
    );
}

#[test]
fn json_and_ndjson_from_a_file_of_statements() {
    let cache = tempfile::tempdir().expect("tempdir");
    let sql = cache.path().join("q.sql");
    std::fs::write(
        &sql,
        "SELECT 1 AS a, 'x' AS b;\n-- a comment\nSELECT 2 AS a, NULL AS b;\n",
    )
    .expect("write");
    let out = colloquy(
        &["sql", "--format", "json", "-f", &sql.display().to_string()],
        cache.path(),
    );
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "[{\"a\":1,\"b\":\"x\"}]\n[{\"a\":2}]\n");
    let out = colloquy(
        &[
            "sql",
            "--format",
            "ndjson",
            "-c",
            "SELECT * FROM (VALUES (1), (2)) t(v)",
        ],
        cache.path(),
    );
    assert_eq!(text(&out.stdout), "{\"v\":1}\n{\"v\":2}\n");
}

#[test]
fn config_file_registers_archives_and_settings() {
    let cache = tempfile::tempdir().expect("tempdir");
    let cfg = cache.path().join("colloquy.toml");
    std::fs::write(
        &cfg,
        format!(
            "[settings]\n\"datafusion.execution.target_partitions\" = \"3\"\n\n[[archive]]\nname = \"support\"\nlocation = \"{}/\"\noptions = {{ timezone = \"Europe/Berlin\" }}\n",
            fixtures().join("mixed").display()
        ),
    )
    .expect("write config");
    let out = colloquy(
        &[
            "sql",
            "--config",
            &cfg.display().to_string(),
            "--format",
            "csv",
            "-c",
            "SELECT channel, count(*) AS n FROM support GROUP BY 1 ORDER BY 1",
            "-c",
            "SELECT value FROM information_schema.df_settings WHERE name = 'datafusion.execution.target_partitions'",
        ],
        cache.path(),
    );
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "channel,n\nslack,9\nsms,3\nwebchat,5\nwhatsapp,6\nvalue\n3\n"
    );

    std::fs::write(&cfg, "[[archive]]\nname = \"x\"\nlocaton = \"typo\"\n").expect("write");
    let out = colloquy(
        &[
            "sql",
            "--config",
            &cfg.display().to_string(),
            "-c",
            "SELECT 1",
        ],
        cache.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("unknown field `locaton`"),
        "stderr: {}",
        text(&out.stderr)
    );
}

#[test]
fn demo_writes_the_archive_and_prints_headlines_and_sql_demo_uses_the_cache() {
    let cache = tempfile::tempdir().expect("tempdir");
    let out_dir = cache.path().join("demo");
    // The default demo, as a new user runs it: the story ends with the incident the generator hides.
    let out = colloquy(
        &["demo", "--out", &out_dir.display().to_string()],
        cache.path(),
    );
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for heading in [
        "Language mix per channel",
        "Sentiment and top intents per channel",
        "First-contact resolution and time to first response",
        "The incident",
        "track_order in WhatsApp turning negative",
        "colloquy serve --demo",
    ] {
        assert!(
            stdout.contains(heading),
            "missing '{heading}' in:\n{stdout}"
        );
    }
    // Each result comes with the SQL that produced it.
    assert_eq!(
        stdout.matches("\n-- SELECT").count() + stdout.matches("\n-- WITH").count(),
        5
    );
    let incident = &stdout[stdout.find("## The incident").expect("incident")..];
    let incident = &incident[..incident.find("## ...").expect("trend after it")];
    assert!(
        incident.contains("| whatsapp | 2026-03-02 |"),
        "the demo's incident week is not flagged:\n{incident}"
    );
    assert!(out_dir.join("slack/acme-slack-export.zip").exists());

    let out = colloquy(
        &[
            "sql",
            "--demo",
            "--format",
            "csv",
            "-c",
            "SELECT count(DISTINCT channel) AS channels FROM messages",
        ],
        cache.path(),
    );
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "channels\n4\n");
    assert!(
        cache.path().join("demo-v1-3000-42/.complete").exists(),
        "the demo is cached for the next run"
    );
}

/// The ONNX fixtures `scripts/test` builds (see tests/support/onnx.rs); never skipped.
fn onnx_fixtures() -> PathBuf {
    let dir = std::env::var_os("COLLOQUY_ONNX_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv-onnx/fixtures")
        });
    assert!(
        dir.join("intent_tfidf.onnx").exists(),
        "{} is missing: run ./scripts/test, which builds the ONNX fixtures and exports ORT_DYLIB_PATH",
        dir.display()
    );
    dir
}

#[test]
fn config_file_registers_onnx_models_and_a_missing_runtime_says_how_to_install_it() {
    let cache = tempfile::tempdir().expect("tempdir");
    let cfg = cache.path().join("colloquy.toml");
    let model = onnx_fixtures().join("intent_tfidf.onnx");
    std::fs::write(
        &cfg,
        format!(
            "[[model]]\nname = \"topic\"\nlocation = \"{}\"\nreturns = \"TEXT\"\n",
            model.display()
        ),
    )
    .expect("write config");
    let args = [
        "sql",
        "--config",
        &cfg.display().to_string(),
        "--format",
        "csv",
        "-c",
        "SELECT topic('where is my parcel, tracking shows nothing') AS t, (SELECT count(*) FROM onnx_models()) AS n",
    ];
    let out = colloquy(&args, cache.path());
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "t,n\nshipping,1\n");

    let out = Command::new(env!("CARGO_BIN_EXE_colloquy"))
        .args(args)
        .env("COLLOQUY_CACHE_DIR", cache.path())
        .env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")
        .output()
        .expect("run colloquy");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("model 'topic'")
            && err.contains("ONNX Runtime is not available")
            && err.contains("pip install onnxruntime"),
        "stderr: {err}"
    );
}

#[test]
fn save_model_writes_a_trained_classifier_that_registers_by_path() {
    let cache = tempfile::tempdir().expect("tempdir");
    let model = cache.path().join("models").join("topic.onnx");
    let labelled = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/onnx/intents.csv")
        .display()
        .to_string();
    let setup = format!(
        "CREATE EXTERNAL TABLE labelled STORED AS CSV LOCATION '{labelled}' OPTIONS ('format.has_header' 'true')"
    );
    let out = colloquy(
        &[
            "save-model",
            "-c",
            &setup,
            "--sql",
            "SELECT train_classifier(text, label, 'epochs=40, learning_rate=0.5') FROM labelled",
            "--to",
            &model.display().to_string(),
        ],
        cache.path(),
    );
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("bytes to"),
        "{}",
        text(&out.stderr)
    );
    let register = format!(
        "CREATE FUNCTION topic(TEXT) RETURNS TEXT LANGUAGE ONNX AS '{}'",
        model.display()
    );
    // A trained model is scored in Rust: it runs even where ONNX Runtime is not installed.
    let out = Command::new(env!("CARGO_BIN_EXE_colloquy"))
        .args([
            "sql",
            "--format",
            "csv",
            "-c",
            &register,
            "-c",
            "SELECT topic('my parcel is late') AS t",
        ])
        .env("COLLOQUY_CACHE_DIR", cache.path())
        .env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")
        .output()
        .expect("run colloquy");
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).ends_with("t\nshipping\n"),
        "{}",
        text(&out.stdout)
    );

    let out = colloquy(
        &[
            "save-model",
            "--sql",
            "SELECT 1",
            "--to",
            &model.display().to_string(),
        ],
        cache.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("must return BINARY"),
        "{}",
        text(&out.stderr)
    );
}
