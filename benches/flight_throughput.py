#!/usr/bin/env python3
"""Result streaming throughput and small-query latency of `colloquy serve`, over loopback.

Usage:
  python3 benches/flight_throughput.py --colloquy target/release/colloquy [--rows 10000000] [--runs 3] [--iterations 2000]

Throughput: a wide result (six columns: four numeric, two strings, about 100 bytes a row) of --rows rows,
computed by colloquy from generate_series, is read by a pyarrow client
  - with pyarrow.flight directly: GetFlightInfo of a Flight SQL CommandStatementQuery, then DoGet;
  - with the ADBC Flight SQL driver: cursor.execute, then the record batch reader;
and the very same batches (saved from a first, untimed colloquy run, so the bytes are identical) are
served by a minimal pyarrow.flight server in a child process whose DoGet streams them from memory: the
ceiling, fetched with the same pyarrow.flight DoGet. A fourth row reads the rows from a table in colloquy's
memory (CREATE TABLE AS, then SELECT *), to tell the cost of computing them from that of sending. Each run streams the batches through and drops them
(--collect keeps the whole table, as read_all / fetch_arrow_table do). It prints rows/s and MB/s
(Arrow buffer bytes received) as medians over --runs and the ratio to the ceiling (goal: 0.8 or more).

Latency: --iterations of `SELECT 1` and of a point lookup (`SELECT * FROM t WHERE id = ?` on a
100,000-row table created on the same connection) through an ADBC cursor (execute + fetchall, the
statement prepared once), after 100 warm-up iterations; p50/p99/mean in ms (goal: p50 under 2 ms).
Also `SELECT 1` through pyarrow.flight without preparing (GetFlightInfo + DoGet), and the two calls the
ADBC cursor makes for a statement it has prepared (GetFlightInfo of the prepared statement + DoGet) made
with pyarrow.flight, which isolates the server's share. The last column is the client process's CPU time
per query: ADBC's Go driver (1.13) runs a full Go garbage collection each time a result stream is released
(`runtime.GC()` in its C wrapper), which on 2 cores costs more than the server's whole answer.
Record results in benches/README.md with the machine they ran on.
"""
import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import adbc_driver_flightsql.dbapi as flight_sql
import pyarrow as pa
import pyarrow.flight as flight
from common import start_server, stop_server

warnings.filterwarnings("ignore", message="Cannot disable autocommit")

WIDE_SQL = (
    "SELECT value AS id, value * 2 AS a, value % 1000 AS b, CAST(value AS DOUBLE) / 3 AS c, "
    "'conversation-' || CAST(value % 5000 AS VARCHAR) AS conv, repeat('x', 40) AS pad "
    "FROM generate_series(1, {rows})"
)

CEILING_SERVER = """
import sys
import pyarrow as pa
import pyarrow.flight as flight

class Ceiling(flight.FlightServerBase):
    def __init__(self, table):
        super().__init__("grpc://127.0.0.1:0")
        self.table = table

    def do_get(self, context, ticket):
        return flight.RecordBatchStream(self.table)

with pa.OSFile(sys.argv[1]) as f:  # read into memory, not memory-mapped
    table = pa.ipc.open_file(f).read_all()
server = Ceiling(table)
print(server.port, flush=True)
server.serve()
"""


def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def length_delimited(field, payload):
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def statement_query_command(sql):
    """google.protobuf.Any { type_url = 1, value = 2 } wrapping a Flight SQL CommandStatementQuery { query = 1 }."""
    inner = length_delimited(1, sql.encode())
    return length_delimited(1, b"type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery") + length_delimited(2, inner)


def fields(buf):
    """The length-delimited fields of a protobuf message: {field number: bytes} (last one wins)."""
    out, i = {}, 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        if key & 7 != 2:
            raise ValueError("only length-delimited fields expected")
        n, i = read_varint(buf, i)
        out[key >> 3] = buf[i:i + n]
        i += n
    return out


def read_varint(buf, i):
    shift = n = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


SQL_TYPE = b"type.googleapis.com/arrow.flight.protocol.sql."


