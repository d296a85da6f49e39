#!/usr/bin/env bash
# test.sh — the one test command (README, CI): install, lint, type-check, then every test.
# The test run starts its own Ceph RGW on 127.0.0.1 and stops it at the end (test/global-setup.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
source scripts/node-env.sh
echo "[test] lint + type-check"
npx eslint .
npx tsc --noEmit -p tsconfig.json
echo "[test] vitest"
report=$(mktemp /tmp/gd-vitest-XXXX.json)
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?
# One plain closing line that any CI reads: "Tests: N passed, N failed, N skipped".
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`Tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
' "$report" || true
rm -f "$report"
exit $status
