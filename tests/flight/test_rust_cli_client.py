"""arrow-rs's `flight_sql_client` command-line tool (arrow-flight's `cli` feature) against the real
`colloquy serve` binary: a third, independent Flight SQL client next to ADBC and pyarrow.flight.

scripts/test installs the tool (`cargo install arrow-flight --features cli,flight-sql,tls-ring --bin
flight_sql_client`) and passes it as `--flight-sql-client`; without it these tests fail, never skip.
"""
import os
import subprocess
from urllib.parse import urlparse

import pytest

from test_adbc import hash_password, start_server


@pytest.fixture(scope="module")
def client_binary(request):
    path = request.config.getoption("--flight-sql-client")
    assert path, "pass --flight-sql-client PATH (scripts/test installs arrow-flight's flight_sql_client)"
    return path


@pytest.fixture(scope="module")
def servers(colloquy_binary, tmp_path_factory):
    """An open server with the analytics fixture archive as `messages`, and one with a user and a token."""
    fixture = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "fixtures", "analytics"))
    open_proc, open_uri = start_server(
        colloquy_binary,
        tmp_path_factory.mktemp("cli-open"),
        config=f"""
        [[archive]]
        name = "messages"
        location = "{fixture}/"
        """,
    )
    secured_proc, secured_uri = start_server(
        colloquy_binary,
        tmp_path_factory.mktemp("cli-secured"),
        config=f"""
        [server.users]
        ana = "{hash_password(colloquy_binary, 'pa:ss')}"
        [server.tokens]
        "cli-token" = "ci"
        """,
    )
    yield {"open": open_uri, "secured": secured_uri}
    for proc in (open_proc, secured_proc):
        proc.terminate()
        proc.wait(timeout=30)


def run(binary, uri, *args, auth=()):
    address = urlparse(uri)
    done = subprocess.run(
        [binary, "--host", address.hostname, "--port", str(address.port), *auth, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stdout, done.stderr


def test_statement_query(client_binary, servers):
    code, out, err = run(client_binary, servers["open"], "statement-query",
                         "SELECT 41 + 1 AS answer, 'ok' AS status, intent('where is my parcel?') AS intent")
    assert code == 0, err
    assert "answer" in out and "| 42" in out and "ok" in out and "track_order" in out, out


def test_prepared_statement_with_a_parameter(client_binary, servers):
    code, out, err = run(client_binary, servers["open"], "prepared-statement-query",
                         "SELECT $1 * 2 AS doubled", "-p", "$1=21")
    assert code == 0, err
    assert "doubled" in out and "42" in out, out


def test_metadata_commands(client_binary, servers):
    code, out, err = run(client_binary, servers["open"], "catalogs")
    assert code == 0, err
    assert "datafusion" in out, out
    code, out, err = run(client_binary, servers["open"], "table-types")
    assert code == 0, err
    assert "TABLE" in out and "VIEW" in out, out
    code, out, err = run(client_binary, servers["open"], "tables", "datafusion")
    assert code == 0, err
    rows = [line for line in out.splitlines() if "| datafusion" in line]
    tables = {cells[3]: cells[4] for cells in ([c.strip() for c in row.split("|")] for row in rows)}
    assert tables.get("messages") == "TABLE" and tables.get("conversations") == "VIEW", out
    fixture = os.path.join(os.path.dirname(__file__), "..", "fixtures", "analytics", "contact_center.jsonl")
    with open(fixture, encoding="utf-8") as f:
        lines = sum(1 for line in f if line.strip())
    code, out, err = run(client_binary, servers["open"], "statement-query", "SELECT count(*) AS n FROM messages")
    assert code == 0 and f"| {lines} " in out, out + err


def test_errors_reach_the_tool(client_binary, servers):
    code, out, err = run(client_binary, servers["open"], "statement-query", "SELECT * FROM no_such_table")
    assert code != 0
    assert "no_such_table" in err, err


def test_authentication(client_binary, servers):
    uri = servers["secured"]
    code, _, err = run(client_binary, uri, "statement-query", "SELECT 1")
    assert code != 0 and ("Unauthenticated" in err or "authentication" in err.lower()), err
    code, _, err = run(client_binary, uri, "statement-query", "SELECT 1", auth=("--username", "ana", "--password", "wrong"))
    assert code != 0, err
    code, out, err = run(client_binary, uri, "statement-query", "SELECT 1 AS one",
                         auth=("--username", "ana", "--password", "pa:ss"))
    assert code == 0 and "one" in out, err
    code, out, err = run(client_binary, uri, "statement-query", "SELECT 2 AS two", auth=("--token", "cli-token"))
    assert code == 0 and "two" in out, err
