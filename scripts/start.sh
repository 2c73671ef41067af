#!/usr/bin/env bash
# npm start: install what is missing, bring up a one-node lab (k8s-ctr) and say what to try.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/netns/cluster.sh up 1
ln -sf "$PWD/bin/ciliary" /usr/local/bin/ciliary 2>/dev/null || true
ln -sf "$PWD/bin/ciliary-agent" /usr/local/bin/ciliary-agent 2>/dev/null || true
cat <<'MSG'

ciliary is running one node (k8s-ctr). Try:

  ciliary status
  ciliary run server --labels app=server -- iperf3 -s
  ciliary run client --labels app=client
  ciliary get pods -o wide                      # note the server's IP
  ciliary exec client -- ping -c 3 SERVER_IP
  ciliary exec client -- iperf3 -c SERVER_IP -t 5
  ciliary endpoint list
  ciliary bpf ipcache list
  ciliary monitor                               # in another terminal, while traffic runs

Tear the lab down with: scripts/netns/cluster.sh down
MSG
