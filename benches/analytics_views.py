#!/usr/bin/env python3
"""Times the whole analytics library (every view in sql/views/) over a demo archive.

    benches/analytics_views.py --colloquy target/release/colloquy --conversations 150000 [--work DIR]

Writes the demo archive with `colloquy demo` (150,000 conversations is about 1.1M messages), then
materialises each view with CREATE TABLE ... AS SELECT * (every column computed, nothing pruned) and prints
the time of each and the total, two ways (`--mode`):
  - separate: each view in a `colloquy sql` process of its own, which reads the archive from its files;
  - library: every view, one after the other, in one `colloquy sql` process, as a notebook or a BI
    dashboard asks them: the session keeps conversation_messages and conversations per archive version
    (colloquy::view_cache), so only the first views pay for the scan and the sessionising.
"""

import argparse
import re
import sys
import tempfile

import common

# Every view of the library a session with only `messages` has (sql/views/<name>.sql creates <name>).
VIEWS = common.library_views()

REGISTER = (
    "CREATE EXTERNAL TABLE messages STORED AS ARCHIVE LOCATION '{dir}/' OPTIONS "
    "('timezone' 'Europe/Berlin', 'agents' '*| Acme Support,*(Acme)', 'bots' 'Acme Bot')"
)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--colloquy", required=True)
    p.add_argument("--conversations", type=int, default=150_000)
    p.add_argument("--work", help="keep the archive here (reused when it exists)")
    p.add_argument("--mode", choices=["separate", "library", "both"], default="both")
    args = p.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="colloquy-views-")
    archive = common.demo_archive(args.colloquy, work, args.conversations)
    register = REGISTER.format(dir=archive)
    _, out = common.run_sql(args.colloquy, [register, "SELECT count(*) AS n FROM messages"])
    messages = int(re.findall(r"\d+", out)[-1])
    base, _ = common.run_sql(args.colloquy, [register, "CREATE TABLE scan AS SELECT * FROM messages"])
    print(f"{messages} messages in {archive}; scanning them into memory alone: {base:.2f} s", flush=True)
    if args.mode in ("library", "both"):
        library(args.colloquy, register)
    if args.mode == "library":
        return
    total = 0.0
    for v in VIEWS:
        secs, _ = common.run_sql(args.colloquy, [register, f"CREATE TABLE out AS SELECT * FROM {v}"])
        _, out = common.run_sql(args.colloquy, [register, f"SELECT count(*) FROM {v}"])
        rows = int(re.findall(r"\d+", out)[-1])
        total += secs
        print(f"{v:26s} {secs:7.2f} s  {rows:>9d} rows", flush=True)
    print(f"{'whole library':26s} {total:7.2f} s  (each view a separate process, archive read each time)")


def library(binary, register):
    """Every view in one process; each statement's start time comes from `SELECT now()` between them."""
    statements = [register, "SELECT now() AS t"]
    for v in VIEWS:
        statements += [f"CREATE TABLE out AS SELECT * FROM {v}", "DROP TABLE out", "SELECT now() AS t"]
    total, out = common.run_sql(binary, statements)
    stamps = re.findall(r"^(\d{4}-\d\d-\d\dT[\d:.]+)", out, re.MULTILINE)
    from datetime import datetime

    times = [datetime.fromisoformat(t[:26]) for t in stamps]
    print("one process, the views in library order:")
    for v, (a, b) in zip(VIEWS, zip(times, times[1:])):
        print(f"  {v:26s} {(b - a).total_seconds():7.2f} s", flush=True)
    print(f"  {'whole library':26s} {(times[-1] - times[0]).total_seconds():7.2f} s  ({total:.2f} s with start-up and registration)")


if __name__ == "__main__":
    sys.exit(main())
