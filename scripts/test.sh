#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: set-up, build, static checks, then every vitest tier.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npx lerna run build --loglevel warn
npx biome check .
npx lerna run typecheck --loglevel warn
npx lerna run check:exports --loglevel warn
npx vitest run "$@"
