#!/usr/bin/env bash
# Rebuilds the three built-in models from the public data folder and prints their evaluation.
#
#   scripts/models/train.sh <data dir> [prepared dir]
#
# <data dir> is the public data collection (see crates/colloquy-textmodels/models/README.md for what is
# read from it and under which licenses). The prepared TSVs go to [prepared dir] (default
# target/model-data). Models are written to crates/colloquy-textmodels/models/; the evaluation of each is
# printed and kept beside it as <name>.eval.txt. The run is deterministic: the same data gives the same bytes.
set -euo pipefail
cd "$(dirname "$0")/../.."
data="${1:?usage: scripts/models/train.sh <data dir> [prepared dir]}"
prep="${2:-target/model-data}"
models=crates/colloquy-textmodels/models

python3 scripts/models/prepare_data.py "$data" "$prep"
cargo build --release --locked -p colloquy-textmodels --bin train-models
train="${CARGO_TARGET_DIR:-target}/release/train-models"
for task in language sentiment intent; do
  echo "==> $task"
  "$train" "$task" --prep "$prep" --data "$data" --handwritten scripts/models/handwritten --out "$models" \
    | tee "$models/$task.eval.txt"
done
# The language figures on lingua's test sets come from a model trained on half of them (cross-fitting).
echo "==> language (cross-fitted: trained on half A, evaluated on half B)"
"$train" language --fold --prep "$prep" --data "$data" --out "$models" | tee "$models/language.fold.eval.txt"
