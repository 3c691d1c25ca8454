"""Live ingest: messages posted to the real server's HTTP endpoint join `messages`, read with the ADBC driver.

The server acknowledges a request only once its messages are synced to the write-ahead log; a retried
message is stored once; a server killed with SIGKILL keeps every acknowledged message after a restart;
hostile requests (no or wrong token, oversized, malformed) are refused with a reason and store nothing;
and clients can neither write into the store nor read its log. The channels' webhooks (WhatsApp Cloud
API, Twilio, Slack Events API) are signed here as the channels sign them, from their public docs; a bad or
stale signature is refused and nothing is stored.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import resource
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager
import pytest

from test_adbc import start_server
from test_audit_store import s3  # noqa: F401 (the moto S3 server fixture)

TOKEN = "live-token-0123456789"
MAX_BODY = 4096
META_SECRET = "meta-app-secret-42"
VERIFY_TOKEN = "verify-me-7"
TWILIO_TOKEN = "twilio-auth-token-9"
SLACK_SECRET = "slack-signing-secret-3"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def message(i, conversation="live-c1", text="where is my parcel? it never arrived"):
    return {"message_id": f"live-{i}", "channel": "webchat", "conversation_id": conversation,
            "ts": f"2026-03-30T10:{i:02d}:00Z", "sender_id": "u-9", "sender_role": "customer", "text": text}


def post(env, body, token=TOKEN, method="POST", path="/v1/messages", headers=None, raw=False):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{env['live_port']}{path}", data=data if method == "POST" else None,
                                 method=method)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            data = resp.read()
            return resp.status, data.decode() if raw else json.loads(data)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def start(binary, tmp, flush_ms, extra="", live_keys="", preexec_fn=None, env=None):
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
    {live_keys}

    [live.whatsapp]
    app_secret = "{META_SECRET}"
    verify_token = "{VERIFY_TOKEN}"

    [live.twilio]
    auth_token = "{TWILIO_TOKEN}"
    url = "https://chat.example.com/v1/twilio"

    [live.slack]
    signing_secret = "{SLACK_SECRET}"
    {extra}
    """
    proc, uri = start_server(binary, tmp, config=config, preexec_fn=preexec_fn, env=env)
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


def count_where(env, where):
    return run(env, f"SELECT count(*) FROM messages WHERE {where}")[0][0]


def wait_where(env, where, n):
    deadline = time.time() + 30
    while (got := count_where(env, where)) != n:
        assert time.time() < deadline, f"{got} messages where {where}, expected {n}"
        time.sleep(0.05)


WHATSAPP = {
    "object": "whatsapp_business_account",
    "entry": [{"id": "102", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": "106"},
        "contacts": [{"profile": {"name": "Ana Ruiz"}, "wa_id": "34600111222"}],
        "messages": [{"from": "34600111222", "id": "wamid.live1", "timestamp": "1774864800", "type": "text",
                      "text": {"body": "mi pedido no ha llegado"}}],
        "statuses": [{"id": "wamid.out1", "status": "delivered", "timestamp": "1774864801"}],
    }}]}],
}


def test_whatsapp_handshake_and_signed_webhooks(env):
    query = urllib.parse.urlencode({"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN,
                                    "hub.challenge": "1158201444"})
    assert post(env, b"", token=None, method="GET", path=f"/v1/whatsapp?{query}", raw=True) == (200, "1158201444")
    wrong = query.replace(VERIFY_TOKEN, "guess")
    assert post(env, b"", token=None, method="GET", path=f"/v1/whatsapp?{wrong}")[0] == 403
    body = json.dumps(WHATSAPP).encode()
    good = "sha256=" + hmac.new(META_SECRET.encode(), body, hashlib.sha256).hexdigest()
    forged = "sha256=" + hmac.new(b"guess", body, hashlib.sha256).hexdigest()
    status, reply = post(env, body, token=None, path="/v1/whatsapp", headers={"X-Hub-Signature-256": forged})
    assert status == 401 and "does not match" in reply["error"], reply
    assert post(env, body, token=None, path="/v1/whatsapp")[0] == 401
    status, reply = post(env, body, token=None, path="/v1/whatsapp", headers={"X-Hub-Signature-256": good})
    assert (status, reply) == (200, {"accepted": 1, "duplicates": 0})
    wait_where(env, "channel = 'whatsapp' AND message_id = 'wamid.live1'", 1)
    row = run(env, "SELECT conversation_id, sender_name, text, CAST(ts AS VARCHAR) FROM messages "
                   "WHERE message_id = 'wamid.live1'")[0]
    assert row[:3] == ("34600111222", "Ana Ruiz", "mi pedido no ha llegado")
    assert row[3].startswith("2026-03-30T10:00:00")
    # The delivery status is not a message.
    assert count_where(env, "message_id = 'wamid.out1'") == 0


