"""colloquy on a Ballista cluster, as separate processes: `colloquy scheduler`, two `colloquy executor`s,
and `colloquy serve --cluster` / `colloquy sql --cluster` as clients (the Python ADBC driver for serve).

- the same statements give the same rows through a server on the cluster as through a single-node server;
- killing an executor in the middle of a query gives the right rows (Ballista runs its tasks again on the
  other executor) or a clear error, never wrong rows; the cluster then goes on with the executor left.
"""
import os
import signal
import socket
import subprocess
import time

import adbc_driver_flightsql.dbapi as flight_sql
import pytest

from test_adbc import start_server

FIXTURES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "fixtures"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, binary, tmp, executors=2):
        self.binary = binary
        self.tmp = tmp
        self.procs = []
        log = open(tmp / "scheduler.log", "w")
        sched = subprocess.Popen(
            [binary, "scheduler", "--bind", "127.0.0.1:0", "--executor-timeout", "10"],
            stdout=subprocess.PIPE, stderr=log, text=True,
        )
        self.procs.append(sched)
        line = sched.stdout.readline().strip()
        assert line.startswith("df://"), f"scheduler did not start: {line!r} {(tmp / 'scheduler.log').read_text()}"
        self.url = line
        self.executors = []
        for i in range(executors):
            port = free_port()
            # The executor binds its port and the next one.
            while not port_free(port + 1):
                port = free_port()
            elog = open(tmp / f"executor{i}.log", "w")
            proc = subprocess.Popen(
                [binary, "executor", "--scheduler", self.url, "--bind", f"127.0.0.1:{port}",
                 "--slots", "1"],
                stdout=subprocess.DEVNULL, stderr=elog,
            )
            self.procs.append(proc)
            self.executors.append(proc)
        # Executors register within a heartbeat; a query before that waits for them anyway.
        time.sleep(2)

    def sql(self, *statements, timeout=180):
        args = [self.binary, "sql", "--cluster", self.url, "--format", "csv"]
        for s in statements:
            args += ["-c", s]
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout)

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


@pytest.fixture(scope="module")
def cluster(colloquy_binary, tmp_path_factory):
    c = Cluster(colloquy_binary, tmp_path_factory.mktemp("cluster"))
    yield c
    c.stop()


def rows(uri, sql):
    with flight_sql.connect(uri) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def test_server_on_the_cluster_gives_the_single_node_rows(colloquy_binary, cluster, tmp_path):
    on_cluster, cluster_uri = start_server(colloquy_binary, tmp_path / "c", demo=True,
                                           extra=["--cluster", cluster.url])
    single, single_uri = start_server(colloquy_binary, tmp_path / "s", demo=True)
    try:
        for sql in [
            "SELECT channel, count(*), count(DISTINCT conversation_id) FROM messages GROUP BY channel ORDER BY channel",
            "SELECT channel, round(avg(sentiment(text)), 6), count(DISTINCT intent(text)) FROM messages "
            "WHERE sender_role = 'customer' GROUP BY channel ORDER BY channel",
            "SELECT * FROM first_contact_resolution ORDER BY 1, 2",
            "SELECT * FROM response_times ORDER BY 1, 2",
            "SELECT language(text) AS lang, count(*) FROM messages GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 5",
        ]:
            got = rows(cluster_uri, sql)
            assert got, sql
            assert got == rows(single_uri, sql), sql
        # Bound parameters reach the cluster too.
        with flight_sql.connect(cluster_uri) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM messages WHERE channel = ?", parameters=("whatsapp",))
            (n,) = cur.fetchone()
        assert n == rows(single_uri, "SELECT count(*) FROM messages WHERE channel = 'whatsapp'")[0][0]
    finally:
        for p in (on_cluster, single):
            p.terminate()
            p.wait(timeout=30)


