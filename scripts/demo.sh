#!/usr/bin/env bash
# `npm run demo`: set up, build, then bring up a 3-host Margay cluster in network namespaces and show
# BGP, IPAM blocks, pods added through the CNI plugin and zero-trust policy measured with real packets
# (packages/margay/src/demo). `npm run demo -- --keep` leaves the cluster up; `npm run demo -- down`
# removes it. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  down | -h | --help) ;; # nothing to build for these
  *)
    bash scripts/setup.sh
    echo "demo: building"
    npx lerna run build --loglevel warn
    ;;
esac
exec npx tsx packages/margay/src/demo/main.ts "$@"
