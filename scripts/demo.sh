#!/usr/bin/env bash
# The main job for now: set up, build, and run the runnable examples under examples/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npx lerna run build --loglevel warn
for ex in examples/*.ts; do
  echo "==> $ex"
  npx tsx "$ex"
done
