#!/usr/bin/env bash
# `npm run demo`: set up, then bring up a 3-host Margay cluster in network namespaces and show BGP, IPAM
# blocks, pods added through the CNI plugin and zero-trust policy measured with real packets
# (packages/margay/src/demo). The demo builds the four executables it runs itself, and only when a source
# is newer than them (src/demo/build.ts). `npm run demo -- --keep` leaves the cluster up; `npm run demo --
# down` removes it. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  down | -h | --help) ;; # nothing to set up for these
  *)
    start=$(date +%s%N)
    bash scripts/setup.sh
    echo "demo: set-up checked ($(( ($(date +%s%N) - start) / 1000000 )) ms)"
    ;;
esac
exec node_modules/.bin/tsx --tsconfig packages/margay/src/demo/tsconfig.demo.json packages/margay/src/demo/main.ts "$@"