def twilio_signature(url, params):
    data = url + "".join(k + v for k, v in sorted(params.items()))
    return base64.b64encode(hmac.new(TWILIO_TOKEN.encode(), data.encode(), hashlib.sha1).digest()).decode()


def test_twilio_signed_webhooks(env):
    params = {"MessageSid": "SMlive1", "From": "+14155550100", "To": "+14155550199",
              "Body": "I was charged twice", "AccountSid": "AC1"}
    body = urllib.parse.urlencode(params).encode()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    sig = twilio_signature("https://chat.example.com/v1/twilio", params)
    wrong_url = twilio_signature("https://attacker.example.com/v1/twilio", params)
    assert post(env, body, token=None, path="/v1/twilio", headers={**form, "X-Twilio-Signature": wrong_url})[0] == 401
    status, reply = post(env, body, token=None, path="/v1/twilio", headers={**form, "X-Twilio-Signature": sig},
                         raw=True)
    assert status == 200 and "<Response></Response>" in reply
    wait_where(env, "channel = 'sms' AND message_id = 'SMlive1'", 1)
    assert run(env, "SELECT conversation_id, text FROM messages WHERE message_id = 'SMlive1'")[0] == (
        "+14155550100", "I was charged twice")


def slack_headers(body, secret=SLACK_SECRET, ts=None):
    ts = str(int(time.time()) if ts is None else ts)
    sig = "v0=" + hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Signature": sig, "X-Slack-Request-Timestamp": ts, "Content-Type": "application/json"}


def test_slack_challenge_and_signed_events(env):
    challenge = json.dumps({"type": "url_verification", "challenge": "3eZbrw1aB"}).encode()
    assert post(env, challenge, token=None, path="/v1/slack", headers=slack_headers(challenge)) == (
        200, {"challenge": "3eZbrw1aB"})
    event = json.dumps({"type": "event_callback", "event_id": "Ev1", "event": {
        "type": "message", "channel": "C0LIVE", "user": "U7", "text": "the export button does nothing",
        "ts": "1774864800.000100"}}).encode()
    stale = slack_headers(event, ts=int(time.time()) - 600)
    status, reply = post(env, event, token=None, path="/v1/slack", headers=stale)
    assert status == 401 and "five minutes" in reply["error"], reply
    forged = slack_headers(event, secret="guess")
    assert post(env, event, token=None, path="/v1/slack", headers=forged)[0] == 401
    assert post(env, event, token=None, path="/v1/slack", headers=slack_headers(event)) == (
        200, {"accepted": 1, "duplicates": 0})
    wait_where(env, "channel = 'slack' AND conversation_id = 'C0LIVE'", 1)


