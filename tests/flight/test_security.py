"""A hostile client against the real `colloquy serve` binary, through the Python ADBC driver and pyarrow.flight.

Every attack of the hardening issue is tried and must be refused: no file read or written outside what the
operator allowed, no request reaching the local HTTP listener this module starts, no secret in a response or
in the server's log, and the server still answering `SELECT 1` after each attempt. The legitimate uses next
to them (a registered archive, the views, text functions, an ONNX model from an allowed folder, ingest into a
session table, COPY under the write prefix) must keep working.
"""
import http.server
import os
import socket
import threading
import time

import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager
import pyarrow as pa
import pyarrow.flight as flight
import pytest

from test_adbc import FIXTURES, hash_password, onnx_fixture, start_server, statement_query_command

SECRET = "SUPERSECRET-7f3a9c"


def cancel_request(info):
    """A Flight CancelFlightInfoRequest (field 1: the FlightInfo), encoded by hand: pyarrow has no class for it."""
    payload = info.serialize()
    n, out = len(payload), bytearray([1 << 3 | 2])
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out) + payload


class Listener:
    """A local HTTP server that records every request: the SSRF tests assert it received none."""

    def __init__(self):
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the http.server API)
                outer.requests.append(self.path)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b'{"text": "leaked"}\n')

            do_HEAD = do_GET
            do_PUT = do_GET

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


