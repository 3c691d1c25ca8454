#!/usr/bin/env python3
"""drift() in colloquy against Evidently's text-drift verdict (domain classifier), on a battery of pairs.

Usage:
  python3 -m venv /tmp/peers-venv && /tmp/peers-venv/bin/pip install -r benches/requirements-peers.txt
  /tmp/peers-venv/bin/python benches/drift_vs_evidently.py --colloquy target/release/colloquy \
      --data /work/shared/data [--pairs-per-kind 10] [--size 2000] [--runs 3] [--threads 2]

The battery is built from the public data folder (--data; nothing is copied into the project):
  dialogues/chitchat_byu, intent/bitext_customer_support_20k, sentiment/tweeteval_sentiment (val only) and
  sentiment/xlmt_multilingual_sentiment (train and val only, never test).
Each pair is a reference and a current sample of up to --size texts each, drawn without overlap:
  no drift  random 50/50 splits of one source: chitchat, Bitext, TweetEval val, each XLM-T language
            (sides are smaller where the source is: TweetEval val 1,000, an XLM-T language about 1,080)
  drift     chitchat vs Bitext; English vs Spanish tweets (XLM-T); Bitext category mix shifted (a category
            with a natural share of about 10% raised to 50%); XLM-T negative-heavy vs positive-heavy (70/15/15
            against 15/15/70, the same language mix on both sides); graded contamination (current = the
            reference source with 5, 10 or 25% of a second source mixed in, both ways between chitchat and
            Bitext)

Evidently: `Report([ValueDrift(column="text")])` of Evidently 0.7.x on a text column, which picks its
domain-classifier method itself (TF-IDF + SGD classifier; "abs_text_content_drift", ROC AUC > 0.55, when the
reference has more than 1,000 rows, else "perc_text_content_drift" against a bootstrap of random classifiers);
--evidently-method forces one. Its verdict is the report's drift test (FAIL = drift). Timed per pair (building
the two Datasets and running the report, one warm-up pair excluded), single-threaded as Evidently is. The
percentile method (here: the TweetEval splits, 1,000 per side) costs seconds per pair for its bootstrap, so the
headline speed ratio uses only the pairs of --size vs --size (absolute method); the all-pairs mean is printed too.

colloquy: every pair in ONE Parquet file (pair_id, text, is_current) and ONE query,
  SELECT pair_id, drift(text, is_current, 'text') AS d FROM pairs GROUP BY pair_id
with `--format json`; the verdict is d.drifted. Timed as the wall time of the process (including its start),
median of --runs, divided by the number of pairs.

Printed per kind: the rate at which each side says "drift", their agreement, mean scores; then overall
agreement, the false-positive rate of each side on the no-drift pairs (goal for colloquy: at most 5%), the
detection rate on the drift pairs and the speed ratio (goal: more than 100x). --evidently-only runs the
Evidently side alone. Evidently 0.7.23 needs pandas<3 (see benches/requirements-peers.txt).
Record results in benches/README.md with the machine they ran on.
"""
import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from collections import defaultdict
from common import last_json_array

XLMT_LANGUAGES = ["arabic", "english", "french", "german", "hindi", "italian", "portuguese", "spanish"]
NEG, NEU, POS = 0, 1, 2


