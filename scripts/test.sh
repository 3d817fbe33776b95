#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: set-up, build, static checks, then every vitest tier.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "==> build"
npx lerna run build --loglevel warn
echo "==> lint"
npx biome check .
echo "==> typecheck"
npx lerna run typecheck --loglevel warn
npx tsc -p tsconfig.json --noEmit   # examples/ and the root configs
echo "==> exports maps (publint + attw)"
npx lerna run check:exports --loglevel warn
echo "==> tests"
mkdir -p bench-results
report=bench-results/vitest-report.json
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?
# One plain closing line so any reader of the log sees the totals.
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
' "$report" || true
exit "$status"
