"""The real Python ADBC Flight SQL driver and pyarrow.flight against the real `colloquy serve` binary.

Run by scripts/test after the Rust tests: `pytest tests/flight --colloquy target/debug/colloquy`.
Each test module starts its own server on a free port (the binary prints its address) and stops it at the end.
"""
import os
import subprocess
import textwrap

import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager
import pyarrow as pa
import pyarrow.flight as flight
import pytest


def start_server(binary, tmp_path, config=None, demo=False, env=None, preexec_fn=None, extra=None):
    tmp_path.mkdir(parents=True, exist_ok=True)
    args = [binary, "serve", "--bind", "127.0.0.1:0"] + (extra or [])
    if config:
        path = tmp_path / "colloquy.toml"
        path.write_text(textwrap.dedent(config))
        args += ["--config", str(path)]
    if demo:
        args.append("--demo")
    env = dict(os.environ, COLLOQUY_CACHE_DIR=str(tmp_path / "cache"), **(env or {}))
    # The server logs a line per query to stderr: into a file, because a pipe nobody reads fills up
    # (64 KiB) and then blocks the server's next log write.
    log = tmp_path / "server-stderr.log"
    with open(log, "w") as stderr:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env,
                                preexec_fn=preexec_fn)
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        proc.wait(timeout=30)
        raise RuntimeError(f"server did not start: {line!r} {log.read_text()}")
    return proc, line.strip().rsplit(" ", 1)[-1]


def hash_password(binary, password):
    """An argon2 hash for [server.users], made the way an operator makes one."""
    done = subprocess.run([binary, "hash-password"], input=password + "\n", capture_output=True, text=True, check=True)
    return done.stdout.strip()


FIXTURES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "fixtures"))


def onnx_fixture(name):
    """The bytes of an ONNX test model that scripts/test builds into .venv-onnx/fixtures (or $COLLOQUY_ONNX_FIXTURES)."""
    folder = os.environ.get("COLLOQUY_ONNX_FIXTURES") or os.path.join(
        os.path.dirname(__file__), "..", "..", ".venv-onnx", "fixtures"
    )
    path = os.path.join(folder, name)
    assert os.path.exists(path), f"{path} is missing: scripts/test builds it (scripts/onnx/train_sklearn_fixture.py)"
    with open(path, "rb") as f:
        return f.read()


@pytest.fixture(scope="module")
def server(colloquy_binary, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("open")
    # The analytics test creates a table over the fixture folder: the operator allows it.
    proc, uri = start_server(colloquy_binary, tmp, config=f"""
        [server]
        read = ["{FIXTURES}/analytics/"]
        """)
    yield uri
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def secured(colloquy_binary, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("secured")
    proc, uri = start_server(
        colloquy_binary,
        tmp,
        config=f"""
        [server.users]
        ana = "{hash_password(colloquy_binary, 'pa:ss')}"
        [server.tokens]
        "static-token-1" = "ci"
        """,
    )
    yield uri
    proc.terminate()
    proc.wait(timeout=30)


def test_query_into_pandas(server):
    with flight_sql.connect(server) as conn, conn.cursor() as cur:
        cur.execute("SELECT language('¿Dónde está mi pedido?') AS lang, intent('where is my order?') AS intent")
        df = cur.fetch_df()
        assert df.to_dict("records") == [{"lang": "es", "intent": "track_order"}]


def test_prepared_statement_with_parameters(server):
    with flight_sql.connect(server) as conn, conn.cursor() as cur:
        cur.execute("SELECT ? + 1 AS n, upper(?) AS s", parameters=(41, "abc"))
        assert cur.fetchall() == [(42, "ABC")]
        cur.execute("SELECT $1 * 2 AS n", parameters=(21,))
        assert cur.fetchall() == [(42,)]


def test_ddl_runs_once_and_session_state_is_private(server):
    with flight_sql.connect(server) as a, flight_sql.connect(server) as b:
        with a.cursor() as cur:
            cur.execute("CREATE VIEW only_a AS SELECT 7 AS seven")
            cur.fetchall()
            cur.execute("SELECT seven FROM only_a")
            assert cur.fetchall() == [(7,)]
        with b.cursor() as cur, pytest.raises(adbc_driver_manager.Error) as err:
            cur.execute("SELECT seven FROM only_a")
        assert "not found" in str(err.value).lower()


def test_ingest_get_objects_and_table_schema(server):
    data = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "text": ["hi", "where is my order", "thanks"]})
    with flight_sql.connect(server) as conn:
        with conn.cursor() as cur:
            assert cur.adbc_ingest("uploaded", data, mode="create") == 3
            assert cur.adbc_ingest("uploaded", data, mode="append") == 3
            cur.execute("SELECT count(*) AS n, count(DISTINCT intent(text)) AS k FROM uploaded")
            assert cur.fetchall() == [(6, 2)]
        objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
        tables = [
            t["table_name"]
            for cat in objects
            for schema in cat["catalog_db_schemas"] or []
            for t in schema["db_schema_tables"] or []
        ]
        assert "uploaded" in tables
        schema = conn.adbc_get_table_schema("uploaded")
        assert schema.names == ["id", "text"]
        assert schema.field("text").type == pa.string()


