#!/usr/bin/env python3
"""language() and sentiment() in colloquy against DuckDB with Python UDFs (lingua + VADER), side by side.

Usage:
  python3 -m venv /tmp/peers-venv && /tmp/peers-venv/bin/pip install -r benches/requirements-peers.txt
  /tmp/peers-venv/bin/python benches/compare_text_peers.py --colloquy target/release/colloquy \
      [--messages 1000000] [--peer-sample 20000] [--threads 2] [--runs 3] [--data messages.parquet]

The query, on both sides:
  SELECT language(text), avg(sentiment(text)), count(*) FROM messages GROUP BY 1

Data: unless --data names a Parquet file with a `text` column, the script writes a demo archive
(`colloquy demo`, about 6.6 messages per conversation over web chat, WhatsApp, Slack and SMS) and exports the
first --messages non-null texts to one Parquet file with colloquy's COPY. Both engines read that Parquet file.

colloquy runs `sql --format json` over the whole file (wall time of the process, including its start and the
loading of its models) with `SET datafusion.execution.target_partitions` and TOKIO_WORKER_THREADS set to
--threads.

The peer is DuckDB (Python) with two Arrow-vectorised Python UDFs: lingua-language-detector built with
`from_all_languages().with_preloaded_language_models()` (high-accuracy mode, lingua's default) returning ISO
639-1 codes, and vaderSentiment's compound score; `SET threads TO --threads`, and RAYON_NUM_THREADS for
lingua's own batch API. The peer is far too slow for a million rows (about 750 messages/s here, 22 minutes),
so it runs on a seeded random sample of --peer-sample rows of the same file and its rate is extrapolated to
the full size; the table says so. Its timings cover the query alone: building the detector (a one-off of
several seconds) is reported apart. With --threads below the machine's core count both sides are pinned to
the first --threads cores. Reported: messages/s of each side, the speed ratio, how many groups each GROUP
BY returned and each side's top 5 languages (a sanity check, not an accuracy measure).

--peer-only times the peer alone (for when the colloquy binary lacks the functions or the data is given).
Record results in benches/README.md with the machine they ran on.
"""
import argparse
import math
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from common import last_json_array

QUERY = "SELECT {lang}(text) AS lang, avg({sent}(text)) AS avg_sentiment, count(*) AS n FROM messages GROUP BY 1"



def colloquy_env(threads):
    env = dict(os.environ)
    env["TOKIO_WORKER_THREADS"] = str(threads)
    env["RAYON_NUM_THREADS"] = str(threads)
    return env


def pin(threads):
    """Restrict this process (and children started after) to the first `threads` cores, if fewer than all."""
    cores = sorted(os.sched_getaffinity(0))
    if threads < len(cores):
        os.sched_setaffinity(0, cores[:threads])
    return cores


def run_colloquy(binary, statements, threads, fmt="json"):
    cmd = [binary, "sql", "--format", fmt, "-c", "; ".join(statements)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=colloquy_env(threads))
    if proc.returncode != 0:
        raise SystemExit(f"colloquy failed ({proc.returncode}): {proc.stderr.strip()}\n  command: {' '.join(cmd)}")
    return proc.stdout


def make_data(binary, messages, work):
    """A demo archive big enough for `messages` texts, exported to one Parquet file with a `text` column."""
    import pyarrow.parquet as pq

    conversations = math.ceil(messages / 6.4)
    for _ in range(4):
        archive = os.path.join(work, "archive")
        shutil.rmtree(archive, ignore_errors=True)
        start = time.perf_counter()
        subprocess.run([binary, "demo", "--out", archive, "--conversations", str(conversations)], check=True, capture_output=True)
        out = os.path.join(work, "messages.parquet")
        if os.path.exists(out):
            os.remove(out)
        run_colloquy(binary, [
            f"COPY (SELECT text FROM read_archive('{archive}/', 'auto') WHERE text IS NOT NULL LIMIT {messages}) "
            f"TO '{out}' STORED AS PARQUET"
        ], threads=os.cpu_count())
        rows = pq.ParquetFile(out).metadata.num_rows
        print(f"data: {conversations} demo conversations -> {rows} messages in {out} ({time.perf_counter() - start:.0f} s)")
        shutil.rmtree(archive, ignore_errors=True)
        if rows >= messages:
            return out
        conversations = math.ceil(conversations * messages / max(rows, 1) * 1.05)
    raise SystemExit(f"could not produce {messages} messages from the demo archive")


def sample_parquet(path, size, seed, work):
    """A seeded random sample of `size` rows of the `text` column, as its own Parquet file."""
    import numpy as np
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=["text"])
    if size >= table.num_rows:
        return path, table.num_rows
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(table.num_rows, size=size, replace=False))
    out = os.path.join(work, f"sample-{size}.parquet")
    pq.write_table(table.take(idx), out)
    return out, size


def colloquy_side(binary, parquet, threads, runs):
    statements = [
        f"SET datafusion.execution.target_partitions = {threads}",
        f"CREATE EXTERNAL TABLE messages STORED AS PARQUET LOCATION '{parquet}'",
        QUERY.format(lang="language", sent="sentiment"),
    ]
    times, rows = [], None
    for _ in range(runs):
        start = time.perf_counter()
        out = run_colloquy(binary, statements, threads)
        times.append(time.perf_counter() - start)
        rows = last_json_array(out)
    # JSON leaves out NULL values: a group of undetected texts has no "lang" key.
    groups = [(r.get("lang"), r.get("avg_sentiment"), int(r["n"])) for r in rows or []]
    return statistics.median(times), groups