def prepare_raw(client, sql):
    """CreatePreparedStatement by hand: the handle ADBC would get."""
    body = length_delimited(1, SQL_TYPE + b"ActionCreatePreparedStatementRequest") + length_delimited(2, length_delimited(1, sql.encode()))
    result = next(iter(client.do_action(flight.Action("CreatePreparedStatement", body))))
    return fields(fields(result.body.to_pybytes())[2])[1]


def prepared_query_command(handle):
    return length_delimited(1, SQL_TYPE + b"CommandPreparedStatementQuery") + length_delimited(2, length_delimited(1, handle))


def start_colloquy(binary, workdir):
    return start_server(binary, workdir)


def start_ceiling(ipc_path):
    proc = subprocess.Popen([sys.executable, "-c", CEILING_SERVER, ipc_path], stdout=subprocess.PIPE, text=True)
    port = proc.stdout.readline().strip()
    if not port.isdigit():
        proc.kill()
        raise RuntimeError("the ceiling server did not start")
    return proc, f"grpc://127.0.0.1:{port}"



def drain(reader, collect, sink=None):
    """Reads a FlightStreamReader or RecordBatchReader to the end: (rows, bytes)."""
    rows = nbytes = 0
    if collect:
        table = reader.read_all()
        return table.num_rows, table.nbytes
    flight_reader = isinstance(reader, flight.FlightStreamReader)
    while True:
        try:
            batch = reader.read_chunk().data if flight_reader else reader.read_next_batch()
        except StopIteration:
            return rows, nbytes
        if sink is not None:
            sink.write_batch(batch)
        rows += batch.num_rows
        nbytes += batch.nbytes


def fetch_raw(client, sql, collect, sink=None):
    info = client.get_flight_info(flight.FlightDescriptor.for_command(statement_query_command(sql)))
    reader = client.do_get(info.endpoints[0].ticket)
    if sink is not None:
        return drain(reader, False, sink)
    return drain(reader, collect)


def fetch_ceiling(client, collect):
    return drain(client.do_get(flight.Ticket(b"all")), collect)


def fetch_adbc(conn, sql, collect):
    with conn.cursor() as cur:
        cur.execute(sql)
        if collect:
            table = cur.fetch_arrow_table()
            return table.num_rows, table.nbytes
        return drain(cur.fetch_record_batch(), False)


def timed(fn):
    start = time.perf_counter()
    rows, nbytes = fn()
    return time.perf_counter() - start, rows, nbytes


