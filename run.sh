#!/usr/bin/env bash
# Install bubblesim into .venv, then run the main job: every shipped scenario as one batch
# (common random numbers), results in results/, the HTML report and figures in results/report/;
# before it, the published-figure anchors and base's systemic-importance ranking, which the report shows.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[parquet]"
.venv/bin/bubblesim warmup
mkdir -p results
.venv/bin/bubblesim anchors --json results/anchors.json   # read by the report the batch writes
.venv/bin/bubblesim importance scenarios/base.toml --quiet --out results/importance   # so is the ranking
exec .venv/bin/bubblesim batch scenarios/ --out results "$@"
