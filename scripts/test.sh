#!/usr/bin/env bash
# Install what the tests need and run them against a real PostgreSQL (embedded, or DATABASE_URL) and real models.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh test
.venv/bin/python -m pytest "$@"
