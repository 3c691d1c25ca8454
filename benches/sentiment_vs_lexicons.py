#!/usr/bin/env python3
"""sentiment() against the lexicons users know (VADER, AFINN, TextBlob), side by side on every labelled set.

Usage:
  python3 scripts/models/prepare_data.py ../shared/data target/model-data
  /tmp/research-venv/bin/python benches/sentiment_vs_lexicons.py --colloquy target/release/colloquy \
      --prep target/model-data [--train-models target/release/train-models --data ../shared/data]

Venv: pip install vaderSentiment==3.3.2 afinn textblob pyarrow.

Sets (prepared by scripts/models/prepare_data.py; none of their rows is trained on, except as noted):
  xlmt-<lang>   XLM-T val, 324 tweets per language (peers: English only)
  tweeteval     TweetEval sentiment val, 2,000 tweets. XLM-T's English train split holds 1,430 of them, so
                colloquy's built-in model has seen most: with --train-models the colloquy column is
                cross-fitted instead (two models, each trained without one half of the set's rows and
                scored on that half, by `train-models sentiment --set te_half=1|2`); every column is then
                the mean of the two halves' macro-F1
  en-clean      the 246 TweetEval val tweets in neither XLM-T split
  vader         the VADER ground-truth tweets held out from training (one in four, by a hash of the text)
  sst2          SST-2 dev (negative/positive only): positive when the score is above 0 (colloquy) or at
                least 0 (peers), as binary benchmarks are read

Printed: a Markdown table of macro-F1 with colloquy's margin over the better of VADER and AFINN.
"""
import argparse
import json
import re
import subprocess
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.metrics import f1_score

REPO = Path(__file__).resolve().parents[1]
XLMT = ["ar", "de", "en", "es", "fr", "hi", "it", "pt"]
PEERS = ["VADER", "AFINN", "TextBlob"]


