// The contract between the agent core (dataplane, endpoints) and its API/CLI.
// The API plugins call an AgentFacade; nothing else of the agent is visible to them.
import type { FqdnCacheRow } from '../fqdn/cache.ts';

export interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol?: 'TCP' | 'UDP';
  /** Cilium's HostPort frontend: this port on the pod's node IP reaches containerPort. */
  hostPort?: number;
}

export interface PodSpec {
  name: string;
  namespace: string; // default "default"
  labels: Record<string, string>;
  node?: string; // must be this agent's node when given
  /** Command run inside the pod's namespace; none = an idle pod. */
  command?: string[];
  /** Named container ports, for services whose targetPort is a name. */
  ports?: ContainerPort[];
  /** Manifest pods: env, hostname, restart policy, image. */
  process?: PodProcessSpec;
  /** spec.serviceAccountName (the identity's serviceaccount label); default "default". */
  serviceAccount?: string;
}

export type EndpointState = 'waiting-for-identity' | 'regenerating' | 'ready' | 'disconnected';

export interface Pod {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  node: string;
  podIP: string;
  endpointID: number;
  state: EndpointState;
  /** Network namespace name, usable with `ip netns exec`. */
  netns: string;
  /** Interface name inside the pod (eth0) and the TUN ifindex. */
  ifindex: number;
  createdAt: string;
  command?: string[];
  ports?: ContainerPort[];
  pid?: number; // pid of the pod's main process, when running
  process?: PodProcessSpec;
  processStatus?: PodProcessStatus;
}

export interface ServicePort {
  name?: string;
  port: number;
  /** Number, or the name of a container port; defaults to `port`. */
  targetPort?: number | string;
  protocol?: 'TCP' | 'UDP';
  nodePort?: number;
}

export interface ServiceSpec {
  name: string;
  namespace: string;
  type?: 'ClusterIP' | 'NodePort' | 'LoadBalancer';
  /** Pods whose labels include all of these are the backends. */
  selector?: Record<string, string>;
  ports: ServicePort[];
  /** Given, or allocated from service-cluster-ip-range. */
  clusterIP?: string;
  sessionAffinity?: 'None' | 'ClientIP';
  /** ClientIP affinity timeout (default 10800). */
  sessionAffinityTimeoutSeconds?: number;
  externalIPs?: string[];
  /** NodePort and LoadBalancer frontends: Local serves only this node's backends and keeps the client address. */
  externalTrafficPolicy?: 'Cluster' | 'Local';
  /** A LoadBalancer's addresses, from status.loadBalancer.ingress (written by LB-IPAM). */
  loadBalancerIngress?: string[];
  /** Backends given explicitly (a selector-less service such as kube-dns). */
  backends?: Array<{ ip: string; port?: number }>;
}

export interface ServiceBackend {
  id: number;
  ip: string;
  port: number;
  pod: string; // "namespace/name" or "" for explicit backends
  state: 'active' | 'terminating';
}

export interface ServiceFrontend {
  /** Service ID, also the rev-NAT index. */
  id: number;
  address: string;
  port: number;
  protocol: 'TCP' | 'UDP';
  type: string; // ClusterIP, NodePort, LoadBalancer, ExternalIPs, HostPort (Cilium's service types)
  backends: ServiceBackend[];
}

export interface Service extends ServiceSpec {
  clusterIP: string;
  frontends: ServiceFrontend[];
  createdAt: string;
}

export interface Endpoint {
  id: number;
  podName: string; // "namespace/name", or "" for the host endpoint
  identity: number;
  labels: string[]; // "k8s:key=value" form, sorted
  ipv4: string;
  ifindex: number;
  ifname: string;
  state: EndpointState;
  policyIngress: 'Enabled' | 'Disabled';
  policyEgress: 'Enabled' | 'Disabled';
  isHost: boolean;
  /** kubernetes.io/egress-bandwidth in force (bandwidth manager), e.g. 10M. */
  egressBandwidth?: string;
}

export interface MapSummary {
  name: string;
  type: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  count: number;
  pressure: number;
}

/** One decoded map entry: column values ready for printing (as `cilium bpf ... list` prints them). */
export interface MapEntryView {
  key: string;
  value: string;
}