# ---------------------------------------------------------------- sources


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def load_sources(data):
    """Every source as plain lists of non-empty texts (with labels where the battery needs them)."""
    import pandas as pd

    src = {}
    with open(os.path.join(data, "dialogues", "chitchat_byu", "dataset.json"), encoding="utf-8") as f:
        chats = json.load(f)
    src["chitchat"] = [m["text"] for c in chats.values() for turn in c["messages"] for m in turn if (m.get("text") or "").strip()]

    bitext = pd.read_csv(os.path.join(data, "intent", "bitext_customer_support_20k", "TrainingdatasetBitextsample.csv"),
                         encoding="utf-8-sig")
    bitext = bitext[bitext["utterance"].fillna("").str.strip() != ""]
    src["bitext"] = bitext["utterance"].tolist()
    src["bitext_by_category"] = {cat: g["utterance"].tolist() for cat, g in bitext.groupby("category")}

    tweeteval = os.path.join(data, "sentiment", "tweeteval_sentiment", "val_text.txt")
    src["tweeteval"] = [t for t in read_lines(tweeteval) if t.strip()]

    src["xlmt"] = {}  # language -> {label: [texts]}
    for lang in XLMT_LANGUAGES:
        folder = os.path.join(data, "sentiment", "xlmt_multilingual_sentiment", lang)
        by_label = defaultdict(list)
        for split in ("train", "val"):  # the test split stays out of development
            texts = read_lines(os.path.join(folder, f"{split}_text.txt"))
            labels = read_lines(os.path.join(folder, f"{split}_labels.txt"))
            if len(texts) != len(labels):
                raise SystemExit(f"{folder}/{split}: {len(texts)} texts but {len(labels)} labels")
            for t, l in zip(texts, labels):
                if t.strip():
                    by_label[int(l)].append(t)
        src["xlmt"][lang] = dict(by_label)
    return src


# ---------------------------------------------------------------- the battery