class BlackHole:
    """Accepts connections and never answers: a storage host that hangs."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.running = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
                self.conns.append(conn)
            except OSError:
                return

    def close(self):
        self.running = False
        for c in self.conns:
            c.close()
        self.sock.close()


@pytest.fixture(scope="module")
def env(colloquy_binary, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    allowed = tmp / "allowed"
    allowed.mkdir()
    (allowed / "chat.jsonl").write_text(
        '{"session_id": "c1", "id": "m1", "timestamp": "2026-03-02T10:00:00Z", "role": "visitor", '
        '"author": {"id": "v-1", "name": "Ana"}, "text": "where is my order"}\n'
    )
    (allowed / "data.csv").write_text("a,b\n1,2\n")
    (tmp / "secret.txt").write_text("top secret contents\n")
    os.symlink("/etc/passwd", allowed / "passwd-link")
    os.symlink(tmp / "secret.txt", allowed / "secret-link.txt")
    out = tmp / "out"
    out.mkdir()
    models = tmp / "models"
    models.mkdir()
    (models / "intent_tfidf.onnx").write_bytes(onnx_fixture("intent_tfidf.onnx"))
    listener = Listener()
    hole = BlackHole()
    config = f"""
    [[archive]]
    name = "messages"
    location = "{FIXTURES}/analytics/"
    options = {{ timezone = "Europe/Berlin" }}

    [server]
    read = ["{allowed}/", "{models}/", "s3://allowed-bucket/", "http://127.0.0.1:{hole.port}/"]
    write = ["{out}/"]
    allow_hosts = ["127.0.0.1:{hole.port}"]
    max_sql_bytes = 65536
    max_ingest_bytes = "1MB"
    query_timeout_secs = 60
    """
    proc, uri = start_server(colloquy_binary, tmp, config=config)
    yield {
        "uri": uri,
        "tmp": tmp,
        "allowed": allowed,
        "out": out,
        "models": models,
        "listener": listener,
        "hole": hole,
        "log": tmp / "server-stderr.log",
        "proc": proc,
    }
    # Killed, not terminated: a graceful stop would wait for the requests still hanging on the black hole.
    proc.kill()
    proc.wait(timeout=30)
    listener.close()
    hole.close()


def refused(uri, sql, *expected):
    """Runs `sql` on a fresh connection, asserts it fails with every `expected` text, returns the message."""
    with flight_sql.connect(uri) as conn, conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.Error) as err:
            cur.execute(sql)
            cur.fetchall()
    message = str(err.value)
    for text in expected:
        assert text in message, message
    return message


def alive(uri):
    with flight_sql.connect(uri) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 AS one")
        assert cur.fetchall() == [(1,)]


@pytest.fixture(autouse=True)
def server_survives(env):
    yield
    assert env["proc"].poll() is None, "the server died"
    alive(env["uri"])


def test_host_files_cannot_be_read(env):
    uri = env["uri"]
    refused(uri, "CREATE EXTERNAL TABLE pw STORED AS CSV LOCATION '/etc/passwd'", "rule: locations", "read = [")
    for fmt in ("JSON", "PARQUET", "ARCHIVE"):
        refused(uri, f"CREATE EXTERNAL TABLE pw STORED AS {fmt} LOCATION '/etc/passwd'", "rule: locations")
    refused(uri, "SELECT * FROM read_archive('/etc/passwd', 'csv')", "rule: locations")
    refused(uri, "SELECT * FROM read_archive('file:///etc/ssl/', 'auto', 'on_error', 'skip')", "rule: locations")
    with flight_sql.connect(uri) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM archive_errors()")
        assert cur.fetchall() == [(0,)]
    # `..`, symlinks and system folders are judged where they lead.
    refused(uri, f"SELECT * FROM read_archive('{env['allowed']}/../secret.txt', 'csv')", "rule: locations")
    message = refused(uri, f"SELECT * FROM read_archive('{env['allowed']}/secret-link.txt', 'csv')")
    assert "top secret" not in message
    message = refused(uri, f"SELECT * FROM read_archive('{env['allowed']}/passwd-link', 'csv')")
    assert "root:" not in message
    refused(uri, "SELECT * FROM read_archive('/proc/self/environ', 'csv')", "off limits")
    # A whole allowed folder is listed and read without object_store (colloquy_archive::local): the links
    # in it are still judged where they lead, file by file, and nothing they point at comes back.
    message = refused(uri, f"SELECT text FROM read_archive('{env['allowed']}/', 'auto', 'on_error', 'skip')")
    assert "top secret" not in message and "root:" not in message, message
    refused(uri, "CREATE FUNCTION pw(TEXT) RETURNS TEXT LANGUAGE ONNX AS '/etc/passwd'", "rule: locations")


def test_host_files_cannot_be_written(env):
    uri = env["uri"]
    target = env["tmp"] / "evil.csv"
    refused(uri, f"COPY (SELECT 1 AS x) TO '{target}' STORED AS CSV", "rule: writes", "write = [")
    refused(uri, f"COPY (SELECT 1 AS x) TO '{env['allowed']}/evil.csv' STORED AS CSV", "rule: writes")
    assert not target.exists() and not (env["allowed"] / "evil.csv").exists()
    before = (env["allowed"] / "data.csv").read_text()
    with flight_sql.connect(uri) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE EXTERNAL TABLE d STORED AS CSV LOCATION '{env['allowed']}/data.csv' OPTIONS ('format.has_header' 'true')")
        cur.fetchall()
        cur.execute("SELECT a, b FROM d")
        assert cur.fetchall() == [(1, 2)]
        with pytest.raises(adbc_driver_manager.Error) as err:
            cur.execute("INSERT INTO d VALUES (3, 4)")
            cur.fetchall()
        assert "rule: writes" in str(err.value)
        # The same through a DoPut update.
        with pytest.raises(adbc_driver_manager.Error):
            cur.executemany("INSERT INTO d VALUES (?, ?)", [(5, 6)])
    assert (env["allowed"] / "data.csv").read_text() == before
    assert sorted(p.name for p in env["allowed"].iterdir()) == [
        "chat.jsonl", "data.csv", "passwd-link", "secret-link.txt",
    ]
    # Under the write prefix the operator chose, COPY works.
    with flight_sql.connect(uri) as conn, conn.cursor() as cur:
        cur.execute(f"COPY (SELECT 1 AS x) TO '{env['out']}/ok.csv' STORED AS CSV")
        cur.fetchall()
    assert (env["out"] / "ok.csv").read_text().strip().splitlines() == ["x", "1"]


def test_no_requests_to_internal_addresses(env):
    uri, port = env["uri"], env["listener"].port
    refused(uri, f"SELECT * FROM read_archive('http://127.0.0.1:{port}/x.jsonl', 'jsonl')", "rule: locations")
    refused(uri, "SELECT * FROM read_archive('http://169.254.169.254/latest/meta-data/', 'jsonl')")
    refused(uri, f"CREATE FUNCTION f(TEXT) RETURNS DOUBLE LANGUAGE ONNX AS 'http://127.0.0.1:{port}/m.onnx'")
    # An allowed bucket, but a client endpoint that would carry the request (signed with the server's
    # credentials, before) to the listener.
    refused(uri, f"SELECT * FROM read_archive('s3://allowed-bucket/x/', 'jsonl', 'aws.endpoint', 'http://127.0.0.1:{port}')",
            "allow_hosts")
    refused(uri, "SELECT * FROM read_archive('s3://allowed-bucket/x/', 'jsonl', 'aws.metadata_endpoint', "
                 f"'http://127.0.0.1:{port}')", "not available to clients")
    refused(uri, f"CREATE EXTERNAL TABLE s STORED AS ARCHIVE LOCATION 's3://allowed-bucket/x/' "
                 f"OPTIONS ('aws.endpoint' 'http://127.0.0.1:{port}', 'aws.access_key_id' 'AKIAEXAMPLE', "
                 f"'aws.secret_access_key' '{SECRET}')", "allow_hosts")
    time.sleep(0.5)
    assert env["listener"].requests == []


def test_deep_and_long_sql_is_an_error_not_a_crash(env):
    uri = env["uri"]
    refused(uri, "SELECT 1" + "+1" * 2000, "max_expression_depth")
    refused(uri, "SELECT " + "(" * 200 + "1" + ")" * 200)
    refused(uri, "SELECT '" + "x" * 70000 + "'", "max_sql_bytes")
    with flight_sql.connect(uri) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1" + "+1" * 150 + " AS n")
        assert cur.fetchall() == [(151,)]


def test_resource_settings_belong_to_the_operator(env):
    uri = env["uri"]
    refused(uri, "SET datafusion.runtime.memory_limit = '64G'", "cannot change")
    refused(uri, "SET datafusion.runtime.temp_directory = '/tmp/x'", "cannot change")
    refused(uri, "SET datafusion.sql_parser.recursion_limit = 100000", "cannot change")
    refused(uri, "SET datafusion.execution.target_partitions = 100000", "max_target_partitions")
    with flight_sql.connect(uri) as conn, conn.cursor() as cur:
        cur.execute("SET datafusion.execution.time_zone = '+02:00'")
        cur.fetchall()
        cur.execute("SET datafusion.execution.target_partitions = 2")
        cur.fetchall()
        cur.execute("SELECT value FROM information_schema.df_settings WHERE name = 'datafusion.execution.target_partitions'")
        assert cur.fetchall() == [("2",)]


def test_ingest_is_capped_and_session_tables_work(env):
    uri = env["uri"]
    small = pa.table({"id": pa.array([1, 2], pa.int64()), "text": ["hi", "where is my order"]})
    big = pa.table({"text": ["x" * 1000] * 4000})
    with flight_sql.connect(uri) as conn, conn.cursor() as cur:
        assert cur.adbc_ingest("uploaded", small, mode="create") == 2
        cur.execute("SELECT count(*) FROM uploaded")
        assert cur.fetchall() == [(2,)]
        with pytest.raises(adbc_driver_manager.Error) as err:
            cur.adbc_ingest("too_big", big, mode="create")
        assert "max_ingest_bytes" in str(err.value)


def test_a_hanging_host_stalls_no_one_else(env):
    uri, hole = env["uri"], env["hole"]
    errors = []

    def hang():
        try:
            with flight_sql.connect(uri) as conn, conn.cursor() as cur:
                cur.execute(f"SELECT * FROM read_archive('http://127.0.0.1:{hole.port}/x.jsonl', 'jsonl')")
                cur.fetchall()
        except adbc_driver_manager.Error as e:
            errors.append(e)

    threads = [threading.Thread(target=hang, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    started = time.monotonic()
    alive(uri)
    # A liveness bound, generous on purpose: before the fix the answer took ~30 s.
    assert time.monotonic() - started < 10


def test_another_clients_query_cannot_be_cancelled(env):
    a = flight.FlightClient(env["uri"])
    b = flight.FlightClient(env["uri"])
    info = a.get_flight_info(flight.FlightDescriptor.for_command(statement_query_command("SELECT 42 AS answer")))
    with pytest.raises(flight.FlightError) as err:
        list(b.do_action(flight.Action("CancelFlightInfo", cancel_request(info))))
    assert "another user" in str(err.value)
    # The owner still gets the rows.
    table = a.do_get(info.endpoints[0].ticket).read_all()
    assert table.column("answer").to_pylist() == [42]
    a.close()
    b.close()


def test_secrets_stay_out_of_logs_and_answers(env):
    uri = env["uri"]
    with flight_sql.connect(uri) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM read_archive('{env['allowed']}/chat.jsonl', 'jsonl', 'aws.secret_access_key', '{SECRET}')")
        assert cur.fetchall() == [(1,)]
        cur.execute("SELECT count(*) FROM information_schema.df_settings WHERE value LIKE '%SUPERSECRET%'")
        assert cur.fetchall() == [(0,)]
    message = refused(uri, f"CREATE EXTERNAL TABLE s STORED AS ARCHIVE LOCATION 's3://allowed-bucket/x/' "
                           f"OPTIONS ('aws.secret_access_key' '{SECRET}', 'aws.proxy_url' 'http://127.0.0.1:1')")
    assert SECRET not in message
    time.sleep(0.3)
    log = env["log"].read_text()
    assert "read_archive" in log, "the query log should have the statement"
    assert SECRET not in log


def test_legitimate_use_still_works(env):
    uri = env["uri"]
    with flight_sql.connect(uri) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM messages")
        assert cur.fetchall()[0][0] > 0
        cur.execute("SELECT count(*) FROM conversations")
        assert cur.fetchall() == [(10,)]
        cur.execute("SELECT language('¿Dónde está mi pedido?') AS lang, intent('where is my order?') AS i")
        assert cur.fetchall() == [("es", "track_order")]
        cur.execute(f"SELECT count(*) FROM read_archive('{env['allowed']}/chat.jsonl', 'jsonl')")
        assert cur.fetchall() == [(1,)]
        cur.execute(f"CREATE FUNCTION topic(TEXT) RETURNS TEXT LANGUAGE ONNX AS '{env['models']}/intent_tfidf.onnx'")
        cur.fetchall()
        cur.execute("SELECT topic('my parcel has not arrived yet') IS NOT NULL AS scored")
        assert cur.fetchall() == [(True,)]


@pytest.fixture(scope="module")
def secured(colloquy_binary, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile-secured")
    proc, uri = start_server(colloquy_binary, tmp, config=f"""
        [server.users]
        ana = "{hash_password(colloquy_binary, 'pa:ss')}"
        bob = "{hash_password(colloquy_binary, 'b0b')}"
        """)
    yield uri, tmp
    proc.terminate()
    proc.wait(timeout=30)


def test_tokens_are_random_and_end_with_the_session(secured, env):
    uri, tmp = secured
    client = flight.FlightClient(uri)
    header = client.authenticate_basic_token("ana", "pa:ss")
    token = header[1].decode().split(" ", 1)[1]
    assert len(token) == 64 and all(c in "0123456789abcdef" for c in token)
    assert token != flight.FlightClient(uri).authenticate_basic_token("ana", "pa:ss")[1].decode().split(" ", 1)[1]
    options = flight.FlightCallOptions(headers=[header])
    descriptor = flight.FlightDescriptor.for_command(statement_query_command("SELECT 1 AS one"))
    client.get_flight_info(descriptor, options)
    list(client.do_action(flight.Action("CloseSession", b""), options))
    with pytest.raises(flight.FlightUnauthenticatedError):
        client.get_flight_info(descriptor, options)
    # A made-up token is no session, on a secured server and on an open one.
    made_up = flight.FlightCallOptions(headers=[(b"authorization", b"Bearer " + b"0" * 64)])
    with pytest.raises(flight.FlightUnauthenticatedError):
        client.get_flight_info(descriptor, made_up)
    with pytest.raises(flight.FlightUnauthenticatedError):
        flight.FlightClient(env["uri"]).get_flight_info(descriptor, made_up)
    with pytest.raises(flight.FlightUnauthenticatedError):
        client.authenticate_basic_token("ana", "wrong")
    with pytest.raises(flight.FlightUnauthenticatedError):
        client.authenticate_basic_token("nobody", "pa:ss")
    # Another user's query cannot be cancelled either.
    bob = flight.FlightClient(uri)
    bob_options = flight.FlightCallOptions(headers=[bob.authenticate_basic_token("bob", "b0b")])
    ana_options = flight.FlightCallOptions(headers=[client.authenticate_basic_token("ana", "pa:ss")])
    info = client.get_flight_info(descriptor, ana_options)
    with pytest.raises(flight.FlightError):
        list(bob.do_action(flight.Action("CancelFlightInfo", cancel_request(info)), bob_options))
    with pytest.raises(flight.FlightError):
        bob.do_get(info.endpoints[0].ticket, bob_options).read_all()
    assert client.do_get(info.endpoints[0].ticket, ana_options).read_all().num_rows == 1
    log = (tmp / "server-stderr.log").read_text()
    assert "pa:ss" not in log and token not in log