/** What the datapath really does now (never what is merely configured). */
export interface DatapathFeatures {
  /** Routing between nodes: native until a tunnel device runs. */
  routing: 'native' | 'tunnel';
  tunnelProtocol?: 'vxlan';
  /** The TAP TCP super-packets leave through whole, for the kernel's UDP-tunnel GSO (tunnel mode on Linux 6.17+). */
  tunnelGso?: string;
  /** SNAT of pod traffic leaving the cluster, when it runs: mode, the native devices it runs on, the CIDR not masqueraded. */
  /** BPF masquerade lists its devices and CIDR; the iptables mode has neither (devices empty). */
  masquerade?: { mode: 'BPF' | 'BPF (ip-masq-agent)' | 'IPTables'; devices: string[]; cidr: string };
  /** Egress pacing, when it runs. */
  bandwidthManager?: string;
  /** Threads running the datapath and the monitor ring's size in events. */
  monitor: { cpus: number; ringEvents: number };
  /** Service kinds the load balancer translates. */
  services: { clusterIP: boolean; nodePort: boolean; loadBalancer: boolean; externalIPs: boolean; hostPort: boolean };
  /** The NodePort range (30000-32767), when NodePort frontends run. */
  nodePortRange?: string;
  /** The native device NodePort and masquerade traffic is steered from (eth1 in the labs). */
  nativeDevice?: string;
  backendSelection: { algorithm: 'random' | 'maglev'; maglevTableSize?: number };
  /** L7 proxy redirects, when the proxy runs. */
  proxy?: { redirects: number; ports: string };
  hubble: boolean;
  /** enable-host-firewall: host policies are enforced on the host endpoint (cilium_host). */
  hostFirewall?: boolean;
}

export interface AgentStatus {
  node: string;
  nodeIP: string;
  version: string;
  uptimeSeconds: number;
  /** The store's own report (kv.health()). */
  kvstore: { ok: boolean; message: string };
  ipam: { cidr: string; allocated: Array<{ ip: string; owner: string }> };
  routerIP: string;
  features: DatapathFeatures;
  endpoints: { total: number; ready: number };
  maps: MapSummary[];
  datapath: {
    devices: number;
    rxPackets: number; rxBytes: number; txPackets: number; txBytes: number;
    drops: number; forwards: number;
    /** Tunnel super-packets sent whole into the GSO device, and received whole. */
    tunnelGsoTx: number; tunnelGsoRx: number;
  };
  controllers: { total: number; failing: number };
  /** How full the bandwidth manager's EDT queues are (when it runs). */
  edtQueues?: { endpoints: number; queuedPackets: number; queuedBytes: number; capacityPackets: number };
}

/** The packet an event is about, decoded (for flows and filters). */
export interface EventPacket {
  src: string;
  dst: string;
  proto: 'TCP' | 'UDP' | 'ICMPv4' | 'other';
  sport?: number;
  dport?: number;
  /** TCP flag bits (FIN 1, SYN 2, RST 4, PSH 8, ACK 16, URG 32, ECE 64, CWR 128). */
  tcpFlags?: number;
  icmpType?: number;
  icmpCode?: number;
  /** IP packet length. */
  length: number;
}

/** A monitor event as the API streams it (one JSON object per line). */
export interface MonitorEvent {
  type: 'drop' | 'trace' | 'policy-verdict' | 'l7' | 'agent' | 'trace-sock';
  time: string; // ISO
  /** Printed line in cilium-monitor's format (the default, non-verbose form). */
  summary: string;
  /** Drop reason code (drop events). */
  reason?: number;
  reasonDesc?: string;
  /** trace observation point, e.g. "to-endpoint", "to-stack", "from-endpoint". */
  observationPoint?: string;
  source?: number; // endpoint id
  srcIdentity?: number;
  dstIdentity?: number;
  ifindex?: number;
  hex?: string; // packet bytes in hex (for -v -v --hex)
  /** L7 events: the request or response (method, url, status, latency, verdict, peers). */
  l7?: Record<string, unknown>;
  packet?: EventPacket;
  /** Conntrack state of the packet: new, established, reply, related. */
  ctState?: string;
  /** Traffic direction from the local endpoint's view. */
  direction?: 'ingress' | 'egress';
  /** Destination endpoint id (0 when not a local endpoint). */
  dstEndpoint?: number;
  /** Service translation point of a trace-sock event: pre-xlate-fwd, post-xlate-fwd, pre-xlate-rev, post-xlate-rev. */
  xlatePoint?: string;
  /** Policy verdict events: match kind (L3-L4, L3-Only, L4-Only, all, ...) and action. */
  policyMatch?: string;
  action?: 'allow' | 'deny';
  verbose?: string; // multi-line verbose form (-v)
}

export interface PolicySummary {
  kind: string;
  namespace?: string;
  name: string;
  /** The object as it was imported. */
  object: unknown;
  /** Endpoint ids the policy's rules select. */
  selects: number[];
}

export interface PolicyImportResult {
  revision: number;
  policies: Array<{ kind: string; namespace?: string; name: string; result: 'created' | 'configured' | 'unchanged' }>;
}

export class ApiError extends Error {
  constructor(public readonly statusCode: number, message: string) {
    super(message);
  }
}

