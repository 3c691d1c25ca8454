//! Each rule of a shared server, tried in-process the way a hostile client would: locations, writes,
//! network, settings, statement size and depth, sessions, concurrent statements, handles and timeouts.
//! The real binary gets the same attacks through the Python ADBC driver (tests/flight/test_security.py).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use colloquy::store::AccessPolicy;
use colloquy_flight::{Authenticator, Gate, Limits};
use datafusion::prelude::SessionConfig;
use futures::StreamExt;
use tonic::Code;

use super::{Server, fetch, raw_client};

struct Folders {
    _dir: tempfile::TempDir,
    root: PathBuf,
    allowed: PathBuf,
    out: PathBuf,
}

fn folders() -> Folders {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().canonicalize().expect("canonical");
    let allowed = root.join("allowed");
    let out = root.join("out");
    std::fs::create_dir_all(&allowed).expect("mkdir");
    std::fs::create_dir_all(&out).expect("mkdir");
    std::fs::write(allowed.join("data.csv"), "a,b\n1,2\n").expect("write");
    std::fs::write(root.join("secret.csv"), "s\nhidden\n").expect("write");
    Folders {
        _dir: dir,
        root,
        allowed,
        out,
    }
}

fn dir_prefix(p: &Path) -> String {
    format!("{}/", p.display())
}

/// A server whose sessions are built as `colloquy serve` builds them: a guarded runtime, the policy on
/// each session, and the gate on every statement.
async fn guarded(f: &Folders, limits: Limits, timeout: Option<std::time::Duration>) -> Server {
    let policy = Arc::new(
        AccessPolicy::new(&[dir_prefix(&f.allowed)], &[dir_prefix(&f.out)], &[]).expect("policy"),
    );
    let env = colloquy::server_runtime_env(None, Arc::clone(&policy));
    let session_policy = Arc::clone(&policy);
    let factory = colloquy_flight::factory(move || {
        let env = env.clone();
        let policy = Arc::clone(&session_policy);
        async move {
            let ctx = colloquy::new_context_with_runtime(SessionConfig::new(), env);
            colloquy::restrict(&ctx, policy);
            Ok(ctx)
        }
    });
    Server::start_custom(Authenticator::default(), factory, move |o| {
        o.gate = Gate {
            policy: Some(policy),
            limits,
        };
        o.query_timeout = timeout;
    })
    .await
}

async fn run(server: &Server, sql: &str) -> Result<usize, tonic::Status> {
    let mut c = server.client().await;
    run_on(&mut c, sql).await
}

async fn run_on(
    c: &mut arrow_flight::sql::client::FlightSqlServiceClient<tonic::transport::Channel>,
    sql: &str,
) -> Result<usize, tonic::Status> {
    let info = c
        .execute(sql.to_owned(), None)
        .await
        .map_err(|e| tonic::Status::new(code_of(&e), e.to_string()))?;
    let mut rows = 0;
    for ep in info.endpoint {
        let mut stream = c
            .do_get(ep.ticket.expect("ticket"))
            .await
            .map_err(|e| tonic::Status::new(code_of(&e), e.to_string()))?;
        while let Some(b) = stream.next().await {
            rows += b
                .map_err(|e| tonic::Status::new(code_of(&e), e.to_string()))?
                .num_rows();
        }
    }
    Ok(rows)
}

fn code_of(e: &arrow_flight::error::FlightError) -> Code {
    match e {
        arrow_flight::error::FlightError::Tonic(s) => s.code(),
        _ => Code::Unknown,
    }
}

async fn assert_alive(server: &Server) {
    assert_eq!(run(server, "SELECT 1").await.expect("SELECT 1"), 1);
}

