"""Governance through the real `colloquy serve` binary and the Python ADBC driver: two teams share one server.

`emea` (ana) sees the WhatsApp and SMS conversations, `americas` (bob) the web chat; neither sees raw
customer text (PII redacted), sender names (hashed) or sender ids (hidden), nor the `notes` table. `analyst`
(carol) has clearance for all of it. `ml` (dave) sees every channel, masked, and may create functions.

The bypass suite: for a role denied rows or a column, every path we know of is tried, and each attempt is
listed with its expected outcome. A leak is any response (rows, schema, error text, plan text) holding a
value the role may not see. The SECRETS below only occur in rows or columns denied to ana.
"""
import json
import signal
import subprocess
import time

import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager
import pyarrow as pa
import pytest

from test_adbc import hash_password, onnx_fixture, start_server

# In webchat rows only (rows ana may not see).
HIDDEN_ROW_SECRET = "Zanzibar-4417"
# In every row's sender_id (hashed for ana).
HIDDEN_ID = "cust-sid-"
# In every row's attachments (a hidden column for ana).
ATTACHMENT = "passport-scan-881.pdf"
# A phone number in the text of a row ana sees: masked by redact_pii for her.
PHONE = "+44 7700 900123"
# In the notes table only.
NOTE_SECRET = "note-secret-31337"

USERS = {"ana": "ana-pw", "bob": "bob-pw", "carol": "carol-pw", "dave": "dave-pw"}


def rows():
    out = []
    for i, (channel, text) in enumerate([
        ("whatsapp", f"my parcel is late, call me on {PHONE}"),
        ("whatsapp", "thanks, it arrived"),
        ("sms", "where is my order?"),
        ("webchat", f"my code is {HIDDEN_ROW_SECRET}"),
        ("webchat", f"{HIDDEN_ROW_SECRET} again, please refund"),
    ]):
        out.append({
            "channel": channel,
            "conversation_id": f"{channel}-{i}",
            "message_id": f"m{i}",
            "ts": f"2026-03-0{i + 1}T10:00:00Z",
            "role": "customer",
            "sender_id": f"{HIDDEN_ID}{i}",
            "sender_name": f"Customer {i}",
            "text": text,
            "attachments": [ATTACHMENT],
        })
    return out


@pytest.fixture(scope="module")
def env(colloquy_binary, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("governance")
    data = tmp / "chats"
    data.mkdir()
    (data / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows()))
    notes = tmp / "notes"
    notes.mkdir()
    (notes / "notes.csv").write_text(f"ts,channel,text\n2026-03-01T00:00:00Z,internal,{NOTE_SECRET}\n")
    readable = tmp / "readable"
    readable.mkdir()
    (readable / "own.jsonl").write_text(json.dumps({"text": "my own data", "ts": "2026-03-01T00:00:00Z"}) + "\n")
    out = tmp / "out"
    out.mkdir()
    models = tmp / "models"
    models.mkdir()
    (models / "intent.onnx").write_bytes(onnx_fixture("intent_tfidf.onnx"))
    audit = tmp / "audit" / "audit.jsonl"
    users = "\n".join(f'{u} = "{hash_password(colloquy_binary, p)}"' for u, p in USERS.items())
    config = f"""
    [[archive]]
    name = "messages"
    location = "{data}/"

    [[archive]]
    name = "notes"
    location = "{notes}/notes.csv"
    options = {{ format = "csv" }}

    [server]
    read = ["{tmp}/"]
    write = ["{out}/"]
    audit_log = "{audit}"

    [server.users]
    {users}

    [server.roles]
    emea = ["ana"]
    americas = ["bob"]
    analyst = ["carol"]
    ml = ["dave"]

    [[server.grant]]
    role = "emea"
    select = ["messages"]

    [[server.grant]]
    role = "americas"
    select = ["messages"]

    [[server.grant]]
    role = "analyst"
    select = ["*"]
    write = true

    [[server.grant]]
    role = "ml"
    select = ["messages"]
    create_function = true

    [[server.row_policy]]
    table = "messages"
    roles = ["emea"]
    using = "channel IN ('whatsapp', 'sms')"

    [[server.row_policy]]
    table = "messages"
    roles = ["americas"]
    using = "channel = 'webchat'"

    [[server.row_policy]]
    table = "messages"
    roles = ["analyst", "ml"]
    using = "true"

    [[server.column_policy]]
    table = "messages"
    column = "text"
    mask = "redact_pii(text)"
    except = ["analyst"]

    [[server.column_policy]]
    table = "messages"
    column = "sender_name"
    mask = "hash"
    except = ["analyst"]

    [[server.column_policy]]
    table = "messages"
    column = "sender_id"
    mask = "hash"
    except = ["analyst"]

    [[server.column_policy]]
    table = "messages"
    column = "attachments"
    mask = "hide"
    except = ["analyst"]
    """
    proc, uri = start_server(colloquy_binary, tmp, config=config)
    yield {
        "uri": uri, "tmp": tmp, "data": data, "notes": notes, "readable": readable, "out": out, "proc": proc,
        "models": models, "audit": audit, "binary": colloquy_binary,
    }
    proc.terminate()
    proc.wait(timeout=30)


