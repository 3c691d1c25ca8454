#!/usr/bin/env python3
"""Scan speed of archives of many small objects, layout by layout (issue 23's "one zip per chat, and other
many-small-object layouts").

Usage:
  colloquy demo --out /tmp/bench/demo140k --conversations 140000
  python3 benches/small_object_layouts.py --colloquy target/release/colloquy --demo /tmp/bench/demo140k \\
      --out /tmp/bench/layouts --runs 3

From the demo archive it writes (once; delete --out to write again):
- messenger/: the web chat sessions as Facebook Messenger "Download your information" threads, one folder
  and one `message_1.json` per session (`inbox/<name>_<n>/message_1.json`, newest message first, strings as
  Facebook writes them: UTF-8 bytes escaped as `\\u00XX`);
- webchat_sessions/: the web chat JSON Lines split into one file per session under hive partitions
  (`date=YYYY-MM-DD/<session>.jsonl`);
- slack_folder/: the demo's Slack export unzipped (a folder per channel, a file per channel and day).
Then it times `SELECT count(*), count(DISTINCT conversation_id)` over each of them and over the demo's
WhatsApp folder (one zip per chat) with `/usr/bin/time`, and prints messages and objects per second (median
of --runs). Given several builds (`--colloquy A --colloquy B`), they take turns run by run.
"""
import argparse
import collections
import json
import os
import re
import statistics
import subprocess
import sys
import zipfile
from datetime import datetime, timezone


def facebook_escaped(s):
    # Facebook's export writes each UTF-8 byte of a string as its own code point.
    return s.encode("utf-8").decode("latin-1")


def write_layouts(demo, out):
    sessions = collections.defaultdict(list)
    for root, _, files in os.walk(os.path.join(demo, "webchat")):
        for name in sorted(files):
            with open(os.path.join(root, name), encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        row = json.loads(line)
                        sessions[row["session_id"]].append(row)
    for n, (sid, rows) in enumerate(sorted(sessions.items())):
        day = rows[0]["timestamp"][:10]
        folder = os.path.join(out, "webchat_sessions", f"date={day}")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"{sid}.jsonl"), "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        customer = next((r["author"] for r in rows if r["role"] == "visitor"), "Visitor")
        thread = re.sub(r"[^a-z0-9]", "", customer.lower()) or "visitor"
        folder = os.path.join(out, "messenger", "inbox", f"{thread}_{n}")
        os.makedirs(folder, exist_ok=True)
        doc = {
            "participants": [{"name": facebook_escaped(customer)}, {"name": "Acme Shop"}],
            "messages": [_messenger_message(r) for r in reversed(rows)],
            "title": facebook_escaped(customer),
            "thread_path": f"inbox/{thread}_{n}",
        }
        with open(os.path.join(folder, "message_1.json"), "w", encoding="ascii") as f:
            json.dump(doc, f, indent=2)
    slack_zip = os.path.join(demo, "slack", "acme-slack-export.zip")
    with zipfile.ZipFile(slack_zip) as z:
        z.extractall(os.path.join(out, "slack_folder"))


def _messenger_message(row):
    m = {
        "sender_name": facebook_escaped(row["author"] if row["role"] == "visitor" else "Acme Shop"),
        "timestamp_ms": int(_epoch_ms(row["timestamp"])),
    }
    if row.get("text") is not None:
        m["content"] = facebook_escaped(row["text"])
    if row.get("attachments"):
        m["photos"] = [
            {"uri": f"messages/inbox/photos/{a['name'] if isinstance(a, dict) else a}"} for a in row["attachments"]
        ]
    m["is_geoblocked_for_viewer"] = False
    return m


def _epoch_ms(ts):
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp() * 1000


def count_objects(path):
    return sum(len(files) for _, _, files in os.walk(path))


def time_scans(builds, location, runs):
    """Per build: messages, and the medians of wall seconds, CPU seconds and peak RSS (KB). The builds
    take turns, run by run, so that a noisy minute on a shared machine falls on all of them."""
    query = (
        "SELECT count(*) AS messages, count(DISTINCT conversation_id) AS conversations "
        f"FROM read_archive('{location}', 'auto', 'timezone', 'Europe/Berlin')"
    )
    results = {b: [] for b in builds}
    messages = {}
    for _ in range(runs):
        for colloquy in builds:
            p = subprocess.run(
                ["/usr/bin/time", "-f", "TIME %e %U %S %M", colloquy, "sql", "--format", "json", "-c", query],
                capture_output=True,
                text=True,
            )
            if p.returncode != 0:
                sys.exit(f"{colloquy} failed on {location}: {p.stderr[-2000:]}")
            messages[colloquy] = json.loads(p.stdout)[0]["messages"]
            wall, user, sys_, rss = p.stderr.strip().splitlines()[-1].split()[1:]
            results[colloquy].append((float(wall), float(user) + float(sys_), int(rss)))
    return {
        b: (
            messages[b],
            statistics.median(r[0] for r in rs),
            statistics.median(r[1] for r in rs),
            statistics.median(r[2] for r in rs),
        )
        for b, rs in results.items()
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--colloquy", required=True, action="append", help="a build; give two or more to compare")
    ap.add_argument("--demo", required=True, help="the folder `colloquy demo --out` wrote")
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    if a.runs < 1:
        sys.exit("--runs must be at least 1")
    if len({os.path.basename(b) for b in a.colloquy}) != len(a.colloquy):
        sys.exit("builds are told apart by file name: give each a different one")
    if not os.path.exists(a.out):
        write_layouts(a.demo, a.out)
    layouts = [
        ("whatsapp, one zip per chat", os.path.join(a.demo, "whatsapp")),
        ("messenger, one folder per thread", os.path.join(a.out, "messenger")),
        ("JSON Lines, one file per session, hive partitions", os.path.join(a.out, "webchat_sessions")),
        ("slack export folder, one file per channel and day", os.path.join(a.out, "slack_folder")),
    ]
    print("| layout | build | objects | messages | seconds (median) | messages/s | objects/s | CPU µs/object | peak RSS |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, path in layouts:
        objects = count_objects(path)
        for build, (messages, wall, cpu, rss) in time_scans(a.colloquy, os.path.abspath(path) + "/", a.runs).items():
            print(
                f"| {name} | {os.path.basename(build)} | {objects:,} | {messages:,} | {wall:.2f} | "
                f"{messages / wall / 1e3:,.0f}k | {objects / wall / 1e3:,.1f}k | {cpu * 1e6 / objects:,.0f} | "
                f"{int(rss) // 1024} MB |"
            )


if __name__ == "__main__":
    main()
