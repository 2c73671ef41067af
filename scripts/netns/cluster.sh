#!/usr/bin/env bash
# Multi-node ciliary lab on one machine: node network namespaces on a Linux bridge, one agent per node.
#
#   cluster.sh up [N]     build N nodes (1..3: k8s-ctr, k8s-w1, k8s-w2) and start their agents;
#                         with N > 1 an etcd member on k8s-ctr (node IP:2379) holds the cluster state;
#                         outside the cluster: testpc (<net>.200) and, beyond a router (<net>.254, the
#                         nodes' gateway), an internet host (203.0.113.10), both serving whoami on :80;
#                         the internet host also whoami :8080 and DNS for ciliary.test, the nodes' resolver
#   cluster.sh down       stop the agents, etcd and the outside hosts, remove pods, nodes, veths, bridge and state
#   cluster.sh status     one line per node: name, IP, agent pid, healthz; then the outside hosts
#   cluster.sh etcd stop|start   stop the lab's etcd member (data kept) or start it again (fault tests)
#   cluster.sh restart NODE      stop NODE's agent (if it runs) and start it again with the same command line
#
# Options:  --state-root DIR  (default /run/ciliary; /run/ciliary/<prefix> when CILIARY_LAB_PREFIX is set)
#           --routing-mode native|tunnel  between nodes (default native, as the seeds; or CILIARY_ROUTING_MODE)
# Env:      CILIARY_LAB_PREFIX  prefix for namespace, bridge and veth names (tests), default empty
#           CILIARY_LAB_NET     first three octets of the node network, default 192.168.10
#           CILIARY_LAB_BRIDGE  bridge name override
#           CILIARY_AGENT_CMD   agent command (default <repo>/bin/ciliary-agent), split on spaces
#           CILIARY_AGENT_ARGS  extra arguments appended to every agent's command line
#           CILIARY_ETCD_BIN    etcd binary (default /usr/bin/etcd, Debian's etcd-server)
#           CILIARY_LAB_INTERNET_NET  first three octets of the internet link, default 203.0.113
#           CILIARY_LAB_DNS_TTL  TTL of the lab DNS answers for ciliary.test names, default 30
set -euo pipefail

REPO="$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)"
NODES=(k8s-ctr k8s-w1 k8s-w2)
PREFIX="${CILIARY_LAB_PREFIX:-}"
NET="${CILIARY_LAB_NET:-192.168.10}"
ROUTER_IP="$NET.1"
HEALTH_TIMEOUT_S=60
STOP_TIMEOUT_S=10
ETCD_BIN="${CILIARY_ETCD_BIN:-/usr/bin/etcd}"
ETCD_NODE=k8s-ctr   # as kubeadm's control plane: the one member runs on the first node
ETCD_CLIENT_PORT=2379
ETCD_PEER_PORT=2380
ETCD_TIMEOUT_S=30
KVSTORE_ARGS=(--kvstore local)
ROUTING_ARGS=()
ROUTING_MODE="${CILIARY_ROUTING_MODE:-native}"
POD_POOL=172.20.0.0/16   # cluster-pool-ipv4-cidr: each agent claims the next /24 in join order
STATE_ROOT=""

log() { printf '[cluster] %s\n' "$*" >&2; }
# shellcheck source=scripts/netns/outside.sh
source "$REPO/scripts/netns/outside.sh"
die() { log "error: $*"; exit 1; }

usage() {
  local code="${1:-0}"
  local fd=1
  [ "$code" = 0 ] || fd=2
  sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' >&"$fd"
  exit "$code"
}

# ---- names -------------------------------------------------------------------------------------

node_ns() { printf '%s%s' "$PREFIX" "$1"; }              # namespace of node $1
node_ip() { printf '%s.%d' "$NET" $((100 + $1)); }        # address of node index $1
state_dir() { printf '%s/%s' "$STATE_ROOT" "$1"; }
etcd_dir() { printf '%s/etcd' "$STATE_ROOT"; }
etcd_url() { printf 'http://%s:%d' "$(node_ip 0)" "$ETCD_CLIENT_PORT"; }

