//! The server in-process on port 0, driven by arrow-flight's Flight SQL client: every call a client makes.
//! `hostile/` tries each rule of a shared server's policy and limits.

mod hostile;

use std::collections::HashMap;
use std::sync::Arc;

use arrow_flight::FlightInfo;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{CommandGetDbSchemas, CommandGetTables};
use colloquy_flight::{Authenticator, Normalizer, ServiceOptions};
use datafusion::arrow::array::{Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::DataType;
use futures::TryStreamExt;
use tokio::net::TcpListener;
use tonic::transport::Channel;

struct Server {
    addr: std::net::SocketAddr,
    metrics: Arc<colloquy_flight::metrics::Metrics>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<colloquy_flight::Result<()>>,
}

impl Server {
    async fn start(auth: Authenticator) -> Server {
        Self::start_with(auth, Some(std::time::Duration::from_secs(60))).await
    }

    async fn start_idle(idle: std::time::Duration) -> Server {
        Self::start_full(Authenticator::default(), None, idle).await
    }

    async fn start_with(auth: Authenticator, query_timeout: Option<std::time::Duration>) -> Server {
        Self::start_full(auth, query_timeout, std::time::Duration::from_secs(600)).await
    }

    async fn start_full(
        auth: Authenticator,
        query_timeout: Option<std::time::Duration>,
        session_idle: std::time::Duration,
    ) -> Server {
        Self::start_tweaked(auth, |o| {
            o.query_timeout = query_timeout;
            o.session_idle = session_idle;
        })
        .await
    }

    async fn start_tweaked(auth: Authenticator, tweak: impl FnOnce(&mut ServiceOptions)) -> Server {
        let factory = colloquy_flight::factory(|| async {
            let ctx = colloquy::new_context();
            ctx.sql("CREATE VIEW messages AS SELECT * FROM (VALUES (1, 'where is my order'), (2, 'thanks!')) AS t(id, text)")
                .await?;
            Ok(ctx)
        });
        Self::start_custom(auth, factory, tweak).await
    }

    async fn start_custom(
        auth: Authenticator,
        factory: colloquy_flight::ContextFactory,
        tweak: impl FnOnce(&mut ServiceOptions),
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let metrics = Arc::new(colloquy_flight::metrics::Metrics::default());
        let mut options = ServiceOptions {
            factory,
            auth: Arc::new(auth),
            normalizer: Normalizer { expand_views: true },
            cpu: tokio::runtime::Handle::current(),
            query_memory_limit: None,
            query_timeout: None,
            session_idle: std::time::Duration::from_secs(600),
            metrics: metrics.clone(),
            gate: Default::default(),
            governance: Default::default(),
            audit: None,
            live_sink: None,
            rule_statements: None,
        };
        tweak(&mut options);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(colloquy_flight::serve(options, listener, None, async {
            let _ = rx.await;
        }));
        Server {
            addr,
            metrics,
            stop: Some(tx),
            task,
        }
    }

    async fn client(&self) -> FlightSqlServiceClient<Channel> {
        let channel = Channel::from_shared(format!("http://{}", self.addr)).expect("uri");
        // The server may need a moment to accept: retry briefly instead of sleeping a fixed time.
        for _ in 0..50 {
            if let Ok(c) = channel.connect().await {
                return FlightSqlServiceClient::new(c);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("server did not start on {}", self.addr);
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.task.await.expect("join").expect("server ran cleanly");
    }
}

async fn fetch(client: &mut FlightSqlServiceClient<Channel>, info: FlightInfo) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    for ep in info.endpoint {
        let ticket = ep.ticket.expect("ticket");
        let stream = client.do_get(ticket).await.expect("do_get");
        out.extend(stream.try_collect::<Vec<_>>().await.expect("batches"));
    }
    out
}

fn strings(b: &RecordBatch, col: &str) -> Vec<String> {
    let c = b.column_by_name(col).expect("column");
    let s = c.as_any().downcast_ref::<StringArray>().expect("utf8");
    (0..s.len()).map(|i| s.value(i).to_owned()).collect()
}

#[tokio::test]
async fn statements_prepared_updates_and_metadata() {
    let server = Server::start(Authenticator::default()).await;
    let mut c = server.client().await;

    // A statement query: the text functions run, views come back as Utf8.
    let info = c
        .execute(
            "SELECT id, text, intent(text) AS intent FROM messages ORDER BY id".into(),
            None,
        )
        .await
        .expect("execute");
    let batches = fetch(&mut c, info.clone()).await;
    let schema = info.try_decode_schema().expect("schema");
    assert_eq!(
        batches[0].schema().as_ref(),
        &schema,
        "announced and streamed schema agree"
    );
    assert_eq!(strings(&batches[0], "intent"), ["track_order", "none"]);

    // DDL runs once and is visible to the same session.
    let info = c
        .execute("CREATE VIEW two AS SELECT 2 AS n".into(), None)
        .await
        .expect("ddl");
    fetch(&mut c, info).await;
    let info = c
        .execute("SELECT n FROM two".into(), None)
        .await
        .expect("query view");
    let b = fetch(&mut c, info).await;
    assert_eq!(
        b[0].column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("i64")
            .value(0),
        2
    );

    // Prepared statement with a `?` parameter.
    let mut ps = c
        .prepare("SELECT text FROM messages WHERE id = ?".into(), None)
        .await
        .expect("prepare");
    let params = RecordBatch::try_from_iter([("0", Arc::new(Int64Array::from(vec![2])) as _)])
        .expect("params");
    ps.set_parameters(params).expect("bind");
    let info = ps.execute().await.expect("execute prepared");
    let b = fetch(&mut c, info).await;
    assert_eq!(strings(&b[0], "text"), ["thanks!"]);
    ps.close().await.expect("close");

    // Updates report affected rows.
    c.execute_update("CREATE TABLE t (x INT)".into(), None)
        .await
        .expect("create table");
    let n = c
        .execute_update("INSERT INTO t VALUES (1), (2), (3)".into(), None)
        .await
        .expect("insert");
    assert_eq!(n, 3);

    // Metadata.
    let info = c.get_catalogs().await.expect("catalogs");
    let b = fetch(&mut c, info).await;
    assert_eq!(strings(&b[0], "catalog_name"), ["datafusion"]);
    let info = c
        .get_db_schemas(CommandGetDbSchemas {
            catalog: None,
            db_schema_filter_pattern: None,
        })
        .await
        .expect("schemas");
    let b = fetch(&mut c, info).await;
    assert!(strings(&b[0], "db_schema_name").contains(&"public".to_owned()));
    let info = c
        .get_tables(CommandGetTables {
            catalog: None,
            db_schema_filter_pattern: Some("public".into()),
            table_name_filter_pattern: Some("mess%".into()),
            table_types: vec![],
            include_schema: true,
        })
        .await
        .expect("tables");
    let b = fetch(&mut c, info).await;
    assert_eq!(strings(&b[0], "table_name"), ["messages"]);
    assert_eq!(strings(&b[0], "table_type"), ["VIEW"]);
    let info = c.get_table_types().await.expect("types");
    let b = fetch(&mut c, info).await;
    assert_eq!(strings(&b[0], "table_type"), ["TABLE", "VIEW"]);
    let info = c
        .get_sql_info(vec![arrow_flight::sql::SqlInfo::FlightSqlServerName])
        .await
        .expect("sql info");
    assert_eq!(fetch(&mut c, info).await[0].num_rows(), 1);
    let info = c
        .get_primary_keys(arrow_flight::sql::CommandGetPrimaryKeys {
            catalog: None,
            db_schema: None,
            table: "t".into(),
        })
        .await
        .expect("pk");
    assert_eq!(
        fetch(&mut c, info)
            .await
            .iter()
            .map(RecordBatch::num_rows)
            .sum::<usize>(),
        0
    );
    let info = c
        .get_xdbc_type_info(arrow_flight::sql::CommandGetXdbcTypeInfo { data_type: None })
        .await
        .expect("xdbc");
    assert!(fetch(&mut c, info).await[0].num_rows() > 5);

    // Errors keep their meaning: a SQL error is InvalidArgument, a missing table NotFound.
    let e = c.execute("SELEC 1".into(), None).await.expect_err("syntax");
    assert!(e.to_string().contains("invalid argument"), "{e}");
    let e = c
        .execute("SELECT * FROM nowhere".into(), None)
        .await
        .expect_err("missing");
    assert!(e.to_string().to_lowercase().contains("not found"), "{e}");

    server.stop().await;
}

#[tokio::test]
async fn sessions_are_private() {
    let server = Server::start(Authenticator::default()).await;
    let mut a = server.client().await;
    let mut b = server.client().await;
    let info = a
        .execute("CREATE VIEW mine AS SELECT 1 AS one".into(), None)
        .await
        .expect("ddl");
    fetch(&mut a, info).await;
    assert!(a.execute("SELECT * FROM mine".into(), None).await.is_ok());
    let e = b
        .execute("SELECT * FROM mine".into(), None)
        .await
        .expect_err("other session");
    assert!(e.to_string().to_lowercase().contains("not found"), "{e}");
    server.stop().await;
}

#[tokio::test]
async fn authentication() {
    let auth = Authenticator::new(
        HashMap::from([(
            "ana".to_owned(),
            colloquy_flight::hash_password("pw:1").expect("hash"),
        )]),
        HashMap::from([("static-token".to_owned(), "ci".to_owned())]),
    )
    .expect("auth");
    let server = Server::start(auth).await;
    let mut c = server.client().await;
    let e = c
        .execute("SELECT 1".into(), None)
        .await
        .expect_err("no credentials");
    assert!(e.to_string().contains("authentication required"), "{e}");
    assert!(c.handshake("ana", "wrong").await.is_err());
    c.handshake("ana", "pw:1").await.expect("login");
    let info = c
        .execute("SELECT 1 AS one".into(), None)
        .await
        .expect("after login");
    assert_eq!(fetch(&mut c, info).await[0].num_rows(), 1);

    let mut s = server.client().await;
    s.set_token("static-token".into());
    let info = s
        .execute("SELECT 1 AS one".into(), None)
        .await
        .expect("static token");
    assert_eq!(fetch(&mut s, info).await[0].num_rows(), 1);
    server.stop().await;
}

#[tokio::test]
async fn large_results_stream_in_many_messages() {
    let server = Server::start(Authenticator::default()).await;
    let mut c = server.client().await;
    let info = c
        .execute(
            "SELECT value, repeat('x', 100) AS pad FROM generate_series(1, 300000)".into(),
            None,
        )
        .await
        .expect("execute");
    let batches = fetch(&mut c, info).await;
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(rows, 300_000);
    assert!(batches.len() > 10, "{} batches", batches.len());
    assert_eq!(batches[0].schema().field(1).data_type(), &DataType::Utf8);
    server.stop().await;
}

type RawClient = arrow_flight::flight_service_client::FlightServiceClient<Channel>;

async fn raw_client(server: &Server) -> RawClient {
    let channel = Channel::from_shared(format!("http://{}", server.addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    RawClient::new(channel)
}

/// One action on `raw`'s connection (a session is one connection when no token is used).
async fn action(raw: &mut RawClient, kind: &str, body: Vec<u8>) -> Result<Vec<u8>, tonic::Status> {
    let mut results = raw
        .do_action(arrow_flight::Action::new(kind, body))
        .await?
        .into_inner();
    let first = results.message().await?.expect("one result");
    Ok(first.body.to_vec())
}

/// An action that answers with no result (ClosePreparedStatement).
async fn action_done(raw: &mut RawClient, kind: &str, body: Vec<u8>) -> Result<(), tonic::Status> {
    let mut results = raw
        .do_action(arrow_flight::Action::new(kind, body))
        .await?
        .into_inner();
    while results.message().await?.is_some() {}
    Ok(())
}

#[tokio::test]
async fn session_options_and_unknown_actions() {
    use colloquy_flight::session_options as so;
    use prost::Message;
    let server = Server::start(Authenticator::default()).await;
    let mut raw = raw_client(&server).await;
    let mut set = so::SetSessionOptionsRequest::default();
    set.session_options.insert(
        "datafusion.execution.batch_size".into(),
        so::string_value("1234".into()),
    );
    set.session_options
        .insert("no.such.option".into(), so::string_value("1".into()));
    let body = action(&mut raw, "SetSessionOptions", set.encode_to_vec())
        .await
        .expect("set");
    let result = so::SetSessionOptionsResult::decode(body.as_slice()).expect("decode");
    assert_eq!(result.errors.keys().collect::<Vec<_>>(), ["no.such.option"]);
    let body = action(&mut raw, "GetSessionOptions", vec![])
        .await
        .expect("get");
    let got = so::GetSessionOptionsResult::decode(body.as_slice()).expect("decode");
    assert_eq!(
        so::value_text(&got.session_options["datafusion.execution.batch_size"]).as_deref(),
        Some("1234")
    );
    let body = action(&mut raw, "CloseSession", vec![])
        .await
        .expect("close");
    assert_eq!(
        so::CloseSessionResult::decode(body.as_slice())
            .expect("decode")
            .status,
        so::CLOSED
    );
    let e = action(&mut raw, "Frobnicate", vec![])
        .await
        .expect_err("unknown");
    assert_eq!(e.code(), tonic::Code::Unimplemented);
    server.stop().await;
}

#[tokio::test]
async fn get_schema_describes_without_running() {
    use arrow_flight::sql::{CommandStatementQuery, ProstMessageExt};
    use prost::Message;
    let server = Server::start(Authenticator::default()).await;
    let mut raw = raw_client(&server).await;
    let describe = |sql: &str| {
        arrow_flight::FlightDescriptor::new_cmd(
            CommandStatementQuery {
                query: sql.into(),
                transaction_id: None,
            }
            .as_any()
            .encode_to_vec(),
        )
    };
    let got = raw
        .get_schema(describe("SELECT id, intent(text) AS intent FROM messages"))
        .await
        .expect("get_schema")
        .into_inner();
    let schema = datafusion::arrow::datatypes::Schema::try_from(&got).expect("schema");
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["id", "intent"]);
    assert_eq!(schema.field(1).data_type(), &DataType::Utf8);
    // A table created by a statement sent only to GetSchema does not exist: nothing ran.
    raw.get_schema(describe("CREATE TABLE made AS SELECT 1 AS x"))
        .await
        .expect("describing DDL");
    let e = raw
        .get_schema(describe("SELECT * FROM made"))
        .await
        .expect_err("nothing was created");
    assert_eq!(e.code(), tonic::Code::NotFound, "{e}");
    let e = raw
        .get_schema(arrow_flight::FlightDescriptor::new_path(vec!["x".into()]))
        .await
        .expect_err("not a command");
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e}");
    server.stop().await;
}

#[tokio::test]
async fn cancel_and_disconnect_stop_the_work() {
    use prost::Message;
    let server = Server::start(Authenticator::default()).await;
    let mut c = server.client().await;
    // A parked query cancelled before its DoGet.
    let info = c
        .execute("SELECT value FROM generate_series(1, 1000)".into(), None)
        .await
        .expect("execute");
    let req = arrow_flight::CancelFlightInfoRequest::new(info.clone());
    // Another client (another anonymous session) may not cancel it.
    let mut raw = raw_client(&server).await;
    let e = action(&mut raw, "CancelFlightInfo", req.encode_to_vec())
        .await
        .expect_err("not the owner");
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e}");
    let mut results = c
        .do_action(arrow_flight::Action::new(
            "CancelFlightInfo",
            req.encode_to_vec(),
        ))
        .await
        .expect("cancel");
    let body = results
        .message()
        .await
        .expect("result")
        .expect("one result")
        .body;
    let result = arrow_flight::CancelFlightInfoResult::decode(body).expect("decode");
    assert_eq!(result.status(), arrow_flight::CancelStatus::Cancelled);
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    assert!(
        c.do_get(ticket).await.is_err(),
        "a cancelled query cannot be fetched"
    );

    // A client that reads one batch of a huge result and hangs up leaves nothing running.
    let info = c
        .execute(
            "SELECT value FROM generate_series(1, 1000000000)".into(),
            None,
        )
        .await
        .expect("execute");
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let mut stream = c.do_get(ticket).await.expect("do_get");
    futures::StreamExt::next(&mut stream)
        .await
        .expect("one batch")
        .expect("ok");
    assert_eq!(
        server
            .metrics
            .active_streams
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    drop(stream);
    drop(c);
    let mut idle = false;
    for _ in 0..100 {
        if server
            .metrics
            .active_streams
            .load(std::sync::atomic::Ordering::Relaxed)
            == 0
        {
            idle = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(idle, "the abandoned stream is still active");
    server.stop().await;
}

#[tokio::test]
async fn slow_queries_hit_the_timeout() {
    let server = Server::start_with(
        Authenticator::default(),
        Some(std::time::Duration::from_millis(300)),
    )
    .await;
    let mut c = server.client().await;
    let info = c
        .execute(
            "SELECT count(*) FROM generate_series(1, 100000000000)".into(),
            None,
        )
        .await
        .expect("planning is quick");
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let stream = c.do_get(ticket).await.expect("do_get");
    let e = stream.try_collect::<Vec<_>>().await.expect_err("timeout");
    assert!(
        e.to_string().contains("longer than the server's limit"),
        "{e}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_query_past_its_memory_limit_fails_alone() {
    let server = Server::start_tweaked(Authenticator::default(), |o| {
        o.query_memory_limit = Some(4 << 20);
    })
    .await;
    let mut c = server.client().await;
    // The build side of a hash join of a million keys needs far more than 4 MB and cannot spill.
    let info = c
        .execute(
            "SELECT count(*) FROM generate_series(1, 1000000) a JOIN generate_series(1, 1000000) b ON a.value = b.value".into(),
            None,
        )
        .await
        .expect("planning is within limits");
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let stream = c.do_get(ticket).await.expect("do_get");
    let e = stream
        .try_collect::<Vec<_>>()
        .await
        .expect_err("over the limit");
    let status = match &e {
        arrow_flight::error::FlightError::Tonic(s) => s.code(),
        other => panic!("not a gRPC status: {other}"),
    };
    assert_eq!(status, tonic::Code::ResourceExhausted, "{e}");
    assert!(
        e.to_string().contains("per-query memory limit of 4 MB"),
        "{e}"
    );
    // Its memory is given back and the next query on the same session runs.
    let info = c
        .execute(
            "SELECT count(*) AS n FROM generate_series(1, 1000)".into(),
            None,
        )
        .await
        .expect("execute");
    let batches = fetch(&mut c, info).await;
    let n = batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .expect("count")
        .value(0);
    assert_eq!(n, 1000);
    server.stop().await;
}

#[tokio::test]
async fn idle_sessions_and_unfetched_results_are_swept() {
    let server = Server::start_idle(std::time::Duration::from_millis(300)).await;
    let mut c = server.client().await;
    let info = c
        .execute("CREATE VIEW v AS SELECT 1 AS one".into(), None)
        .await
        .expect("ddl");
    fetch(&mut c, info).await;
    let parked = c
        .execute("SELECT 42 AS x".into(), None)
        .await
        .expect("execute");
    // No call for a while: the session (with its view) and the unfetched result are dropped.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let ticket = parked.endpoint[0].ticket.clone().expect("ticket");
    let e = c.do_get(ticket).await.expect_err("swept");
    assert!(
        e.to_string().contains("unknown or already used ticket"),
        "{e}"
    );
    let e = c
        .execute("SELECT one FROM v".into(), None)
        .await
        .expect_err("view gone with its session");
    assert!(e.to_string().to_lowercase().contains("not found"), "{e}");
    server.stop().await;
}
