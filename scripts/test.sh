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
# Every vitest project runs here: unit, conformance, interop, netns and e2e (the cluster lab runs the
# margay-node bundle the build step above made).
echo "==> tests (unit, conformance, interop, netns, e2e)"
mkdir -p bench-results
report=bench-results/vitest-report.json
# A run that dies before writing its report must not leave the last run's totals on the closing line.
rm -f "$report"
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?
# Totals of a vitest JSON report: "<label>: N passed, N failed, N skipped".
totals() {
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
    // A file that fails to load (a syntax or build error) has no failed test, only a failed file: count it
    // as one failure, so the closing line never reads "0 failed" for a run that failed.
    const brokenFiles = (r.testResults ?? []).filter(
      (f) => f.status === "failed" && !(f.assertionResults ?? []).some((a) => a.status === "failed"),
    ).length;
    const failed = r.numFailedTests + brokenFiles;
    console.log(`${process.argv[2]}: ${r.numPassedTests} passed, ${failed} failed, ${skipped} skipped`);
  ' "$1" "$2" || echo "$2: no report"
}
# The unit tier again on the other Node lines we support (engines >=20.19): the npm `node` package is
# that Node binary. Only on a full run: arguments select a subset for the main run alone.
if [ $# -eq 0 ]; then
  for v in 22 24; do
    echo "==> unit tier on Node $v"
    vreport="bench-results/vitest-report-node$v.json"
    rm -f "$vreport"
    vstatus=0
    npx -y "node@$v" node_modules/vitest/vitest.mjs run --project unit --reporter=dot --reporter=json \
      --outputFile.json="$vreport" || vstatus=$?
    totals "$vreport" "unit tier on Node $v"
    [ "$vstatus" -eq 0 ] || { echo "unit tier on Node $v: FAILED (exit $vstatus)"; status=1; }
  done
fi
# One plain closing line, always the last summary line (CI parses it): the totals of the main run.
totals "$report" tests
exit "$status"
