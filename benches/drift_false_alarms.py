#!/usr/bin/env python3
"""How often drift_weekly raises a false alarm, and what catching the demo's incident costs in false alarms.

Usage:
  cargo build --release -p colloquy-cli
  python3 benches/drift_false_alarms.py --colloquy target/release/colloquy --work /tmp/drift-fa \
      [--seeds 1,2,3,4,5,6] [--conversations 3000]

The battery: the demo archive (`colloquy demo`) generated with several seeds. Its one injected change is the
WhatsApp incident, a step on 2026-03-02 (more tracking and delivery conversations, angry ones): drift_weekly
compares each week with the one before, so the channel-week WhatsApp 2026-03-02 is the change to catch and
every channel-week not in the incident (WhatsApp before 2026-03-02, every other channel) is a no-change week
(the weeks after the onset compare incident weeks with incident weeks and are left out of both counts).

For each no-change and onset channel-week it reads the p-values of the three tests drift_weekly runs (text
domain classifier, intent chi-square, sentiment Kolmogorov-Smirnov) twice:
  messages       the shipped view's unit: every customer message of the week
  conversations  one unit per conversation: its first customer message's text and intent, its mean sentiment
and prints, per significance level, the false-alarm rate of each test and of "any of the three" (the view's
`drifted`), with the number of onsets caught. Random half splits of each channel-week (by a hash of the unit's
id) are the calibration check: each test at level a should flag about a of those splits, "any of three" at
most 3a. Where the weekly false-alarm rate is well above the splits' rate, the weeks really differ (in the
demo: repeat contacts about the same intent cluster in time), and only a stricter level or a minimum effect
size keeps quiet weeks quiet.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import subprocess
import sys

import common

INCIDENT = "2026-03-02"
LEVELS = [0.05, 0.02, 0.01, 0.008, 0.006, 0.005, 0.001]

UNITS = {
    "messages": """
        SELECT channel, CAST(date_trunc('week', ts) AS DATE) AS week, text, intent, sentiment,
            concat(conversation_key, '#', CAST(position AS VARCHAR)) AS unit
        FROM conversation_messages WHERE sender_role = 'customer' AND text IS NOT NULL""",
    "conversations": """
        SELECT channel, CAST(date_trunc('week', min(ts)) AS DATE) AS week,
            first_value(text ORDER BY position) AS text, first_value(intent ORDER BY position) AS intent,
            avg(sentiment) AS sentiment, conversation_key AS unit
        FROM conversation_messages WHERE sender_role = 'customer' AND text IS NOT NULL
        GROUP BY channel, conversation_key""",
}

WEEKLY = """
WITH units AS ({units}),
paired AS (
    SELECT s.channel, CASE WHEN k.is_current THEN s.week ELSE s.week + INTERVAL '7 days' END AS week,
        k.is_current, s.text, s.intent, s.sentiment
    FROM units AS s CROSS JOIN (VALUES (true), (false)) AS k(is_current)
)
SELECT channel, CAST(week AS VARCHAR) AS week,
    drift(text, is_current)['p_value'] AS text_p,
    drift(intent, is_current, 'categorical')['p_value'] AS intent_p,
    drift(sentiment, is_current)['p_value'] AS sentiment_p
FROM paired GROUP BY channel, week
HAVING count(*) FILTER (WHERE NOT is_current) > 0 AND count(*) FILTER (WHERE is_current) > 0;
"""

SPLITS = """
WITH units AS ({units})
SELECT channel, CAST(week AS VARCHAR) AS week, half_of AS split,
    drift(text, half)['p_value'] AS text_p,
    drift(intent, half, 'categorical')['p_value'] AS intent_p,
    drift(sentiment, half)['p_value'] AS sentiment_p
