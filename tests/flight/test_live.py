"""Live ingest: messages posted to the real server's HTTP endpoint join `messages`, read with the ADBC driver.

The server acknowledges a request only once its messages are synced to the write-ahead log; a retried
message is stored once; a server killed with SIGKILL keeps every acknowledged message after a restart;
hostile requests (no or wrong token, oversized, malformed) are refused with a reason and store nothing;
and clients can neither write into the store nor read its log.
"""
import json
import signal
import socket
import time
import urllib.error
import urllib.request

import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager
import pytest

from test_adbc import start_server

TOKEN = "live-token-0123456789"
MAX_BODY = 4096


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def message(i, conversation="live-c1", text="where is my parcel? it never arrived"):
    return {"message_id": f"live-{i}", "channel": "webchat", "conversation_id": conversation,
            "ts": f"2026-03-30T10:{i:02d}:00Z", "sender_id": "u-9", "sender_role": "customer", "text": text}


def post(env, body, token=TOKEN, method="POST", path="/v1/messages", headers=None):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{env['live_port']}{path}", data=data if method == "POST" else None,
                                 method=method)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def start(binary, tmp, flush_ms):
    archive = tmp / "chats"
    archive.mkdir(exist_ok=True)
    (archive / "log.jsonl").write_text(json.dumps({
        "channel": "sms", "conversation_id": "c1", "message_id": "m1", "ts": "2026-03-01T10:00:00Z",
        "role": "customer", "text": "hello",
    }) + "\n")
    port = free_port()
    config = f"""
    [[archive]]
    name = "messages"
    location = "{archive}/"

    [live]
    dir = "{tmp / 'store'}"
    bind = "127.0.0.1:{port}"
    token = "{TOKEN}"
    max_body_bytes = {MAX_BODY}
    flush_ms = {flush_ms}
    """
    proc, uri = start_server(binary, tmp, config=config)
    return {"proc": proc, "uri": uri, "live_port": port, "tmp": tmp}


@pytest.fixture(scope="module")
def env(colloquy_binary, tmp_path_factory):
    e = start(colloquy_binary, tmp_path_factory.mktemp("live"), flush_ms=100)
    yield e
    e["proc"].terminate()
    e["proc"].wait(timeout=30)


def run(env, sql):
    with flight_sql.connect(env["uri"]) as conn:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()


def live_count(env):
    return run(env, "SELECT count(*) FROM messages WHERE channel = 'webchat'")[0][0]


def wait_for(env, n):
    deadline = time.time() + 30
    while (got := live_count(env)) != n:
        assert time.time() < deadline, f"messages has {got} live messages, expected {n}"
        time.sleep(0.05)


def test_posted_messages_join_messages_and_the_views(env):
    status, body = post(env, [message(1), message(2, text="this is terrible, I want a refund")])
    assert (status, body) == (200, {"accepted": 2, "duplicates": 0})
    wait_for(env, 2)
    # The archive's own message is still there.
    assert run(env, "SELECT count(*) FROM messages WHERE channel = 'sms'")[0][0] == 1
    rows = run(env, "SELECT message_id, intent, sentiment < 0 FROM conversation_messages "
                    "WHERE conversation_id = 'live-c1' ORDER BY position")
    assert [r[0] for r in rows] == ["live-1", "live-2"]
    assert rows[1][2] is True


def test_a_retried_message_is_stored_once(env):
    before = live_count(env)
    status, body = post(env, json.dumps(message(3)).encode() + b"\n" + json.dumps(message(3)).encode())
    assert (status, body) == (200, {"accepted": 1, "duplicates": 1})
    status, body = post(env, message(3))
    assert (status, body) == (200, {"accepted": 0, "duplicates": 1})
    wait_for(env, before + 1)
    time.sleep(0.3)
    assert live_count(env) == before + 1


@pytest.mark.parametrize("case", ["no token", "wrong token", "too large", "too large, chunked", "not json",
                                  "missing field", "bad timestamp", "bad role", "wrong method", "no route"])
def test_hostile_requests_are_refused_and_store_nothing(env, case):
    before = live_count(env)
    bad_ts = dict(message(40), ts="yesterday")
    bad_role = dict(message(41), sender_role="admin")
    missing = {k: v for k, v in message(42).items() if k != "conversation_id"}
    status, body = {
        "no token": lambda: post(env, message(43), token=None),
        "wrong token": lambda: post(env, message(43), token=TOKEN + "x"),
        "too large": lambda: post(env, [message(44, text="x" * 3000), message(45, text="y" * 3000)]),
        "too large, chunked": lambda: post(env, b"[" + b" " * (MAX_BODY * 2) + b"]",
                                           headers={"Transfer-Encoding": "chunked"}),
        "not json": lambda: post(env, json.dumps(message(46)).encode() + b"\n{oops"),
        "missing field": lambda: post(env, missing),
        "bad timestamp": lambda: post(env, [message(47), bad_ts]),
        "bad role": lambda: post(env, bad_role),
        "wrong method": lambda: post(env, b"", method="GET"),
        "no route": lambda: post(env, message(48), path="/v1/anything"),
    }[case]()
    expected = {
        "no token": (401, "Authorization: Bearer"),
        "wrong token": (401, "Authorization: Bearer"),
        "too large": (413, f"larger than {MAX_BODY} bytes"),
        "too large, chunked": (413, f"larger than {MAX_BODY} bytes"),
        "not json": (400, "line 2, column 2: not JSON"),
        "missing field": (400, "line 1: missing field `conversation_id`"),
        "bad timestamp": (400, "message 2: field 'ts': 'yesterday' is not an RFC 3339 timestamp"),
        "bad role": (400, "field 'sender_role': 'admin' is not one of customer, agent, bot, system"),
        "wrong method": (405, "use POST"),
        "no route": (404, "no route /v1/anything"),
    }[case]
    assert status == expected[0], body
    assert expected[1] in body["error"], body
    time.sleep(0.3)
    assert live_count(env) == before


def test_clients_cannot_write_the_store_or_read_its_log(env):
    store = env["tmp"] / "store"
    with pytest.raises(adbc_driver_manager.Error) as e:
        run(env, f"COPY (SELECT 1 AS x) TO '{store}/data/webchat/forged.jsonl' STORED AS JSON")
    assert "denied" in str(e.value).lower() or "not allowed" in str(e.value).lower(), str(e.value)
    with pytest.raises(adbc_driver_manager.Error) as e:
        run(env, f"SELECT count(*) FROM read_archive('{store}/wal.jsonl')")
    assert "read" in str(e.value).lower(), str(e.value)


def test_acknowledged_messages_survive_kill_9(colloquy_binary, tmp_path):
    # Flushed only once a minute: the acknowledged messages are in the write-ahead log alone.
    e = start(colloquy_binary, tmp_path, flush_ms=60000)
    try:
        for i in range(5):
            assert post(e, message(i, conversation="crash"))[0] == 200
        e["proc"].send_signal(signal.SIGKILL)
        e["proc"].wait(timeout=30)
        e2 = start(colloquy_binary, tmp_path, flush_ms=60000)
        try:
            assert run(e2, "SELECT count(*), count(DISTINCT message_id) FROM messages "
                           "WHERE conversation_id = 'crash'")[0] == (5, 5)
            assert post(e2, message(2, conversation="crash")) == (200, {"accepted": 0, "duplicates": 1})
        finally:
            e2["proc"].terminate()
            e2["proc"].wait(timeout=30)
    finally:
        if e["proc"].poll() is None:
            e["proc"].kill()