bridge_name() {
  local name="${CILIARY_LAB_BRIDGE:-${PREFIX}cil-lab-br}"
  [ ${#name} -le 15 ] || name="${PREFIX}br"
  [ ${#name} -le 15 ] || die "bridge name '$name' is longer than 15 characters: shorten CILIARY_LAB_PREFIX"
  printf '%s' "$name"
}

# Host side of node $2's veth (index $1): vl-<node>, or a shorter form when the prefix makes it too long.
host_veth() {
  local name="${PREFIX}vl-$2"
  [ ${#name} -le 15 ] || name="${PREFIX}vl$1"
  [ ${#name} -le 15 ] || die "veth name '$name' is longer than 15 characters: shorten CILIARY_LAB_PREFIX"
  printf '%s' "$name"
}

# ---- small predicates --------------------------------------------------------------------------

# (No `| grep -q` on pipelines here: under pipefail an early exit of grep can fail the writer.)
ns_names() { ip netns list | awk '{print $1}'; }
ns_exists() { ns_names | awk -v n="$1" '$1 == n { found = 1 } END { exit !found }'; }
link_exists() { ip link show dev "$1" >/dev/null 2>&1; }
link_is() {   # link $1 is of kind $2 (bridge, veth)
  local details
  details="$(ip -d link show dev "$1" 2>/dev/null)" || return 1
  [[ " ${details//$'\n'/ } " == *" $2 "* ]]
}

# Process $1 is running: exists and is not a zombie (the agent's parent is whoever adopts orphans,
# which may reap it late, and kill -0 succeeds on a zombie).
running() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [ "${stat%% *}" != Z ]
}

# The pid in pid file $1, if that process is alive and has the arguments "$2 $3" (against pid reuse).
pid_of() {
  local file="$1" pid args
  [ -f "$file" ] || return 1
  pid="$(tr -dc '0-9' <"$file")"
  [ -n "$pid" ] && running "$pid" || return 1
  args="$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ $'\n'"$args"$'\n' == *$'\n'"$2"$'\n'"$3"$'\n'* ]] || return 1
  printf '%s' "$pid"
}

# The agent started for state dir $1: it carries "--state-dir <dir>" on its command line (the real
# one runs as node, not as ciliary-agent, once the shim has exec'd).
agent_pid() { pid_of "$1/agent.pid" --state-dir "$1"; }
etcd_pid() { pid_of "$(etcd_dir)/etcd.pid" --data-dir "$(etcd_dir)/data"; }

# A pid file whose process has ended: a start that failed. Only liveness is checked, not the
# arguments: while the process execs (bash -> nohup -> etcd), /proc/<pid>/cmdline can read empty.
died() {
  local pid
  [ -s "$1" ] || return 1
  pid="$(tr -dc '0-9' <"$1")"
  [ -n "$pid" ] && ! running "$pid"
}

healthy() {
  [ -S "$1" ] && curl -sf --max-time 2 --unix-socket "$1" http://x/v1/healthz >/dev/null 2>&1
}

etcd_healthy() {
  local body
  body="$(curl -sf --max-time 2 "$(etcd_url)/health" 2>/dev/null)" || return 1
  [[ "$body" == *'"health":"true"'* ]]
}

# ---- up ----------------------------------------------------------------------------------------

ensure_bridge() {
  local br; br="$(bridge_name)"
  if ! link_exists "$br"; then
    log "bridge $br"
    ip link add "$br" type bridge
  fi
  link_is "$br" bridge || die "$br exists and is not a bridge"
  ip addr replace "$ROUTER_IP/24" dev "$br"
  ip link set "$br" up
}

ensure_node() {
  local idx="$1" node="$2" ns veth ip br
  ns="$(node_ns "$node")"; veth="$(host_veth "$idx" "$node")"; ip="$(node_ip "$idx")"; br="$(bridge_name)"

  if ! ns_exists "$ns"; then
    log "namespace $ns"
    ip netns add "$ns"
  fi
  # Before eth1 exists, so it inherits rp_filter=0 from default as well.
  ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
    net.ipv4.conf.default.rp_filter=0 >/dev/null
  ip -n "$ns" link set lo up

  if ! link_exists "$veth"; then
    ip -n "$ns" link del eth1 2>/dev/null || true   # orphan left by a half-built run
    log "veth $veth <-> $ns:eth1"
    ip link add "$veth" type veth peer name eth1 netns "$ns"
  fi
  link_is "$veth" veth || die "$veth exists and is not a veth"
  ip link set "$veth" master "$br"
  ip link set "$veth" up

  ip netns exec "$ns" sysctl -qw net.ipv4.conf.eth1.rp_filter=0 >/dev/null
  ip -n "$ns" addr replace "$ip/24" dev eth1
  ip -n "$ns" link set eth1 up
  ip -n "$ns" route replace default via "$OUTSIDE_ROUTER_IP" dev eth1   # the router to the internet host
}

start_agent() {
  local idx="$1" node="$2" ns dir sock pid
  ns="$(node_ns "$node")"; dir="$(state_dir "$node")"; sock="$dir/agent.sock"
  mkdir -p "$dir"
  if pid="$(agent_pid "$dir")"; then
    log "$node: agent already running (pid $pid)"
    return 0
  fi
  rm -f "$dir/agent.pid"

  local -a cmd extra
  read -ra cmd <<<"${CILIARY_AGENT_CMD:-$REPO/bin/ciliary-agent}"
  read -ra extra <<<"${CILIARY_AGENT_ARGS:-}"
  cmd+=(--node-name "$node" --node-ip "$(node_ip "$idx")" --cluster-pool-ipv4-cidr "$POD_POOL"
    "${KVSTORE_ARGS[@]}" "${ROUTING_ARGS[@]}" --state-dir "$dir" --api-socket "$sock"
    --resolv-conf "$(outside_dir)/resolv.conf")   # the lab's outside DNS, not this machine's (unreachable from the node network)
  # As kubeadm's: the etcd node is the control plane, with the Kubernetes API on :6443 and the Hubble relay.
  if [ "$node" = "$ETCD_NODE" ]; then
    cmd+=(--node-labels node-role.kubernetes.io/control-plane= --kube-apiserver-listen-address "$(node_ip "$idx"):6443"
      --hubble-relay-listen-address :4245 --hubble-relay-peers "$RELAY_PEERS")
  fi
  cmd+=("${extra[@]}")
  # Kept for `restart NODE`: the same agent again, whatever mode and options the lab came up with.
  printf '%s\0' "${cmd[@]}" >"$dir/agent.cmd"
  launch_agent "$node" "${cmd[@]}"
}

# Starts agent command "$2…" for node $1 in its namespace, in the background.
launch_agent() {
  local node="$1" ns dir
  shift
  ns="$(node_ns "$node")"; dir="$(state_dir "$node")"
  log "$node: starting agent in $ns (log $dir/agent.log)"
  # The inner shell writes its own pid, then execs the agent: the pid file names the agent itself.
  # shellcheck disable=SC2016  # $$ and $@ belong to the inner shell
  # nsenter --net, not `ip netns exec`: the agent must share the root mount namespace, or the
  # pod namespaces it mounts under /var/run/netns would be invisible to everyone else.
  setsid nsenter --net="/var/run/netns/$ns" bash -c 'echo $$ >"$0"; exec nohup "$@"' "$dir/agent.pid" "$@" \
    >>"$dir/agent.log" 2>&1 </dev/null &
}

# One etcd member inside k8s-ctr's namespace, listening on the node IP (and its loopback).
start_etcd() {
  local dir ns ip pid
  dir="$(etcd_dir)"; ns="$(node_ns "$ETCD_NODE")"; ip="$(node_ip 0)"
  [ -x "$ETCD_BIN" ] || die "$ETCD_BIN not found: install etcd-server (scripts/bootstrap.sh)"
  mkdir -p "$dir"
  if pid="$(etcd_pid)"; then
    log "etcd already running (pid $pid)"
    return 0
  fi
  rm -f "$dir/etcd.pid"
  log "etcd: starting in $ns on $(etcd_url) (data $dir/data, log $dir/etcd.log)"
  # shellcheck disable=SC2016  # $$ and $@ belong to the inner shell
  setsid nsenter --net="/var/run/netns/$ns" bash -c 'echo $$ >"$0"; exec nohup "$@"' "$dir/etcd.pid" \
    "$ETCD_BIN" --name "$ETCD_NODE" --data-dir "$dir/data" --logger zap --log-outputs stderr \
    --listen-client-urls "$(etcd_url),http://127.0.0.1:$ETCD_CLIENT_PORT" --advertise-client-urls "$(etcd_url)" \
    --listen-peer-urls "http://$ip:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://$ip:$ETCD_PEER_PORT" \
    --initial-cluster "$ETCD_NODE=http://$ip:$ETCD_PEER_PORT" --initial-cluster-state new \
    >>"$dir/etcd.log" 2>&1 </dev/null &
  local deadline=$((SECONDS + ETCD_TIMEOUT_S))
  until etcd_healthy; do
    if [ $SECONDS -ge $deadline ] || died "$dir/etcd.pid"; then
      log "etcd did not answer $(etcd_url)/health; last lines of $dir/etcd.log:"
      tail -n 30 "$dir/etcd.log" >&2 2>/dev/null || true
      exit 1
    fi
    sleep 0.2
  done
}

wait_healthy() {
  local node="$1" dir sock deadline
  dir="$(state_dir "$node")"; sock="$dir/agent.sock"
  deadline=$((SECONDS + HEALTH_TIMEOUT_S))
  until healthy "$sock"; do
    if [ $SECONDS -ge $deadline ]; then
      agent_failed "$node" "did not answer $sock/v1/healthz within ${HEALTH_TIMEOUT_S}s"
    fi
    # The pid file appears once the agent has started; a pid file without a live agent means it died.
    if died "$dir/agent.pid"; then
      agent_failed "$node" "exited before answering $sock/v1/healthz"
    fi
    sleep 0.2
  done
}

# The pod CIDR agent $1 claimed from the pool (its status), for the summary.
agent_pod_cidr() {
  curl -sf --max-time 2 --unix-socket "$(state_dir "$1")/agent.sock" http://x/v1/status 2>/dev/null |
    sed -n 's/.*"ipam":{"cidr":"\([^"]*\)".*/\1/p'
}

agent_failed() {
  local dir; dir="$(state_dir "$1")"
  log "$1: agent $2; last lines of $dir/agent.log:"
  tail -n 30 "$dir/agent.log" >&2 2>/dev/null || true
  exit 1
}

# The cluster credential of the agents' node-network API: made once per lab, 0600, shared by every
# agent (their default cluster-token-file is <state root>/cluster-token); each agent serves that API on
# <node-ip>:9876 (CILIARY_CLUSTER_API_ADDRESS, '' = off).
ensure_cluster_token() {
  local f="$STATE_ROOT/cluster-token"
  [ -s "$f" ] || (umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$f")
  export CILIARY_CLUSTER_API_ADDRESS="${CILIARY_CLUSTER_API_ADDRESS-:9876}"
}

cmd_up() {
  local n="${1:-1}" i
  if ! [[ "$n" =~ ^[0-9]+$ ]] || [ "$n" -lt 1 ] || [ "$n" -gt ${#NODES[@]} ]; then
    die "N must be 1..${#NODES[@]}, got '$n'"
  fi
  mkdir -p "$STATE_ROOT"
  ensure_cluster_token
  ensure_bridge
  ensure_outside
  for ((i = 0; i < n; i++)); do ensure_node "$i" "${NODES[$i]}"; done
  if [ "$n" -gt 1 ]; then
    start_etcd
    KVSTORE_ARGS=(--kvstore etcd --kvstore-opt "etcd.address=$(etcd_url)")
    case "$ROUTING_MODE" in
      native) ROUTING_ARGS=(--routing-mode native --auto-direct-node-routes=true --ipv4-native-routing-cidr "$POD_POOL") ;;
      tunnel) ROUTING_ARGS=(--routing-mode tunnel --tunnel-protocol vxlan --tunnel-port 8472) ;;
      *) die "--routing-mode must be native or tunnel, got '$ROUTING_MODE'" ;;
    esac
  fi
  # The relay on k8s-ctr merges every node's Hubble observer (its own too).
  RELAY_PEERS=""
  for ((i = 0; i < n; i++)); do RELAY_PEERS+="${RELAY_PEERS:+,}$(node_ip "$i"):4244"; done
  # One after the other: each claims its pod CIDR from the pool in join order (k8s-ctr .0, k8s-w1 .1, …).
  for ((i = 0; i < n; i++)); do
    start_agent "$i" "${NODES[$i]}"
    wait_healthy "${NODES[$i]}"
  done

  echo "lab up: bridge $(bridge_name) $ROUTER_IP/24"
  [ "$n" -eq 1 ] || echo "  etcd     $(etcd_url) on ${ETCD_NODE} (pid $(etcd_pid), data $(etcd_dir)/data)"
  for ((i = 0; i < n; i++)); do
    printf '  %-8s netns %-14s %-16s pods %-15s api %s\n' "${NODES[$i]}" "$(node_ns "${NODES[$i]}")" \
      "$(node_ip "$i")" "$(agent_pod_cidr "${NODES[$i]}")" "$(state_dir "${NODES[$i]}")/agent.sock"
  done
  outside_summary
  echo "  kubectl  export KUBECONFIG=$(state_dir "${NODES[0]}")/kube/admin.conf   # https://$(node_ip 0):6443, context kubernetes-admin@kubernetes"
  echo "  hubble   relay on $(node_ip 0):4245 over ${RELAY_PEERS}"
  echo "next: ciliary --node ${NODES[0]} status"
}

# ---- down --------------------------------------------------------------------------------------

# SIGTERM pid $1 (named $2 in the log), SIGKILL after STOP_TIMEOUT_S, then its session.
stop_pid() {
  local pid="$1" what="$2" deadline
  log "stopping $what pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + STOP_TIMEOUT_S))
  while running "$pid" && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
  if running "$pid"; then
    log "$what pid $pid ignored SIGTERM; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while running "$pid"; do sleep 0.1; done
  fi
  # It led its own session (setsid): whatever it started and left in its group goes too.
  kill -KILL -- "-$pid" 2>/dev/null || true
}

stop_agent() {
  local pid
  if pid="$(agent_pid "$1")"; then stop_pid "$pid" agent; fi
  rm -f "$1/agent.pid"
}

stop_etcd() {
  local pid
  if pid="$(etcd_pid)"; then stop_pid "$pid" etcd; fi
  rm -f "$(etcd_dir)/etcd.pid"
}

# After the agents (they may still write on their way out); its data goes with it.
remove_etcd() {
  local dir; dir="$(etcd_dir)"
  stop_etcd
  if [ -d "$dir" ]; then
    log "etcd data $dir"
    rm -rf -- "$dir"
  fi
}

# Pod namespaces of node $1: the agent names them "cil-<node>-<namespace>-<pod>".
pod_namespaces() {
  ns_names | awk -v p="cil-$(node_ns "$1")-" 'index($1, p) == 1 { print $1 }'
}

# Before the agents stop: the namespaces of their pods as they report them (kept in the state dir).
record_pod_namespaces() {
  local dir="$1" body
  healthy "$dir/agent.sock" || return 0
  body="$(curl -sf --max-time 5 --unix-socket "$dir/agent.sock" http://x/v1/pods 2>/dev/null)" || return 0
  grep -o '"netns":"[^"]*"' <<<"$body" | cut -d'"' -f4 >>"$dir/pod-netns.list" || true
}

# Pod namespaces agent $1 made: those it reported, and those of its pod logs (<namespace>_<pod>.log).
# The agent names them cil-<node>-<namespace>-<pod> without the lab prefix, so pod_namespaces misses them.
agent_pod_namespaces() {
  local f base
  [ ! -f "$2/pod-netns.list" ] || cat "$2/pod-netns.list"
  for f in "$2"/pods/*_*.log; do
    [ -e "$f" ] || continue
    base="${f##*/}"; base="${base%.log}"
    printf 'cil-%s-%s-%s\n' "$1" "${base%%_*}" "${base#*_}"
  done
}

remove_pod_ns() {
  local ns="$1" pids
  [[ "$ns" =~ ^[A-Za-z0-9_.-]+$ && "$ns" != . && "$ns" != .. ]] || return 0
  if ns_exists "$ns"; then
    pids="$(ip netns pids "$ns" 2>/dev/null || true)"
    # shellcheck disable=SC2086  # a list of pids
    [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
    log "pod namespace $ns"
    ip netns del "$ns" 2>/dev/null || true
  fi
  if [[ "$ns" == cil-* ]] && [ -d "/etc/netns/$ns" ]; then rm -rf -- "/etc/netns/$ns"; fi
}

remove_node() {
  local idx="$1" node="$2" ns veth dir pod
  ns="$(node_ns "$node")"; veth="$(host_veth "$idx" "$node")"; dir="$(state_dir "$node")"
  stop_agent "$dir"
  for pod in $( (pod_namespaces "$node"; agent_pod_namespaces "$node" "$dir") | sort -u); do remove_pod_ns "$pod"; done
  # The veth first: deleting a namespace frees its end of the pair asynchronously.
  if link_exists "$veth" && link_is "$veth" veth; then
    ip link del "$veth" 2>/dev/null || ! link_exists "$veth" || die "cannot delete $veth"
  fi
  if ns_exists "$ns"; then
    log "namespace $ns"
    ip netns del "$ns"
  fi
  rm -rf -- "$dir"
}

cmd_down() {
  local i br
  for ((i = 0; i < ${#NODES[@]}; i++)); do
    record_pod_namespaces "$(state_dir "${NODES[$i]}")"
    stop_agent "$(state_dir "${NODES[$i]}")"
  done
  remove_etcd
  for ((i = 0; i < ${#NODES[@]}; i++)); do remove_node "$i" "${NODES[$i]}"; done
  remove_outside
  br="$(bridge_name)"
  if link_exists "$br" && link_is "$br" bridge; then
    log "bridge $br"
    ip link del "$br"
  fi
  rm -f -- "$STATE_ROOT/cluster-token"
  rmdir "$STATE_ROOT" 2>/dev/null || true
  echo "lab down"
}

# ---- status ------------------------------------------------------------------------------------

cmd_status() {
  local i node ns dir pid ip health
  for ((i = 0; i < ${#NODES[@]}; i++)); do
    node="${NODES[$i]}"; ns="$(node_ns "$node")"; dir="$(state_dir "$node")"
    if ! ns_exists "$ns"; then
      [ -d "$dir" ] || continue
      printf '%-8s %-16s %-12s %s\n' "$node" "-" "pid -" "no namespace $ns"
      continue
    fi
    ip="$(ip -n "$ns" -4 -o addr show dev eth1 2>/dev/null | awk 'NR == 1 { print $4 }')"
    pid="$(agent_pid "$dir")" || pid="-"
    if healthy "$dir/agent.sock"; then health="healthy"; else health="not answering"; fi
    printf '%-8s %-16s %-12s %s\n' "$node" "${ip:--}" "pid $pid" "$health ($dir/agent.sock)"
  done
  outside_status
}

cmd_etcd() {
  case "$1" in
    stop) stop_etcd ;;
    start)
      [ -d "$(etcd_dir)/data" ] && ns_exists "$(node_ns "$ETCD_NODE")" || die "no multi-node lab with etcd here (cluster.sh up 2 or 3 first)"
      start_etcd
      ;;
    *) usage 1 ;;
  esac
}

cmd_restart() {
  local node="$1" dir
  local -a cmd=()
  dir="$(state_dir "$node")"
  [[ " ${NODES[*]} " == *" $node "* ]] || die "unknown node '$node' (one of ${NODES[*]})"
  [ -s "$dir/agent.cmd" ] && ns_exists "$(node_ns "$node")" || die "$node is not part of a lab here (cluster.sh up first)"
  mapfile -d '' -t cmd <"$dir/agent.cmd"
  stop_agent "$dir"
  launch_agent "$node" "${cmd[@]}"
  wait_healthy "$node"
  echo "$node: agent restarted (pid $(agent_pid "$dir"))"
}

# ---- main --------------------------------------------------------------------------------------

main() {
  local -a args=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --state-root) [ $# -ge 2 ] || die "--state-root needs a directory"; STATE_ROOT="$2"; shift 2 ;;
      --state-root=*) STATE_ROOT="${1#*=}"; shift ;;
      --routing-mode) [ $# -ge 2 ] || die "--routing-mode needs native or tunnel"; ROUTING_MODE="$2"; shift 2 ;;
      --routing-mode=*) ROUTING_MODE="${1#*=}"; shift ;;
      -h | --help) usage 0 ;;
      *) args+=("$1"); shift ;;
    esac
  done
  if [ -z "$STATE_ROOT" ]; then
    if [ -n "$PREFIX" ]; then STATE_ROOT="/run/ciliary/${PREFIX%-}"; else STATE_ROOT=/run/ciliary; fi
  fi
  STATE_ROOT="$(realpath -m -- "$STATE_ROOT")"
  [ ${#args[@]} -ge 1 ] || usage 1
  [ "$(id -u)" = 0 ] || die "needs root (network namespaces)"

  case "${args[0]}" in
    up) [ ${#args[@]} -le 2 ] || usage 1; cmd_up "${args[1]:-1}" ;;
    down) [ ${#args[@]} -eq 1 ] || usage 1; cmd_down ;;
    status) [ ${#args[@]} -eq 1 ] || usage 1; cmd_status ;;
    etcd) [ ${#args[@]} -eq 2 ] || usage 1; cmd_etcd "${args[1]}" ;;
    restart) [ ${#args[@]} -eq 2 ] || usage 1; cmd_restart "${args[1]}" ;;
    *) usage 1 ;;
  esac
}

main "$@"
