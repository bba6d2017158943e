#!/usr/bin/env bash
# Install bubblesim with its test dependencies into .venv, then run the test suite.
# Also installs Debian's chromium for the report's browser test when it is missing and
# this runs as root with apt-get (as in CI); elsewhere that one test skips and says why.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[test,distributed]"
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "test.sh: could not install chromium; the browser test will skip" >&2
fi
export NUMBA_CACHE_DIR=${NUMBA_CACHE_DIR:-$(mktemp -d)}
exec .venv/bin/python -m pytest -q "$@"
