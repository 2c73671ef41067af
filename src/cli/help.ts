// The `ciliary help` text: every verb with its flags.
export const USAGE = `ciliary: the command line of ciliary (Cilium as a userspace daemon)

Usage: ciliary [--node NAME | --socket PATH] COMMAND [ARGS] [FLAGS]

Pods (kubectl-like):
  run NAME [-n NS] [--labels k=v,k2=v2] [--node NODE] [-- COMMAND ARGS...]
                                   create a pod (a netns with a TUN eth0); COMMAND runs inside it
  delete pod NAME... [-n NS]       delete pods
  get pods [NAME...] [-n NS | -A] [-o wide|json]
                                   list pods
  get nodes [NAME...] [-o wide]    list the cluster's nodes (kubectl's columns)
  exec POD [-n NS] -- COMMAND ARGS...
                                   run COMMAND in the pod's network namespace, with the pod's hostname

Manifests (kubectl-like):
  apply -f FILE|DIR|- [-f ...] [-n NS] [--dry-run=server]
                                   create or update Namespace, Pod, Deployment, Service, CiliumNetworkPolicy,
                                   CiliumClusterwideNetworkPolicy, NetworkPolicy, CiliumLoadBalancerIPPool objects
                                   (multi-document YAML); all validated first, an error names file, document and line
  delete -f FILE|DIR|- [--ignore-not-found]
  delete KIND NAME... [-n NS]      KIND: pod, deploy, svc, ns, cnp, ccnp, netpol, ippools, l2announcement (deleting a namespace
                                   deletes what is in it; a deployment's deleted pod is replaced)
  get pods|deploy|svc|ns|cnp|ccnp|netpol|ippools|l2announcement|leases [NAME...] [-n NS | -A] [-o wide|yaml|json|jsonpath={.path}]
  describe KIND [NAME...] [-n NS]  kubectl-like description
  patch KIND NAME -p JSON [-n NS] [--type strategic|merge|json]
                                   change an object live (strategic merge: ports by port number)
  logs POD [-f] [-n NS]            the pod's output (every start); -f follows it

Services (kubectl-like):
  create service NAME [-n NS] --port PORT[:TARGET][/TCP|UDP] [--port ...] [--selector k=v[,k=v]]
         [--type ClusterIP|NodePort|LoadBalancer] [--cluster-ip IP] [--external-ip IP[,IP]]
         [--session-affinity ClientIP] [--session-affinity-timeout SECONDS]
                                   create or update a service; TARGET is a number or a container port name
  expose pod|deployment NAME [-n NS] [--port PORT] [--target-port PORT|NAME] [--name SVC] [--protocol TCP|UDP]
                                   a service selecting the pod's labels (ports: the pod's when --port is absent)
  get svc [NAME...] [-n NS | -A] [-o wide|json]
                                   list services
  delete svc NAME... [-n NS]       delete services

Policies:
  policy import FILE|-             import CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy / NetworkPolicy
                                   objects from YAML (multi-document) or JSON, all in one request;
                                   an invalid one is reported with its document and line
  policy get [NAME] [-n NS] [-o json|jsonpath={.revision}]
                                   the imported policies as JSON, then Revision: N
  policy delete NAME [-n NS] [--kind cnp|ccnp|netpol]
  policy delete --all              delete one policy, or all of them; prints Revision: N
  get cnp|ccnp|netpol [NAME...] [-n NS | -A] [-o json|yaml]
                                   list policies (kubectl-like; also ciliumnetworkpolicies, networkpolicies, ...)
  delete cnp|ccnp|netpol NAME... [-n NS]
                                   delete policies (kubectl-like)

Agent (cilium-dbg-like):
  status [--verbose] [-o json] [--wait [--wait-duration 5m]]
                                   agent status (--wait: once the agent answers healthy)
  config | config view             the agent's configuration (cilium-dbg's Key : Value / cilium config view's columns)
  version                          client and agent versions
  metrics list [-o json]           the agent's Prometheus metrics (run in the node's network namespace)
  endpoint list [-o json]          local endpoints
  endpoint get ID | -l LABEL       one endpoint, or those with a label, as JSON
  endpoint log ID | config ID      an endpoint's state now; its options
  identity get ID                  one identity and its labels
  map events NAME                  (no map event buffers: says where to look instead)
  bpf fs show, bpf sha, bpf prog list, cgroups list, statedb dump, shell
                                   eBPF-only: each prints what ciliary has instead
  bpf endpoint list [--from-file] [-o json]
                                   cilium_lxc: local endpoints by IP
  bpf ipcache list [--from-file] [-o json]
                                   cilium_ipcache: prefix -> identity, tunnel endpoint
  service list [-o json]           service frontends and their numbered backends
  bpf lb list [--revnat] [--from-file] [-o json]
                                   load-balancer maps: service -> backends (--revnat: ID -> service)
  bpf ct list global [--from-file] [-o json]
                                   connection tracking entries
  bpf ct flush global [--from-file]
                                   empty the connection tracking maps (--from-file: agent stopped)
  bpf nat list [--from-file] [-o json]
                                   cilium_snat_v4_external: BPF masquerade translations
  bpf nat flush [--from-file]      empty the masquerade translations (--from-file: agent stopped)
  bpf policy get ID | --all [--from-file]
                                   an endpoint's policy map (--all: every pod endpoint's)
  bpf metrics list [--from-file] [-o json]
                                   cilium_metrics: packets and bytes per forward/drop reason and direction
  bpf proxy list [--from-file] [-o json]
                                   cilium_proxy4: connections redirected to the L7 proxy
  bpf tunnel list [--from-file] [-o json]
                                   cilium_tunnel_map: other nodes' pod CIDRs -> node IP (tunnel mode)
  node list                        the cluster's nodes: IP, pod CIDR, local or from the kvstore
  identity list [--endpoints] [-o json]
                                   identities this node knows (--endpoints: those in use, with REFCOUNT)
  fqdn cache list [-o json]        names and IPs the DNS proxy taught toFQDNs policy
  fqdn cache clean                 forget them (their IPs lose the toFQDNs allow)
  ip list [-n] [-o json]           ipcache prefixes and their identity's labels (-n: the numeric identity)
  map list [--verbose] [--from-file]
                                   datapath maps, entries and pressure
  map get NAME [--from-file]       one map's entries
  monitor [-v [-v --hex]] [--type drop|trace|policy-verdict|l7|agent] [--related-to ID]
                                   stream datapath events until Ctrl-C
  observe [FILTERS] [--last N | --first N | --all] [--since T] [--until T] [-f] [-o compact|dict|json|jsonpb|table]
                                   flows as hubble observe prints them; FILTERS: --pod/--from-pod/--to-pod, -n, --ip,
                                   --label, --port, --identity (each also from-/to-), --verdict, --type, --protocol,
                                   --http-method/-path/-status, --not FILTER (ciliary observe --help lists them);
                                   every node's flows where the agent runs the Hubble relay (k8s-ctr in a lab)
  hubble status                    flows held/max, flows per second, connected nodes (summed over nodes by the relay)
  hubble list nodes [-o wide|json] the relay's nodes: NAME STATUS AGE FLOWS/S CURRENT/MAX-FLOWS
  trace [--pod NAME [-n NS]] [--ip IP] [--src-ip IP] [--dst-ip IP] [--port PORT] [--proto tcp|udp|icmp]
        [--count N] [--timeout S] [-o json]
                                   each matching packet's path through the datapath (pwru-like): hooks,
                                   tail calls, map lookups, rewrites, events and the verdict (default 10 packets)
  help                             this text

Global flags:
  --node NAME        talk to the agent of node NAME (/run/ciliary/NAME/agent.sock);
                     default: $CILIARY_NODE, else the only running agent, else this hostname
  --socket PATH      talk to the agent on this unix socket
  --state-dir DIR    where pinned maps are read from with --from-file (default: the socket's directory)
  -h, --help         this text

bpf and map commands read the pinned map files directly with --from-file, or when the agent
does not answer.
`;
