#!/usr/bin/env python3
"""Live ingest: message in → rule action out, and the sustained ingest rate, against the real server.

Usage:
  cargo build --release -p colloquy-cli
  cargo build --release -p colloquy-live --example live_load
  python3 benches/live_latency.py --colloquy target/release/colloquy [--rates 100,1000,10000] [--seconds 10]

For each rate, a fresh `colloquy serve` with `[live]` (flush every 100 ms) and one rule that fires once per
new message (`SELECT message_id FROM live_messages WHERE text LIKE 'bench %'`, scope "new", its webhook the
load tool's receiver). The load tool (`crates/colloquy-live/examples/live_load.rs`, Rust, so that the
harness is not what falls behind) POSTs one message per request at the rate for `--seconds`, notes when
each was acknowledged and when each rule action arrives. Latency = action received − message acknowledged,
per message; p50, p99 and max are printed with how many actions arrived. Then the sustained ingest rate:
`colloquy replay` of 200,000 messages, 100 per request, as fast as the server takes them. Peak memory of
the server (VmHWM) is printed for each run. Record results in benches/README.md.
"""
import argparse
import json
import os
import subprocess
import tempfile

import common

TOKEN = "bench-token-0123456789"


def start_live(binary, work, extra=""):
    """`colloquy serve` with a live store in `work` and `extra` lines of `[live]`: (process, log, HTTP port)."""
    port = common.free_port()
    config = f'[live]\ndir = "{work}/store"\nbind = "127.0.0.1:{port}"\ntoken = "{TOKEN}"\n{extra}'
    proc, _, log = common.start_server(binary, work, config=config)
    return proc, log, port


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_rate(binary, load, rate, seconds, work, batch=1):
    receiver_port = common.free_port()
    proc, log, live_port = start_live(binary, work, f"""flush_ms = 100

[[live.rule]]
name = "bench"
sql = "SELECT message_id FROM live_messages WHERE text LIKE 'bench %'"
key = "message_id"
scope = "new"
webhook = "http://127.0.0.1:{receiver_port}/hook"
""")
    try:
        out = subprocess.run([load, "--to", f"http://127.0.0.1:{live_port}", "--token", TOKEN,
                              "--receiver-port", str(receiver_port), "--rate", str(rate), "--seconds", str(seconds),
                              "--batch", str(batch)],
                             capture_output=True, text=True, check=True).stdout
        r = json.loads(out)
        r["rate"] = rate
        r["batch"] = batch
        r["peak_rss_mb"] = peak_rss_mb(proc.pid)
        return r
    finally:
        common.stop_server(proc)
        log.close()


def ingest_rate(binary, messages, work):
    proc, log, live_port = start_live(binary, work)
    archive = os.path.join(work, "archive")
    os.makedirs(archive)
    with open(os.path.join(archive, "log.jsonl"), "w") as f:
        for i in range(messages):
            f.write(json.dumps({"channel": "webchat", "conversation_id": f"c-{i % 5000}", "message_id": f"m-{i}",
                                "ts": f"2026-03-30T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}Z",
                                "role": "customer", "text": f"message number {i}"}) + "\n")
    out = subprocess.run([binary, "replay", archive, "--to", f"http://127.0.0.1:{live_port}", "--rate", "0",
                          "--batch", "100"], env=dict(os.environ, COLLOQUY_LIVE_TOKEN=TOKEN),
                         capture_output=True, text=True, check=True).stdout.strip()
    rss = peak_rss_mb(proc.pid)
    common.stop_server(proc)
    log.close()
    return out, rss


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--colloquy", required=True)
    ap.add_argument("--load", help="the live_load example (default: examples/live_load next to --colloquy)")
    ap.add_argument("--rates", default="100,1000,10000")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--batched-rates", default="10000", help="rates also run with --batch messages per request")
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--ingest-messages", type=int, default=200000)
    args = ap.parse_args()
    load = args.load or os.path.join(os.path.dirname(args.colloquy), "examples", "live_load")
    print("| offered msg/s | messages per request | achieved msg/s | messages | actions | p50 ms | p99 ms | max ms "
          "| server peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    runs = [(float(r), 1) for r in args.rates.split(",")]
    runs += [(float(r), int(args.batch)) for r in args.batched_rates.split(",") if r and args.batch > 1]
    for rate, batch in runs:
        with tempfile.TemporaryDirectory() as work:
            r = run_rate(args.colloquy, load, rate, args.seconds, work, batch)
        print(f"| {r['rate']:.0f} | {batch} | {r['achieved_rate']:.0f} | {r['sent']} | {r['actions']} "
              f"| {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['max_ms']:.0f} | {r['peak_rss_mb']:.0f} |", flush=True)
    with tempfile.TemporaryDirectory() as work:
        out, rss = ingest_rate(args.colloquy, args.ingest_messages, work)
    print(f"\nsustained ingest: {out} (server peak RSS {rss:.0f} MB)")


if __name__ == "__main__":
    main()