def connect(env, user):
    return flight_sql.connect(env["uri"], db_kwargs={"username": user, "password": USERS[user]})


def run(env, user, sql, parameters=None):
    with connect(env, user) as conn, conn.cursor() as cur:
        cur.execute(sql, parameters=parameters)
        return cur.fetchall()


def assert_no_leak(text, secrets=(HIDDEN_ROW_SECRET, HIDDEN_ID, PHONE, NOTE_SECRET, "Customer ", ATTACHMENT)):
    for s in secrets:
        assert s not in text, f"{s!r} leaked: {text}"


def outcome(env, user, sql, parameters=None):
    """('rows', rows) or ('error', message), with the whole response checked for secrets."""
    try:
        got = run(env, user, sql, parameters)
    except adbc_driver_manager.Error as e:
        assert_no_leak(str(e))
        return "error", str(e)
    assert_no_leak(repr(got))
    return "rows", got


@pytest.fixture(autouse=True)
def server_survives(env):
    yield
    assert env["proc"].poll() is None, "the server died"


def test_each_team_sees_its_own_rows_and_masked_columns(env):
    ana = run(env, "ana", "SELECT channel, text, sender_name FROM messages ORDER BY message_id")
    assert [r[0] for r in ana] == ["whatsapp", "whatsapp", "sms"]
    assert PHONE not in ana[0][1] and "call me on" in ana[0][1]
    assert all(len(r[2]) == 64 for r in ana), ana  # SHA-256 hex
    bob = run(env, "bob", "SELECT channel, text FROM messages ORDER BY message_id")
    assert [r[0] for r in bob] == ["webchat", "webchat"]
    carol = run(env, "carol", "SELECT channel, text, sender_id, sender_name, attachments FROM messages ORDER BY message_id")
    assert len(carol) == 5 and carol[0][1].endswith(PHONE) and carol[0][2] == f"{HIDDEN_ID}0"
    assert carol[0][3] == "Customer 0" and carol[0][4] == [ATTACHMENT]
    dave = run(env, "dave", "SELECT count(*) FROM messages")
    assert dave == [(5,)]
    # The same person hashes to the same value for every masked role: joins and counts still work.
    assert run(env, "ana", "SELECT sender_name FROM messages WHERE message_id = 'm0'") == run(
        env, "dave", "SELECT sender_name FROM messages WHERE message_id = 'm0'")


def test_analytics_views_inherit_the_policies(env):
    kind, got = outcome(env, "ana", "SELECT channel FROM conversations ORDER BY channel")
    assert kind == "rows" and sorted({r[0] for r in got}) == ["sms", "whatsapp"]
    kind, got = outcome(env, "ana", "SELECT * FROM conversation_messages")
    assert kind == "rows" and len(got) == 3
    kind, got = outcome(env, "bob", "SELECT channel, count(*) FROM conversation_messages GROUP BY channel")
    assert got == [("webchat", 2)]


