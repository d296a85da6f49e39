#!/usr/bin/env bash
# start.sh — the main job: install what is needed, then run the daemon in the foreground,
# mounting /datasets with the embedded default (public datasets, no cloud account needed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/node-env.sh
exec node dist/cli/main.js mount "$@"
