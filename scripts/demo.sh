#!/usr/bin/env bash
# Set up (idempotent) and show the product working in one step, on embedded defaults:
# start the node (SQLite and spool under ./screening-data), make a synthetic CT study with a
# known fracture, send it with DCMTK storescu, wait for the analysis, print the findings and
# where the summary image, SEG, SR and results.json are. Extra arguments go to
# `screening-node demo` (e.g. --keep-serving, --destination AET@HOST:PORT, --seed N).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/screening-node demo "$@"
