#!/usr/bin/env python3
"""Many small objects from an S3-compatible server, side by side with the same files on local disk.

    .venv/bin/python benches/s3_small_objects.py --colloquy target/release/colloquy \
        --delay-proxy target/release/examples/delay_proxy --archive /tmp/demo/whatsapp \
        [--latency-ms 20] [--runs 3] [--limit 20000] [--moto]

The server is s3s-fs (an S3 server in Rust over a folder; the script installs it with `cargo install`
into `--tools` when it is missing): the files under `--archive` are hard-linked into its bucket, so no
upload is timed. moto (`--moto`, from scripts/test's venv) is a Python server that serves a few hundred
objects a second, which is its ceiling and not colloquy's; it is kept as an optional row. A proxy
(`crates/colloquy-archive/examples/delay_proxy.rs`) holds every request `--latency-ms` before passing it
on, to mimic a store in another region. Then, in one run, it times the same full scan (count and distinct
conversations) over:
  - the local folder,
  - the S3 server directly,
  - the S3 server behind the delaying proxy,
and prints messages/s for each, with the CPU seconds the server and the proxy spent: on a 2-core machine
they share the cores with the scan.
"""

import argparse
import concurrent.futures
import json
import resource
import shutil
import os
import statistics
import subprocess
import sys
import threading
import time

import common

BUCKET = "bench"


S3S_FS_VERSION = "0.14.1"


def wait_for(endpoint, proc, name):
    import urllib.error
    import urllib.request

    for _ in range(300):
        try:
            urllib.request.urlopen(endpoint, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # it answers (an unsigned request may be refused): it is up
        except Exception:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{name} did not start")


def s3s_fs_binary(tools):
    binary = os.path.join(tools, "bin", "s3s-fs")
    if not os.path.exists(binary):
        print(f"installing s3s-fs {S3S_FS_VERSION} into {tools} (a few minutes, once)", flush=True)
        subprocess.run(
            [
                "cargo",
                "install",
                "s3s-fs",
                "--version",
                S3S_FS_VERSION,
                "--locked",
                "--features",
                "binary",
                "--root",
                tools,
            ],
            check=True,
        )
    return binary


def start_s3s_fs(binary, root):
    port = common.free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--access-key",
            "colloquy",
            "--secret-key",
            "colloquy",
            root,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    wait_for(endpoint, proc, "s3s-fs")
    return proc, endpoint


def link_into_bucket(root, archive, limit):
    """Hard-links the archive's files (the first `limit`, in name order) under ROOT/BUCKET/archive/."""
    files = []
    for d, _, names in os.walk(archive):
        files += [os.path.join(d, n) for n in sorted(names)]
    files.sort()
    files = files[:limit] if limit else files
    for f in files:
        dest = os.path.join(root, BUCKET, "archive", os.path.relpath(f, archive))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        try:
            os.link(f, dest)
        except OSError:  # another filesystem (EXDEV), or links not allowed: copy
            shutil.copy2(f, dest)
    return files


def start_delay_proxy(binary, target_port, latency_ms):
    proc = subprocess.Popen([binary, f"127.0.0.1:{target_port}", str(latency_ms)], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    if not line.isdigit():
        proc.kill()
        raise RuntimeError(f"{binary} did not print the port it listens on (printed {line!r})")
    port = int(line)
    return proc, f"http://127.0.0.1:{port}"


def cpu_seconds(proc):
    """User + system CPU seconds `proc` has used so far (Linux)."""
    with open(f"/proc/{proc.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


def scan(binary, location, options, runs):
    opts = "".join(f", '{k}', '{v}'" for k, v in options.items())
    sql = (
        "SELECT count(*) AS messages, count(DISTINCT conversation_id) AS conversations "
        f"FROM read_archive('{location}', 'auto', 'timezone', 'Europe/Berlin'{opts})"
    )
    times, cpu, row = [], [], None
    for _ in range(runs):
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        out = subprocess.run([binary, "sql", "--format", "json", "-c", sql], check=True, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        now = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(now.ru_utime - used.ru_utime + now.ru_stime - used.ru_stime)
        row = json.loads(out.stdout)[0]
    return statistics.median(times), statistics.median(cpu), row["messages"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--colloquy", required=True)
    p.add_argument("--delay-proxy", required=True, help="target/release/examples/delay_proxy")
    p.add_argument("--archive", required=True, help="a folder of small exports (e.g. the demo's whatsapp/)")
    p.add_argument("--tools", default=os.path.expanduser("~/.cache/colloquy-bench-tools"))
    p.add_argument("--work", default=None, help="where the bucket's folder goes (default: a temporary one)")
    p.add_argument("--moto", action="store_true", help="also time moto (slow: it serves ~300 objects/s)")
    p.add_argument("--moto-server", default=os.path.join(os.path.dirname(sys.executable), "moto_server"))
    p.add_argument("--latency-ms", type=float, default=20.0)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--limit", type=int, default=0, help="only the first N files")
    args = p.parse_args()

    import tempfile

    work = tempfile.mkdtemp(prefix="colloquy-s3-", dir=args.work)
    procs = []
    try:
        root = os.path.join(work, "s3")
        files = link_into_bucket(root, args.archive, args.limit)
        local_dir = os.path.join(root, BUCKET, "archive")
        server, endpoint = start_s3s_fs(s3s_fs_binary(args.tools), root)
        procs.append(server)
        proxy, delayed = start_delay_proxy(args.delay_proxy, int(endpoint.rsplit(":", 1)[1]), args.latency_ms)
        procs.append(proxy)
        creds = {"aws.access_key_id": "colloquy", "aws.secret_access_key": "colloquy", "aws.region": "us-east-1"}
        rows = [
            ("local disk", f"{local_dir}/", {}, []),
            ("s3s-fs", f"s3://{BUCKET}/archive/", dict(creds, **{"aws.endpoint": endpoint}), [server]),
            (
                f"s3s-fs + {args.latency_ms:g} ms per request",
                f"s3://{BUCKET}/archive/",
                dict(creds, **{"aws.endpoint": delayed}),
                [server, proxy],
            ),
        ]
        if args.moto:
            moto, moto_endpoint = start_moto(args.moto_server)
            procs.append(moto)
            upload(moto_endpoint, args.archive, args.limit)
            keys = ["archive/" + os.path.relpath(f, args.archive) for f in files]
            print(f"moto's own ceiling: {moto_ceiling(moto_endpoint, keys):.0f} objects/s (32 client threads)")
            rows.append(("moto", f"s3://{BUCKET}/archive/", dict(creds, **{"aws.endpoint": moto_endpoint}), [moto]))
        print(
            f"| source | objects | messages | seconds (median of {args.runs}) | messages/s | objects/s "
            "| vs local | colloquy CPU s | colloquy CPU µs per object | store CPU s per run |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        local_secs = None
        for name, location, options, helpers in rows:
            before = sum(cpu_seconds(h) for h in helpers)
            secs, cpu, messages = scan(args.colloquy, location, options, args.runs)
            helper_cpu = (sum(cpu_seconds(h) for h in helpers) - before) / args.runs
            local_secs = local_secs or secs
            print(
                f"| {name} | {len(files):,} | {messages:,} | {secs:.2f} | {messages / secs / 1e3:.0f}k "
                f"| {len(files) / secs:,.0f} | {secs / local_secs:.2f}x | {cpu:.2f} | {cpu / len(files) * 1e6:.0f} "
                f"| {helper_cpu:.2f} |",
                flush=True,
            )
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