# Every path tried by `ana` to reach webchat rows, sender ids, raw text or the notes table, with its
# expected outcome: "rows" (answered, without the secret) or "error" (refused or not found).
BYPASSES = [
    ("a subquery", "SELECT * FROM (SELECT * FROM messages) t WHERE channel = 'webchat'", "rows"),
    ("a CTE", "WITH m AS (SELECT * FROM messages) SELECT text FROM m", "rows"),
    ("a self join", "SELECT a.text, b.text FROM messages a JOIN messages b ON a.channel <> b.channel", "rows"),
    ("UNION", "SELECT text FROM messages UNION ALL SELECT text FROM messages", "rows"),
    ("a window", "SELECT text, lead(text) OVER (ORDER BY ts) FROM messages", "rows"),
    ("min/max/array_agg of text", "SELECT min(text), max(text), array_agg(text) FROM messages", "rows"),
    ("string_agg of everything", "SELECT string_agg(text || sender_name || channel, ',') FROM messages", "rows"),
    ("count by channel", "SELECT channel, count(*) FROM messages GROUP BY channel", "rows"),
    ("a filter on the hidden channel", "SELECT count(*) FROM messages WHERE channel = 'webchat'", "rows"),
    ("a LIKE probe on hidden text", f"SELECT count(*) FROM messages WHERE text LIKE '%{HIDDEN_ROW_SECRET[:4]}%'", "rows"),
    ("the hidden column", "SELECT attachments FROM messages", "error"),
    ("the hidden column, quoted", 'SELECT "attachments" FROM messages', "error"),
    ("the hashed column", "SELECT sender_id FROM messages", "rows"),
    ("star", "SELECT * FROM messages", "rows"),
    ("a division that fails on a hidden value",
     f"SELECT count(*) FROM messages WHERE 1 / (CASE WHEN text LIKE '%{HIDDEN_ROW_SECRET}%' THEN 0 ELSE 1 END) = 1", "rows"),
    ("a cast that echoes a value", "SELECT CAST(text AS INT) FROM messages", "error"),
    ("a cast of the name", "SELECT CAST(sender_name AS BIGINT) FROM messages", "error"),
    ("a view over the table", "CREATE VIEW mine AS SELECT * FROM messages", "rows"),
    ("text functions over hidden text", "SELECT sentiment(text), intent(text), language(text), pii_types(text) FROM messages", "rows"),
    ("drift over the text", "SELECT drift(text, channel = 'sms') FROM messages", "rows"),
    ("classification_report over hashed names", "SELECT classification_report(sender_name, channel) FROM messages", "rows"),
    ("confusion_matrix over masked text", "SELECT confusion_matrix(text, channel) FROM messages", "rows"),
    ("EXPLAIN", "EXPLAIN SELECT * FROM messages", "rows"),
    ("EXPLAIN VERBOSE", "EXPLAIN VERBOSE SELECT * FROM messages WHERE channel = 'webchat'", "rows"),
    ("EXPLAIN ANALYZE (its row counts)", "EXPLAIN ANALYZE SELECT * FROM messages", "error"),
    ("the notes table", "SELECT * FROM notes", "error"),
    ("information_schema.tables", "SELECT table_name FROM information_schema.tables WHERE table_name = 'notes'", "rows"),
    ("information_schema.columns", "SELECT column_name FROM information_schema.columns WHERE table_name = 'messages' AND column_name = 'attachments'", "rows"),
    ("SHOW TABLES", "SHOW TABLES", "rows"),
    ("SHOW COLUMNS", "SHOW COLUMNS FROM messages", "rows"),
    ("archive_errors()", "SELECT * FROM archive_errors()", "error"),
    ("read_archive of the protected location", "SELECT * FROM read_archive('{data}/')", "error"),
    ("read_archive of its parent", "SELECT * FROM read_archive('{tmp}/')", "error"),
    ("read_archive of a glob inside it", "SELECT * FROM read_archive('{data}/*.jsonl')", "error"),
    ("read_archive of the notes file", "SELECT * FROM read_archive('{notes}/notes.csv', 'csv')", "error"),
    ("an external table over the location", "CREATE EXTERNAL TABLE raw STORED AS JSON LOCATION '{data}/log.jsonl'", "error"),
    ("an archive table over the location", "CREATE EXTERNAL TABLE raw2 STORED AS ARCHIVE LOCATION '{data}/'", "error"),
    ("a CSV table over the notes", "CREATE EXTERNAL TABLE n STORED AS CSV LOCATION '{notes}/notes.csv'", "error"),
    ("an ONNX model read from the location", "CREATE FUNCTION f(TEXT) RETURNS TEXT LANGUAGE ONNX AS '{data}/log.jsonl'", "error"),
    ("COPY out of the masked table", "COPY (SELECT * FROM messages) TO '{out}/leak.csv' STORED AS CSV", "error"),
    ("a table that shadows the protected one", "CREATE OR REPLACE TABLE messages AS SELECT 'x' AS text", "rows"),
    ("view definitions", "SELECT definition FROM information_schema.views", "rows"),
    ("SHOW CREATE TABLE", "SHOW CREATE TABLE messages", "rows"),
]


