#!/usr/bin/env python3
"""Scan speed of colloquy against DuckDB's read_json, side by side in one run.

Usage:
  python3 benches/compare_duckdb.py --colloquy target/release/colloquy --conversations 160000 [--runs 3]

It writes a demo archive (about 6.7 messages per conversation), then times, for each format of the
archive, a full scan that touches every message (count and distinct conversations), with colloquy's
ARCHIVE reader and — for the JSONL web chat logs — DuckDB's read_json over the very same files. It
prints messages/s, MB/s and the colloquy/DuckDB time ratio. Needs `pip install duckdb` (any venv).
Record results in benches/README.md with the machine they ran on.
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time


def folder_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def timed(cmd, runs):
    times, out = [], None
    for _ in range(runs):
        start = time.perf_counter()
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def colloquy_scan(binary, location, runs):
    sql = (
        f"SELECT count(*) AS messages, count(DISTINCT conversation_id) AS conversations "
        f"FROM read_archive('{location}', 'auto', 'timezone', 'Europe/Berlin')"
    )
    secs, out = timed([binary, "sql", "--format", "json", "-c", sql], runs)
    row = json.loads(out)[0]
    return secs, row["messages"], row["conversations"]


def duckdb_scan(location, runs):
    import duckdb

    def once():
        con = duckdb.connect()
        return con.execute(
            "SELECT count(*), count(DISTINCT session_id) FROM read_json(?, format='newline_delimited', hive_partitioning=true)",
            [location],
        ).fetchone()

    times, row = [], None
    for _ in range(runs):
        start = time.perf_counter()
        row = once()
        times.append(time.perf_counter() - start)
    return statistics.median(times), row[0], row[1]


def whatsapp_as_text(zips, dest):
    """The same WhatsApp chats as plain .txt exports, a few large files (one per header layout and date
    order, so each file stays a valid export), to measure the parser apart from per-object costs."""
    import re
    import zipfile

    os.makedirs(dest, exist_ok=True)
    outs = {}
    for name in sorted(os.listdir(zips)):
        with zipfile.ZipFile(os.path.join(zips, name)) as z:
            for entry in z.namelist():
                if not entry.endswith(".txt"):
                    continue
                data = z.read(entry)
                first = data.split(b"\n", 1)[0].decode("utf-8", "replace").lstrip("\ufeff\u200e")
                m = re.match(r"^\[?(\d+)[/.-](\d+)", first)
                a, b = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
                order = "mdy" if b > 12 else ("dmy" if a > 12 else "any")
                key = (re.sub(r"\d", "d", first[:8]), order)
                if key not in outs:
                    outs[key] = open(os.path.join(dest, f"WhatsApp Chat - {len(outs)}.txt"), "wb")
                outs[key].write(data)
    for f in outs.values():
        f.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--colloquy", required=True, help="path to a release build of the colloquy binary")
    ap.add_argument("--conversations", type=int, default=160000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", help="archive folder (default: a temporary folder)")
    args = ap.parse_args()

    out = args.out or tempfile.mkdtemp(prefix="colloquy-bench-")
    subprocess.run([args.colloquy, "demo", "--out", out, "--conversations", str(args.conversations)], check=True, capture_output=True)

    print(f"archive: {out} ({folder_bytes(out) / 1e6:.1f} MB), median of {args.runs} runs, wall time including process start")
    print(f"{'format':<10} {'engine':<9} {'messages':>10} {'seconds':>8} {'msg/s':>11} {'MB/s':>7}")
    whatsapp_as_text(os.path.join(out, "whatsapp"), os.path.join(out, "..", os.path.basename(out) + "-whatsapp-txt"))
    results = {}
    for fmt, sub in [
        ("jsonl", "webchat"),
        ("whatsapp", "whatsapp"),
        ("wa-txt", os.path.join("..", os.path.basename(out) + "-whatsapp-txt")),
        ("slack", "slack"),
        ("csv", "sms"),
    ]:
        loc = os.path.join(out, sub) + "/"
        mb = folder_bytes(loc) / 1e6
        secs, msgs, _ = colloquy_scan(args.colloquy, loc, args.runs)
        results[(fmt, "colloquy")] = secs
        print(f"{fmt:<10} {'colloquy':<9} {msgs:>10} {secs:>8.2f} {msgs / secs:>11.0f} {mb / secs:>7.1f}")
        if fmt == "jsonl":
            dsecs, dmsgs, _ = duckdb_scan(os.path.join(out, sub, "**", "*.jsonl"), args.runs)
            results[(fmt, "duckdb")] = dsecs
            print(f"{fmt:<10} {'duckdb':<9} {dmsgs:>10} {dsecs:>8.2f} {dmsgs / dsecs:>11.0f} {mb / dsecs:>7.1f}")
            if dmsgs != msgs:
                print(f"  warning: DuckDB counted {dmsgs} messages, colloquy {msgs}")
    ratio = results[("jsonl", "colloquy")] / results[("jsonl", "duckdb")]
    print(f"\nJSONL: colloquy takes {ratio:.2f}x DuckDB's time over the same files")


if __name__ == "__main__":
    main()
