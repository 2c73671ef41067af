# The lab's outside world, sourced by cluster.sh: an outside client on the node network ("testpc",
# the seeds' test PC / the laptop running the VMs) and an internet host beyond a router namespace
# that knows only the node network and its internet link, so a reply to an unmasqueraded pod
# address is lost there. The nodes' default route goes via the router. testpc and the internet
# host each run a whoami server on :80 that reports the remote address.
#
# Env:  CILIARY_LAB_INTERNET_NET  first three octets of the internet link (default 203.0.113)

INET="${CILIARY_LAB_INTERNET_NET:-203.0.113}"
OUTSIDE_ROUTER_IP="$NET.254"   # the router's leg on the node network: the nodes' default gateway
TESTPC_IP="$NET.200"
INTERNET_GW_IP="$INET.1"       # the router's leg on the internet link
INTERNET_IP="$INET.10"
OUTSIDE_HOSTS=(router testpc internet)

outside_ns() { printf '%s%s' "$PREFIX" "$1"; }
outside_dir() { printf '%s/outside' "$STATE_ROOT"; }

# Host side of an outside namespace's leg on the bridge.
outside_veth() {
  local name="${PREFIX}vo-$1"
  [ ${#name} -le 15 ] || name="${PREFIX}vo${1:0:1}"
  [ ${#name} -le 15 ] || die "veth name '$name' is longer than 15 characters: shorten CILIARY_LAB_PREFIX"
  printf '%s' "$name"
}

outside_ns_add() {
  local ns; ns="$(outside_ns "$1")"
  ns_exists "$ns" || { log "namespace $ns"; ip netns add "$ns"; }
  ip -n "$ns" link set lo up
}

# Namespace $1 gets eth1 on the bridge with address $2.
outside_on_bridge() {
  local ns veth; ns="$(outside_ns "$1")"; veth="$(outside_veth "$1")"
  if ! link_exists "$veth"; then
    ip -n "$ns" link del eth1 2>/dev/null || true
    log "veth $veth <-> $ns:eth1"
    ip link add "$veth" type veth peer name eth1 netns "$ns"
  fi
  link_is "$veth" veth || die "$veth exists and is not a veth"
  ip link set "$veth" master "$(bridge_name)"
  ip link set "$veth" up
  ip -n "$ns" addr replace "$2/24" dev eth1
  ip -n "$ns" link set eth1 up
}

# The whoami workload as a plain process in namespace $1, its pid file naming it (--name <ns>).
whoami_pid() { pid_of "$(outside_dir)/$1.pid" --name "$(outside_ns "$1")"; }

start_whoami() {
  local host="$1" ns dir pid
  ns="$(outside_ns "$host")"; dir="$(outside_dir)"
  mkdir -p "$dir"
  if pid="$(whoami_pid "$host")"; then return 0; fi
  rm -f "$dir/$host.pid"
  # shellcheck disable=SC2016  # $$ and $@ belong to the inner shell
  setsid nsenter --net="/var/run/netns/$ns" bash -c 'echo $$ >"$0"; exec nohup "$@"' "$dir/$host.pid" \
    node --import "$REPO/node_modules/tsx/dist/esm/index.mjs" "$REPO/src/workloads/whoami.ts" --port 80 --name "$ns" \
    >>"$dir/$host.log" 2>&1 </dev/null &
  local deadline=$((SECONDS + HEALTH_TIMEOUT_S))
  until ip netns exec "$ns" curl -sf --max-time 1 "http://127.0.0.1/health" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ] || died "$dir/$host.pid"; then
      log "$host: whoami did not answer on :80; last lines of $dir/$host.log:"
      tail -n 20 "$dir/$host.log" >&2 2>/dev/null || true
      exit 1
    fi
    sleep 0.2
  done
}

ensure_outside() {
  local r t i
  for h in "${OUTSIDE_HOSTS[@]}"; do outside_ns_add "$h"; done
  r="$(outside_ns router)"; t="$(outside_ns testpc)"; i="$(outside_ns internet)"
  outside_on_bridge router "$OUTSIDE_ROUTER_IP"
  outside_on_bridge testpc "$TESTPC_IP"
  # The internet link: a veth pair between the router and the internet host, no bridge.
  if ! ip -n "$r" link show dev eth2 >/dev/null 2>&1; then
    ip -n "$i" link del eth0 2>/dev/null || true
    ip -n "$r" link add eth2 type veth peer name eth0 netns "$i"
  fi
  ip -n "$r" addr replace "$INTERNET_GW_IP/24" dev eth2
  ip -n "$r" link set eth2 up
  ip -n "$i" addr replace "$INTERNET_IP/24" dev eth0
  ip -n "$i" link set eth0 up
  # The router forwards between its two connected networks and knows nothing else (no pod CIDRs).
  ip netns exec "$r" sysctl -qw net.ipv4.ip_forward=1 >/dev/null
  ip -n "$i" route replace default via "$INTERNET_GW_IP" dev eth0
  ip -n "$t" route replace default via "$OUTSIDE_ROUTER_IP" dev eth1
  start_whoami testpc
  start_whoami internet
}

remove_outside() {
  local h ns veth pid
  for h in testpc internet; do
    if pid="$(whoami_pid "$h")"; then stop_pid "$pid" "$h whoami"; fi
    rm -f "$(outside_dir)/$h.pid"
  done
  for h in "${OUTSIDE_HOSTS[@]}"; do
    veth="$(outside_veth "$h")"
    if link_exists "$veth" && link_is "$veth" veth; then ip link del "$veth" 2>/dev/null || true; fi
    ns="$(outside_ns "$h")"
    if ns_exists "$ns"; then
      log "namespace $ns"
      ip netns del "$ns"
    fi
  done
  rm -rf -- "$(outside_dir)"
}

outside_summary() {
  printf '  %-8s netns %-14s %-16s gateway of the nodes; internet link %s/24\n' router "$(outside_ns router)" "$OUTSIDE_ROUTER_IP" "$INET.0"
  printf '  %-8s netns %-14s %-16s whoami :80 (pid %s)\n' testpc "$(outside_ns testpc)" "$TESTPC_IP" "$(whoami_pid testpc || echo -)"
  printf '  %-8s netns %-14s %-16s whoami :80 (pid %s), beyond the router\n' internet "$(outside_ns internet)" "$INTERNET_IP" "$(whoami_pid internet || echo -)"
}

outside_status() {
  local h ns ip pid
  for h in "${OUTSIDE_HOSTS[@]}"; do
    ns="$(outside_ns "$h")"
    ns_exists "$ns" || continue
    case "$h" in router) ip="$OUTSIDE_ROUTER_IP" ;; testpc) ip="$TESTPC_IP" ;; internet) ip="$INTERNET_IP" ;; esac
    if [ "$h" = router ]; then
      printf '%-8s %-16s %-12s %s\n' "$h" "$ip" "-" "forwards to $INET.0/24"
    else
      pid="$(whoami_pid "$h")" || pid="-"
      printf '%-8s %-16s %-12s %s\n' "$h" "$ip" "pid $pid" "whoami :80"
    fi
  done
}