export interface AgentFacade {
  readonly nodeName: string;
  status(): AgentStatus;
  config(): Record<string, unknown>;
  listPods(): Pod[];
  getPod(namespace: string, name: string): Pod | undefined;
  listEndpoints(): Endpoint[];
  getEndpoint(id: number): Endpoint | undefined;
  listMaps(): MapSummary[];
  /** Entries of a named map, decoded; undefined for an unknown map. */
  dumpMap(name: string): MapEntryView[] | undefined;
  listServices(): Service[];
  /** HostPort frontends of this node's pods (no service of their own). */
  hostPortFrontends?(): ServiceFrontend[];
  /** Every service's name, namespace and clusterIP (JSON) and an ETag that changes with them. */
  serviceAddresses?(): { etag: string; json: string };
  getService(namespace: string, name: string): Service | undefined;
  /** `bpf lb list` rows: [service address, backend address] with the continuation rows' first column empty. */
  lbList(revnat: boolean): Array<[string, string]>;
  /** `bpf ct list global` lines. */
  ctList(): string[];
  /** Empties both CT maps; returns how many entries were removed. */
  ctFlush(): number;
  /** Policies as given, with the repository revision. */
  listPolicies(): { revision: number; policies: PolicySummary[] };
  /** `bpf policy get` table of one endpoint; undefined for an unknown endpoint. */
  bpfPolicy(endpointID: number): string | undefined;
  /** Every identity this node knows: reserved, pods', CIDR. */
  listIdentities(): Array<{ id: number; labels: string[] }>;
  /** `ip list`: ipcache prefixes with their identity. */
  ipList(): Array<{ prefix: string; identity: number; labels: string[]; source: string }>;
  /** `fqdn cache list`: what the DNS proxy taught toFQDNs policy. */
  fqdnCacheList(): FqdnCacheRow[];
  /** `fqdn cache clean`: forget it (one endpoint's when given); returns how many entries went. */
  fqdnCacheClean(endpointId?: number): number;
  /** Subscribe to monitor events; returns an unsubscribe function. */
  subscribeMonitor(cb: (e: MonitorEvent) => void): () => void;
  /** `ciliary trace`: traces packets matching `req` into `sink` (ApiError 400/404, 409 when a trace runs); returns stop. */
  startTrace(req: import('../observe/trace/types.ts').TraceRequest, sink: import('../observe/trace/types.ts').TraceSink): () => void;
  /** The one writer of pods, deployments, services, policies, namespaces and pools. */
  readonly resources: ResourceApi;
}

// ---- what each API plugin uses of the agent ------------------------------------------------------

export type StatusService = Pick<AgentFacade, 'status' | 'config'>;
/** /v1/pods: reads from the endpoints, writes through the resource manager. */
export type PodService = Pick<AgentFacade, 'nodeName' | 'listPods' | 'getPod' | 'resources'>;
export type ServiceService = Pick<AgentFacade, 'listServices' | 'getService' | 'resources' | 'hostPortFrontends' | 'serviceAddresses'>;
export type PolicyService = Pick<AgentFacade, 'listPolicies' | 'bpfPolicy' | 'resources'>;
export type EndpointService = Pick<AgentFacade, 'listEndpoints' | 'getEndpoint'>;
export type MapService = Pick<AgentFacade, 'listMaps' | 'dumpMap'>;
export type LbService = Pick<AgentFacade, 'lbList'>;
export type CtService = Pick<AgentFacade, 'ctList' | 'ctFlush'>;
export type IdentityService = Pick<AgentFacade, 'listIdentities' | 'ipList'>;
export type FqdnService = Pick<AgentFacade, 'fqdnCacheList' | 'fqdnCacheClean'>;
export type MonitorService = Pick<AgentFacade, 'subscribeMonitor'>;
export type TraceService = Pick<AgentFacade, 'startTrace'>;
export type ResourceService = Pick<AgentFacade, 'resources'>;
export type FlowService = Pick<AgentFacade, 'hubble' | 'hubbleRelay' | 'nodeName' | 'status'>;

// ---- manifests (`ciliary apply -f`): Kubernetes objects kept by the resource manager ----------

/** Extra pod process settings (manifest pods); all optional so `ciliary run` pods stay as they were. */
export interface PodProcessSpec {
  /** Environment of the pod's process (merged over PATH/HOSTNAME). */
  env?: Record<string, string>;
  /** Hostname inside the pod's own UTS namespace (default: the pod name). */
  hostname?: string;
  /** When the process exits: Always (default) or OnFailure restart it with a 1 s … 30 s backoff; Never leaves it. */
  restartPolicy?: 'Always' | 'OnFailure' | 'Never';
  /** Image the command came from, for `get pods -o wide` / describe. */
  image?: string;
}

