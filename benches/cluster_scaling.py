#!/usr/bin/env python3
"""colloquy on a Ballista cluster against single-node colloquy, side by side on the same cores.

    benches/cluster_scaling.py --colloquy target/release/colloquy --conversations 150000 [--work DIR]

Writes (or reuses) a demo archive with `colloquy demo`, then runs each workload on:
  - single-node colloquy pinned to 1 core, and to 2 cores (`taskset`);
  - a cluster of `colloquy scheduler` and 1 executor pinned to core 0;
  - a cluster with 2 executors pinned to cores 0 and 1 (one task slot each).
The scheduler and the client are not pinned: they plan and collect, the executors do the work.

Workloads:
  - text: `language()` and `sentiment()` of every message, per channel and week;
  - library: every view of sql/views/ in one session, one after the other (SELECT count(*) of each, so the
    view's whole plan runs and only a count comes back).
Also measured: the job overhead (a query over one tiny file, cluster minus single node) and the shuffle
bytes each workload writes (the executors' work directories, before and after).

Prints a markdown table: seconds, messages per second, and the speed-up of 2 executors over 1 (scaling
efficiency = speed-up / 2).
"""

import argparse
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

import common

REGISTER = (
    "CREATE EXTERNAL TABLE messages STORED AS ARCHIVE LOCATION '{dir}/' OPTIONS "
    "('timezone' 'Europe/Berlin', 'agents' '*| Acme Support,*(Acme)', 'bots' 'Acme Bot')"
)
TEXT = (
    "SELECT channel, date_trunc('week', ts) AS week, language(text) AS lang, count(*) AS n, "
    "round(avg(sentiment(text)), 6) AS sentiment FROM messages GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
)


def port_pair():
    while True:
        p = common.free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p + 1))
                return p
            except OSError:
                continue


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


class Cluster:
    def __init__(self, binary, work, cores):
        self.procs = []
        self.workdirs = []
        sched = subprocess.Popen([binary, "scheduler", "--bind", "127.0.0.1:0"], stdout=subprocess.PIPE,
                                 stderr=open(os.path.join(work, "scheduler.log"), "w"), text=True)
        self.procs.append(sched)
        self.url = sched.stdout.readline().strip()
        assert self.url.startswith("df://"), self.url
        for core in cores:
            wd = tempfile.mkdtemp(prefix=f"executor{core}-", dir=work)
            self.workdirs.append(wd)
            port = port_pair()
            self.procs.append(subprocess.Popen(
                ["taskset", "-c", str(core), binary, "executor", "--scheduler", self.url,
                 "--bind", f"127.0.0.1:{port}", "--slots", "1", "--work-dir", wd, "--cache", "0"],
                stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, f"executor{core}.log"), "w")))
        time.sleep(3)

    def shuffle_bytes(self):
        return sum(dir_bytes(w) for w in self.workdirs)

    def stop(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait(timeout=30)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--colloquy", required=True)
    p.add_argument("--conversations", type=int, default=150_000)
    p.add_argument("--work", help="keep the archive here (reused when it exists)")
    p.add_argument("--workloads", default="text,library",
                   help="which workloads to run, comma-separated (text, library)")
    p.add_argument("--tiny", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "whatsapp"),
                   help="a folder with a few small exports, for the job overhead")
    args = p.parse_args()
    assert shutil.which("taskset"), "taskset (util-linux) pins processes to cores"
    work = args.work or tempfile.mkdtemp(prefix="colloquy-cluster-")
    archive = common.demo_archive(args.colloquy, work, args.conversations)
    register = REGISTER.format(dir=archive)
    _, out = common.run_sql(args.colloquy, [register, "SELECT count(*) AS n FROM messages"])
    messages = int(re.findall(r"\d+", out)[-1])
    views = common.library_views()
    library = [register] + [f"SELECT count(*) FROM {v}" for v in views]
    tiny = [f"CREATE EXTERNAL TABLE t STORED AS ARCHIVE LOCATION '{os.path.abspath(args.tiny)}/'",
            "SELECT count(*) FROM t"]
    print(f"{messages} messages in {archive}; {len(views)} views", flush=True)
    wanted = set(args.workloads.split(","))
    workloads = [(w, st) for w, st in [("text", [register, TEXT]), ("library", library)] if w in wanted]

    results = {}
    answers = {}
    for name, cores in [("single node, 1 core", "0"), ("single node, 2 cores", "0,1")]:
        for workload, statements in workloads:
            secs, out = common.run_sql(args.colloquy, statements, cores=cores)
            results[(name, workload)] = (secs, None)
            answers.setdefault(workload, out)
            assert out == answers[workload], f"{name} {workload}: other rows"
            print(f"{name:24} {workload:8} {secs:8.2f} s", flush=True)
        results[(name, "overhead")] = (common.run_sql(args.colloquy, tiny, cores=cores)[0], None)
    for name, cores in [("cluster, 1 executor", [0]), ("cluster, 2 executors", [0, 1])]:
        c = Cluster(args.colloquy, work, cores)
        try:
            for workload, statements in workloads:
                before = c.shuffle_bytes()
                secs, out = common.run_sql(args.colloquy, statements, cluster=c.url)
                shuffled = c.shuffle_bytes() - before
                results[(name, workload)] = (secs, shuffled)
                assert out == answers[workload], f"{name} {workload}: other rows than single node"
                print(f"{name:24} {workload:8} {secs:8.2f} s, {shuffled / 1e6:.1f} MB shuffled", flush=True)
            results[(name, "overhead")] = (common.run_sql(args.colloquy, tiny, cluster=c.url)[0], None)
        finally:
            c.stop()

    print()
    print(f"{messages:,} messages ({args.conversations:,} demo conversations)")
    print()
    print("| run | text: s | text: msg/s | library: s | library: msg/s | shuffled (text / library) | tiny query: s |")
    print("|---|---|---|---|---|---|---|")
    for name in ["single node, 1 core", "single node, 2 cores", "cluster, 1 executor", "cluster, 2 executors"]:
        t, ts = results.get((name, "text"), (float("nan"), None))
        lib, ls = results.get((name, "library"), (float("nan"), None))
        shuffled = "-" if ts is None and ls is None else f"{(ts or 0) / 1e6:.1f} MB / {(ls or 0) / 1e6:.1f} MB"
        print(f"| {name} | {t:.2f} | {messages / t:,.0f} | {lib:.2f} | {messages / lib:,.0f} | {shuffled} "
              f"| {results[(name, 'overhead')][0]:.2f} |")
    for workload in [w for w, _ in workloads]:
        one = results[("cluster, 1 executor", workload)][0]
        two = results[("cluster, 2 executors", workload)][0]
        single = results[("single node, 1 core", workload)][0]
        print(f"\n{workload}: 2 executors / 1 executor speed-up {one / two:.2f} (efficiency {one / two / 2:.0%}); "
              f"1 executor / single node on 1 core: {single / one:.2f}")


if __name__ == "__main__":
    main()
