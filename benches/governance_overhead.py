#!/usr/bin/env python3
"""The cost of governance: the analytics library through `colloquy serve`, with and without policies.

    benches/governance_overhead.py --colloquy target/release/colloquy --conversations 140000 [--work DIR]

Writes the demo archive (140,000 conversations is about 0.93M messages), then starts the server three
times over it, one after the other, and materialises every view of sql/views/ through the ADBC driver
(`CREATE TABLE out AS SELECT * FROM <view>` in one session, so nothing is pruned):

- `plain`: no governance;
- `policies`: a role with a row policy that keeps every row (so the same rows are computed) and a hashed
  `sender_name`: the cost of the mechanism itself;
- `policies+redact`: the same, plus `text` masked by `redact_pii(text)`: what a PII mask adds on top.

Each configuration runs the library `--rounds` times (the best round counts); the archive cache is off
(`archive_cache = "0"`) so that every view reads its files, as in benches/analytics_views.py. Prints the
seconds per view and the ratios to `plain`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import adbc_driver_flightsql.dbapi as flight_sql

import common

VIEWS = common.library_views()

BASE = """
[[archive]]
name = "messages"
location = "{archive}/"
options = {{ timezone = "Europe/Berlin", agents = "*| Acme Support,*(Acme)", bots = "Acme Bot" }}

[server]
archive_cache = "0"
query_timeout_secs = 0
query_memory_limit = "0"
memory_limit = "16GB"
"""

POLICIES = """
[[server.grant]]
role = "public"
select = ["messages"]

[[server.row_policy]]
table = "messages"
roles = ["public"]
using = "channel IN ('whatsapp', 'slack', 'webchat', 'sms')"

[[server.column_policy]]
table = "messages"
column = "sender_name"
mask = "hash"
"""

REDACT = """
[[server.column_policy]]
table = "messages"
column = "text"
mask = "redact_pii(text)"
"""


def run_library(uri: str) -> dict[str, float]:
    times = {}
    with flight_sql.connect(uri) as conn, conn.cursor() as cur:
        for v in VIEWS:
            started = time.perf_counter()
            cur.execute(f"CREATE OR REPLACE TABLE out AS SELECT * FROM {v}")
            cur.fetchall()
            times[v] = time.perf_counter() - started
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--colloquy", required=True)
    p.add_argument("--conversations", type=int, default=140_000)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--work", help="keep the archive here (reused when it exists)")
    args = p.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="colloquy-governance-")
    archive = common.demo_archive(args.colloquy, work, args.conversations)
    configs = {
        "plain": BASE,
        "policies": BASE + POLICIES,
        "policies+redact": BASE + POLICIES + REDACT,
    }
    results: dict[str, dict[str, float]] = {}
    for name, config in configs.items():
        d = os.path.join(work, name)
        os.makedirs(d, exist_ok=True)
        proc, uri, log = common.start_server(args.colloquy, d, config=config.format(archive=archive))
        try:
            best: dict[str, float] = {}
            for _ in range(args.rounds):
                for v, secs in run_library(uri).items():
                    best[v] = min(secs, best.get(v, float("inf")))
            results[name] = best
            print(f"{name}: {sum(best.values()):.2f} s", file=sys.stderr, flush=True)
        finally:
            common.stop_server(proc)
            log.close()
    names = list(configs)
    print("| view | " + " | ".join(f"{n} s" for n in names) + " | " + " | ".join(f"{n} / plain" for n in names[1:]) + " |")
    print("|---|" + "---:|" * (2 * len(names) - 1))
    for v in [*VIEWS, "whole library"]:
        row = [results[n][v] if v in results[n] else sum(results[n].values()) for n in names]
        ratios = [f"{r / row[0]:.3f}" for r in row[1:]]
        print(f"| {v} | " + " | ".join(f"{r:.2f}" for r in row) + " | " + " | ".join(ratios) + " |")


if __name__ == "__main__":
    main()