@pytest.mark.parametrize("what,sql,expected", BYPASSES, ids=[b[0] for b in BYPASSES])
def test_bypass(env, what, sql, expected):
    sql = sql.format(data=env["data"], tmp=env["tmp"], notes=env["notes"], out=env["out"])
    kind, got = outcome(env, "ana", sql)
    assert kind == expected, f"{what}: {got}"
    if kind == "rows":
        text = repr(got)
        if what == "information_schema.tables":
            assert got == [], got
        if what in ("information_schema.columns",):
            assert got == [], got
        if what in ("SHOW TABLES",):
            assert "notes" not in text
        if what in ("SHOW COLUMNS", "star"):
            assert "attachments" not in text
        if what == "count by channel":
            assert sorted(got) == [("sms", 1), ("whatsapp", 2)]
        if what in ("a filter on the hidden channel", "a LIKE probe on hidden text"):
            assert got == [(0,)]
        if what == "a division that fails on a hidden value":
            assert got == [(3,)]
        if what in ("classification_report over hashed names", "confusion_matrix over masked text"):
            # Only the role's three rows are scored: no hidden channel among the labels.
            assert "webchat" not in text, text
        if what == "classification_report over hashed names":
            assert [r for r in got[0][0] if r["label"] == "accuracy"][0]["support"] == 3, got
    else:
        assert "rule: grants" in got or "not found" in got.lower() or "no field" in got.lower() or "not exist" in got.lower() or "cast" in got.lower() or "schema" in got.lower(), got


def test_model_quality_scores_only_the_rows_the_role_reads(env):
    """A role's own `labels` table, naming hidden messages too, gives a model_quality of its rows only."""
    with connect(env, "ana") as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE labels (message_id VARCHAR, task VARCHAR, label VARCHAR) AS VALUES "
                    "('m0', 'language', 'en'), ('m3', 'language', 'en'), ('m4', 'language', 'en')")
        cur.fetchall()
        cur.execute("SELECT channel, reviewed, label, support FROM model_quality WHERE label = 'accuracy'")
        got = cur.fetchall()
    assert_no_leak(repr(got))
    assert got == [("whatsapp", 1, "accuracy", 1)], got


def test_prepared_statements_with_parameters(env):
    kind, got = outcome(env, "ana", "SELECT count(*) FROM messages WHERE channel = ?", parameters=("webchat",))
    assert (kind, got) == ("rows", [(0,)])
    kind, got = outcome(env, "ana", "SELECT text FROM messages WHERE text LIKE ?", parameters=(f"%{HIDDEN_ROW_SECRET}%",))
    assert (kind, got) == ("rows", [])


