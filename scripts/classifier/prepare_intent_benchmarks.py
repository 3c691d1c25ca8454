#!/usr/bin/env python3
"""Write train/dev files for the intent benchmarks of ../shared/data/intent.

Usage: prepare_intent_benchmarks.py DATA_DIR OUT_DIR

DATA_DIR is the `intent` folder of the shared data (Banking77, CLINC150, HWU64;
see each PROVENANCE.txt: CC BY 4.0 / CC BY 3.0 / CC BY 4.0). Test splits are never
read: Banking77 and HWU64 are evaluated on a stratified 20% split of their train
sets (seeded, so every run gets the same rows), CLINC150 on its validation split
(with the 100 out-of-scope validation rows in a separate file).

Each output file is `label<TAB>text` with a header line, texts with tabs and
newlines replaced by spaces:
  OUT_DIR/<name>.train.tsv  OUT_DIR/<name>.dev.tsv  (name: banking77, clinc150, hwu64)
  OUT_DIR/clinc150.oos_dev.tsv
"""

from __future__ import annotations

import csv
import json
import random
import sys
from collections import defaultdict
from pathlib import Path


def clean(text: str) -> str:
    return " ".join(text.replace("\t", " ").split())


def write(path: Path, rows: list[tuple[str, str]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        f.write("label\ttext\n")
        for text, label in rows:
            f.write(f"{label}\t{clean(text)}\n")


def stratified_split(rows: list[tuple[str, str]], share: float, seed: int):
    by_label: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in rows:
        by_label[row[1]].append(row)
    rng = random.Random(seed)
    train, dev = [], []
    for label in sorted(by_label):
        group = by_label[label]
        rng.shuffle(group)
        cut = max(1, round(len(group) * share))
        dev += group[:cut]
        train += group[cut:]
    rng.shuffle(train)
    return train, dev


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    data, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)

    with (data / "banking77" / "train.csv").open(newline="", encoding="utf-8") as f:
        banking = [(r["text"], r["category"]) for r in csv.DictReader(f)]
    train, dev = stratified_split(banking, 0.2, 77)
    write(out / "banking77.train.tsv", train)
    write(out / "banking77.dev.tsv", dev)

    clinc = json.loads((data / "clinc150_oos" / "data_dev.json").read_text(encoding="utf-8"))
    write(out / "clinc150.train.tsv", [(t, l) for t, l in clinc["train"]])
    write(out / "clinc150.dev.tsv", [(t, l) for t, l in clinc["val"]])
    write(out / "clinc150.oos_dev.tsv", [(t, "oos") for t, _ in clinc["oos_val"]])

    hwu = []
    for path in sorted((data / "hwu64_kfold1" / "trainset").glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f, delimiter=";"):
                hwu.append((r["answer_from_user"] or r["answer_from_anno"], path.stem))
    train, dev = stratified_split(hwu, 0.2, 64)
    write(out / "hwu64.train.tsv", train)
    write(out / "hwu64.dev.tsv", dev)
    for name in sorted(p.name for p in out.glob("*.tsv")):
        rows = sum(1 for _ in (out / name).open(encoding="utf-8")) - 1
        print(f"{name}: {rows} rows")


if __name__ == "__main__":
    main()
