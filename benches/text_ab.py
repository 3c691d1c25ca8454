#!/usr/bin/env python3
"""Compares builds of the text models' scorer on a fixed amount of work: `fixed_work` binaries (one per build,
`cargo build --release -p colloquy-textmodels --example fixed_work`, then copied aside).

Usage:
  python3 benches/text_ab.py --model language --rounds 30 --corpus /tmp/short.txt A B [C ...]
  python3 benches/text_ab.py --model language --rounds 30 --corpus /tmp/short.txt --side-by-side A B

Alternately (the default): every build runs once per round, one after the other; prints each build's median
and best messages/s and its checksum, and fails when the builds' answers (checksums) differ.

Side by side: A runs on one core and B on the other at the same moment (`taskset`), the cores swapped every
round; prints the median and quartiles of B's rate over A's. On a shared machine whose neighbours move the
same binary by ±30% from one minute to the next, two builds measured at the same moment see the same
neighbours, so the ratio is steadier than either rate.

The corpora come from benches/text_corpus.py (short distinct messages; one pass per run, so that no word
cache is warmed by an earlier pass).
"""
import argparse
import re
import statistics
import subprocess

RATE = re.compile(r": (\d+) msgs/s \(checksum (\S+)\)")


def run(binary, model, passes, corpus, core=None):
    cmd = [binary, model, str(passes), corpus]
    if core is not None:
        cmd = ["taskset", "-c", str(core)] + cmd
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)


def result(proc):
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"{proc.args} failed with {proc.returncode}")
    m = RATE.search(out)
    if not m:
        raise SystemExit(f"unexpected output of {proc.args}: {out!r}")
    return int(m.group(1)), m.group(2)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, choices=["language", "sentiment", "intent"])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--passes", type=int, default=1)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--side-by-side", action="store_true")
    ap.add_argument("builds", nargs="+")
    a = ap.parse_args()
    if a.rounds < 2:
        raise SystemExit("--rounds must be at least 2")
    if len(set(a.builds)) != len(a.builds):
        raise SystemExit("each build once: copy a binary to compare it with itself")

    if a.side_by_side:
        if len(a.builds) != 2:
            raise SystemExit("--side-by-side compares two builds")
        x, y = a.builds
        ratios, rates = [], {x: [], y: []}
        for r in range(a.rounds):
            cx, cy = (0, 1) if r % 2 == 0 else (1, 0)
            # Which one starts first alternates too.
            if r % 2 == 0:
                px = run(x, a.model, a.passes, a.corpus, cx)
                py = run(y, a.model, a.passes, a.corpus, cy)
            else:
                py = run(y, a.model, a.passes, a.corpus, cy)
                px = run(x, a.model, a.passes, a.corpus, cx)
            (rx, sx), (ry, sy) = result(px), result(py)
            if sx != sy:
                raise SystemExit(f"the builds disagree: checksum {sx} against {sy}")
            rates[x].append(rx)
            rates[y].append(ry)
            ratios.append(ry / rx)
        for b, v in rates.items():
            print(f"{b}: median {statistics.median(v) / 1e3:.0f}k best {max(v) / 1e3:.0f}k")
        q1, _, q3 = statistics.quantiles(ratios, n=4)
        print(f"{y} / {x}: median {statistics.median(ratios):.3f} (quartiles {q1:.3f}-{q3:.3f}), {a.rounds} rounds")
        return

    rates = {b: [] for b in a.builds}
    sums = {b: set() for b in a.builds}
    for _ in range(a.rounds):
        for b in a.builds:
            rate, checksum = result(run(b, a.model, a.passes, a.corpus))
            rates[b].append(rate)
            sums[b].add(checksum)
    for b, v in rates.items():
        print(f"{b}: median {statistics.median(v) / 1e3:.0f}k best {max(v) / 1e3:.0f}k, checksum {' '.join(sorted(sums[b]))}")
    if len(set().union(*sums.values())) != 1:
        raise SystemExit("the builds' answers differ (checksums above)")


if __name__ == "__main__":
    main()