def test_metadata_calls_list_only_what_the_role_reads(env):
    with connect(env, "ana") as conn:
        objects = json.dumps(conn.adbc_get_objects(depth="all").read_all().to_pylist())
        assert "notes" not in objects and "attachments" not in objects
        assert "messages" in objects
        schema = conn.adbc_get_table_schema("messages")
        assert "attachments" not in schema.names and "text" in schema.names
        with pytest.raises(adbc_driver_manager.Error):
            conn.adbc_get_table_schema("notes")
    with connect(env, "carol") as conn:
        assert "attachments" in conn.adbc_get_table_schema("messages").names
        objects = json.dumps(conn.adbc_get_objects(depth="tables").read_all().to_pylist())
        assert "notes" in objects


def test_grants_for_writes_ingest_and_functions(env):
    data = pa.table({"text": ["hi"]})
    with connect(env, "ana") as conn, conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.Error) as err:
            cur.adbc_ingest("uploaded", data, mode="create")
        assert "rule: grants" in str(err.value)
        # An ingest that shadows the protected table is refused the same way.
        with pytest.raises(adbc_driver_manager.Error):
            cur.adbc_ingest("messages", data, mode="replace")
    kind, got = outcome(env, "ana", "CREATE FUNCTION g(TEXT) RETURNS TEXT LANGUAGE ONNX AS '{}/x.onnx'".format(env["readable"]))
    assert kind == "error" and "create_function" in got
    # carol may write; dave may create functions (the model file is missing: the grant passed, the read did not).
    assert run(env, "carol", f"COPY (SELECT channel FROM messages) TO '{env['out']}/ok.csv' STORED AS CSV")
    kind, got = outcome(env, "dave", "CREATE FUNCTION g(TEXT) RETURNS TEXT LANGUAGE ONNX AS '{}/x.onnx'".format(env["readable"]))
    assert kind == "error" and "create_function" not in got
    # Reading allowed, unprotected data still works for ana.
    assert run(env, "ana", "SELECT text FROM read_archive('{}/own.jsonl')".format(env["readable"])) == [("my own data",)]


def test_the_masked_text_never_carries_the_phone_number(env):
    got = run(env, "ana", "SELECT string_agg(text, ' | ') FROM messages")
    assert PHONE not in got[0][0] and "call me on" in got[0][0]


def test_a_reload_reaches_open_sessions_and_prepared_statements(env):
    """SIGHUP with ana's role emptied: her open connection loses `messages`, then gets it back."""
    config = env["tmp"] / "colloquy.toml"
    original = config.read_text()
    with connect(env, "ana") as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM messages")
        assert cur.fetchall() == [(3,)]
        try:
            config.write_text(original.replace('emea = ["ana"]', "emea = []"))
            env["proc"].send_signal(signal.SIGHUP)
            deadline = time.time() + 10
            while "reloaded users, tokens and governance" not in (env["tmp"] / "server-stderr.log").read_text():
                assert time.time() < deadline, "the server did not reload"
                time.sleep(0.1)
            # The driver reuses its prepared statement for the same text: planned under the old rules,
            # it is refused.
            with pytest.raises(adbc_driver_manager.Error) as err:
                cur.execute("SELECT count(*) FROM messages")
                cur.fetchall()
            assert "prepare it again" in str(err.value)
            # The same connection, a new statement: the session is shaped again under the new rules.
            with pytest.raises(adbc_driver_manager.Error) as err:
                cur.execute("SELECT count(*) AS n FROM messages")
                cur.fetchall()
            assert "not found" in str(err.value).lower()
        finally:
            config.write_text(original)
            env["proc"].send_signal(signal.SIGHUP)
            deadline = time.time() + 10
            while (env["tmp"] / "server-stderr.log").read_text().count("reloaded users, tokens and governance") < 2:
                assert time.time() < deadline, "the server did not reload"
                time.sleep(0.1)
    assert run(env, "ana", "SELECT count(*) FROM messages") == [(3,)]


