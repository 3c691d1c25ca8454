#!/usr/bin/env python3
"""Load test of `colloquy serve`: many concurrent ADBC Flight SQL clients with a mixed workload.

Usage:
  python3 benches/flight_load.py --colloquy target/release/colloquy [--clients 32] [--seconds 60]
  python3 benches/flight_load.py --colloquy target/debug/colloquy --seconds 10      # the CI smoke test

It starts the server itself (`serve --bind 127.0.0.1:0 --demo`, with a config that turns on /metrics on a
free port), then runs --clients threads, each with a connection of its own, for --seconds. Every client
starts with one kind (client i with the i-th, so that every kind runs even in a short smoke test) and then
loops over a random mix (fixed seed per client) of:
  select1        SELECT 1
  point_lookup   the messages of one conversation, `WHERE conversation_id = ?` (a reused prepared statement)
  count_channel  count(*) GROUP BY channel over the whole demo table
  avg_sentiment  avg(sentiment(text)) GROUP BY channel over a LIMITed subquery
  get_objects    adbc_get_objects(depth="all")
  table_schema   adbc_get_table_schema("messages")
  prepared       adbc_prepare, then three executions with different parameters, on a fresh cursor
  pandas         a mid-size result (5,000 rows, with language(text)) into a DataFrame
  disconnect     a big query (messages CROSS JOIN generate_series(1, 50)); read the first batch, close the
                 cursor and the connection without draining the stream, open a new connection
  kill           the same from a child process that reads the first batch and exits with os._exit: the
                 TCP connection drops with no gRPC goodbye at all
It samples the server's RSS (VmRSS in /proc/<pid>/status) and /metrics every 0.5 s. After the run it waits
up to 10 s for colloquy_active_streams to come back to 0 and then measures the server's CPU use while
idle: a client that went away mid-stream must leave no work running on the server.

Prints ops/s, p50/p99 latency and errors per kind, the peak RSS and the server's counters. Exits with 1
if any operation failed, the server counted errors, streams stay active, the idle server still burns
CPU, or the server died.
Needs the Python ADBC Flight SQL driver (`pip install adbc-driver-flightsql pyarrow pandas`).
Record results in benches/README.md with the machine they ran on.
"""
import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import warnings

import adbc_driver_flightsql.dbapi as flight_sql
from common import free_port, server_log_tail, start_server, stop_server

# The server has no transactions, so the driver cannot turn autocommit off: it warns once per connection.
warnings.filterwarnings("ignore", message="Cannot disable autocommit")

BIG_QUERY = "SELECT * FROM messages CROSS JOIN generate_series(1, 50)"

# kind -> weight in the mix
MIX = {
    "select1": 6,
    "point_lookup": 6,
    "count_channel": 2,
    "avg_sentiment": 2,
    "get_objects": 2,
    "table_schema": 2,
    "prepared": 2,
    "pandas": 2,
    "disconnect": 2,
    "kill": 1,
}

KILL_CHILD = """
import os, sys, warnings
warnings.filterwarnings("ignore")
import adbc_driver_flightsql.dbapi as flight_sql
conn = flight_sql.connect(sys.argv[1])
cur = conn.cursor()
cur.execute(sys.argv[2])
batch = cur.fetch_record_batch().read_next_batch()
print(batch.num_rows, flush=True)
os._exit(0)
"""


def start_load_server(binary, workdir, cache_dir, demo, metrics_port, archive_cache=None):
    config = f'[server]\nmetrics_bind = "127.0.0.1:{metrics_port}"\n'
    if archive_cache is not None:
        config += f'archive_cache = "{archive_cache}"\n'
    return start_server(binary, workdir, config=config, demo=demo, cache_dir=cache_dir)


