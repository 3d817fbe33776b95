#!/usr/bin/env bash
# Installs what Margay's build, tests and examples need on a fresh Debian machine (run as root).
# Idempotent: skips apt-get when every binary is already present, and npm ci when node_modules matches
# the lockfile (scripts/node-modules-current.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
check() { command -v "$1" >/dev/null 2>&1 || need_apt+=("$2"); }
check etcd etcd-server
check etcdctl etcd-client
check bird bird2
check gobgpd gobgpd
check nft nftables
check iptables iptables
check ipset ipset
check ip iproute2
check ping iputils-ping
check pgrep procps
check containerd containerd
check busybox busybox-static
check chromium chromium
[ -x /usr/lib/cni/bridge ] || need_apt+=(containernetworking-plugins)

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# Packages like etcd-server and bird2 may start a system instance on install; tests run their own.
for svc in etcd bird gobgpd containerd; do
  if command -v service >/dev/null 2>&1; then service "$svc" stop >/dev/null 2>&1 || true; fi
done

# npm ci only when node_modules differs from the lockfile (npm's record of the installed tree says so):
# an `npm install <pkg> -w ...` updates both, and a reinstall costs ~50 s.
if ! node scripts/node-modules-current.mjs; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund
fi