def test_the_audit_trail(env):
    """Last: it reads the trail the tests above wrote."""
    # A model version is named in the entries of the statements that used it.
    model = env["models"] / "intent.onnx"
    with connect(env, "dave") as conn, conn.cursor() as cur:
        cur.execute(f"CREATE FUNCTION house_intent(TEXT) RETURNS TEXT LANGUAGE ONNX AS '{model}'")
        cur.fetchall()
        cur.execute("SELECT house_intent(text) FROM messages")
        assert len(cur.fetchall()) == 5
        # Replacing the function keeps the history: who registered which file, when, and when it was replaced.
        cur.execute(f"CREATE OR REPLACE FUNCTION house_intent(TEXT) RETURNS DOUBLE LANGUAGE ONNX AS '{model}'")
        cur.fetchall()
        cur.execute("SELECT name, owner, returns, replaced_at IS NULL FROM onnx_model_history() ORDER BY registered_at")
        history = cur.fetchall()
        assert [(h[0], h[1], h[3]) for h in history] == [("house_intent", "dave", False), ("house_intent", "dave", True)]
        assert history[0][2] in ("Utf8", "Utf8View") and history[1][2] == "Float64"
    # The history outlives the session: dave's next connection (a new session) still lists both versions,
    # tagged with the session that registered them.
    again = run(env, "dave", "SELECT name, owner, session FROM onnx_model_history() ORDER BY registered_at")
    assert [(h[0], h[1]) for h in again] == [("house_intent", "dave")] * 2, again
    assert again[0][2] and again[0][2] == again[1][2], again
    # A hostile client asking for the model history sees its own models only, not dave's.
    kind, got = outcome(env, "ana", "SELECT name, owner, source FROM onnx_model_history()")
    assert (kind, got) == ("rows", []), got
    # A role cleared for the audit trail (carol reads every table) sees everybody's.
    seen = run(env, "carol", "SELECT owner, name FROM onnx_model_history()")
    assert seen == [("dave", "house_intent")] * 2, seen
    # Only a role granted `audit_log` reads it; for the others it is neither a table nor a file.
    kind, got = outcome(env, "ana", "SELECT * FROM audit_log")
    assert kind == "error"
    kind, got = outcome(env, "ana", f"SELECT * FROM read_archive('{env['audit']}', 'jsonl')")
    assert kind == "error" and "rule: grants" in got
    entries = run(env, "carol", 'SELECT "user", kind, sql, outcome, models, roles FROM audit_log ORDER BY seq')
    users = {e[0] for e in entries}
    assert {"ana", "bob", "carol", "dave"} <= users, users
    refused = [e for e in entries if e[0] == "ana" and e[3] == "error"]
    assert refused, "refused statements are recorded too"
    used = [e for e in entries if e[0] == "dave" and "house_intent" in e[2]]
    assert any(m and m[0].startswith("house_intent@") for *_, m, _ in used), used
    assert any(e[5] == ["public", "emea"] for e in entries if e[0] == "ana")
    # Literals are elided on a governed server, so no value a role typed reaches the trail.
    text = env["audit"].read_text()
    for secret in (HIDDEN_ROW_SECRET, PHONE, NOTE_SECRET, USERS["ana"]):
        assert secret not in text, secret
    assert "LIKE ?" in text
    # The chain verifies; a line removed from the middle is found, with its line number.
    ok = subprocess.run([env["binary"], "audit", "verify", str(env["audit"])], capture_output=True, text=True)
    assert ok.returncode == 0 and "chain intact" in ok.stdout, ok.stderr
    lines = text.splitlines(keepends=True)
    tampered = env["tmp"] / "tampered.jsonl"
    tampered.write_text("".join(lines[:2] + lines[3:]))
    bad = subprocess.run([env["binary"], "audit", "verify", str(tampered)], capture_output=True, text=True)
    assert bad.returncode != 0 and "line 3" in bad.stderr, bad.stderr
