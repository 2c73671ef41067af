#!/usr/bin/env bash
# npm start: install what is missing, bring up a one-node lab (k8s-ctr) with the Star Wars demo
# running, and say what to try next.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/netns/cluster.sh up 1
# The CLI on PATH for the commands below.
ln -sf "$PWD/bin/ciliary" /usr/local/bin/ciliary 2>/dev/null || true
ln -sf "$PWD/bin/ciliary-agent" /usr/local/bin/ciliary-agent 2>/dev/null || true
ciliary="$PWD/bin/ciliary --node k8s-ctr"
$ciliary apply -f examples/starwars/http-sw-app.yaml
# Wait until the deathstar answers through its service (pods start their built-in programs).
for _ in $(seq 1 60); do
  if $ciliary exec tiefighter -- curl -s --max-time 1 -XPOST deathstar.default.svc.cluster.local/v1/request-landing 2>/dev/null | grep -q 'Ship landed'; then
    break
  fi
  sleep 0.5
done
$ciliary get pods -o wide
cat <<'MSG'

ciliary is running one node (k8s-ctr) with Cilium's Star Wars demo. Try (see examples/starwars/README.md):

  ciliary exec xwing -- curl -s -XPOST deathstar.default.svc.cluster.local/v1/request-landing
  ciliary apply -f examples/starwars/sw_l3_l4_policy.yaml        # only the empire may land
  ciliary exec xwing -- curl -s --connect-timeout 2 -XPOST deathstar.default.svc.cluster.local/v1/request-landing
  ciliary monitor --type drop                                     # Policy denied (in another terminal)
  ciliary apply -f examples/starwars/sw_l3_l4_l7_policy.yaml     # and only POST /v1/request-landing
  ciliary exec tiefighter -- curl -s -XPUT deathstar.default.svc.cluster.local/v1/exhaust-port   # Access denied
  ciliary endpoint list
  ciliary service list
  ciliary bpf policy get --all

Tear the lab down with: scripts/netns/cluster.sh down
MSG
