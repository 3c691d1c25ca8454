#!/usr/bin/env python3
"""train_classifier() against scikit-learn on the public intent benchmarks, side by side in one run.

Usage:
  benches/train_classifier_vs_sklearn.py DATA_INTENT_DIR [--colloquy target/release/colloquy]
      [--datasets banking77,hwu64,clinc150] [--out benches/results/train_classifier.json]

DATA_INTENT_DIR is ../shared/data/intent. Splits come from
scripts/classifier/prepare_intent_benchmarks.py: Banking77 and HWU64 are scored on a
stratified 20% of their train sets, CLINC150 on its validation split; no test split
is read. Both sides train on the same rows:

  scikit-learn  FeatureUnion(TfidfVectorizer(word, 1-2), TfidfVectorizer(char, 2-5))
                + LogisticRegression(max_iter=1000), default settings otherwise
  colloquy      colloquy save-model --sql "SELECT train_classifier(text, label) FROM train"
                (defaults; the time includes starting the process and reading the CSV),
                then the saved ONNX model scores the dev rows in SQL.

Out of scope (CLINC150): each side's top-probability threshold is chosen on the
validation rows plus the 100 out-of-scope validation rows (maximising accuracy with
"oos" as an 11th answer), and in-scope accuracy and out-of-scope recall are reported
at that threshold.

Needs scikit-learn and onnxruntime (the .venv-onnx of scripts/test has both; colloquy loads
that onnxruntime's library through ORT_DYLIB_PATH, set here when it is not set).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def read_tsv(path: Path) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    with path.open(encoding="utf-8") as f:
        next(f)
        for line in f:
            label, text = line.rstrip("\n").split("\t", 1)
            texts.append(text)
            labels.append(label)
    return texts, labels


def write_csv(path: Path, texts: list[str], labels: list[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(zip(texts, labels))


def best_threshold(tops, predicted, gold):
    """The threshold (0.00..0.99) that maximises accuracy with 'oos' below it."""
    best = (0.0, -1.0)
    for i in range(100):
        t = i / 100
        right = sum((("oos" if top < t else p) == g) for top, p, g in zip(tops, predicted, gold))
        if right > best[1]:
            best = (t, right)
    return best[0]


def oos_scores(tops, predicted, gold, t):
    answers = ["oos" if top < t else p for top, p in zip(tops, predicted)]
    ins = [(a, g) for a, g in zip(answers, gold) if g != "oos"]
    oos = [(a, g) for a, g in zip(answers, gold) if g == "oos"]
    return {
        "threshold": t,
        "in_scope_accuracy": sum(a == g for a, g in ins) / len(ins),
        "oos_recall": sum(a == "oos" for a, _ in oos) / len(oos),
    }


def sklearn_side(train, dev, oos_dev):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    pipe = make_pipeline(
        make_union(
            TfidfVectorizer(ngram_range=(1, 2)),
            TfidfVectorizer(analyzer="char", ngram_range=(2, 5)),
        ),
        LogisticRegression(max_iter=1000),
    )
    started = time.perf_counter()
    pipe.fit(*train)
    seconds = time.perf_counter() - started
    texts = dev[0] + (oos_dev[0] if oos_dev else [])
    proba = pipe.predict_proba(texts)
    classes = list(pipe.classes_)
    predicted = [classes[row.argmax()] for row in proba]
    tops = [float(row.max()) for row in proba]
    n = len(dev[0])
    result = {
        "train_seconds": seconds,
        "accuracy": sum(p == g for p, g in zip(predicted[:n], dev[1])) / n,
    }
    if oos_dev:
        gold = dev[1] + oos_dev[1]
        result["oos"] = oos_scores(tops, predicted, gold, best_threshold(tops, predicted, gold))
    return result


def run(cmd: list[str]) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd[:2])} failed:\n{done.stderr}")
    return done.stdout


def colloquy_side(binary: str, work: Path, train, dev, oos_dev):
    write_csv(work / "train.csv", *train)
    texts = dev[0] + (oos_dev[0] if oos_dev else [])
    gold = dev[1] + (oos_dev[1] if oos_dev else [])
    write_csv(work / "dev.csv", texts, gold)
    model = work / "model.onnx"
    table = "CREATE EXTERNAL TABLE {0} STORED AS CSV LOCATION '{1}' OPTIONS ('format.has_header' 'true')"
    started = time.perf_counter()
    run([binary, "save-model", "-c", table.format("train", work / "train.csv"),
         "--sql", "SELECT train_classifier(text, label) FROM train", "--to", str(model)])
    seconds = time.perf_counter() - started
    out = run(
        [binary, "sql", "--format", "csv",
         "-c", table.format("dev", work / "dev.csv"),
         "-c", f"CREATE FUNCTION m(TEXT) RETURNS TEXT LANGUAGE ONNX AS '{model}'",
         "-c", f"CREATE FUNCTION m_top(TEXT) RETURNS FLOAT LANGUAGE ONNX AS '{model}'",
         "-c", "SELECT label, m(text) AS predicted, m_top(text) AS top FROM dev"])
    rows = list(csv.DictReader(io.StringIO(out)))
    # The CSV reader keeps file order on one partition; match rows by (label, position) to be safe.
    if len(rows) != len(gold):
        sys.exit(f"colloquy returned {len(rows)} rows for {len(gold)} dev rows")
    predicted = [r["predicted"] for r in rows]
    tops = [float(r["top"]) for r in rows]
    labels = [r["label"] for r in rows]
    n = len(dev[0])
    ins = [(p, g) for p, g in zip(predicted, labels) if g != "oos"]
    result = {
        "train_seconds": seconds,
        "accuracy": sum(p == g for p, g in ins) / len(ins),
        "model_bytes": model.stat().st_size,
    }
    assert len(ins) == n
    if oos_dev:
        result["oos"] = oos_scores(tops, predicted, labels, best_threshold(tops, predicted, labels))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data")
    ap.add_argument("--colloquy", default=str(REPO / "target" / "release" / "colloquy"))
    ap.add_argument("--datasets", default="banking77,hwu64,clinc150")
    ap.add_argument("--out", default=str(REPO / "benches" / "results" / "train_classifier.json"))
    args = ap.parse_args()
    if "ORT_DYLIB_PATH" not in os.environ:
        import onnxruntime

        capi = Path(onnxruntime.__file__).parent / "capi"
        libs = sorted(capi.glob("libonnxruntime.so*"))
        if libs:
            os.environ["ORT_DYLIB_PATH"] = str(libs[-1])
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        splits = Path(tmp) / "splits"
        subprocess.run(
            [sys.executable, str(REPO / "scripts" / "classifier" / "prepare_intent_benchmarks.py"), args.data, str(splits)],
            check=True, capture_output=True,
        )
        for name in args.datasets.split(","):
            train = read_tsv(splits / f"{name}.train.tsv")
            dev = read_tsv(splits / f"{name}.dev.tsv")
            oos = read_tsv(splits / f"{name}.oos_dev.tsv") if name == "clinc150" else None
            work = Path(tmp) / name
            work.mkdir()
            ours = colloquy_side(args.colloquy, work, train, dev, oos)
            theirs = sklearn_side(train, dev, oos)
            results[name] = {"rows": len(train[0]), "dev_rows": len(dev[0]), "colloquy": ours, "sklearn": theirs}
            line = (
                f"{name:10} rows {len(train[0]):6}  accuracy colloquy {ours['accuracy']:.4f} sklearn {theirs['accuracy']:.4f}"
                f"  train colloquy {ours['train_seconds']:.1f}s sklearn {theirs['train_seconds']:.1f}s"
                f" ({theirs['train_seconds'] / ours['train_seconds']:.1f}x)"
            )
            if oos:
                o, s = ours["oos"], theirs["oos"]
                line += (
                    f"\n{'':10} out of scope: colloquy t={o['threshold']:.2f} in-scope {o['in_scope_accuracy']:.4f} oos recall {o['oos_recall']:.2f};"
                    f" sklearn t={s['threshold']:.2f} in-scope {s['in_scope_accuracy']:.4f} oos recall {s['oos_recall']:.2f}"
                )
            print(line, flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
