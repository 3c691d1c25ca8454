#!/usr/bin/env python3
"""ONNX model functions in colloquy against Python onnxruntime: rows per second, same models, same texts.

    .venv-onnx/bin/python benches/onnx_vs_onnxruntime.py --colloquy target/release/colloquy \
        --models .venv-onnx/fixtures [--rows 20000] [--embed-rows 2000]

The texts are the demo archive's messages (`colloquy sql --demo`), written once to a CSV that both sides
read. colloquy: `CREATE FUNCTION ... LANGUAGE ONNX`, then a query that computes the function over every
text, timed inside one process against the same query without the function (the difference is the
model's time). Python: onnxruntime sessions over the same texts, in the batches colloquy uses (the whole
256 texts a run for the text classifiers, whose TF-IDF output is dense; 32 texts padded to the longest for the encoder,
tokenized with the `tokenizers` package and mean-pooled with numpy). Both use one ONNX Runtime thread.
Three models: the skl2onnx pipeline of scripts/onnx (a small vocabulary), a classifier trained by
train_classifier() on the same texts labelled by the built-in intent() (a realistic 60,000-feature
vocabulary), and the int8 all-MiniLM-L6-v2 encoder.
Run it with the Python of .venv-onnx (onnxruntime, tokenizers, numpy).
"""

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer


def colloquy_time(binary, csv_path, create, expr, rows):
    """Seconds for `expr` over `rows` texts, minus the same scan without it (best of 3)."""
    register = (
        f"CREATE EXTERNAL TABLE t (text VARCHAR) STORED AS CSV LOCATION '{csv_path}' OPTIONS ('format.has_header' 'true')"
    )
    def run(select):
        # One partition: one core on each side.
        sql = ["SET datafusion.execution.target_partitions = 1", register, create, f"EXPLAIN ANALYZE SELECT count({select}) FROM (SELECT * FROM t LIMIT {rows})"]
        args = [binary, "sql", "--format", "csv"]
        for s in sql:
            args += ["-c", s]
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            subprocess.run(args, check=True, capture_output=True)
            best = min(best, time.perf_counter() - started)
        return best
    with_model = run(expr)
    without = run("length(text)")
    return max(with_model - without, 1e-9)


TEXT_BATCH = 256


def python_classifier(model, texts):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for i in range(0, len(texts), TEXT_BATCH):
            chunk = np.array(texts[i:i + TEXT_BATCH], dtype=object).reshape(-1, 1)
            sess.run(None, {name: chunk})
        best = min(best, time.perf_counter() - started)
    return best


def python_encoder(model, tokenizer_path, texts):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    tok = Tokenizer.from_file(tokenizer_path)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    best = float("inf")
    for _ in range(2):
        started = time.perf_counter()
        for i in range(0, len(texts), 32):
            enc = tok.encode_batch(texts[i:i + 32])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            types = np.array([e.type_ids for e in enc], dtype=np.int64)
            hidden = sess.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
            m = mask[:, :, None].astype(np.float32)
            pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
            pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        best = min(best, time.perf_counter() - started)
    return best


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--colloquy", required=True)
    p.add_argument("--models", required=True, help="folder with intent_tfidf.onnx, model.onnx, tokenizer.json")
    p.add_argument("--rows", type=int, default=20000)
    p.add_argument("--embed-rows", type=int, default=2000)
    args = p.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    work = tempfile.mkdtemp(prefix="colloquy-onnx-bench-")
    csv_path = os.path.join(work, "texts.csv")
    out = subprocess.run(
        [args.colloquy, "sql", "--demo", "--format", "csv", "-c",
         f"SELECT replace(text, chr(10), ' ') AS text FROM messages WHERE text IS NOT NULL LIMIT {args.rows}"],
        check=True, capture_output=True, text=True,
    ).stdout
    with open(csv_path, "w", newline="") as f:
        f.write(out)
    with open(csv_path, newline="") as f:
        texts = [r[0] for r in csv.reader(f)][1:]
    n = len(texts)
    tfidf = os.path.abspath(os.path.join(args.models, "intent_tfidf.onnx"))
    encoder = os.path.abspath(os.path.join(args.models, "model.onnx"))
    print(f"{n} demo texts; one ONNX Runtime thread on each side\n")
    print(f"{'model':40s} {'colloquy rows/s':>16s} {'onnxruntime rows/s':>19s} {'ratio':>7s}")
    c = colloquy_time(args.colloquy, csv_path,
                      f"CREATE FUNCTION f(TEXT) RETURNS TEXT LANGUAGE ONNX AS '{tfidf}'", "f(text)", n)
    py = python_classifier(tfidf, texts)
    print(f"{'skl2onnx TF-IDF + logistic regression':40s} {n / c:16.0f} {n / py:19.0f} {py / c:7.2f}")
    trained = os.path.join(work, "trained.onnx")
    subprocess.run(
        [args.colloquy, "save-model", "-c",
         f"CREATE EXTERNAL TABLE t (text VARCHAR) STORED AS CSV LOCATION '{csv_path}' OPTIONS ('format.has_header' 'true')",
         "--sql", "SELECT train_classifier(text, intent(text)) FROM t", "--to", trained],
        check=True, capture_output=True,
    )
    c = colloquy_time(args.colloquy, csv_path,
                      f"CREATE FUNCTION f(TEXT) RETURNS TEXT LANGUAGE ONNX AS '{trained}'", "f(text)", n)
    py = python_classifier(trained, texts)
    print(f"{'train_classifier() model':40s} {n / c:16.0f} {n / py:19.0f} {py / c:7.2f}")
    m = min(args.embed_rows, n)
    c = colloquy_time(args.colloquy, csv_path,
                      f"CREATE FUNCTION f(TEXT) RETURNS FLOAT[384] LANGUAGE ONNX AS '{encoder}'", "f(text)", m)
    py = python_encoder(encoder, os.path.join(args.models, "tokenizer.json"), texts[:m])
    print(f"{'all-MiniLM-L6-v2 int8 (embedding)':40s} {m / c:16.0f} {m / py:19.0f} {py / c:7.2f}")
    print("\nratio > 1: colloquy is faster")


if __name__ == "__main__":
    sys.exit(main())
