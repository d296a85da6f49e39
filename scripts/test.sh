#!/usr/bin/env bash
# test.sh — the one test command (README, CI): install, lint, type-check, then every test.
# The test run starts its own Ceph RGW on 127.0.0.1 and stops it at the end (test/global-setup.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
echo "[test] lint + type-check"
npx eslint .
npx tsc --noEmit -p tsconfig.json
echo "[test] vitest"
npx vitest run "$@"