#[tokio::test]
async fn locations_outside_the_allow_list_are_refused() {
    let f = folders();
    let server = guarded(&f, Limits::default(), None).await;
    for sql in [
        "CREATE EXTERNAL TABLE pw STORED AS CSV LOCATION '/etc/passwd'".to_owned(),
        format!(
            "CREATE EXTERNAL TABLE s STORED AS CSV LOCATION '{}'",
            f.root.join("secret.csv").display()
        ),
        "SELECT * FROM read_archive('/etc/passwd', 'csv')".to_owned(),
        format!(
            "SELECT * FROM read_archive('{}/../secret.csv', 'csv')",
            f.allowed.display()
        ),
        "SELECT * FROM read_archive('/proc/self/environ', 'csv')".to_owned(),
        "CREATE FUNCTION m(TEXT) RETURNS TEXT LANGUAGE ONNX AS '/etc/passwd'".to_owned(),
    ] {
        let e = run(&server, &sql).await.expect_err(&sql);
        assert_eq!(e.code(), Code::PermissionDenied, "{sql}: {e}");
        assert!(!e.message().contains("root:"), "{e}");
        assert!(!e.message().contains("hidden"), "{e}");
    }
    let ok = format!(
        "CREATE EXTERNAL TABLE d STORED AS CSV LOCATION '{}' OPTIONS ('format.has_header' 'true')",
        f.allowed.join("data.csv").display()
    );
    let mut c = server.client().await;
    run_on(&mut c, &ok).await.expect("allowed location");
    assert_eq!(run_on(&mut c, "SELECT * FROM d").await.expect("rows"), 1);
    assert_alive(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn writes_need_a_write_prefix() {
    let f = folders();
    let server = guarded(&f, Limits::default(), None).await;
    let evil = f.root.join("evil.csv");
    let e = run(
        &server,
        &format!("COPY (SELECT 1 AS x) TO '{}' STORED AS CSV", evil.display()),
    )
    .await
    .expect_err("copy");
    assert_eq!(e.code(), Code::PermissionDenied, "{e}");
    assert!(e.message().contains("write = ["), "{e}");
    assert!(!evil.exists());
    let mut c = server.client().await;
    run_on(
        &mut c,
        &format!(
            "CREATE EXTERNAL TABLE d STORED AS CSV LOCATION '{}' OPTIONS ('format.has_header' 'true')",
            f.allowed.join("data.csv").display()
        ),
    )
    .await
    .expect("table");
    let e = run_on(&mut c, "INSERT INTO d VALUES (3, 4)")
        .await
        .expect_err("insert");
    assert_eq!(e.code(), Code::PermissionDenied, "{e}");
    assert_eq!(
        std::fs::read_to_string(f.allowed.join("data.csv")).expect("read"),
        "a,b\n1,2\n"
    );
    // Session tables stay writable; the write prefix takes COPY.
    run_on(&mut c, "CREATE TABLE t AS SELECT 1 AS x")
        .await
        .expect("ctas");
    run_on(&mut c, "INSERT INTO t VALUES (2)")
        .await
        .expect("insert into memory");
    let out = f.out.join("ok.csv");
    run_on(
        &mut c,
        &format!("COPY t TO '{}' STORED AS CSV", out.display()),
    )
    .await
    .expect("copy under write prefix");
    assert!(out.exists());
    server.stop().await;
}

#[tokio::test]
async fn internal_addresses_are_not_fetched() {
    let f = folders();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let server = guarded(&f, Limits::default(), None).await;
    for sql in [
        format!("SELECT * FROM read_archive('http://127.0.0.1:{port}/x.jsonl', 'jsonl')"),
        "SELECT * FROM read_archive('http://169.254.169.254/latest/', 'jsonl')".to_owned(),
        format!(
            "CREATE FUNCTION m(TEXT) RETURNS TEXT LANGUAGE ONNX AS 'http://127.0.0.1:{port}/m.onnx'"
        ),
    ] {
        let e = run(&server, &sql).await.expect_err(&sql);
        assert_eq!(e.code(), Code::PermissionDenied, "{sql}: {e}");
    }
    assert!(
        listener.accept().is_err(),
        "the server connected to the listener"
    );
    server.stop().await;
}

#[tokio::test]
async fn limits_hold_and_deep_sql_is_an_error() {
    let f = folders();
    let limits = Limits {
        max_sql_bytes: 10_000,
        ..Limits::default()
    };
    let server = guarded(&f, limits, None).await;
    let long = format!("SELECT 1{}", "+1".repeat(6000));
    let e = run(&server, &long).await.expect_err("long");
    assert_eq!(e.code(), Code::ResourceExhausted, "over max_sql_bytes: {e}");
    let deep = format!("SELECT 1{}", "+1".repeat(1000));
    let e = run(&server, &deep).await.expect_err("deep");
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    assert!(e.message().contains("max_expression_depth"), "{e}");
    let ok = format!("SELECT 1{} AS n", "+1".repeat(200));
    assert_eq!(run(&server, &ok).await.expect("200 levels"), 1);
    for sql in [
        "SET datafusion.runtime.memory_limit = '64G'",
        "SET datafusion.runtime.temp_directory = '/'",
        "RESET datafusion.runtime.memory_limit",
        "SET datafusion.execution.target_partitions = 100000",
    ] {
        let e = run(&server, sql).await.expect_err(sql);
        assert_eq!(e.code(), Code::PermissionDenied, "{sql}: {e}");
    }
    server.stop().await;
}

#[tokio::test]
async fn sessions_and_running_statements_are_capped() {
    let f = folders();
    let limits = Limits {
        max_sessions: 2,
        max_queries_per_user: 1,
        ..Limits::default()
    };
    let server = guarded(&f, limits, None).await;
    let mut a = server.client().await;
    let mut b = server.client().await;
    run_on(&mut a, "SELECT 1").await.expect("a");
    run_on(&mut b, "SELECT 1").await.expect("b");
    let e = run(&server, "SELECT 1").await.expect_err("third session");
    assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
    assert!(e.message().contains("max_sessions"), "{e}");
    // One statement at a time per anonymous session: nothing more runs until the first stream ends.
    let info = a
        .execute(
            "SELECT value FROM generate_series(1, 100000000)".into(),
            None,
        )
        .await
        .expect("execute");
    let mut first = a
        .do_get(info.endpoint[0].ticket.clone().expect("ticket"))
        .await
        .expect("stream");
    first.next().await.expect("a batch").expect("ok");
    // Planning takes a slot too, so the second statement is refused before it is planned.
    let e = a
        .execute("SELECT 2".into(), None)
        .await
        .expect_err("second statement");
    assert!(e.to_string().contains("max_queries_per_user"), "{e}");
    // Another session is not held up.
    run_on(&mut b, "SELECT 1").await.expect("b unaffected");
    drop(first);
    let mut freed = false;
    for _ in 0..100 {
        if run_on(&mut a, "SELECT 3").await.is_ok() {
            freed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(freed, "the slot came back when the stream was dropped");
    server.stop().await;
}

#[tokio::test]
async fn handles_belong_to_their_owner() {
    let f = folders();
    let server = guarded(&f, Limits::default(), None).await;
    let mut a = server.client().await;
    let mut b = server.client().await;
    let info = a
        .execute("SELECT 42 AS answer".into(), None)
        .await
        .expect("execute");
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let handle = String::from_utf8_lossy(&ticket.ticket).into_owned();
    assert!(handle.len() > 32, "unguessable handle: {handle}");
    let e = b.do_get(ticket.clone()).await.expect_err("not b's");
    assert!(e.to_string().contains("another user"), "{e}");
    // Prepared statements: made by one connection, closed by another.
    use arrow_flight::sql::{
        ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
        ActionCreatePreparedStatementResult, Any,
    };
    use prost::Message;
    let mut owner = raw_client(&server).await;
    let mut other = raw_client(&server).await;
    let create = ActionCreatePreparedStatementRequest {
        query: "SELECT 1 AS one".into(),
        transaction_id: None,
    };
    let body = super::action(
        &mut owner,
        "CreatePreparedStatement",
        Any::pack(&create).expect("pack").encode_to_vec(),
    )
    .await
    .expect("prepare");
    let created: ActionCreatePreparedStatementResult = Any::decode(body.as_slice())
        .expect("any")
        .unpack()
        .expect("unpack")
        .expect("result");
    let close = Any::pack(&ActionClosePreparedStatementRequest {
        prepared_statement_handle: created.prepared_statement_handle,
    })
    .expect("pack")
    .encode_to_vec();
    let e = super::action_done(&mut other, "ClosePreparedStatement", close.clone())
        .await
        .expect_err("not its statement");
    assert_eq!(e.code(), Code::PermissionDenied, "{e}");
    super::action_done(&mut owner, "ClosePreparedStatement", close)
        .await
        .expect("the owner closes it");
    // The owner still fetches its query.
    assert_eq!(fetch(&mut a, info).await[0].num_rows(), 1);
    server.stop().await;
}

#[tokio::test]
async fn commands_and_ingest_obey_the_timeout() {
    let f = folders();
    let server = guarded(
        &f,
        Limits::default(),
        Some(std::time::Duration::from_millis(300)),
    )
    .await;
    let e = run(
        &server,
        "CREATE TABLE t AS SELECT count(*) FROM generate_series(1, 10000000000)",
    )
    .await
    .expect_err("slow CTAS");
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e}");
    assert!(e.message().contains("query_timeout_secs"), "{e}");
    assert_alive(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn session_options_go_through_the_gate() {
    use colloquy_flight::session_options as so;
    use prost::Message;
    let f = folders();
    let server = guarded(&f, Limits::default(), None).await;
    let mut raw = raw_client(&server).await;
    let mut set = so::SetSessionOptionsRequest::default();
    for (name, value) in [
        ("datafusion.runtime.memory_limit", "64G"),
        ("datafusion.runtime.temp_directory", "/"),
        ("datafusion.execution.target_partitions", "100000"),
        // A name is never SQL: this one would otherwise append a COPY to the SET.
        (
            "datafusion.execution.time_zone = 'x'; COPY (SELECT 1) TO '/tmp/x.csv'; SET a",
            "1",
        ),
        ("datafusion.execution.batch_size", "1234"),
    ] {
        set.session_options
            .insert(name.into(), so::string_value(value.into()));
    }
    let body = super::action(&mut raw, "SetSessionOptions", set.encode_to_vec())
        .await
        .expect("set");
    let result = so::SetSessionOptionsResult::decode(body.as_slice()).expect("decode");
    let mut refused: Vec<(&str, i32)> = result
        .errors
        .iter()
        .map(|(k, v)| (k.as_str(), v.value))
        .collect();
    refused.sort();
    assert_eq!(
        refused,
        [
            ("datafusion.execution.target_partitions", so::ERROR),
            (
                "datafusion.execution.time_zone = 'x'; COPY (SELECT 1) TO '/tmp/x.csv'; SET a",
                so::INVALID_NAME
            ),
            ("datafusion.runtime.memory_limit", so::ERROR),
            ("datafusion.runtime.temp_directory", so::ERROR),
        ]
    );
    let body = super::action(&mut raw, "GetSessionOptions", vec![])
        .await
        .expect("get");
    let got = so::GetSessionOptionsResult::decode(body.as_slice()).expect("decode");
    assert_eq!(
        so::value_text(&got.session_options["datafusion.execution.batch_size"]).as_deref(),
        Some("1234"),
        "allowed settings still apply"
    );
    assert_ne!(
        so::value_text(&got.session_options["datafusion.execution.target_partitions"]).as_deref(),
        Some("100000")
    );
    server.stop().await;
}
