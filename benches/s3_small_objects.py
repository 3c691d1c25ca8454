#!/usr/bin/env python3
"""Many small objects from an S3-compatible server, side by side with the same files on local disk.

    .venv/bin/python benches/s3_small_objects.py --colloquy target/release/colloquy [--colloquy OTHER] \
        --archive /tmp/demo/whatsapp [--latency-ms 20] [--runs 3] [--limit 20000] [--pin] [--moto]

The server is `benches/s3_memory_store` (the s3s crate's S3 protocol, signature checks and XML over objects
held in memory; the script runs `cargo build` for it into `--tools`, which does nothing once it is built). It answers a request in tens of
microseconds of CPU, so the rows measure colloquy, not the store (s3s-fs, used before, spent 560-650 µs of
CPU per object on the cores the scan needed; moto serves a few hundred objects a second, and is kept as an
optional row with `--moto`). Two stores are started over the same files: one answering at once, one holding
every request `--latency-ms` (a timer, no CPU) to mimic a store in another region.

It times the same full scan (count and distinct conversations) over the local folder, the store, and the
delayed store, builds taking turns run by run, and prints messages/s, the ratio to the same build's local
row, and colloquy's own CPU per object. With `--pin`, colloquy runs on core 0 and the stores on core 1
(`taskset`, moto not), local rows included: on a 2-core machine this is the fair comparison, since a real
store's CPU is not on the reader's machine; colloquy then reads with one core (and one partition). Every row
must count the local row's messages, or the script stops.
"""

import argparse
import concurrent.futures
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time

import common

BUCKET = "bench"
PREFIX = "archive/"
HERE = os.path.dirname(os.path.abspath(__file__))


def memory_store_binary(tools):
    """Builds benches/s3_memory_store (its own workspace and lock file) into `tools` and returns its path."""
    target = os.path.join(tools, "target")
    subprocess.run(
        [
            "cargo",
            "build",
            "--release",
            "--locked",
            "--manifest-path",
            os.path.join(HERE, "s3_memory_store", "Cargo.toml"),
            "--target-dir",
            target,
        ],
        check=True,
    )
    return os.path.join(target, "release", "s3-memory-store")


def open_files_up_to_hard_limit():
    """In the store's process: a connection per request in flight, up to 1,024 of them per scan."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def start_memory_store(binary, folder, latency_ms, pin):
    cmd = [binary, folder, BUCKET, PREFIX, str(latency_ms)]
    if pin:
        cmd = ["taskset", "-c", "1", *cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, preexec_fn=open_files_up_to_hard_limit)
    line = proc.stdout.readline().strip()
    if not line.isdigit():
        proc.kill()
        raise RuntimeError(f"{binary} did not print the port it listens on (printed {line!r})")
    return proc, f"http://127.0.0.1:{line}"


def link_files(folder, archive, limit):
    """Hard-links the archive's files (the first `limit`, in name order) under `folder`."""
    files = []
    for d, _, names in os.walk(archive):
        files += [os.path.join(d, n) for n in sorted(names)]
    files.sort()
    files = files[:limit] if limit else files
    for f in files:
        dest = os.path.join(folder, os.path.relpath(f, archive))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        try:
            os.link(f, dest)
        except OSError:  # another filesystem (EXDEV), or links not allowed: copy
            shutil.copy2(f, dest)
    return files


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


def upload(endpoint, folder, files):
    client = s3_client(endpoint)
    client.create_bucket(Bucket=BUCKET)

    def put(path):
        with open(path, "rb") as f:
            client.put_object(Bucket=BUCKET, Key=PREFIX + os.path.relpath(path, folder), Body=f.read())

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(put, files))


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