def test_executor_killed_in_the_middle_of_a_query(colloquy_binary, tmp_path):
    demo = tmp_path / "demo"
    subprocess.run([colloquy_binary, "demo", "--out", str(demo), "--conversations", "6000"],
                   check=True, capture_output=True, timeout=600)
    # Seconds of work for two executors (each message scored six times); integer sums, so the order in
    # which tasks finish cannot change the answer.
    statements = [
        f"CREATE EXTERNAL TABLE m STORED AS ARCHIVE LOCATION '{demo}/'",
        "SELECT m.channel, count(*), sum(length(m.text)), "
        "sum(CAST(round(sentiment(m.text || CAST(g.value AS VARCHAR)) * 1000) AS BIGINT)), "
        "count(DISTINCT intent(m.text || CAST(g.value AS VARCHAR))) "
        "FROM m CROSS JOIN generate_series(1, 6) g GROUP BY m.channel ORDER BY m.channel",
    ]
    c = Cluster(colloquy_binary, tmp_path)
    try:
        intact = c.sql(*statements, timeout=300)
        assert intact.returncode == 0, intact.stderr
        assert intact.stdout.count("\n") > 3, intact.stdout
        # Both executors were busy on their only slot for seconds: neither may have been taken for lost
        # (a busy executor is heard from every 5 s; a timeout near that ran this query for minutes).
        assert "timed out" not in (tmp_path / "scheduler.log").read_text()

        args = [colloquy_binary, "sql", "--cluster", c.url, "--format", "csv"]
        for s in statements:
            args += ["-c", s]
        client = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        assert client.poll() is None, "the query ended before an executor could be killed: make it bigger"
        c.executors[0].send_signal(signal.SIGKILL)
        c.executors[0].wait(timeout=30)
        out, err = client.communicate(timeout=300)
        if client.returncode == 0:
            assert out == intact.stdout, "the cluster gave other rows after losing an executor"
        else:
            assert "panicked" not in err, err
            assert "Error:" in err and len(err.strip()) > 20, err
        print(f"killed an executor mid-query: exit {client.returncode}; {err.strip()[-300:]}")
        # The executor left runs the next query alone, with the same rows.
        again = c.sql(*statements, timeout=300)
        assert again.returncode == 0, again.stderr
        assert again.stdout == intact.stdout
    finally:
        c.stop()


def test_scheduler_refuses_an_executor_timeout_a_busy_executor_cannot_meet(colloquy_binary):
    refused = subprocess.run([colloquy_binary, "scheduler", "--bind", "127.0.0.1:0", "--executor-timeout", "3"],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0
    assert "--executor-timeout" in refused.stderr and "10" in refused.stderr, refused.stderr


def test_hostile_client_of_a_server_on_the_cluster(colloquy_binary, cluster, tmp_path):
    """A client of `serve --cluster` gets no more than a client of a single-node server: locations outside
    the operator's prefixes are refused while planning, in the server, before the cluster sees the query;
    an endpoint or a credential in OPTIONS never reaches the executors (whose credentials would sign it)."""
    proc, uri = start_server(colloquy_binary, tmp_path / "h", extra=["--cluster", cluster.url], config=f"""
        [server]
        read = ["{FIXTURES}/analytics/"]
        """)
    try:
        with flight_sql.connect(uri) as conn, conn.cursor() as cur:
            for sql in [
                "SELECT count(*) FROM read_archive('/etc/')",
                f"SELECT count(*) FROM read_archive('{FIXTURES}/analytics/../whatsapp/')",
                "CREATE EXTERNAL TABLE x STORED AS ARCHIVE LOCATION 's3://bucket/x/' "
                "OPTIONS ('aws.endpoint' 'http://169.254.169.254', 'aws.secret_access_key' 'TOPSECRET-7')",
            ]:
                with pytest.raises(Exception) as refused:
                    cur.execute(sql)
                    cur.fetchall()
                assert "TOPSECRET" not in str(refused.value)
            # The legitimate use next to them still runs on the cluster.
            cur.execute(f"SELECT count(*) FROM read_archive('{FIXTURES}/analytics/')")
            assert cur.fetchone()[0] > 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
