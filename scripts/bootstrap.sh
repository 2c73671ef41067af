#!/usr/bin/env bash
# Installs what ciliary needs on a Debian machine, only what is missing: apt packages, npm
# packages, the Rust toolchain (Debian's, if none is present) and the native addon build.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(iproute2 iputils-ping iputils-arping curl iperf3 procps dnsutils netcat-openbsd tcpdump iptables chromium librust-libc-dev etcd-server etcd-client vagrant)

log() { printf '[bootstrap] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root for: $*"; exit 1; fi
}

[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
command -v cargo >/dev/null || missing+=(cargo rustc)
if [ ${#missing[@]} -gt 0 ]; then
  log "apt: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts a system etcd on localhost:2379; the lab runs its own member, so keep that one off.
  if [[ " ${missing[*]} " == *" etcd-server "* ]] && [ -d /run/systemd/system ]; then
    as_root systemctl disable --now etcd.service >/dev/null 2>&1 || true
  fi
fi

# npm ci when node_modules is absent or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

# Native addon: rebuild when missing or when any Rust source is newer than it.
addon=native/ciliary.node
if [ ! -f "$addon" ] || [ -n "$(find native/src native/Cargo.toml -newer "$addon" -print -quit)" ]; then
  log "building the native addon"
  npm run --silent build:native >/dev/null
fi
log "ready"
