#!/usr/bin/env python3
"""Train the small intent classifier used by the ONNX SQL-function tests.

Usage: train_sklearn_fixture.py OUT_DIR [--data tests/fixtures/onnx/intents.csv]

Trains TfidfVectorizer (word 1-2 grams) + LogisticRegression on the labelled
customer-service messages in tests/fixtures/onnx/intents.csv, exports the
pipeline with skl2onnx and writes:

  OUT_DIR/intent_tfidf.onnx   input  "text"          tensor(string) [N, 1]
                              output "label"         tensor(string) [N]
                              output "probabilities" tensor(float)  [N, n_classes]
  OUT_DIR/expected.json       what Python onnxruntime returns for TEST_TEXTS,
                              plus the model's input/output signature

Two details matter for running the model outside Python:
  * ZipMap is disabled, so probabilities are a plain float tensor (columns in
    the order of "classes" in expected.json) instead of a sequence of maps.
  * skl2onnx lower-cases with ONNX's StringNormalizer, whose default locale
    en_US.UTF-8 is missing on minimal Linux images; onnxruntime then refuses
    the session ("Failed to construct locale"). The exported node's locale is
    set to C.UTF-8, which every glibc has.

Training and export are deterministic: with the pinned versions of
requirements-onnx.txt the outputs are the same bytes on every run.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import sklearn
import skl2onnx
from skl2onnx import to_onnx
from skl2onnx.common.data_types import StringTensorType
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO / "tests" / "fixtures" / "onnx" / "intents.csv"
MODEL_FILE = "intent_tfidf.onnx"
INPUT_NAME = "text"
# The tokenizer regex handed to ONNX's Tokenizer op: the same tokens as
# scikit-learn's default token_pattern r"(?u)\b\w\w+\b" on these texts; re2
# inside onnxruntime has no (?u) flag, so it is given without it.
TOKEN_PATTERN = r"\b\w\w+\b"

# Texts the tests run through the model; none of them is in the training data.
TEST_TEXTS = [
    "I was charged two times for the same order",
    "where is my parcel, tracking shows nothing",
    "I want to send the shoes back and get a refund",
    "how do I reset my password?",
    "The invoice amount is wrong",
    "my delivery is three days late",
    "can I exchange it for a smaller size",
    "thank you, have a nice day",
    "",
    "Ünïcödé ТЕКСТ 123 !!",
]


def load_rows(path: Path) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            texts.append(row["text"])
            labels.append(row["label"])
    if not texts:
        sys.exit(f"{path}: no rows")
    return texts, labels


def train(texts: list[str], labels: list[str]) -> Pipeline:
    pipe = Pipeline(
        [
            (
                "tfidf",
                TfidfVectorizer(
                    lowercase=True,
                    ngram_range=(1, 2),
                    token_pattern=TOKEN_PATTERN,
                    sublinear_tf=True,
                ),
            ),
            ("clf", LogisticRegression(C=10.0, max_iter=2000)),
        ]
    )
    pipe.fit(texts, labels)
    return pipe


def export(pipe: Pipeline) -> onnx.ModelProto:
    model = to_onnx(
        pipe,
        initial_types=[(INPUT_NAME, StringTensorType([None, 1]))],
        target_opset={"": 17, "ai.onnx.ml": 3},
        options={id(pipe.named_steps["clf"]): {"zipmap": False}},
    )
    for node in model.graph.node:
        if node.op_type == "StringNormalizer":
            for attr in node.attribute:
                if attr.name == "locale":
                    attr.s = b"C.UTF-8"
                    break
            else:
                node.attribute.append(onnx.helper.make_attribute("locale", "C.UTF-8"))
    # skl2onnx lists opset imports in set order (varies between runs): sort them so the file is reproducible.
    opsets = sorted((o.domain, o.version) for o in model.opset_import)
    del model.opset_import[:]
    model.opset_import.extend(onnx.helper.make_opsetid(d, v) for d, v in opsets)
    model.doc_string = "colloquy test fixture: customer-service intent (TF-IDF + LogisticRegression)"
    classes = [str(c) for c in pipe.classes_]
    meta = model.metadata_props.add()
    meta.key = "labels"
    meta.value = ",".join(classes)
    onnx.checker.check_model(model)
    return model


def describe(values) -> list[dict]:
    return [{"name": v.name, "type": v.type, "shape": [d if isinstance(d, int) else None for d in v.shape]} for v in values]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = ap.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)

    texts, labels = load_rows(args.data)
    pipe = train(texts, labels)
    model = export(pipe)
    model_path = args.out_dir / MODEL_FILE
    model_path.write_bytes(model.SerializeToString())

    sess = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    inp = np.array(TEST_TEXTS, dtype=object).reshape(-1, 1)
    label_out, proba_out = sess.run(["label", "probabilities"], {INPUT_NAME: inp})

    # onnxruntime must agree with scikit-learn itself.
    sk_proba = pipe.predict_proba(TEST_TEXTS)
    sk_label = pipe.predict(TEST_TEXTS)
    if not np.allclose(sk_proba, proba_out, atol=1e-5):
        sys.exit(f"onnxruntime and scikit-learn disagree:\n{sk_proba}\n{proba_out}")
    if list(sk_label) != [str(x) for x in label_out]:
        sys.exit(f"labels differ: {list(sk_label)} vs {list(label_out)}")
    train_acc = float((pipe.predict(texts) == np.array(labels)).mean())

    expected = {
        "model": MODEL_FILE,
        "inputs": describe(sess.get_inputs()),
        "outputs": describe(sess.get_outputs()),
        "classes": [str(c) for c in pipe.classes_],
        "opset": {o.domain or "ai.onnx": o.version for o in model.opset_import},
        "ops": sorted({f"{n.domain or 'ai.onnx'}:{n.op_type}" for n in model.graph.node}),
        "training_rows": len(texts),
        "training_accuracy": train_acc,
        "versions": {
            "onnxruntime": ort.__version__,
            "skl2onnx": skl2onnx.__version__,
            "scikit-learn": sklearn.__version__,
            "onnx": onnx.__version__,
            "numpy": np.__version__,
        },
        "cases": [
            {"text": t, "label": str(l), "probabilities": [float(p) for p in row]}
            for t, l, row in zip(TEST_TEXTS, label_out, proba_out)
        ],
    }
    (args.out_dir / "expected.json").write_text(json.dumps(expected, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {model_path} ({model_path.stat().st_size} bytes) and expected.json; train accuracy {train_acc:.3f}")
    for c in expected["cases"]:
        print(f"  {c['label']:9s} {max(c['probabilities']):.3f}  {c['text']!r}")


if __name__ == "__main__":
    main()