def latency(fn, iterations, warmup=100):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    times.sort()
    pick = lambda q: times[min(len(times) - 1, round(q * (len(times) - 1)))] * 1e3  # noqa: E731
    return pick(0.5), pick(0.99), statistics.fmean(times) * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--colloquy", required=True, help="path to a release build of the colloquy binary")
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=2000, help="timed iterations per latency query")
    ap.add_argument("--collect", action="store_true", help="keep the whole result in memory (read_all) instead of streaming it through")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--skip-throughput", action="store_true")
    args = ap.parse_args()

    workdir = tempfile.mkdtemp(prefix="colloquy-throughput-")
    server, uri, log = start_colloquy(args.colloquy, workdir)
    ceiling = None
    try:
        print(f"colloquy {uri} (pid {server.pid})")
        raw = flight.FlightClient(uri)
        conn = flight_sql.connect(uri)
        sql = WIDE_SQL.format(rows=args.rows)

        if not args.skip_throughput:
            # An untimed first run warms colloquy up and keeps its batches for the ceiling server.
            ipc_path = os.path.join(workdir, "wide.arrow")
            info = raw.get_flight_info(flight.FlightDescriptor.for_command(statement_query_command(sql)))
            schema = info.schema
            with pa.OSFile(ipc_path, "wb") as f, pa.ipc.new_file(f, schema) as sink:
                rows, nbytes = fetch_raw(raw, sql, False, sink=sink)
            if rows != args.rows:
                raise RuntimeError(f"colloquy returned {rows} rows, expected {args.rows}")
            with pa.OSFile(ipc_path) as f:
                batches = pa.ipc.open_file(f).num_record_batches
            ceiling, ceiling_uri = start_ceiling(ipc_path)
            ceiling_client = flight.FlightClient(ceiling_uri)
            print(f"throughput: median of {args.runs} runs, "
                  f"{'collected with read_all' if args.collect else 'streamed through, batches dropped'}")
            print(f"result: {rows} rows in {batches} batches, {nbytes / 1e6:.1f} MB of Arrow buffers, {nbytes / rows:.1f} bytes/row; "
                  f"schema {', '.join(f'{f.name} {f.type}' for f in schema)}")

            # The same rows from a table in colloquy's memory: streaming without the computing.
            fetch_raw(raw, f"CREATE TABLE wide AS {sql}", False)
            methods = {
                "ceiling (pyarrow.flight DoGet, pre-built)": lambda: fetch_ceiling(ceiling_client, args.collect),
                "colloquy, pyarrow.flight": lambda: fetch_raw(raw, sql, args.collect),
                "colloquy, ADBC": lambda: fetch_adbc(conn, sql, args.collect),
                "colloquy, pyarrow.flight, memory table": lambda: fetch_raw(raw, "SELECT * FROM wide", args.collect),
            }
            samples = {name: [] for name in methods}
            for _ in range(args.runs):
                for name, fn in methods.items():  # interleaved, so that drifts hit every method alike
                    secs, got_rows, got_bytes = timed(fn)
                    if got_rows != rows:
                        raise RuntimeError(f"{name}: {got_rows} rows, expected {rows}")
                    samples[name].append((secs, got_bytes))
            stop_server(ceiling)
            ceiling = None
            os.remove(ipc_path)
            fetch_raw(raw, "DROP TABLE wide", False)

            print(f"\n{'source':<42} {'seconds':>8} {'Mrows/s':>8} {'MB/s':>8} {'vs ceiling':>10}")
            base = None
            for name, runs in samples.items():
                secs = statistics.median(s for s, _ in runs)
                mb = statistics.median(b for _, b in runs) / 1e6
                base = base or mb / secs
                print(f"{name:<42} {secs:>8.3f} {rows / secs / 1e6:>8.2f} {mb / secs:>8.1f} {mb / secs / base:>10.2f}")

        if not args.skip_latency:
            print(f"\nlatency over {args.iterations} iterations after 100 warm-up ones (ms)")
            with conn.cursor() as cur:
                cur.execute("CREATE TABLE t AS SELECT value AS id, 'x' || CAST(value AS VARCHAR) AS v FROM generate_series(1, 100000)")
                cur.fetchall()

            one = conn.cursor()

            def select_one():
                one.execute("SELECT 1")
                assert one.fetchall() == [(1,)]

            lookup = conn.cursor()
            rng = random.Random(7)

            def point_lookup():
                key = rng.randint(1, 100000)
                lookup.execute("SELECT * FROM t WHERE id = ?", parameters=(key,))
                assert lookup.fetchall() == [(key, f"x{key}")]

            def raw_select_one():
                assert fetch_raw(raw, "SELECT 1", False)[0] == 1

            # The calls the ADBC cursor makes for a statement it prepared already (GetFlightInfo of the
            # prepared statement, then DoGet), made with pyarrow.flight: the server's share of the time.
            handle = prepare_raw(raw, "SELECT 1")
            prepared = flight.FlightDescriptor.for_command(prepared_query_command(handle))

            def raw_prepared_select_one():
                info = raw.get_flight_info(prepared)
                assert raw.do_get(info.endpoints[0].ticket).read_all().num_rows == 1

            print(f"{'query':<46} {'p50':>7} {'p99':>7} {'mean':>7} {'client CPU':>10}")
            for name, fn in [
                ("SELECT 1 (ADBC)", select_one),
                ("SELECT * FROM t WHERE id = ? (ADBC)", point_lookup),
                ("SELECT 1 (pyarrow.flight, not prepared)", raw_select_one),
                ("SELECT 1 (pyarrow.flight, ADBC's calls)", raw_prepared_select_one),
            ]:
                before = os.times()
                p50, p99, mean = latency(fn, args.iterations)
                after = os.times()
                cpu = (after.user + after.system - before.user - before.system) / (args.iterations + 100) * 1e3
                print(f"{name:<46} {p50:>7.2f} {p99:>7.2f} {mean:>7.2f} {cpu:>10.2f}")
            one.close()
            lookup.close()
        conn.close()
        raw.close()
    finally:
        if ceiling is not None:
            stop_server(ceiling)
        stop_server(server)
        log.close()
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