def read_metrics(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def try_metrics(port):
    """The metrics, or {} if the server does not answer (it may have died)."""
    try:
        return read_metrics(port)
    except OSError:
        return {}


def proc_status_kb(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def proc_cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Sampler(threading.Thread):
    """RSS and /metrics every `interval` seconds, keeping the peaks."""

    def __init__(self, pid, metrics_port, interval=0.5):
        super().__init__(daemon=True)
        self.pid, self.port, self.interval = pid, metrics_port, interval
        self.stop = threading.Event()
        self.peak_rss_kb = 0
        self.peak_streams = 0
        self.rss_series = []

    def run(self):
        while not self.stop.is_set():
            try:
                rss = proc_status_kb(self.pid, "VmRSS")
                self.peak_rss_kb = max(self.peak_rss_kb, rss)
                self.rss_series.append((time.monotonic(), rss))
                streams = read_metrics(self.port).get("colloquy_active_streams", 0)
                self.peak_streams = max(self.peak_streams, streams)
            except (OSError, ValueError):
                pass
            self.stop.wait(self.interval)


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.latencies = {k: [] for k in MIX}
        self.errors = {k: 0 for k in MIX}
        self.messages = []
        self.reconnects = 0

    def ok(self, kind, secs):
        with self.lock:
            self.latencies[kind].append(secs)

    def reconnected(self):
        with self.lock:
            self.reconnects += 1

    def error(self, kind, client, exc):
        with self.lock:
            self.errors[kind] += 1
            if len(self.messages) < 10:
                text = " ".join(f"{type(exc).__name__}: {exc}".split())
                self.messages.append(f"client {client} {kind}: {text[:400]}")


class Client:
    def __init__(self, idx, uri, samples, stats, deadline, seed):
        self.idx, self.uri, self.samples, self.stats, self.deadline = idx, uri, samples, stats, deadline
        self.rng = random.Random(seed * 1000 + idx)
        self.conn = None
        self.lookup_cur = None

    def connect(self):
        self.close()
        self.conn = flight_sql.connect(self.uri)

    def close(self):
        for obj in (self.lookup_cur, self.conn):
            if obj is not None:
                try:
                    obj.close()
                except Exception:
                    pass
        self.lookup_cur, self.conn = None, None

    def query(self, sql, params=None, fetch="all"):
        with self.conn.cursor() as cur:
            cur.execute(sql, parameters=params)
            if fetch == "df":
                return cur.fetch_df()
            return cur.fetchall()

    def op_select1(self):
        rows = self.query("SELECT 1 AS one")
        assert rows == [(1,)], rows

    def op_point_lookup(self):
        if self.lookup_cur is None:
            self.lookup_cur = self.conn.cursor()
        conv = self.rng.choice(self.samples["conversations"])
        self.lookup_cur.execute(
            "SELECT conversation_id, channel, sender_id, sender_role, ts, text FROM messages WHERE conversation_id = ?",
            parameters=(conv,),
        )
        rows = self.lookup_cur.fetchall()
        assert rows and all(r[0] == conv for r in rows), f"lookup of {conv!r} returned {len(rows)} rows"

    def op_count_channel(self):
        rows = self.query("SELECT channel, count(*) AS n FROM messages GROUP BY channel")
        assert sum(r[1] for r in rows) == self.samples["messages"], rows

    def op_avg_sentiment(self):
        rows = self.query(
            "SELECT channel, avg(sentiment(text)) AS s FROM "
            "(SELECT channel, text FROM messages LIMIT 2000) GROUP BY channel"
        )
        assert rows and all(r[1] is None or -1.0 <= r[1] <= 1.0 for r in rows), rows

    def op_get_objects(self):
        objects = self.conn.adbc_get_objects(depth="all").read_all()
        assert objects.num_rows >= 1

    def op_table_schema(self):
        schema = self.conn.adbc_get_table_schema("messages")
        assert "conversation_id" in schema.names, schema.names

    def op_prepared(self):
        sql = (
            "SELECT conversation_id, count(*) AS n FROM messages WHERE channel = ? AND sender_role = ? "
            "GROUP BY conversation_id ORDER BY n DESC, conversation_id LIMIT 5"
        )
        with self.conn.cursor() as cur:
            cur.adbc_prepare(sql)
            for _ in range(3):
                cur.execute(sql, parameters=(self.rng.choice(self.samples["channels"]), self.rng.choice(self.samples["roles"])))
                cur.fetchall()

    def op_pandas(self):
        offset = self.rng.randrange(0, max(1, self.samples["messages"] - 5000))
        df = self.query(
            "SELECT conversation_id, channel, sender_role, ts, text, language(text) AS lang "
            f"FROM messages ORDER BY conversation_id, ts LIMIT 5000 OFFSET {offset}",
            fetch="df",
        )
        assert len(df) == min(5000, self.samples["messages"] - offset), len(df)

    def op_disconnect(self):
        cur = self.conn.cursor()
        cur.execute(BIG_QUERY)
        batch = cur.fetch_record_batch().read_next_batch()
        assert batch.num_rows > 0
        # Walk away from the rest of the stream: no draining, no cancel call.
        self.close()
        self.connect()
        self.stats.reconnected()

    def op_kill(self):
        out = subprocess.run(
            [sys.executable, "-c", KILL_CHILD, self.uri, BIG_QUERY],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if out.returncode != 0 or not out.stdout.strip().isdigit():
            raise RuntimeError(f"child exited {out.returncode}: {out.stderr.strip()[-400:]}")

    def run(self):
        kinds, weights = list(MIX), list(MIX.values())
        try:
            self.connect()
        except Exception as e:
            self.stats.error("select1", self.idx, e)
            return
        first = True
        while time.monotonic() < self.deadline:
            # Client i starts with kind i, so that a short run with enough clients covers every kind.
            kind = kinds[self.idx % len(kinds)] if first else self.rng.choices(kinds, weights)[0]
            first = False
            start = time.perf_counter()
            try:
                getattr(self, "op_" + kind)()
                self.stats.ok(kind, time.perf_counter() - start)
            except Exception as e:
                self.stats.error(kind, self.idx, e)
                time.sleep(0.2)  # no tight loop of failures if the server is gone
                try:
                    self.connect()
                    self.stats.reconnected()
                except Exception as e2:
                    self.stats.error(kind, self.idx, e2)
                    time.sleep(0.5)
        self.close()


def percentile(sorted_values, q):
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[i]


def discover(uri):
    with flight_sql.connect(uri) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM messages")
        messages = cur.fetchall()[0][0]
        cur.execute("SELECT DISTINCT conversation_id FROM messages ORDER BY conversation_id LIMIT 500")
        conversations = [r[0] for r in cur.fetchall()]
        cur.execute("SELECT DISTINCT channel FROM messages ORDER BY 1")
        channels = [r[0] for r in cur.fetchall()]
        cur.execute("SELECT DISTINCT sender_role FROM messages WHERE sender_role IS NOT NULL ORDER BY 1")
        roles = [r[0] for r in cur.fetchall()]
    return {"messages": messages, "conversations": conversations, "channels": channels, "roles": roles}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--colloquy", required=True, help="path to the colloquy binary (a release build for real numbers)")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--demo", action=argparse.BooleanOptionalAction, default=True, help="serve the demo table (default on)")
    ap.add_argument("--cache-dir", help="COLLOQUY_CACHE_DIR for the demo archive (default: a temporary folder)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--archive-cache", help='the server\'s archive_cache setting (default: the server\'s; "0" turns the parsed-archive cache off)')
    ap.add_argument("--drain-seconds", type=float, default=10, help="how long active streams may take to reach 0")
    ap.add_argument("--idle-cpu-max", type=float, default=0.2, help="fail if the idle server uses more cores than this")
    args = ap.parse_args()
    if not args.demo:
        ap.error("the workload queries the demo table `messages`: --no-demo is not supported")

    workdir = tempfile.mkdtemp(prefix="colloquy-load-")
    cache_dir = args.cache_dir or os.path.join(workdir, "cache")
    metrics_port = free_port()
    started = time.perf_counter()
    proc, uri, log = start_load_server(args.colloquy, workdir, cache_dir, args.demo, metrics_port, args.archive_cache)
    failures = []
    try:
        print(f"server {uri} (pid {proc.pid}) ready in {time.perf_counter() - started:.1f} s; metrics on :{metrics_port}")
        samples = discover(uri)
        print(
            f"demo table: {samples['messages']} messages; {args.clients} clients for {args.seconds:g} s; "
            f"mix {', '.join(f'{k} {w}' for k, w in MIX.items())}"
        )
        before = read_metrics(metrics_port)
        rss_start_kb = proc_status_kb(proc.pid, "VmRSS")
        sampler = Sampler(proc.pid, metrics_port)
        sampler.start()

        stats = Stats()
        t0 = time.monotonic()
        deadline = t0 + args.seconds
        clients = [Client(i, uri, samples, stats, deadline, args.seed) for i in range(args.clients)]
        threads = [threading.Thread(target=c.run, name=f"client-{c.idx}") for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0

        # No client is left: every stream must end, and the server must go quiet.
        drain_start = time.monotonic()
        streams = try_metrics(metrics_port).get("colloquy_active_streams", -1)
        while streams != 0 and proc.poll() is None and time.monotonic() - drain_start < args.drain_seconds:
            time.sleep(0.1)
            streams = try_metrics(metrics_port).get("colloquy_active_streams", -1)
        drain_secs = time.monotonic() - drain_start
        sampler.stop.set()
        sampler.join()
        cpu0, w0 = proc_cpu_seconds(proc.pid), time.monotonic()
        time.sleep(3)
        idle_cores = (proc_cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - w0)
        after = try_metrics(metrics_port)
        hwm_kb = proc_status_kb(proc.pid, "VmHWM")
        rss_end_kb = proc_status_kb(proc.pid, "VmRSS")
        alive = proc.poll() is None

        print(f"\nops started for {args.seconds:g} s; the last one ended after {elapsed:.1f} s (rates are over that)")
        print(f"{'kind':<14} {'ops':>7} {'ops/s':>8} {'p50 ms':>9} {'p99 ms':>9} {'errors':>7}")
        total_ops = total_err = 0
        for kind in MIX:
            lat = sorted(stats.latencies[kind])
            n, err = len(lat), stats.errors[kind]
            total_ops += n
            total_err += err
            print(
                f"{kind:<14} {n:>7} {n / elapsed:>8.1f} {percentile(lat, 0.5) * 1e3:>9.1f} "
                f"{percentile(lat, 0.99) * 1e3:>9.1f} {err:>7}"
            )
        print(f"{'all':<14} {total_ops:>7} {total_ops / elapsed:>8.1f} {'':>9} {'':>9} {total_err:>7}")
        for msg in stats.messages:
            print(f"  error: {msg}")

        d = lambda name: after.get(name, 0) - before.get(name, 0)  # noqa: E731
        quarter = [rss for t, rss in sampler.rss_series if t <= t0 + elapsed / 4]
        print(
            f"\nserver: peak RSS {sampler.peak_rss_kb / 1024:.1f} MB (VmHWM {hwm_kb / 1024:.1f} MB); "
            f"RSS {rss_start_kb / 1024:.1f} MB before the run, "
            f"{(quarter[-1] if quarter else 0) / 1024:.1f} MB after a quarter of it, {rss_end_kb / 1024:.1f} MB at the end"
        )
        if after:
            print(
                f"server: {d('colloquy_queries_total'):.0f} queries, {d('colloquy_query_errors_total'):.0f} errors, "
                f"{d('colloquy_rows_sent_total'):.0f} rows sent; peak active streams {sampler.peak_streams:.0f}; "
                f"{stats.reconnects} reconnects by clients"
            )
        print(
            f"after the run: active streams {streams:.0f} (waited {drain_secs:.1f} s), "
            f"idle CPU {idle_cores:.2f} cores over 3 s, server {'alive' if alive else 'DEAD'}"
        )

        if total_err:
            failures.append(f"{total_err} operations failed")
        if after and d("colloquy_query_errors_total"):
            failures.append(f"the server counted {d('colloquy_query_errors_total'):.0f} errors")
        if streams == -1:
            failures.append("/metrics did not answer after the run")
        elif streams != 0:
            failures.append(f"{streams:.0f} streams still active {args.drain_seconds:g} s after the last client left")
        if idle_cores > args.idle_cpu_max:
            failures.append(f"the idle server still uses {idle_cores:.2f} cores")
        if not alive:
            failures.append(f"the server exited with {proc.returncode}")
    except Exception as e:
        failures.append(f"{type(e).__name__}: {e}")
    finally:
        stop_server(proc)
        log.close()
    if failures:
        print("\nFAIL: " + "; ".join(failures))
        print(f"server log tail ({workdir}/server.log):\n{server_log_tail(workdir)}")
        sys.exit(1)
    shutil.rmtree(workdir, ignore_errors=True)
    print("\nOK")


if __name__ == "__main__":
    main()
