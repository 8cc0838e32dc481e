#!/usr/bin/env bash
# Set up (idempotent) and run the node on its embedded defaults:
# SQLite database and spool under ./screening-data, Storage SCP on port 11112.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/screening-node serve "$@"