def read_tsv(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.rstrip("\n").split("\t", 2)
            if len(parts) != 3 or parts[0] not in ("neg", "neu", "pos"):
                raise SystemExit(f"{path}:{n}: expected label<TAB>lang<TAB>text with a label of neg, neu or pos")
            rows.append(tuple(parts))
    return rows


def colloquy_scores(binary, texts):
    """(label, score) of every text through `sentiment_label` and `sentiment` in SQL."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dev.parquet"
        pq.write_table(pa.table({"id": pa.array(range(len(texts)), pa.int64()), "text": texts}), path)
        sql = (f"CREATE EXTERNAL TABLE dev STORED AS PARQUET LOCATION '{path}'; "
               "SELECT id, sentiment_label(text) AS l, sentiment(text) AS s FROM dev ORDER BY id")
        out = subprocess.run([binary, "sql", "--format", "json", "-c", sql], capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"colloquy failed: {out.stderr.strip()}")
        rows = json.loads(out.stdout.strip().splitlines()[-1])
    short = {"negative": "neg", "neutral": "neu", "positive": "pos"}
    return [(short.get(r.get("l"), "neu"), r.get("s") or 0.0) for r in rows]


def peer_scores(texts):
    """Each peer's (label, score) per text, with the cut-offs their users apply."""
    from afinn import Afinn
    from textblob import TextBlob
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    sia, afinn = SentimentIntensityAnalyzer(), Afinn(emoticons=True)

    def sign(x, eps=0.0):
        return "pos" if x > eps else "neg" if x < -eps else "neu"

    out = {p: [] for p in PEERS}
    for t in texts:
        c = sia.polarity_scores(t)["compound"]
        out["VADER"].append(("pos" if c >= 0.05 else "neg" if c <= -0.05 else "neu", c))
        a = afinn.score(t)
        out["AFINN"].append((sign(a), a))
        p = TextBlob(t).sentiment.polarity
        out["TextBlob"].append((sign(p), p))
    return out


def macro_f1(gold, pred, binary):
    labels = ["neg", "pos"] if binary else ["neg", "neu", "pos"]
    return f1_score(gold, pred, labels=labels, average="macro", zero_division=0)


def score_set(gold, predictions, binary, colloquy=False):
    """macro-F1 of (label, score) predictions; on a binary set, the sign of the score decides."""
    if binary:
        pred = ["pos" if (s > 0 if colloquy else s >= 0) else "neg" for _, s in predictions]
    else:
        pred = [lab for lab, _ in predictions]
    return macro_f1(gold, pred, binary)


def crossfitted_tweeteval(args):
    """colloquy's macro-F1 on each half of TweetEval val from a model trained without that half."""
    halves = []
    for half in (1, 2):
        with tempfile.TemporaryDirectory() as out:
            # The trainer reads language.bin from its output folder to decide texts with few known words.
            (Path(out) / "language.bin").write_bytes((REPO / "crates/colloquy-textmodels/models/language.bin").read_bytes())
            cmd = [args.train_models, "sentiment", "--prep", str(args.prep), "--data", str(args.data),
                   "--handwritten", str(REPO / "scripts/models/handwritten"), "--out", out, "--set", f"te_half={half}"]
            run = subprocess.run(cmd, capture_output=True, text=True)
            if run.returncode != 0:
                raise SystemExit(f"train-models failed: {run.stderr.strip()}")
            m = re.search(r"^dev_tweeteval_val: macro-F1 en ([0-9.]+)", run.stdout, re.M)
            if not m:
                raise SystemExit("train-models printed no dev_tweeteval_val line")
            halves.append(float(m.group(1)))
    return halves


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--colloquy", required=True, help="the colloquy binary (release build)")
    ap.add_argument("--prep", required=True, type=Path, help="folder written by scripts/models/prepare_data.py")
    ap.add_argument("--train-models", help="the train-models binary: cross-fits the TweetEval val column")
    ap.add_argument("--data", type=Path, help="the public data folder (with --train-models)")
    args = ap.parse_args()
    if args.train_models and not args.data:
        raise SystemExit("--train-models needs --data")

    d = args.prep / "sentiment"
    xlmt = read_tsv(d / "dev_xlmt.tsv")
    sets = [(f"xlmt-{lang}", [r for r in xlmt if r[1] == lang], False) for lang in XLMT]
    sets += [("tweeteval", read_tsv(d / "dev_tweeteval_val.tsv"), False),
             ("en-clean", read_tsv(d / "dev_en_clean.tsv"), False),
             ("vader", read_tsv(d / "dev_vader.tsv"), False),
             ("sst2", read_tsv(d / "dev_sst2.tsv"), True)]
    halves = crossfitted_tweeteval(args) if args.train_models else None

    print("| set | rows | colloquy | VADER | AFINN | TextBlob | colloquy − max(VADER, AFINN) |")
    print("|---|---|---|---|---|---|---|")
    xlmt_means = []
    for name, rows, binary in sets:
        texts = [t for _, _, t in rows]
        gold = [g for g, _, _ in rows]
        ours = colloquy_scores(args.colloquy, texts)
        english = name in ("xlmt-en", "tweeteval", "en-clean", "vader", "sst2")
        peers = peer_scores(texts) if english else {}
        if name == "tweeteval" and halves:
            # Every column is the mean of the halves' macro-F1: rows 0, 2, 4… are half 1 (te_half=1).
            f_ours = sum(halves) / 2
            f_peers = {p: sum(score_set(gold[h::2], peers[p][h::2], False) for h in (0, 1)) / 2 for p in PEERS}
            name = "tweeteval (cross-fitted)"
        else:
            f_ours = score_set(gold, ours, binary, colloquy=True)
            f_peers = {p: score_set(gold, peers[p], binary) for p in peers}
        if name.startswith("xlmt-"):
            xlmt_means.append(f_ours)
        cells = [f"{f_peers[p]:.3f}" if p in f_peers else "–" for p in PEERS]
        margin = f"{f_ours - max(f_peers['VADER'], f_peers['AFINN']):+.3f}" if f_peers else "–"
        print(f"| {name} | {len(rows)} | {f_ours:.3f} | " + " | ".join(cells) + f" | {margin} |")
    print(f"| xlmt mean of 8 | {sum(len(r) for n, r, _ in sets if n.startswith('xlmt-'))} | "
          f"{sum(xlmt_means) / len(xlmt_means):.3f} | – | – | – | – |")


if __name__ == "__main__":
    main()
