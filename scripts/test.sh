#!/usr/bin/env bash
# Install what the tests need and run them against a real PostgreSQL (embedded, or DATABASE_URL) and real models.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh test
# The playground test drives Debian's Chromium (no browser downloads); install it where we may.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "chromium/chromium-driver missing and not root: the playground test will be skipped" >&2
  fi
fi
.venv/bin/python -m pytest "$@"