def test_analytics_views_follow_messages(server):
    fixture = os.path.join(os.path.dirname(__file__), "..", "fixtures", "analytics")
    with flight_sql.connect(server) as conn, conn.cursor() as cur:
        # No messages table yet: no views.
        with pytest.raises(adbc_driver_manager.Error):
            cur.execute("SELECT * FROM conversations")
        cur.execute(
            f"CREATE EXTERNAL TABLE messages STORED AS ARCHIVE LOCATION '{os.path.abspath(fixture)}/' "
            "OPTIONS ('timezone' 'Europe/Berlin')"
        )
        cur.fetchall()
        cur.execute("SELECT count(*) FROM conversations")
        assert cur.fetchall() == [(10,)]
        cur.execute("SELECT channel, fcr_rate FROM first_contact_resolution WHERE week = DATE '2026-03-02' ORDER BY channel")
        assert cur.fetchall() == [("slack", 1.0), ("sms", 1.0), ("webchat", 1.0), ("whatsapp", 0.0)]
        # Bulk ingest replacing messages re-plans the views over the new rows.
        ts = pa.array([1772445600_000000, 1772445660_000000], pa.timestamp("us", tz="UTC"))
        table = pa.table({
            "channel": ["sms", "sms"], "conversation_id": ["c", "c"], "message_id": ["1", "2"], "ts": ts,
            "sender_id": ["+1", "a"], "sender_name": ["Zoe", "Agent"], "sender_role": ["customer", "agent"],
            "text": ["where is my order?", "on its way"], "reply_to": pa.array([None, None], pa.string()),
            "source": ["upload", "upload"], "source_line": pa.array([1, 2], pa.int64()),
        })
        cur.execute("DROP TABLE messages")
        cur.fetchall()
        assert cur.adbc_ingest("messages", table, mode="create") == 2
        cur.execute("SELECT customer_id, first_response_s FROM conversations")
        assert cur.fetchall() == [("sms:+1", 60.0)]


def test_large_result_streams(server):
    with flight_sql.connect(server) as conn, conn.cursor() as cur:
        cur.execute("SELECT value, value % 7 AS m FROM generate_series(1, 5000000)")
        table = cur.fetch_arrow_table()
        assert table.num_rows == 5_000_000
        import pyarrow.compute as pc

        assert pc.sum(table.column("value")).as_py() == 5_000_000 * 5_000_001 // 2
        assert pc.max(table.column("m")).as_py() == 6


def test_errors_have_codes_and_messages(server):
    with flight_sql.connect(server) as conn, conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.ProgrammingError) as err:
            cur.execute("SELEC 1")
        assert "INVALID_ARGUMENT" in str(err.value) or "InvalidArgument" in str(err.value)
        with pytest.raises(adbc_driver_manager.Error) as err:
            cur.execute("SELECT * FROM no_such_table")
        assert "not found" in str(err.value).lower()


def test_execute_schema_without_running(server):
    with flight_sql.connect(server) as conn, conn.cursor() as cur:
        schema = cur.adbc_execute_schema("SELECT 1 AS one, intent('refund me') AS label, now() AS at")
        assert schema.names == ["one", "label", "at"]
        assert schema.field("label").type == pa.string()
        with pytest.raises(adbc_driver_manager.Error) as err:
            cur.adbc_execute_schema("SELECT * FROM no_such_table")
        assert "not found" in str(err.value).lower()