/** A pod's process as `get pods` shows it. */
export interface PodProcessStatus {
  /** Running, Completed, Error, CrashLoopBackOff (waiting for its restart), or Running for a pod without a command. */
  status: string;
  restarts: number;
  exitCode?: number;
  /** ISO time of the last (re)start. */
  startedAt?: string;
}

/** One object of an apply as the API reports it: `deployment.apps/deathstar configured`. */
export interface ManifestResult {
  kind: string;
  /** kubectl's resource name: pod, deployment.apps, service, ciliumnetworkpolicy.cilium.io, ... */
  resource: string;
  namespace?: string;
  name: string;
  result: 'created' | 'configured' | 'unchanged' | 'deleted' | 'not found';
}

/** An object that failed validation or applying: which one (1-based index in the request) and the field path. */
export interface ManifestErrorBody {
  error: string;
  document?: number;
  path?: string;
}

/** A stored resource as `get` lists it: the manifest plus what the agent knows about it. */
export interface ResourceView {
  kind: string;
  namespace?: string;
  name: string;
  createdAt: string;
  /** The object as applied (with metadata filled), or a synthesized one for objects made otherwise. */
  manifest: Record<string, unknown>;
  /** Kind-specific status: pods {phase, ready, restarts, podIP, node, ...}, deployments {replicas, ready, upToDate, available}, ... */
  status: Record<string, unknown>;
}

export interface ResourceWriteOptions {
  dryRun?: boolean;
  /** kubectl create: an object that exists already is a 409, not an update. */
  createOnly?: boolean;
  /** The older routes (/v1/pods, /v1/services, PUT /v1/policy) never needed a Namespace object. */
  anyNamespace?: boolean;
}

/** What the API's apply/get/delete/logs routes need from the agent (AgentFacade.resources). */
export interface ResourceApi {
  /** Validates every object first, then applies in dependency order; all or nothing for created objects. */
  apply(objects: unknown[], opts?: ResourceWriteOptions): Promise<ManifestResult[]>;
  /** Deletes the objects named by the manifests (missing ones are `not found`). */
  deleteObjects(objects: unknown[]): Promise<ManifestResult[]>;
  /** kind: any kubectl name (pods, po, deploy, svc, ns, cnp, ...); namespace undefined = all namespaces. */
  list(kind: string, namespace?: string): ResourceView[];
  get(kind: string, namespace: string | undefined, name: string): ResourceView | undefined;
  delete(kind: string, namespace: string | undefined, name: string): Promise<ManifestResult>;
  /** Path of a pod's log file (may not exist yet); undefined for an unknown pod. */
  podLogPath(namespace: string, name: string): string | undefined;
  /** Calls back after each change of a stored record took effect (event key ciliary/resources/<Kind>/<ns or _>/<name>). */
  onChange?(listener: (e: { type: 'put' | 'delete'; key: string; revision?: string }) => void): () => void;
}

/** Thrown by ResourceApi: an ApiError that also says which object and field. */
export class ManifestError extends ApiError {
  constructor(statusCode: number, message: string, readonly document?: number, readonly path?: string) {
    super(statusCode, message);
  }
}

// ---- Hubble (`ciliary observe`, GET /v1/flows, `ciliary hubble status`) -------------------------

/** `hubble status`: the flow ring's fill, flows seen since start and their rate over the last minute. */
export interface HubbleStatus {
  currentFlows: number;
  maxFlows: number;
  seenFlows: number;
  /** Flows per second over the last minute (or since start when younger). */
  flowsPerSecond: number;
  connectedNodes: number;
  totalNodes: number;
  uptimeSeconds: number;
  /** Monitor events lost before they became flows (the datapath outran the agent). */
  lostEvents: number;
  /** Through a relay: the nodes it cannot reach. */
  unavailableNodes?: string[];
}

/** Which flows of the ring: the last `number` (all when absent), or the first with `first`; times in ms. */
export interface HubbleFlowsQuery {
  number?: number;
  first?: boolean;
  since?: number;
  until?: number;
  match?: (f: import('../observe/flow.ts').Flow) => boolean;
}

type HubbleFlowSource = import('../observe/flow.ts').FlowSource;

/** Hubble's observer: the flow ring built from monitor events (also the FlowSource of metrics, export, web page). */
export interface HubbleApi extends HubbleFlowSource {
  status(): HubbleStatus;
  /** Matching flows held in the ring, oldest first. */
  flows(q?: HubbleFlowsQuery): Array<import('../observe/flow.ts').Flow>;
}

export interface AgentFacade {
  /** Hubble; absent when enable-hubble is false (or on agents without it). */
  readonly hubble?: HubbleApi;
  /** The Hubble relay this agent runs (hubble-relay-listen-address): every node's flows, status and nodes. */
  readonly hubbleRelay?: import('../observe/hubble/grpc/relay-client.ts').RelayClient;
}