class Receiver:
    """A webhook receiver on loopback that keeps what it is sent."""

    def __init__(self):
        got = self.got = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                got.append((self.headers["X-Colloquy-Event"], json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def rule_events(env):
    return run(env, 'SELECT "rule", "key", status FROM rule_events ORDER BY "at", status')


def wait_until(check, what, timeout=30):
    deadline = time.time() + timeout
    while not check():
        assert time.time() < deadline, what
        time.sleep(0.1)


def test_rules_fire_once_survive_restarts_and_dead_letter(colloquy_binary, tmp_path):
    receiver = Receiver()
    rules = f"""
    [[live.rule]]
    name = "refund_request"
    sql = "SELECT conversation_key, text FROM conversation_messages WHERE sender_role = 'customer' AND lower(text) LIKE '%refund%'"
    key = "conversation_key"
    webhook = "http://127.0.0.1:{receiver.port}/hook"

    [[live.rule]]
    name = "receiver_down"
    sql = "SELECT conversation_id FROM messages WHERE conversation_id = 'rules-b'"
    key = "conversation_id"
    webhook = "http://127.0.0.1:9/hook"

    [[live.rule]]
    name = "table_only"
    sql = "SELECT conversation_id FROM messages WHERE conversation_id = 'rules-b'"
    key = "conversation_id"

    # The built-in rules of sql/rules/ (each must plan, with its key, or the server does not start).
    [[live.rule]]
    builtin = "negative_streak"
    [[live.rule]]
    builtin = "negative_spike"
    [[live.rule]]
    builtin = "customer_waiting"
    """
    e = start(colloquy_binary, tmp_path, flush_ms=100, extra=rules, live_keys="webhook_tries = 2")
    try:
        assert post(e, message(1, conversation="rules-a", text="I want a refund for order 9"))[0] == 200
        wait_until(lambda: len(receiver.got) == 1, "the refund rule did not fire")
        event, body = receiver.got[0]
        assert event == "refund_request/webchat/rules-a#1"
        assert body["rule"] == "refund_request" and body["row"]["text"] == "I want a refund for order 9"
        # Another match in the same conversation does not fire again.
        assert post(e, message(2, conversation="rules-a", text="refund please"))[0] == 200
        assert post(e, message(3, conversation="rules-b", text="where is my parcel? it never arrived"))[0] == 200
        wait_until(lambda: ("table_only", "rules-b", "recorded") in rule_events(e), "table_only did not record")
        wait_until(lambda: ("receiver_down", "rules-b", "dead_letter") in rule_events(e),
                   f"receiver_down was not dead-lettered: {rule_events(e)}")
        # Three plainly negative messages in a row, the last one waiting for a reply.
        for i, text in enumerate(["this is terrible", "worst service ever, I am furious",
                                  "absolutely awful, nobody helps me"]):
            assert post(e, message(30 + i, conversation="rules-d", text=text))[0] == 200
        wait_until(lambda: ("negative_streak", "webchat/rules-d#1", "recorded") in rule_events(e),
                   f"negative_streak did not fire: {rule_events(e)}")
        # The customer who wrote rules-b's message at 10:03 has waited more than 15 minutes at 10:32.
        wait_until(lambda: ("customer_waiting", "webchat/rules-b#1", "recorded") in rule_events(e),
                   f"customer_waiting did not fire: {rule_events(e)}")
        events = rule_events(e)
        assert events.count(("refund_request", "webchat/rules-a#1", "fired")) == 1
        assert ("refund_request", "webchat/rules-a#1", "delivered") in events
        assert len(receiver.got) == 1
    finally:
        e["proc"].terminate()
        e["proc"].wait(timeout=30)
    # After a restart nothing fires again, and new matches still do.
    e = start(colloquy_binary, tmp_path, flush_ms=100, extra=rules, live_keys="webhook_tries = 2")
    try:
        assert post(e, message(4, conversation="rules-c", text="refund me"))[0] == 200
        wait_until(lambda: len(receiver.got) == 2, "the rule did not fire after the restart")
        assert [g[0] for g in receiver.got] == ["refund_request/webchat/rules-a#1", "refund_request/webchat/rules-c#1"]
        assert rule_events(e).count(("refund_request", "webchat/rules-a#1", "fired")) == 1
    finally:
        e["proc"].terminate()
        e["proc"].wait(timeout=30)
        receiver.server.shutdown()


@pytest.mark.parametrize("rule, error", [
    ('name = "broken"\n    sql = "SELECT nothing FROM nowhere"\n    key = "nothing"', "[[live.rule]] broken: the query"),
    ('name = "keyless"\n    sql = "SELECT 1 AS x"\n    key = "conversation_key"',
     "[[live.rule]] keyless: the query has no column 'conversation_key'"),
    ('builtin = "no_such_rule"', "[[live.rule]] builtin 'no_such_rule' is not one of negative_streak"),
    # A rule only reads: a statement that would change the session is refused before it runs.
    ('name = "dropper"\n    sql = "DROP VIEW messages"\n    key = "x"', "only a query (SELECT …) can be a rule"),
])
def test_a_rule_that_cannot_run_stops_the_server(colloquy_binary, tmp_path, rule, error):
    with pytest.raises(RuntimeError) as e:
        start(colloquy_binary, tmp_path, flush_ms=100, extra=f"[[live.rule]]\n    {rule}")
    assert error in str(e.value)


def test_replay_sends_an_archive_in_time_order(env, colloquy_binary, tmp_path):
    archive = tmp_path / "replay"
    archive.mkdir()
    # Written out of order: the replay sorts by time.
    rows = [{"channel": "webchat", "conversation_id": f"replay-{i % 3}", "message_id": f"r-{i}",
             "ts": f"2026-03-31T09:{59 - i:02d}:00Z", "role": "customer", "text": f"message {i}"} for i in range(30)]
    (archive / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    before = live_count(env)
    url = f"http://127.0.0.1:{env['live_port']}"
    done = subprocess.run([colloquy_binary, "replay", str(archive), "--to", url, "--rate", "0", "--batch", "7"],
                          env={"COLLOQUY_LIVE_TOKEN": TOKEN, "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "replayed 30 messages" in done.stdout and "30 accepted, 0 duplicates" in done.stdout, done.stdout
    wait_for(env, before + 30)
    first = run(env, "SELECT message_id FROM messages WHERE message_id LIKE 'r-%' ORDER BY ts LIMIT 1")[0][0]
    assert first == "r-29"
    again = subprocess.run([colloquy_binary, "replay", str(archive), "--to", url, "--token", TOKEN, "--limit", "5",
                            "--rate", "1000"], capture_output=True, text=True, timeout=120)
    assert "0 accepted, 5 duplicates" in again.stdout, again.stdout + again.stderr
    wrong = subprocess.run([colloquy_binary, "replay", str(archive), "--to", url, "--token", "nope"],
                           capture_output=True, text=True, timeout=120)
    assert wrong.returncode != 0 and "HTTP 401" in wrong.stderr, wrong.stderr


def test_a_client_that_never_finishes_its_headers_is_cut_off(env):
    with socket.create_connection(("127.0.0.1", env["live_port"]), timeout=30) as sock:
        sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\n")
        started = time.time()
        # The server closes the connection after its header timeout (10 s); recv then returns b"" (or the
        # server's 408), well before this socket's own 30 s timeout.
        data = sock.recv(1024)
        assert time.time() - started < 25
        assert data == b"" or b"408" in data, data
    # The endpoint still answers others.
    assert post(env, b"", token=None, method="GET", path="/health") == (200, {"status": "ok"})


def test_hostile_field_values_stay_inside_their_message_and_the_store(env):
    """A text that carries a forged JSON line, and a channel that walks up the file system, are stored as
    one message's values: no second message appears, and no folder is made outside the store."""
    forged = json.dumps({"message_id": "forged", "channel": "webchat", "conversation_id": "x",
                         "ts": "2026-03-30T10:00:00Z", "text": "pwned"})
    text = "hi\n" + forged + "\n"
    hostile = dict(message(59, conversation="hostile"), channel="../../../../tmp/escape", text=text)
    assert post(env, hostile) == (200, {"accepted": 1, "duplicates": 0})
    wait_where(env, "conversation_id = 'hostile'", 1)
    assert run(env, "SELECT channel, text FROM messages WHERE conversation_id = 'hostile'")[0] == (
        "../../../../tmp/escape", text)
    assert count_where(env, "message_id = 'forged'") == 0
    data = env["tmp"] / "store" / "data"
    assert [p.name for p in data.iterdir() if p.name.endswith("escape")] == ["____________tmp_escape"]
    assert not (env["tmp"] / "tmp").exists() and not os.path.exists("/tmp/escape")


NEUTRAL = "Hi, where is my order A123? Could you check the tracking please"
ANGRY = "Where is my order?? The tracking link is broken, this is terrible and useless"


def spike_message(i, ts, text):
    return {"message_id": f"sp-{i}", "channel": "webchat", "conversation_id": f"sp-{i}", "ts": ts,
            "sender_id": f"u-{i}", "sender_role": "customer", "text": text}


def post_all(env, messages):
    for k in range(0, len(messages), 12):
        assert post(env, messages[k:k + 12])[0] == 200


def test_negative_spike_fires_once_for_an_hour_whose_negative_share_jumps(colloquy_binary, tmp_path):
    e = start(colloquy_binary, tmp_path, flush_ms=100, extra='[[live.rule]]\n    builtin = "negative_spike"')
    try:
        # Model outputs this test relies on (a snapshot, not what it tests): one text neutral, one negative,
        # both about tracking an order.
        got = run(e, f"SELECT intent('{NEUTRAL}'), sentiment('{NEUTRAL}') >= -0.3, "
                     f"intent('{ANGRY}'), sentiment('{ANGRY}') < -0.3")[0]
        assert got == ("track_order", True, "track_order", True), got
        i = 0
        week = []
        # A week of usual traffic: nine neutral messages and one negative a day (a share of 0.1).
        for day in range(20, 27):
            for k in range(10):
                week.append(spike_message(i, f"2026-03-{day}T{8 + k:02d}:00:00Z", ANGRY if k == 0 else NEUTRAL))
                i += 1
        post_all(e, week)
        # A busy hour with more negatives than the threshold's 5, but the usual share of them: no spike.
        busy = [spike_message(i + k, f"2026-03-27T09:{k:02d}:00Z", ANGRY if k % 8 == 0 else NEUTRAL)
                for k in range(48)]
        i += 48
        post_all(e, busy)
        wait_where(e, "conversation_id LIKE 'sp-%'", i)
        time.sleep(1)
        assert [r for r in rule_events(e) if r[0] == "negative_spike"] == []
        # Two hours later six of eight are negative: the spike fires, once, for that hour.
        spike = [spike_message(i + k, f"2026-03-27T11:{k:02d}:00Z", NEUTRAL if k < 2 else ANGRY) for k in range(8)]
        post_all(e, spike[:4])
        post_all(e, spike[4:])
        key = "webchat/track_order/2026-03-27T11:00:00Z"
        wait_until(lambda: ("negative_spike", key, "recorded") in rule_events(e),
                   f"negative_spike did not fire: {rule_events(e)}")
        post_all(e, [spike_message(i + 8, "2026-03-27T11:30:00Z", ANGRY)])
        time.sleep(1)
        assert [r for r in rule_events(e) if r[0] == "negative_spike"] == [("negative_spike", key, "recorded")]
        detail = json.loads(run(e, "SELECT detail FROM rule_events WHERE \"rule\" = 'negative_spike'")[0][0])
        # The week before 11:00 on the 27th: from 11:00 on the 20th (7 neutral), the 21st to the 26th (60, 6
        # negative) and the busy hour (48, 6 negative): 12 of 115.
        assert (detail["negatives"], detail["messages"], detail["usual_share"]) == (6, 8, 0.104), detail
    finally:
        e["proc"].terminate()
        e["proc"].wait(timeout=30)


def test_kill_9_mid_replay_loses_nothing_and_fires_each_rule_once(colloquy_binary, tmp_path):
    receiver = Receiver()
    rule = f"""
    [[live.rule]]
    name = "refund_request"
    sql = "SELECT conversation_key FROM conversation_messages WHERE lower(text) LIKE '%refund%'"
    key = "conversation_key"
    webhook = "http://127.0.0.1:{receiver.port}/hook"
    """
    n = 600
    archive = tmp_path / "traffic"
    archive.mkdir()
    (archive / "log.jsonl").write_text("".join(json.dumps({
        "channel": "webchat", "conversation_id": f"k-{i}", "message_id": f"k-{i}",
        "ts": f"2026-03-31T{10 + i // 3600:02d}:{(i // 60) % 60:02d}:{i % 60:02d}Z", "role": "customer",
        "text": f"I want a refund for order {i}"}) + "\n" for i in range(n)))

    def replay(e, **kw):
        return subprocess.run([colloquy_binary, "replay", str(archive), "--to", f"http://127.0.0.1:{e['live_port']}",
                               "--rate", "400"], env={"COLLOQUY_LIVE_TOKEN": TOKEN, "PATH": "/usr/bin:/bin"},
                              capture_output=True, text=True, **kw)

    e = start(colloquy_binary, tmp_path, flush_ms=100, extra=rule)
    try:
        sending = subprocess.Popen([colloquy_binary, "replay", str(archive), "--to",
                                    f"http://127.0.0.1:{e['live_port']}", "--rate", "400"],
                                   env={"COLLOQUY_LIVE_TOKEN": TOKEN, "PATH": "/usr/bin:/bin"},
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_until(lambda: len(receiver.got) >= 50, "no rule fired during the replay")
        e["proc"].send_signal(signal.SIGKILL)
        e["proc"].wait(timeout=30)
        _, err = sending.communicate(timeout=60)
        assert sending.returncode != 0, "the replay should have lost its server"
        delivered_before = len({g[0] for g in receiver.got})
        assert 0 < delivered_before < n
    finally:
        if e["proc"].poll() is None:
            e["proc"].kill()
    # The sender retries everything after the restart, as a channel retries what was not acknowledged.
    e = start(colloquy_binary, tmp_path, flush_ms=100, extra=rule)
    try:
        done = replay(e, timeout=120)
        assert done.returncode == 0, done.stderr
        accepted, duplicates = (int(x) for x in re.search(r"(\d+) accepted, (\d+) duplicates", done.stdout).groups())
        assert accepted + duplicates == n and duplicates >= delivered_before, done.stdout
        wait_where(e, "conversation_id LIKE 'k-%'", n)
        assert run(e, "SELECT count(DISTINCT message_id) FROM messages WHERE conversation_id LIKE 'k-%'")[0][0] == n
        keys = {f"refund_request/webchat/k-{i}#1" for i in range(n)}
        wait_until(lambda: {g[0] for g in receiver.got} == keys,
                   f"{len(keys - {g[0] for g in receiver.got})} matches never reached the receiver", timeout=60)
        events = run(e, "SELECT \"key\", status, count(*) FROM rule_events GROUP BY 1, 2")
        fired = {k: c for k, s, c in events if s == "fired"}
        assert set(fired) == {k.split("/", 1)[1] for k in keys} and set(fired.values()) == {1}
        # A delivery the kill cut short between the receiver's answer and the log's record of it is sent
        # again after the restart, with the same X-Colloquy-Event: the receiver can tell, and nothing else
        # repeats.
        repeats = len(receiver.got) - len(keys)
        assert repeats <= 50, f"{repeats} deliveries repeated"
    finally:
        e["proc"].terminate()
        e["proc"].wait(timeout=30)
        receiver.server.shutdown()


FULL_AT = 256 * 1024


def disk_fills_at_256_kib():
    """In the server's process, before it starts: files it writes stop growing at 256 KiB (EFBIG, as a full
    disk stops them with ENOSPC), and the signal that would kill it for trying is ignored."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (FULL_AT, FULL_AT))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def test_a_full_disk_answers_503_and_acknowledges_only_what_is_stored(colloquy_binary, tmp_path):
    # Flushed only once a minute: everything accepted stays in the write-ahead log, which fills the "disk".
    e = start(colloquy_binary, tmp_path, flush_ms=60000, preexec_fn=disk_fills_at_256_kib)
    acked = []
    try:
        def full(i):
            return {"message_id": f"full-{i}", "channel": "webchat", "conversation_id": "full",
                    "ts": f"2026-03-30T11:{i // 60:02d}:{i % 60:02d}Z", "sender_role": "customer", "text": "x" * 1500}

        for i in range(0, 400, 2):
            batch = [full(i), full(i + 1)]
            status, body = post(e, batch)
            if status != 200:
                break
            acked += [m["message_id"] for m in batch]
        assert status == 503, (status, body)
        assert "cannot write the log" in body["error"], body
        assert 0 < len(acked) * 1500 < FULL_AT
        # Still full: refused again, and the server stays up.
        assert post(e, full(1999))[0] == 503
        assert post(e, b"", token=None, method="GET", path="/health") == (200, {"status": "ok"})
        e["proc"].send_signal(signal.SIGKILL)
        e["proc"].wait(timeout=30)
    finally:
        if e["proc"].poll() is None:
            e["proc"].kill()
    # With room again: exactly the acknowledged messages, each once; nothing of the refused requests.
    e = start(colloquy_binary, tmp_path, flush_ms=100)
    try:
        stored = [r[0] for r in run(e, "SELECT message_id FROM messages WHERE conversation_id = 'full' ORDER BY 1")]
        assert stored == sorted(acked)
        assert post(e, full(1999)) == (200, {"accepted": 1, "duplicates": 0})
    finally:
        e["proc"].terminate()
        e["proc"].wait(timeout=30)


def test_flight_sql_bulk_ingest_into_the_live_table(colloquy_binary, tmp_path):
    import pyarrow as pa

    e = start(colloquy_binary, tmp_path, flush_ms=100, live_keys="flight_ingest = true")

    def rows(ids, role="customer", extra=None):
        cols = {
            "message_id": ids,
            "channel": ["webchat"] * len(ids),
            "conversation_id": ["pushed"] * len(ids),
            "ts": pa.array([1774864800_000000 + 60_000_000 * i for i in range(len(ids))],
                           type=pa.timestamp("us", tz="UTC")),
            "sender_role": [role] * len(ids),
            "text": [f"pushed over Flight SQL {i}" for i in ids],
        }
        cols.update(extra or {})
        return pa.table(cols)

    def ingest(table, mode="append"):
        with flight_sql.connect(e["uri"]) as conn:
            with conn.cursor() as cur:
                n = cur.adbc_ingest("live_messages", table, mode=mode)
            conn.commit()
            return n

    try:
        assert ingest(rows(["p-1", "p-2", "p-3"])) == 3
        wait_where(e, "conversation_id = 'pushed'", 3)
        got = run(e, "SELECT message_id, CAST(ts AS VARCHAR) AS t, sender_role FROM messages "
                     "WHERE conversation_id = 'pushed' ORDER BY t")
        assert got[0] == ("p-1", "2026-03-30T10:00:00Z", "customer"), got
        # Pushed again (a client retrying): stored once.
        assert ingest(rows(["p-1", "p-2", "p-3", "p-4"])) == 1
        wait_where(e, "conversation_id = 'pushed'", 4)
        # Refused with the reason, and nothing of the refused call is stored.
        with pytest.raises(adbc_driver_manager.Error) as err:
            ingest(rows(["p-5"]), mode="create")
        assert "ingest into it with mode 'append'" in str(err.value)
        with pytest.raises(adbc_driver_manager.Error) as err:
            ingest(rows(["p-6"], extra={"source": ["x"]}))
        assert "column 'source' is not a field of a live message" in str(err.value)
        with pytest.raises(adbc_driver_manager.Error) as err:
            ingest(pa.concat_tables([rows(["p-7"]), rows(["p-8"], role="boss")]))
        assert "row 2: field 'sender_role': 'boss' is not one of" in str(err.value)
        # Held to the same limits as a webhook's message.
        with pytest.raises(adbc_driver_manager.Error) as err:
            ingest(rows(["p-9"], extra={"text": ["x" * (64 * 1024 + 1)]}))
        assert "row 1: field 'text': is longer than" in str(err.value)
        time.sleep(0.5)
        assert count_where(e, "conversation_id = 'pushed'") == 4
    finally:
        e["proc"].terminate()
        e["proc"].wait(timeout=30)


def test_flushes_to_an_object_store_prefix(colloquy_binary, tmp_path, s3):  # noqa: F811 (the fixture)
    bucket = "colloquy-live"
    s3["client"].create_bucket(Bucket=bucket)
    data = f"s3://{bucket}/acme/live/"

    def serve():
        return start(colloquy_binary, tmp_path, flush_ms=100, live_keys=f'data = "{data}"', env=s3["env"])

    e = serve()
    try:
        assert post(e, [message(i, conversation="to-s3") for i in range(3)])[0] == 200
        wait_where(e, "conversation_id = 'to-s3'", 3)
        keys = [o["Key"] for o in s3["client"].list_objects_v2(Bucket=bucket)["Contents"]]
        assert "acme/live/_live.jsonl" in keys
        flushed = [k for k in keys if k.startswith("acme/live/webchat/2026-03-30/")]
        assert len(flushed) == 1, keys
        body = s3["client"].get_object(Bucket=bucket, Key=flushed[0])["Body"].read().decode()
        assert [json.loads(line)["message_id"] for line in body.splitlines()] == ["live-0", "live-1", "live-2"]
        # Clients read the prefix as the table, and cannot write into it.
        with pytest.raises(adbc_driver_manager.Error) as err:
            run(e, f"COPY (SELECT 1 AS x) TO '{data}webchat/forged.jsonl' STORED AS JSON")
        assert "live store" in str(err.value) or "not allowed" in str(err.value), err.value
    finally:
        e["proc"].terminate()
        e["proc"].wait(timeout=30)
    # After a restart the ids come back from the bucket: a retried message is still a duplicate.
    e = serve()
    try:
        assert post(e, message(1, conversation="to-s3")) == (200, {"accepted": 0, "duplicates": 1})
        assert post(e, message(7, conversation="to-s3")) == (200, {"accepted": 1, "duplicates": 0})
        wait_where(e, "conversation_id = 'to-s3'", 4)
    finally:
        e["proc"].terminate()
        e["proc"].wait(timeout=30)


def test_clients_create_and_drop_rules_within_the_operators_limits(env, colloquy_binary, tmp_path):
    # The module's server does not let clients make rules.
    with pytest.raises(adbc_driver_manager.Error) as err:
        run(env, "CREATE RULE mine AS SELECT conversation_key FROM conversation_messages")
    assert "[live] client_rules = true" in str(err.value)
    receiver = Receiver()
    hook = f"http://127.0.0.1:{receiver.port}/hook"
    keys = f'client_rules = true\n    rule_webhook_hosts = ["127.0.0.1:{receiver.port}"]'
    e = start(colloquy_binary, tmp_path, flush_ms=100, live_keys=keys,
              extra='[[live.rule]]\n    name = "operators"\n    sql = "SELECT conversation_id FROM messages"\n'
                    '    key = "conversation_id"')
    try:
        made = run(e, "CREATE RULE refund_watch KEY conversation_key AS SELECT conversation_key, text "
                      f"FROM conversation_messages WHERE text ILIKE '%refund%' ACTION webhook('{hook}')")
        assert made == [("rule refund_watch created",)]
        assert post(e, message(1, conversation="cr-a", text="a refund, please"))[0] == 200
        wait_until(lambda: [g[0] for g in receiver.got] == ["refund_watch/webchat/cr-a#1"],
                   f"the client's rule did not fire: {receiver.got}")
        # A webhook body from a template: the row's values go in as JSON, whatever their text.
        template = '{"alert": {{text}}, "by": {{rule}}, "conversation": {{conversation_key}}}'
        made = run(e, "CREATE RULE templated AS SELECT conversation_key, text FROM conversation_messages "
                      f"WHERE text ILIKE '%broken%' ACTION webhook('{hook}', '{template}')")
        assert made == [("rule templated created",)]
        assert post(e, message(3, conversation="cr-t", text='my "parcel" is broken}, {'))[0] == 200
        wait_until(lambda: len(receiver.got) == 2, f"the templated rule did not fire: {receiver.got}")
        assert receiver.got[1] == ("templated/webchat/cr-t#1", {
            "alert": 'my "parcel" is broken}, {', "by": "templated", "conversation": "webchat/cr-t#1"})
        assert run(e, "DROP RULE templated") == [("rule templated dropped",)]
        refused = {
            f"CREATE RULE t2 AS SELECT conversation_key FROM conversation_messages ACTION webhook('{hook}', "
            "'{\"x\": {{nope}}}')": "the template's {{nope}} is not a column of the query",
            f"CREATE RULE t3 AS SELECT conversation_key FROM conversation_messages ACTION webhook('{hook}', "
            "'not json {{rule}}')": "does not give JSON",
            # The server would call any address a client names: only the operator's hosts.
            "CREATE RULE meta AS SELECT conversation_key FROM conversation_messages "
            "ACTION webhook('http://169.254.169.254/latest/meta-data')":
                "169.254.169.254:80 is not in [live] rule_webhook_hosts",
            "CREATE RULE local AS SELECT conversation_key FROM conversation_messages ACTION webhook('file:///etc/passwd')":
                "only http and https",
            # A rule reads only what the server's policy lets clients read, and is held to its limits.
            "CREATE RULE peek AS SELECT column_1 AS conversation_key FROM read_archive('/etc/passwd', 'csv')":
                "rule: locations",
            "CREATE RULE deep AS SELECT conversation_key FROM conversation_messages WHERE "
            + "(" * 400 + "1 = 1" + ")" * 400: "max_expression_depth",
            "CREATE RULE broken AS SELECT nothing FROM nowhere": "broken: the query",
            "CREATE RULE keyless AS SELECT 1 AS x": "keyless: the query has no column 'conversation_key'",
            "CREATE RULE dropper AS DROP VIEW messages": "only a query (SELECT …) can be a rule",
            "CREATE RULE refund_watch AS SELECT conversation_key FROM conversation_messages":
                "a rule named 'refund_watch' exists",
            "DROP RULE operators": "rule 'operators' is the operator's",
            "DROP RULE nothing_here": "there is no rule 'nothing_here'",
        }
        for sql, reason in refused.items():
            with pytest.raises(adbc_driver_manager.Error) as err:
                run(e, sql)
            assert reason in str(err.value), (sql, str(err.value))
        # A recording rule (no webhook), then a restart: it is still there, and fires on new messages.
        assert run(e, "CREATE RULE waiting SCOPE 'new' KEY message_id AS SELECT message_id FROM live_messages "
                      "WHERE text LIKE 'still waiting%'") == [("rule waiting created",)]
        assert run(e, "DROP RULE refund_watch") == [("rule refund_watch dropped",)]
    finally:
        e["proc"].terminate()
        e["proc"].wait(timeout=30)
    e = start(colloquy_binary, tmp_path, flush_ms=100, live_keys=keys)
    try:
        assert post(e, message(2, conversation="cr-b", text="still waiting for my refund"))[0] == 200
        wait_until(lambda: ("waiting", "live-2", "recorded") in rule_events(e),
                   f"the kept rule did not fire: {rule_events(e)}")
        # The dropped rules stay dropped.
        time.sleep(1)
        assert len(receiver.got) == 2
    finally:
        e["proc"].terminate()
        e["proc"].wait(timeout=30)
        receiver.server.shutdown()