def split_pair(rng, pool, size):
    """Two disjoint random halves of one source."""
    n = min(size, len(pool) // 2)
    picked = rng.sample(pool, 2 * n)
    return picked[:n], picked[n:]


def draw(rng, pool, n, taken=None):
    """n texts of pool by index, none of the indices in `taken` (which is updated)."""
    taken = set() if taken is None else taken
    free = [i for i in range(len(pool)) if i not in taken]
    idx = rng.sample(free, n)
    taken.update(idx)
    return [pool[i] for i in idx]


def tail(items, n):
    return items[len(items) - n:]


def mixed(rng, main, other, size, share):
    """`size` texts: a `share` of them from `other`, the rest from `main`."""
    k = round(size * share)
    return rng.sample(main, size - k) + rng.sample(other, k)


def build_battery(src, size, pairs_per_kind, seed):
    """A list of (kind, expect_drift, reference, current)."""
    battery = []

    def add(kind, expect, make):
        for i in range(pairs_per_kind):
            rng = random.Random(f"{seed}/{kind}/{i}")
            ref, cur = make(rng)
            rng.shuffle(cur)
            battery.append((kind, expect, ref, cur))

    # No drift: two random halves of one source.
    add("split chitchat", False, lambda r: split_pair(r, src["chitchat"], size))
    add("split bitext", False, lambda r: split_pair(r, src["bitext"], size))
    add("split tweeteval", False, lambda r: split_pair(r, src["tweeteval"], size))
    for lang in XLMT_LANGUAGES:
        pool = [t for texts in src["xlmt"][lang].values() for t in texts]
        add(f"split xlmt-{lang}", False, lambda r, pool=pool: split_pair(r, pool, size))

    # Drift: a different source.
    add("chitchat vs bitext", True, lambda r: (r.sample(src["chitchat"], size), r.sample(src["bitext"], size)))
    xlmt_all = {lang: [t for texts in src["xlmt"][lang].values() for t in texts] for lang in ("english", "spanish")}
    n_tweets = min(size, len(xlmt_all["english"]), len(xlmt_all["spanish"]))
    add("tweets en vs es", True, lambda r: (r.sample(xlmt_all["english"], n_tweets), r.sample(xlmt_all["spanish"], n_tweets)))

    # Drift: Bitext with one category raised from its natural share (about 10%) to 50% of the current side.
    cats = src["bitext_by_category"]
    total = len(src["bitext"])
    shifted = sorted(c for c, t in cats.items() if 0.08 <= len(t) / total <= 0.15 and len(t) >= 0.65 * size)

    def category_shift(r):
        cat = r.choice(shifted)
        rest = [t for c, texts in cats.items() if c != cat for t in texts]
        whole = cats[cat] + rest
        taken = set()
        ref = draw(r, whole, size, taken)  # natural mix
        in_cat = [i for i in range(len(cats[cat])) if i not in taken]
        out_cat = [i for i in range(len(cats[cat]), len(whole)) if i not in taken]
        half = size // 2
        cur = [whole[i] for i in r.sample(in_cat, half) + r.sample(out_cat, size - half)]
        return ref, cur

    if shifted:
        add("bitext category 10%->50%", True, category_shift)

    # Drift: XLM-T sentiment mix, the same languages in equal parts on both sides.
    def sentiment_shift(r):
        per_lang = size // len(XLMT_LANGUAGES)
        ref, cur = [], []
        for lang in XLMT_LANGUAGES:
            by = {l: r.sample(t, len(t)) for l, t in src["xlmt"][lang].items()}  # shuffled copies
            heavy, light = round(per_lang * 0.70), round(per_lang * 0.15)
            rest = per_lang - heavy - light
            # from the front for the reference, from the back for the current side: no text on both
            ref += by[NEG][:heavy] + by[NEU][:light] + by[POS][:rest]
            cur += tail(by[POS], heavy) + tail(by[NEU], light) + tail(by[NEG], rest)
        return ref, cur

    add("xlmt negative vs positive", True, sentiment_shift)

    # Drift (graded): the reference source with a share of a second source mixed into the current side.
    for main, other in (("chitchat", "bitext"), ("bitext", "chitchat")):
        for share in (0.05, 0.10, 0.25):
            def contaminated(r, main=main, other=other, share=share):
                ref, rest = split_pair(r, src[main], size)
                return ref, mixed(r, rest, src[other], len(rest), share)

            add(f"{main} + {int(share * 100)}% {other}", True, contaminated)
    return battery


# ---------------------------------------------------------------- Evidently


def evidently_verdicts(battery, method):
    import warnings

    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    # its SGD classifier stops at max_iter=50 and warns on most pairs
    warnings.filterwarnings("ignore", message="Maximum number of iteration reached")
    definition = DataDefinition(text_columns=["text"])

    def one(ref, cur):
        start = time.perf_counter()
        reference = Dataset.from_pandas(pd.DataFrame({"text": ref}), data_definition=definition)
        current = Dataset.from_pandas(pd.DataFrame({"text": cur}), data_definition=definition)
        report = Report([ValueDrift(column="text", method=method)], include_tests=True)
        snapshot = report.run(current, reference)
        seconds = time.perf_counter() - start
        result = snapshot.dict()
        test = result["tests"][0]
        return {
            "drifted": test["status"] == "FAIL",
            "score": float(result["metrics"][0]["value"]),
            "method": result["metrics"][0]["config"].get("method"),
            "seconds": seconds,
        }

    _, _, ref, cur = battery[0]
    one(ref, cur)  # warm-up: first-call costs (imports, sklearn set-up) are not counted
    return [one(ref, cur) for _, _, ref, cur in battery]


# ---------------------------------------------------------------- colloquy



def write_pairs(battery, path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids, texts, current = [], [], []
    for pair_id, (_, _, ref, cur) in enumerate(battery):
        for side, rows in ((False, ref), (True, cur)):
            ids += [pair_id] * len(rows)
            texts += rows
            current += [side] * len(rows)
    table = pa.table({"pair_id": pa.array(ids, pa.int64()), "text": pa.array(texts, pa.string()),
                      "is_current": pa.array(current, pa.bool_())})
    pq.write_table(table, path)
    return table.num_rows


def colloquy_verdicts(binary, battery, parquet, threads, runs):
    sql = "; ".join([
        f"SET datafusion.execution.target_partitions = {threads}",
        f"CREATE EXTERNAL TABLE pairs STORED AS PARQUET LOCATION '{parquet}'",
        "SELECT pair_id, drift(text, is_current, 'text') AS d FROM pairs GROUP BY pair_id",
    ])
    cmd = [binary, "sql", "--format", "json", "-c", sql]
    env = dict(os.environ, TOKIO_WORKER_THREADS=str(threads), RAYON_NUM_THREADS=str(threads))
    times, rows = [], None
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"colloquy failed ({proc.returncode}): {proc.stderr.strip()}")
        rows = last_json_array(proc.stdout) or []
    by_pair = {}
    for row in rows:
        d = row.get("d", row)  # JSON leaves out NULL fields (e.g. a NULL p_value)
        by_pair[int(row["pair_id"])] = d
    verdicts = []
    for pair_id, (kind, _, ref, cur) in enumerate(battery):
        d = by_pair.get(pair_id)
        if d is None or "drifted" not in d:
            raise SystemExit(f"colloquy returned no drift verdict for pair {pair_id} ({kind}): {d}")
        for field, want in (("reference_rows", len(ref)), ("current_rows", len(cur))):
            if field in d and int(d[field]) != want:
                print(f"  warning: pair {pair_id} ({kind}): {field} = {d[field]}, expected {want}")
        verdicts.append({"drifted": bool(d["drifted"]), "score": d.get("score"), "method": d.get("method"),
                         "top_terms": d.get("top_terms") or []})
    return verdicts, statistics.median(times)


# ---------------------------------------------------------------- report


def rate(flags):
    return 100 * sum(flags) / len(flags) if flags else float("nan")


def mean(values):
    values = [v for v in values if v is not None]
    return statistics.mean(values) if values else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--colloquy", help="path to a release build of the colloquy binary")
    ap.add_argument("--data", required=True, help="the public data folder (e.g. /work/shared/data)")
    ap.add_argument("--pairs-per-kind", type=int, default=10)
    ap.add_argument("--size", type=int, default=2000, help="texts per side (fewer where a source is smaller)")
    ap.add_argument("--runs", type=int, default=3, help="colloquy runs over all pairs; the median is reported")
    ap.add_argument("--threads", type=int, default=2, help="colloquy's target_partitions and worker threads")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--evidently-method", default=None,
                    help="force an Evidently stattest (abs_text_content_drift, perc_text_content_drift); default: its own choice")
    ap.add_argument("--evidently-only", action="store_true", help="run the Evidently side alone")
    ap.add_argument("--work", help="folder for the pairs Parquet file (default: a temporary folder, removed afterwards)")
    ap.add_argument("--show-disagreements", type=int, default=5, help="pairs where the two disagree to print")
    args = ap.parse_args()
    if not args.evidently_only and not args.colloquy:
        ap.error("--colloquy is required (or --evidently-only)")

    start = time.perf_counter()
    src = load_sources(args.data)
    battery = build_battery(src, args.size, args.pairs_per_kind, args.seed)
    kinds = list(dict.fromkeys(kind for kind, *_ in battery))
    texts = sum(len(r) + len(c) for _, _, r, c in battery)
    print(f"battery: {len(battery)} pairs in {len(kinds)} kinds, {texts} texts, up to {args.size} per side "
          f"(built in {time.perf_counter() - start:.1f} s)")

    ev = evidently_verdicts(battery, args.evidently_method)
    ev_mean = statistics.mean(v["seconds"] for v in ev)
    methods = sorted({v["method"] for v in ev})
    print(f"Evidently: {ev_mean:.3f} s per pair (mean; median {statistics.median(v['seconds'] for v in ev):.3f} s, "
          f"total {sum(v['seconds'] for v in ev):.1f} s, one thread)")
    for m in methods:
        secs = [v["seconds"] for v in ev if v["method"] == m]
        print(f"  {m}: {len(secs)} pairs, {statistics.mean(secs):.3f} s per pair")

    co, co_per_pair = None, None
    if not args.evidently_only:
        work = args.work or tempfile.mkdtemp(prefix="colloquy-drift-")
        os.makedirs(work, exist_ok=True)
        try:
            parquet = os.path.join(os.path.abspath(work), "pairs.parquet")
            rows = write_pairs(battery, parquet)
            co, co_secs = colloquy_verdicts(args.colloquy, battery, parquet, args.threads, args.runs)
            co_per_pair = co_secs / len(battery)
            print(f"colloquy: {co_secs:.2f} s for all {len(battery)} pairs ({rows} rows, one query, median of "
                  f"{args.runs}, {args.threads} threads, process start included) = {co_per_pair * 1000:.2f} ms per pair")
        finally:
            if not args.work:
                shutil.rmtree(work, ignore_errors=True)

    print(f"\n{'kind':<28} {'expect':>6} {'pairs':>5} {'side':>5} {'Evid%':>6} {'coll%':>6} {'agree%':>7} "
          f"{'Evid AUC':>8} {'coll score':>10}")
    for kind in kinds:
        idx = [i for i, b in enumerate(battery) if b[0] == kind]
        expect = "drift" if battery[idx[0]][1] else "none"
        side = len(battery[idx[0]][2])
        line = (f"{kind:<28} {expect:>6} {len(idx):>5} {side:>5} {rate([ev[i]['drifted'] for i in idx]):>6.0f} ")
        if co:
            line += (f"{rate([co[i]['drifted'] for i in idx]):>6.0f} "
                     f"{rate([co[i]['drifted'] == ev[i]['drifted'] for i in idx]):>7.0f} ")
        else:
            line += f"{'-':>6} {'-':>7} "
        line += f"{mean(ev[i]['score'] for i in idx):>8.3f} "
        line += f"{mean(co[i]['score'] for i in idx):>10.3f}" if co else f"{'-':>10}"
        print(line)

    none = [i for i, b in enumerate(battery) if not b[1]]
    drift = [i for i, b in enumerate(battery) if b[1]]
    print(f"\nno-drift pairs ({len(none)}): false positives  Evidently {rate([ev[i]['drifted'] for i in none]):.1f}%", end="")
    print(f", colloquy {rate([co[i]['drifted'] for i in none]):.1f}% (goal: at most 5%)" if co else "")
    print(f"drift pairs ({len(drift)}):    detected         Evidently {rate([ev[i]['drifted'] for i in drift]):.1f}%", end="")
    print(f", colloquy {rate([co[i]['drifted'] for i in drift]):.1f}%" if co else "")
    if co:
        agree = [co[i]["drifted"] == ev[i]["drifted"] for i in range(len(battery))]
        print(f"agreement with Evidently's verdict: {rate(agree):.1f}% of {len(battery)} pairs")
        print(f"speed: colloquy {co_per_pair * 1000:.2f} ms per pair (all pairs in one query)")
        full = [v["seconds"] for v, b in zip(ev, battery) if len(b[2]) == len(b[3]) == args.size]
        if full:
            full_mean = statistics.mean(full)
            print(f"  vs Evidently on the {len(full)} pairs of {args.size} vs {args.size}: {full_mean * 1000:.0f} ms per pair "
                  f"-> colloquy {full_mean / co_per_pair:.0f}x faster (goal: more than 100x)")
        print(f"  vs Evidently on all {len(ev)} pairs: {ev_mean * 1000:.0f} ms per pair (mean) "
              f"-> colloquy {ev_mean / co_per_pair:.0f}x faster")
        shown = [i for i in range(len(battery)) if not agree[i]][: args.show_disagreements]
        if shown:
            print("\nsome disagreements (pair, kind, Evidently AUC/verdict, colloquy score/verdict, top terms):")
        for i in shown:
            print(f"  {i:>4} {battery[i][0]:<28} {ev[i]['score']:.3f} {ev[i]['drifted']!s:<5} "
                  f"{co[i]['score'] if co[i]['score'] is not None else float('nan'):.3f} {co[i]['drifted']!s:<5} "
                  f"{', '.join(co[i]['top_terms'][:6])}")


if __name__ == "__main__":
    main()
