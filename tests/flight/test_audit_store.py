"""The audit trail on an object-store prefix: the real binary writes it to a real S3-compatible server (moto).

Object stores cannot append, so the server puts the lines of each quiet moment as one segment object named
by its first line's sequence number; the hash chain runs across segments. The tests read the trail as a
table, verify it with `colloquy audit verify s3://…`, check that clients can neither read it nor write into
it, and that a removed segment is found and stops the server from appending to the broken trail.
"""
import json
import os
import socket
import subprocess
import sys
import time

import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager
import boto3
import pytest

from test_adbc import hash_password, start_server

BUCKET = "colloquy-audit"
PREFIX = "trail/"
TRAIL = f"s3://{BUCKET}/{PREFIX}"
USERS = {"ana": "ana-pw", "carol": "carol-pw"}
SECRET = "Tangerine-5531"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3():
    moto = os.path.join(os.path.dirname(sys.executable), "moto_server")
    assert os.path.exists(moto), f"{moto} is missing: scripts/test installs moto[server] into .venv"
    port = free_port()
    proc = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.time() < deadline, "moto_server did not start"
            time.sleep(0.1)
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "AWS_ENDPOINT": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true",
    }
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    client.create_bucket(Bucket=BUCKET)
    yield {"client": client, "env": env}
    proc.kill()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def env(colloquy_binary, tmp_path_factory, s3):
    tmp = tmp_path_factory.mktemp("audit-store")
    data = tmp / "chats"
    data.mkdir()
    (data / "log.jsonl").write_text(json.dumps({
        "channel": "sms", "conversation_id": "c1", "message_id": "m1", "ts": "2026-03-01T10:00:00Z",
        "role": "customer", "text": "where is my order?",
    }) + "\n")
    users = "\n".join(f'{u} = "{hash_password(colloquy_binary, p)}"' for u, p in USERS.items())
    config = f"""
    [[archive]]
    name = "messages"
    location = "{data}/"

    [server]
    audit_log = "{TRAIL}"
    # Clients may write under the bucket, but never into the trail.
    write = ["s3://{BUCKET}/"]

    [server.users]
    {users}

    [server.roles]
    emea = ["ana"]
    auditor = ["carol"]

    [[server.grant]]
    role = "emea"
    select = ["messages"]
    write = true

    [[server.grant]]
    role = "auditor"
    select = ["messages", "audit_log"]
    write = true
    """
    (tmp / "colloquy.toml").write_text(config)
    proc, uri = start_server(colloquy_binary, tmp, config=config, env=s3["env"])
    yield {"uri": uri, "tmp": tmp, "proc": proc, "binary": colloquy_binary, "config": config, **s3}
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=30)


def run(env, user, sql):
    with flight_sql.connect(env["uri"], db_kwargs={"username": user, "password": USERS[user]}) as conn:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()


def refused(env, user, sql):
    with pytest.raises(adbc_driver_manager.Error) as e:
        run(env, user, sql)
    return str(e.value)


def segments(env):
    listed = env["client"].list_objects_v2(Bucket=BUCKET, Prefix=PREFIX).get("Contents", [])
    return sorted(o["Key"] for o in listed)


def entries(env):
    out = []
    for key in segments(env):
        body = env["client"].get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
        out += [json.loads(line) for line in body.splitlines()]
    return out


def wait_for_entries(env, n):
    deadline = time.time() + 30
    while len(entries(env)) < n:
        assert time.time() < deadline, f"the trail has {len(entries(env))} entries, expected {n}: {entries(env)}"
        time.sleep(0.1)


def verify(env):
    return subprocess.run([env["binary"], "audit", "verify", TRAIL], capture_output=True, text=True,
                          env=dict(os.environ, **env["env"]))


def test_the_trail_on_an_object_store_prefix(env):
    assert run(env, "ana", "SELECT count(*) FROM messages") == [(1,)]
    # The trail is neither a table nor a location for a role not granted it, and nobody writes into it.
    assert "audit_log" in refused(env, "ana", "SELECT * FROM audit_log")
    message = refused(env, "ana", f"SELECT * FROM read_archive('{TRAIL}', 'jsonl')")
    assert "rule: grants" in message, message
    forged = f"COPY (SELECT '{SECRET}' AS x) TO '{TRAIL}00000000000000000099.jsonl' STORED AS JSON"
    message = refused(env, "ana", forged)
    assert "rule: grants" in message, message
    # Not even a role that reads the trail and may write.
    message = refused(env, "carol", forged)
    assert "only the server writes" in message, message
    # Writes elsewhere in the bucket are allowed: the seal covers the trail only.
    run(env, "ana", f"COPY (SELECT 1 AS x) TO 's3://{BUCKET}/exports/one.json' STORED AS JSON")
    wait_for_entries(env, 6)

    # Segments are named by their first sequence number, and the chain runs across them.
    keys = segments(env)
    assert len(keys) >= 2, keys
    seqs = [e["seq"] for e in entries(env)]
    assert seqs == list(range(len(seqs)))
    for key in keys:
        first = json.loads(env["client"].get_object(Bucket=BUCKET, Key=key)["Body"].read().decode().splitlines()[0])
        assert key == f"{PREFIX}{first['seq']:020}.jsonl"
    assert not any(SECRET in json.dumps(e) for e in entries(env)), "a literal reached the governed trail"

    # The auditor reads it as a table.
    got = run(env, "carol", 'SELECT "user", outcome FROM audit_log ORDER BY seq')
    assert got[:6] == [
        ("ana", "ok"), ("ana", "error"), ("ana", "error"), ("ana", "error"), ("carol", "error"), ("ana", "ok"),
    ], got

    ok = verify(env)
    assert ok.returncode == 0 and "chain intact" in ok.stdout, ok.stdout + ok.stderr


def test_a_removed_segment_is_found_and_the_server_does_not_append_to_it(env):
    """Last: it stops the server."""
    env["proc"].terminate()
    env["proc"].wait(timeout=30)
    log = (env["tmp"] / "server-stderr.log").read_text()
    head = [line.rsplit(" ", 1)[-1] for line in log.splitlines() if "ends at hash" in line]
    ok = verify(env)
    assert ok.returncode == 0 and head and ok.stdout.strip().endswith(head[0]), (ok.stdout, log[-2000:])

    keys = segments(env)
    env["client"].delete_object(Bucket=BUCKET, Key=keys[1])
    bad = verify(env)
    assert bad.returncode != 0 and f"segment {keys[2].removeprefix(PREFIX)}" in bad.stderr, bad.stderr
    with pytest.raises(RuntimeError, match="does not verify"):
        start_server(env["binary"], env["tmp"], config=env["config"], env=env["env"])