class PeerUdfs:
    """lingua (high accuracy, all languages, preloaded) and VADER as Arrow-vectorised DuckDB UDFs."""

    def __init__(self, lingua_api):
        from lingua import LanguageDetectorBuilder
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        start = time.perf_counter()
        self.detector = LanguageDetectorBuilder.from_all_languages().with_preloaded_language_models().build()
        self.vader = SentimentIntensityAnalyzer()
        self.setup_seconds = time.perf_counter() - start
        self.lingua_api = lingua_api

    def language(self, texts):
        import pyarrow as pa

        values = texts.to_pylist()
        present = [t for t in values if t is not None]
        if self.lingua_api == "batch":
            found = iter(self.detector.detect_languages_in_parallel_of(present))
        else:
            found = iter(self.detector.detect_language_of(t) for t in present)
        out = []
        for t in values:
            lang = None if t is None else next(found)
            out.append(None if lang is None else lang.iso_code_639_1.name.lower())
        return pa.array(out, type=pa.string())

    def sentiment(self, texts):
        import pyarrow as pa

        score = self.vader.polarity_scores
        return pa.array([None if t is None else score(t)["compound"] for t in texts.to_pylist()], type=pa.float64())


def peer_side(parquet, threads, runs, udfs):
    import duckdb
    from duckdb.sqltypes import DOUBLE, VARCHAR

    con = duckdb.connect()
    con.execute(f"SET threads TO {threads}")
    con.create_function("lingua_language", udfs.language, [VARCHAR], VARCHAR, type="arrow", null_handling="special")
    con.create_function("vader_sentiment", udfs.sentiment, [VARCHAR], DOUBLE, type="arrow", null_handling="special")
    con.execute(f"CREATE VIEW messages AS SELECT text FROM read_parquet('{parquet}')")
    query = QUERY.format(lang="lingua_language", sent="vader_sentiment")
    times, rows = [], None
    for _ in range(runs):
        start = time.perf_counter()
        rows = con.execute(query).fetchall()
        times.append(time.perf_counter() - start)
    return statistics.median(times), [(lang, avg, int(n)) for lang, avg, n in rows]


def top_languages(groups, k=5):
    total = sum(n for _, _, n in groups) or 1
    ranked = sorted(groups, key=lambda g: -g[2])[:k]
    return ", ".join(f"{lang or 'NULL'} {100 * n / total:.0f}%" for lang, _, n in ranked)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--colloquy", required=True, help="path to a release build of the colloquy binary")
    ap.add_argument("--messages", type=int, default=1_000_000, help="messages for colloquy (default 1,000,000)")
    ap.add_argument("--peer-sample", type=int, default=20_000, help="rows the peer is timed on (0: all of them)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3, help="runs per side; the median is reported")
    ap.add_argument("--data", help="a Parquet file with a `text` column (default: generated from the demo archive)")
    ap.add_argument("--work", help="folder for generated files (default: a temporary folder, removed afterwards)")
    ap.add_argument("--seed", type=int, default=7, help="seed of the peer's sample")
    ap.add_argument("--lingua-api", choices=["batch", "serial"], default="batch",
                    help="peer UDF calls lingua's detect_languages_in_parallel_of (batch) or detect_language_of per row")
    ap.add_argument("--peer-only", action="store_true", help="time the peer alone")
    args = ap.parse_args()

    # lingua's batch API runs on a rayon pool: give it the same thread count (read when the pool starts).
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)
    cores = pin(args.threads)
    work = args.work or tempfile.mkdtemp(prefix="colloquy-text-peers-")
    os.makedirs(work, exist_ok=True)
    try:
        if args.data:
            data = os.path.abspath(args.data)
        elif args.peer_only and args.peer_sample:
            data = make_data(args.colloquy, args.peer_sample, work)
        else:
            data = make_data(args.colloquy, args.messages, work)
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        total = pq.ParquetFile(data).metadata.num_rows
        distinct = len(pc.unique(pq.read_table(data, columns=["text"])["text"]))
        print(f"data: {data}, {total} messages ({distinct} distinct texts); threads {args.threads} (machine has {len(cores)} cores); median of {args.runs} runs")

        results = {}
        if not args.peer_only:
            secs, groups = colloquy_side(args.colloquy, data, args.threads, args.runs)
            results["colloquy"] = (total, secs, groups, False)

        sample, sample_rows = sample_parquet(data, args.peer_sample or total, args.seed, work)
        udfs = PeerUdfs(args.lingua_api)
        print(f"peer setup (lingua detector, all languages preloaded, + VADER): {udfs.setup_seconds:.1f} s, not counted")
        secs, groups = peer_side(sample, args.threads, args.runs, udfs)
        results["duckdb+udf"] = (sample_rows, secs, groups, sample_rows < total)

        print(f"\n{'engine':<11} {'timed on':>10} {'seconds':>9} {'msg/s':>10} {f'secs for {total}':>16} {'groups':>7}  top languages")
        for name, (rows, secs, groups, extrapolated) in results.items():
            rate = rows / secs
            full = total / rate
            mark = "*" if extrapolated else " "
            print(f"{name:<11} {rows:>10} {secs:>9.2f} {rate:>10.0f} {full:>15.1f}{mark} {len(groups):>7}  {top_languages(groups)}")
        if results["duckdb+udf"][3]:
            print(f"* extrapolated: the peer ran on a random sample of {sample_rows} of the {total} messages "
                  f"(seed {args.seed}); its time for all of them is {total} / its measured messages/s")
        if "colloquy" in results:
            c_rows, c_secs, _, _ = results["colloquy"]
            p_rows, p_secs, _, _ = results["duckdb+udf"]
            ratio = (c_rows / c_secs) / (p_rows / p_secs)
            print(f"\ncolloquy is {ratio:.0f}x faster than DuckDB + Python UDFs (messages/s, {args.threads} threads; goal: 100x)")
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