def statement_query_command(sql):
    """google.protobuf.Any wrapping a Flight SQL CommandStatementQuery, encoded by hand."""
    def field(number, payload):
        n, out = len(payload), bytearray([number << 3 | 2])
        while True:
            out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
            n >>= 7
            if not n:
                return bytes(out) + payload
    url = b"type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery"
    return field(1, url) + field(2, field(1, sql.encode()))


def test_pyarrow_flight_raw_calls(server):
    client = flight.FlightClient(server)
    descriptor = flight.FlightDescriptor.for_command(statement_query_command("SELECT 42 AS answer, 'x' AS s"))
    assert client.get_schema(descriptor).schema.names == ["answer", "s"]
    with pytest.raises(pa.ArrowInvalid) as err:  # pyarrow's name for InvalidArgument
        client.get_schema(flight.FlightDescriptor.for_command(b"not a command"))
    assert "GetSchema" in str(err.value)
    # Session options are not supported yet: the server answers with a clear code, not a crash.
    actions = [a.type for a in client.list_actions()]
    assert "CreatePreparedStatement" in actions
    client.close()


def test_authentication(secured):
    with pytest.raises(adbc_driver_manager.Error) as err:
        with flight_sql.connect(secured) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
    assert "authentication" in str(err.value).lower() or "unauthenticated" in str(err.value).lower()

    with pytest.raises(adbc_driver_manager.Error):
        with flight_sql.connect(secured, db_kwargs={"username": "ana", "password": "wrong"}) as conn:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")

    with flight_sql.connect(secured, db_kwargs={"username": "ana", "password": "pa:ss"}) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 AS one")
        assert cur.fetchall() == [(1,)]

    token_kwargs = {"adbc.flight.sql.authorization_header": "Bearer static-token-1"}
    with flight_sql.connect(secured, db_kwargs=token_kwargs) as conn, conn.cursor() as cur:
        cur.execute("SELECT 2 AS two")
        assert cur.fetchall() == [(2,)]

    client = flight.FlightClient(secured)
    token = client.authenticate_basic_token("ana", "pa:ss")
    assert token[1].startswith(b"Bearer ")
    client.close()


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_tls_metrics_and_demo(colloquy_binary, tmp_path):
    import urllib.request

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    metrics_port = free_port()
    proc, uri = start_server(
        colloquy_binary,
        tmp_path,
        config=f"""
        [server]
        tls_cert = "{cert}"
        tls_key = "{key}"
        metrics_bind = "127.0.0.1:{metrics_port}"
        memory_limit = "512MB"
        query_memory_limit = "256MB"
        archive_cache = "128MB"
        """,
        demo=True,
    )
    try:
        assert uri.startswith("grpc+tls://")
        pem = cert.read_text()
        kwargs = {"adbc.flight.sql.client_option.tls_root_certs": pem}
        with flight_sql.connect(uri, db_kwargs=kwargs) as conn, conn.cursor() as cur:
            cur.execute("SELECT channel, count(*) AS n FROM messages GROUP BY channel ORDER BY n DESC")
            rows = cur.fetchall()
            assert len(rows) >= 3 and all(n > 0 for _, n in rows)
            # The second query over the archive is answered from the parsed cache, with the same rows.
            cur.execute("SELECT channel, count(*) AS n FROM messages GROUP BY channel ORDER BY n DESC")
            assert cur.fetchall() == rows
        with pytest.raises(adbc_driver_manager.Error):
            # Without the certificate the client must refuse the server.
            with flight_sql.connect(uri) as conn, conn.cursor() as cur:
                cur.execute("SELECT 1")
        health = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/health", timeout=5).read()
        assert health == b"ok\n"
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
        queries = [l for l in metrics.splitlines() if l.startswith("colloquy_queries_total ")]
        assert queries and int(queries[0].split()[1]) >= 1, metrics
        assert "colloquy_memory_reserved_bytes" in metrics
        hits = [l for l in metrics.splitlines() if l.startswith("colloquy_archive_cache_hits_total ")]
        assert hits and int(hits[0].split()[1]) > 0, metrics
    finally:
        proc.terminate()
        proc.wait(timeout=30)
