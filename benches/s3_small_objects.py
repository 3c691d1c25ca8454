#!/usr/bin/env python3
"""Many small objects from an S3-compatible server, side by side with the same files on local disk.

    .venv/bin/python benches/s3_small_objects.py --colloquy target/release/colloquy \
        --archive /tmp/demo/whatsapp [--latency-ms 20] [--runs 3] [--limit 20000]

Starts moto (`.venv/bin/moto_server`, which scripts/test installs) on loopback, uploads the files under
`--archive` (one zip per chat, as `colloquy demo` writes WhatsApp), and puts a proxy in front of it that
holds every request `--latency-ms` before passing it on, to mimic a store in another region. Then, in one
run, it times the same full scan (count and distinct conversations) over:
  - the local folder,
  - moto directly,
  - moto behind the delaying proxy,
and prints messages/s for each. moto is a Python server: its own ceiling (objects/s it serves to a
client that asks many at a time) is printed too, since past it the store, not colloquy, is measured.
"""

import argparse
import asyncio
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import threading
import time

import common

BUCKET = "bench"


def start_moto(binary):
    port = common.free_port()
    proc = subprocess.Popen(
        [binary, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            import urllib.request

            urllib.request.urlopen(endpoint, timeout=1)
            return proc, endpoint
        except Exception:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("moto_server did not start")


def s3_client(endpoint):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="colloquy",
        aws_secret_access_key="colloquy",
        region_name="us-east-1",
        config=Config(max_pool_connections=32),
    )


def upload(endpoint, root, limit):
    client = s3_client(endpoint)
    client.create_bucket(Bucket=BUCKET)
    files = []
    for d, _, names in os.walk(root):
        files += [os.path.join(d, n) for n in sorted(names)]
    files.sort()
    files = files[:limit] if limit else files

    def put(path):
        key = "archive/" + os.path.relpath(path, root)
        with open(path, "rb") as f:
            client.put_object(Bucket=BUCKET, Key=key, Body=f.read())

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(put, files))
    return files


def moto_ceiling(endpoint, keys, seconds=5.0):
    """Objects/s moto serves to 32 threads fetching small objects as fast as they can."""
    client = s3_client(endpoint)
    done = 0
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def worker(i):
        nonlocal done
        n = 0
        while time.perf_counter() < stop:
            client.get_object(Bucket=BUCKET, Key=keys[(i * 997 + n) % len(keys)])["Body"].read()
            n += 1
        with lock:
            done += n

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        list(pool.map(worker, range(32)))
    return done / seconds


class DelayProxy:
    """Forwards TCP connections to `target`, holding each chunk a client sends for `delay` seconds
    (an HTTP request arrives as one chunk), so every request pays the delay once."""

    def __init__(self, target_port, delay):
        self.target_port = target_port
        self.delay = delay
        self.port = common.free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.ready = threading.Event()

    def start(self):
        self.thread.start()
        self.ready.wait(10)
        return f"http://127.0.0.1:{self.port}"

    def _run(self):
        asyncio.set_event_loop(self.loop)

        async def pipe(reader, writer, delay):
            try:
                while data := await reader.read(65536):
                    if delay:
                        await asyncio.sleep(delay)
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                writer.close()

        async def handle(client_reader, client_writer):
            try:
                server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            except OSError:
                client_writer.close()
                return
            await asyncio.gather(
                pipe(client_reader, server_writer, self.delay), pipe(server_reader, client_writer, 0)
            )

        async def main():
            server = await asyncio.start_server(handle, "127.0.0.1", self.port, backlog=1024)
            self.ready.set()
            async with server:
                await server.serve_forever()

        self.loop.run_until_complete(main())


def scan(binary, location, options, runs):
    opts = "".join(f", '{k}', '{v}'" for k, v in options.items())
    sql = (
        "SELECT count(*) AS messages, count(DISTINCT conversation_id) AS conversations "
        f"FROM read_archive('{location}', 'auto', 'timezone', 'Europe/Berlin'{opts})"
    )
    times, row = [], None
    for _ in range(runs):
        started = time.perf_counter()
        out = subprocess.run([binary, "sql", "--format", "json", "-c", sql], check=True, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        row = json.loads(out.stdout)[0]
    return statistics.median(times), row["messages"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--colloquy", required=True)
    p.add_argument("--archive", required=True, help="a folder of small exports (e.g. the demo's whatsapp/)")
    p.add_argument("--moto", default=os.path.join(os.path.dirname(sys.executable), "moto_server"))
    p.add_argument("--latency-ms", type=float, default=20.0)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--limit", type=int, default=0, help="upload only the first N files")
    args = p.parse_args()

    moto, endpoint = start_moto(args.moto)
    try:
        started = time.perf_counter()
        files = upload(endpoint, args.archive, args.limit)
        print(f"uploaded {len(files)} objects in {time.perf_counter() - started:.1f} s", flush=True)
        keys = ["archive/" + os.path.relpath(f, args.archive) for f in files]
        print(f"moto's own ceiling: {moto_ceiling(endpoint, keys):.0f} objects/s (32 client threads)", flush=True)
        proxy = DelayProxy(int(endpoint.rsplit(":", 1)[1]), args.latency_ms / 1000).start()
        creds = {"aws.access_key_id": "colloquy", "aws.secret_access_key": "colloquy", "aws.region": "us-east-1"}
        # The same files locally: the upload's subset.
        local_dir = args.archive
        if args.limit:
            import tempfile

            local_dir = tempfile.mkdtemp(prefix="colloquy-s3-subset-")
            for f in files:
                dest = os.path.join(local_dir, os.path.relpath(f, args.archive))
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                os.link(f, dest)
        rows = [
            ("local disk", f"{local_dir.rstrip('/')}/", {}),
            ("moto", f"s3://{BUCKET}/archive/", dict(creds, **{"aws.endpoint": endpoint})),
            (f"moto + {args.latency_ms:g} ms per request", f"s3://{BUCKET}/archive/", dict(creds, **{"aws.endpoint": proxy})),
        ]
        print(f"| source | objects | messages | seconds (median of {args.runs}) | messages/s | objects/s |")
        print("|---|---|---|---|---|---|")
        for name, location, options in rows:
            secs, messages = scan(args.colloquy, location, options, args.runs)
            print(
                f"| {name} | {len(files):,} | {messages:,} | {secs:.2f} | {messages / secs / 1e3:.0f}k | {len(files) / secs:,.0f} |",
                flush=True,
            )
    finally:
        moto.kill()
        moto.wait()


if __name__ == "__main__":
    main()
