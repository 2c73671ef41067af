# The lab's outside world, sourced by cluster.sh: an outside client on the node network ("testpc",
# the seeds' test PC / the laptop running the VMs) and an internet host beyond a router namespace
# that knows only the node network and its internet link, so a reply to an unmasqueraded pod
# address is lost there. The nodes' default route goes via the router. testpc and the internet
# host each run a whoami server on :80 that reports the remote address (the internet host also on
# :8080). The internet host is the outside world's DNS: an authoritative server (zone-dns) on :53 for
# ciliary.test, which the nodes' resolv.conf (outside/resolv.conf, the agents' --resolv-conf) names,
# so the CoreDNS pods forward outside names to it.
#
# Env:  CILIARY_LAB_INTERNET_NET  first three octets of the internet link (default 203.0.113)
#       CILIARY_LAB_DNS_TTL       TTL of the ciliary.test answers in seconds (default 30)

INET="${CILIARY_LAB_INTERNET_NET:-203.0.113}"
DNS_ZONE=ciliary.test
DNS_TTL="${CILIARY_LAB_DNS_TTL:-30}"
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

# A workload as a plain process in namespace $2, its pid file $1.pid naming it by its arguments "$3 $4".
outside_pid() { pid_of "$(outside_dir)/$1.pid" "$3" "$4"; }
whoami_pid() { outside_pid "$1" "$1" --name "$(outside_ns "$1")"; }
whoami8080_pid() { outside_pid "$1-8080" "$1" --port 8080; }
dns_pid() { outside_pid internet-dns internet --zone "$DNS_ZONE"; }

# Starts workload "$3…" (a tsx script and its arguments) as key $1 in host $2's namespace; waits until $READY succeeds there.
start_outside() {
  local key="$1" host="$2" ns dir
  ns="$(outside_ns "$host")"; dir="$(outside_dir)"
  shift 2
  mkdir -p "$dir"
  rm -f "$dir/$key.pid"
  # shellcheck disable=SC2016  # $$ and $@ belong to the inner shell
  setsid nsenter --net="/var/run/netns/$ns" bash -c 'echo $$ >"$0"; exec nohup "$@"' "$dir/$key.pid" \
    node --import "$REPO/node_modules/tsx/dist/esm/index.mjs" "$@" >>"$dir/$key.log" 2>&1 </dev/null &
  local deadline=$((SECONDS + HEALTH_TIMEOUT_S))
  until ip netns exec "$ns" bash -c "$READY" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ] || died "$dir/$key.pid"; then
      log "$key: did not answer ($READY); last lines of $dir/$key.log:"
      tail -n 20 "$dir/$key.log" >&2 2>/dev/null || true
      exit 1
    fi
    sleep 0.2
  done
}

start_whoami() {
  local host="$1" ns; ns="$(outside_ns "$host")"
  whoami_pid "$host" >/dev/null || READY="curl -sf --max-time 1 http://127.0.0.1/health" \
    start_outside "$host" "$host" "$REPO/src/workloads/whoami.ts" --port 80 --name "$ns"
}

# The internet host's second whoami (another port of the same address, for policies by port) and its DNS.
start_internet_services() {
  local ns; ns="$(outside_ns internet)"
  whoami8080_pid internet >/dev/null || READY="curl -sf --max-time 1 http://127.0.0.1:8080/health" \
    start_outside internet-8080 internet "$REPO/src/workloads/whoami.ts" --port 8080 --name "$ns"
  dns_pid >/dev/null || READY="dig +short +time=1 +tries=1 @127.0.0.1 internet.$DNS_ZONE | grep -qx $INTERNET_IP" \
    start_outside internet-dns internet "$REPO/src/workloads/zone-dns.ts" --zone "$DNS_ZONE" --ttl "$DNS_TTL" \
    --records "internet=$INTERNET_IP,www=$INTERNET_IP,testpc=$TESTPC_IP"
  # The nodes' resolver file: what kubelet's --resolv-conf hands pods with dnsPolicy Default (CoreDNS).
  printf 'nameserver %s\n' "$INTERNET_IP" >"$(outside_dir)/resolv.conf"
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
  start_internet_services
}

remove_outside() {
  local h ns veth pid
  for h in testpc internet; do
    if pid="$(whoami_pid "$h")"; then stop_pid "$pid" "$h whoami"; fi
  done
  if pid="$(whoami8080_pid internet)"; then stop_pid "$pid" "internet whoami :8080"; fi
  if pid="$(dns_pid)"; then stop_pid "$pid" "internet DNS"; fi
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
  printf '  %-8s %-20s %-16s whoami :8080 (pid %s); DNS :53 for %s: internet, www, testpc (pid %s)\n' "" "" "" \
    "$(whoami8080_pid internet || echo -)" "$DNS_ZONE" "$(dns_pid || echo -)"
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
