#!/usr/bin/env python3
"""Live ingest: message in → rule action out, and the sustained ingest rate, against the real server.

Usage:
  cargo build --release -p colloquy-cli
  python3 benches/live_latency.py --colloquy target/release/colloquy [--rates 100,1000,10000] [--seconds 10]

For each rate, a fresh `colloquy serve` with `[live]` (flush every 100 ms) and one rule (scope "new") that fires once per
new message (`SELECT message_id FROM live_messages WHERE text LIKE 'bench %'`, webhook to a receiver in
this process). A sender thread POSTs one message per request at the rate for `--seconds` and notes when each
was acknowledged; the receiver notes when each rule action arrives. Latency = action received − message
acknowledged, per message; p50 and p99 are printed with how many actions arrived. Then the sustained ingest
rate: `colloquy replay` of the same number of messages, 100 per request, as fast as the server takes them.
Peak memory of the server (VmHWM) is printed for each run. Record results in benches/README.md.
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import common

TOKEN = "bench-token-0123456789"


class Receiver:
    def __init__(self):
        self.arrived = {}
        arrived = self.arrived

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                arrived[body["key"]] = time.perf_counter()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


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


def run_rate(binary, rate, seconds, work):
    receiver = Receiver()
    proc, log, live_port = start_live(binary, work, f"""flush_ms = 100

[[live.rule]]
name = "bench"
sql = "SELECT message_id FROM live_messages WHERE text LIKE 'bench %'"
key = "message_id"
scope = "new"
webhook = "http://127.0.0.1:{receiver.port}/hook"
""")
    acked = {}
    n = int(rate * seconds)
    url = f"http://127.0.0.1:{live_port}/v1/messages"
    start = time.perf_counter()

    def send(i):
        body = json.dumps({"message_id": f"b-{i}", "channel": "webchat", "conversation_id": f"bc-{i}",
                           "ts": "2026-03-30T10:00:00Z", "sender_role": "customer", "text": f"bench {i}"})
        req = urllib.request.Request(url, data=body.encode(), method="POST")
        req.add_header("Authorization", f"Bearer {TOKEN}")
        with urllib.request.urlopen(req, timeout=30) as resp:
            resp.read()
        acked[f"b-{i}"] = time.perf_counter()

    # Several senders, each pacing its share, so one slow request does not hold the others back.
    senders = max(1, min(32, int(rate // 100)))

    def sender(k):
        for i in range(k, n, senders):
            due = start + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            send(i)

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent_secs = time.perf_counter() - start
    deadline = time.perf_counter() + 60
    while len(receiver.arrived) < n and time.perf_counter() < deadline:
        time.sleep(0.1)
    lat = sorted(receiver.arrived[k] - acked[k] for k in receiver.arrived if k in acked)
    rss = peak_rss_mb(proc.pid)
    common.stop_server(proc)
    log.close()
    receiver.server.shutdown()
    p = (lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000) if lat else (lambda q: float("nan"))
    return {"rate": rate, "sent": n, "achieved_rate": n / sent_secs, "actions": len(lat),
            "p50_ms": p(0.5), "p99_ms": p(0.99), "max_ms": (lat[-1] * 1000 if lat else float("nan")),
            "mean_ms": statistics.mean(lat) * 1000 if lat else float("nan"), "peak_rss_mb": rss}


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
    ap.add_argument("--rates", default="100,1000,10000")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--ingest-messages", type=int, default=200000)
    args = ap.parse_args()
    print("| offered msg/s | achieved msg/s | messages | actions | p50 ms | p99 ms | max ms | server peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    for rate in [float(r) for r in args.rates.split(",")]:
        with tempfile.TemporaryDirectory() as work:
            r = run_rate(args.colloquy, rate, args.seconds, work)
        print(f"| {r['rate']:.0f} | {r['achieved_rate']:.0f} | {r['sent']} | {r['actions']} | {r['p50_ms']:.0f} "
              f"| {r['p99_ms']:.0f} | {r['max_ms']:.0f} | {r['peak_rss_mb']:.0f} |", flush=True)
    with tempfile.TemporaryDirectory() as work:
        out, rss = ingest_rate(args.colloquy, args.ingest_messages, work)
    print(f"\nsustained ingest: {out} (server peak RSS {rss:.0f} MB)")


if __name__ == "__main__":
    main()