def scan_once(binary, location, options, pin):
    """(seconds, colloquy's CPU seconds, messages) of one full scan."""
    opts = "".join(f", '{k}', '{v}'" for k, v in options.items())
    sql = (
        "SELECT count(*) AS messages, count(DISTINCT conversation_id) AS conversations "
        f"FROM read_archive('{location}', 'auto', 'timezone', 'Europe/Berlin'{opts})"
    )
    cmd = [binary, "sql", "--format", "json", "-c", sql]
    if pin:
        cmd = ["taskset", "-c", "0", *cmd]
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    now = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = now.ru_utime - used.ru_utime + now.ru_stime - used.ru_stime
    return seconds, cpu, json.loads(out.stdout)[0]["messages"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--colloquy", required=True, action="append", help="a build; give several to compare them")
    p.add_argument("--archive", required=True, help="a folder of small exports (e.g. the demo's whatsapp/)")
    p.add_argument("--tools", default=os.path.expanduser("~/.cache/colloquy-bench-tools"))
    p.add_argument("--work", default=None, help="where the linked copy goes (default: a temporary folder)")
    p.add_argument("--moto", action="store_true", help="also time moto (slow: it serves ~300 objects/s)")
    p.add_argument("--moto-server", default=os.path.join(os.path.dirname(sys.executable), "moto_server"))
    p.add_argument("--latency-ms", type=float, default=20.0)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--limit", type=int, default=0, help="only the first N files")
    p.add_argument("--pin", action="store_true", help="colloquy on core 0, the stores on core 1")
    args = p.parse_args()

    import tempfile

    work = tempfile.mkdtemp(prefix="colloquy-s3-", dir=args.work)
    procs = []
    try:
        folder = os.path.join(work, "archive")
        files = link_files(folder, args.archive, args.limit)
        binary = memory_store_binary(args.tools)
        store, endpoint = start_memory_store(binary, folder, 0, args.pin)
        procs.append(store)
        slow, delayed = start_memory_store(binary, folder, args.latency_ms, args.pin)
        procs.append(slow)
        creds = {"aws.access_key_id": "colloquy", "aws.secret_access_key": "colloquy", "aws.region": "us-east-1"}
        s3 = f"s3://{BUCKET}/{PREFIX}"
        sources = [
            ("local disk", f"{folder}/", {}, []),
            ("S3 (memory store)", s3, dict(creds, **{"aws.endpoint": endpoint}), [store]),
            (f"S3 + {args.latency_ms:g} ms per request", s3, dict(creds, **{"aws.endpoint": delayed}), [slow]),
        ]
        if args.moto:
            moto, moto_endpoint = start_moto(args.moto_server)
            procs.append(moto)
            upload(moto_endpoint, folder, [os.path.join(folder, os.path.relpath(f, args.archive)) for f in files])
            keys = [PREFIX + os.path.relpath(f, args.archive) for f in files]
            print(f"moto's own ceiling: {moto_ceiling(moto_endpoint, keys):.0f} objects/s (32 client threads)")
            sources.append(("moto", s3, dict(creds, **{"aws.endpoint": moto_endpoint}), [moto]))
        results = {}  # (build, source) -> [(seconds, cpu, store cpu)]
        messages = {}
        for _ in range(args.runs):
            for name, location, options, helpers in sources:
                for build in args.colloquy:
                    before = sum(cpu_seconds(h) for h in helpers)
                    secs, cpu, n = scan_once(build, location, options, args.pin)
                    store_cpu = sum(cpu_seconds(h) for h in helpers) - before
                    results.setdefault((build, name), []).append((secs, cpu, store_cpu))
                    expected = messages.setdefault("local disk", n)
                    if n != expected:
                        sys.exit(f"{build} counted {n:,} messages from {name}, {expected:,} from local disk")
                    messages[name] = n
        pinned = " (colloquy on core 0, stores on core 1)" if args.pin else ""
        print(f"\n{len(files):,} objects; medians of {args.runs} runs{pinned}\n")
        print(
            "| build | source | messages | seconds | messages/s | objects/s | vs local "
            "| colloquy CPU µs per object | store CPU s |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for build in args.colloquy:
            local = None
            for name, *_ in sources:
                runs = results[(build, name)]
                secs = statistics.median(r[0] for r in runs)
                cpu = statistics.median(r[1] for r in runs)
                store_cpu = statistics.median(r[2] for r in runs)
                local = local or secs
                print(
                    f"| {os.path.basename(build)} | {name} | {messages[name]:,} | {secs:.2f} | "
                    f"{messages[name] / secs / 1e3:.0f}k | {len(files) / secs:,.0f} | {secs / local:.2f}× | "
                    f"{cpu / len(files) * 1e6:.0f} | {store_cpu:.2f} |",
                    flush=True,
                )
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