FROM (
    SELECT u.*, s.v AS half_of, ascii(substr(md5(concat(u.unit, '/', CAST(s.v AS VARCHAR))), 2, 1)) % 2 = 0 AS half
    FROM units AS u CROSS JOIN generate_series(1, {splits}) AS s(v)
)
GROUP BY channel, week, half_of;
"""


def run(binary: str, archive: str, sql: str) -> list[dict[str, str]]:
    script = f"CREATE EXTERNAL TABLE messages STORED AS ARCHIVE LOCATION '{archive}/';\n{sql}"
    done = subprocess.run([binary, "sql", "--format", "csv", "-c", script], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"colloquy sql failed: {done.stderr}")
    return list(csv.DictReader(io.StringIO(done.stdout)))


def p(row: dict[str, str], test: str) -> float:
    value = row[f"{test}_p"]
    return float(value) if value else 1.0


def shipped(binary: str, archives: list[str], tests: list[str]) -> None:
    """The flags of the view as it ships (its unit, its levels)."""
    quiet, onsets = [], []
    for archive in archives:
        sql = ("SELECT channel, CAST(week AS VARCHAR) AS week, text_drifted, intent_drifted, sentiment_drifted, "
               "drifted FROM drift_weekly;")
        for row in run(binary, archive, sql):
            if row["channel"] == "whatsapp" and row["week"] == INCIDENT:
                onsets.append(row)
            elif not (row["channel"] == "whatsapp" and row["week"] > INCIDENT):
                quiet.append(row)
    share = {t: sum(r[f"{t}_drifted"] == "true" for r in quiet) / len(quiet) for t in tests}
    fp = sum(r["drifted"] == "true" for r in quiet) / len(quiet)
    caught = sum(r["drifted"] == "true" for r in onsets)
    both = sum(r["intent_drifted"] == "true" and r["sentiment_drifted"] == "true" for r in onsets)
    print(f"## drift_weekly as shipped ({len(quiet)} no-change channel-weeks, {len(onsets)} onsets)")
    print("| " + " | ".join(f"{t} false alarms" for t in tests)
          + " | drifted: false alarms | onsets caught | onsets with intent and sentiment drift |")
    print("|---" * (len(tests) + 3) + "|")
    print("| " + " | ".join(f"{share[t]:.3f}" for t in tests)
          + f" | {fp:.3f} | {caught} / {len(onsets)} | {both} / {len(onsets)} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--colloquy", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--seeds", default="1,2,3,4,5,6")
    ap.add_argument("--conversations", type=int, default=3000)
    ap.add_argument("--splits", type=int, default=10)
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    tests = ["text", "intent", "sentiment"]
    archives = [common.demo_archive(args.colloquy, args.work, args.conversations, int(seed))
                for seed in args.seeds.split(",")]
    shipped(args.colloquy, archives, tests)
    for unit, units_sql in UNITS.items():
        quiet, onsets, splits = [], [], []
        for archive in archives:
            for row in run(args.colloquy, archive, WEEKLY.format(units=units_sql)):
                if row["channel"] == "whatsapp" and row["week"] == INCIDENT:
                    onsets.append(row)
                elif not (row["channel"] == "whatsapp" and row["week"] > INCIDENT):
                    quiet.append(row)
            splits += run(args.colloquy, archive, SPLITS.format(units=units_sql, splits=args.splits))
        print(f"\n## unit: {unit} ({len(quiet)} no-change channel-weeks, {len(onsets)} onsets, "
              f"{len(splits)} random splits)")
        print("| level | " + " | ".join(f"{t} false alarms" for t in tests)
              + " | any of three: false alarms | onsets caught (any) | random splits flagged (any) |")
        print("|---" * (len(tests) + 4) + "|")
        for a in LEVELS:
            cells = [f"{sum(p(r, t) < a for r in quiet) / len(quiet):.3f}" for t in tests]
            any_fp = sum(any(p(r, t) < a for t in tests) for r in quiet) / len(quiet)
            caught = sum(any(p(r, t) < a for t in tests) for r in onsets)
            split_fp = sum(any(p(r, t) < a for t in tests) for r in splits) / max(len(splits), 1)
            print(f"| {a} | " + " | ".join(cells) + f" | {any_fp:.3f} | {caught} / {len(onsets)} | {split_fp:.3f} |")


if __name__ == "__main__":
    main()
