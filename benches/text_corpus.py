#!/usr/bin/env python3
"""Writes the message corpora that the per-core speed runs of the built-in models use (one message per line).

Usage:
  python3 scripts/models/prepare_data.py <data dir> target/model-data      # once (the training data)
  python3 benches/text_corpus.py target/model-data /tmp/mixed.txt /tmp/short.txt
  target/release/examples/fixed_work intent 1 /tmp/short.txt

mixed: every training text of the intent and sentiment models (support requests in English, tweets in eight
languages), shuffled with a fixed seed: about 65,000 messages, nearly all distinct.
short: the messages of `mixed` with at most ten words (median seven), the "short chat message" of the speed
targets. Distinct messages on purpose: a benchmark that repeats the same few thousand texts would flatter the
scorer's per-thread word cache.
"""
import random
import sys


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    prep, mixed_out, short_out = sys.argv[1:]
    rows = []
    for path, column in [(f"{prep}/intent/full_train.tsv", 1), (f"{prep}/sentiment/train.tsv", 2)]:
        with open(path, encoding="utf-8") as f:
            rows += [line.rstrip("\n").split("\t")[column] for line in f]
    random.Random(7).shuffle(rows)
    with open(mixed_out, "w", encoding="utf-8") as f:
        f.writelines(r + "\n" for r in rows)
    short = [r for r in rows if len(r.split()) <= 10]
    with open(short_out, "w", encoding="utf-8") as f:
        f.writelines(r + "\n" for r in short)
    print(f"{mixed_out}: {len(rows)} messages; {short_out}: {len(short)} messages")


if __name__ == "__main__":
    main()
