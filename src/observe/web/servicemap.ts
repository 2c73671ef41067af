// The service map of the web page: flows folded into workload nodes and client → server edges, as
// Hubble UI draws them. Pods group by their workload (workloads[0].name, else the pod name), with the
// cluster nodes they run on; peers that are not pods become world / host / remote-node / ... nodes.
// Reply packets never draw an edge, also when the datapath did not mark them as replies.
import type { Flow, FlowEndpoint } from '../flow.ts';

export type NodeKind = 'workload' | 'world' | 'host' | 'remote-node' | 'kube-apiserver' | 'health' | 'init' | 'ingress' | 'unmanaged' | 'identity' | 'unknown';

export interface MapNode {
  /** Stable key: "ns/name" for workloads, "world", "world:api.example.com", "host", "identity:1234". */
  id: string;
  kind: NodeKind;
  /** What the page prints on the card. */
  label: string;
  namespace?: string;
  /** Workload kind (Deployment, ...) when Hubble knows it; "Pod" for bare pods. */
  workloadKind?: string;
  /** Pod names seen in this group (sorted, at most 20). */
  pods: string[];
  identities: number[];
  /** Labels without the k8s: source prefix, e.g. "class=deathstar" (the first pod's). */
  labels: string[];
  /** Cluster nodes its pods were seen on (where a flow of their own agent named them), sorted. */
  nodes: string[];
  flows: number;
}

export interface MapEdge {
  id: string; // "<source>-><destination>"
  source: string;
  destination: string;
  /** Flow counts per verdict (FORWARDED, DROPPED, ...). */
  verdicts: Record<string, number>;
  /** Destination ports with protocol: "80/TCP", "53/UDP", "ICMPv4". */
  ports: string[];
  /** L7 protocols seen on the edge: "HTTP", "DNS". */
  l7: string[];
  flows: number;
  lastSeen: string;
  /**
   * What the page draws, one curve each: FORWARDED when traffic evidently reached the destination,
   * DROPPED when any was dropped, other (AUDIT, ...) when neither. A source-side (egress) FORWARDED
   * verdict counts as delivery only when the destination side is never observed: xwing's egress
   * verdict says nothing once deathstar's ingress drops it.
   */
  outcomes: Array<'FORWARDED' | 'DROPPED' | 'other'>;
}

export interface ServiceMap {
  nodes: MapNode[];
  edges: MapEdge[];
  /** Flows folded in (replies and socket translations are left out of edges). */
  flows: number;
}

const RESERVED_BY_ID: Record<number, NodeKind> = {
  1: 'host', 2: 'world', 3: 'unmanaged', 4: 'health', 5: 'init', 6: 'remote-node', 7: 'kube-apiserver', 8: 'ingress',
};
const RESERVED_KINDS = new Set<string>(Object.values(RESERVED_BY_ID));
const MAX_PODS = 20;

const stripSource = (l: string) => l.replace(/^(k8s|container|reserved|cidr|fqdn|unspec|any):/, '');
const nsLabel = 'io.kubernetes.pod.namespace=';

/** The node an endpoint of a flow belongs to; `names` are the DNS names Hubble attached to its IP. */
export function nodeOf(ep: FlowEndpoint, names?: string[]): Pick<MapNode, 'id' | 'kind' | 'label' | 'namespace' | 'workloadKind'> {
  if (ep.pod_name) {
    const w = ep.workloads?.[0];
    const name = w?.name || ep.pod_name;
    const ns = ep.namespace || 'default';
    return { id: `${ns}/${name}`, kind: 'workload', label: name, namespace: ns, workloadKind: w?.kind || 'Pod' };
  }
  const reserved = ep.labels.find((l) => l.startsWith('reserved:'))?.slice('reserved:'.length);
  const kind: NodeKind | undefined = RESERVED_BY_ID[ep.identity] ?? (reserved && RESERVED_KINDS.has(reserved) ? (reserved as NodeKind) : undefined);
  if (kind === 'world') {
    // Hubble UI draws one world card per FQDN when DNS names are known.
    const fqdn = names?.[0];
    return fqdn ? { id: `world:${fqdn}`, kind, label: fqdn } : { id: 'world', kind, label: 'world' };
  }
  if (kind) return { id: kind, kind, label: kind };
  if (!ep.identity) return { id: 'unknown', kind: 'unknown', label: 'unknown' };
  // A pod of another node: its namespace and app-ish label name it.
  const plain = ep.labels.map(stripSource);
  const ns = ep.namespace || plain.find((l) => l.startsWith(nsLabel))?.slice(nsLabel.length);
  const app = ['app=', 'k8s-app=', 'app.kubernetes.io/name=', 'name=', 'class=']
    .map((p) => plain.find((l) => l.startsWith(p))?.slice(p.length))
    .find(Boolean);
  if (ns && app) return { id: `${ns}/${app}`, kind: 'workload', label: app, namespace: ns };
  return { id: `identity:${ep.identity}`, kind: 'identity', label: `identity ${ep.identity}`, namespace: ns };
}

/** "80/TCP", "53/UDP", "ICMPv4", or undefined when the flow has no L4. */
export function portOf(f: Flow): string | undefined {
  const l4 = f.l4;
  if (!l4) return undefined;
  if (l4.TCP) return `${l4.TCP.destination_port}/TCP`;
  if (l4.UDP) return `${l4.UDP.destination_port}/UDP`;
  if (l4.ICMPv4) return 'ICMPv4';
  return undefined;
}

/** "HTTP", "DNS", or undefined for an L3/L4 flow. */
export function l7ProtocolOf(f: Flow): string | undefined {
  if (f.l7?.http) return 'HTTP';
  if (f.l7?.dns) return 'DNS';
  if (f.Type === 'L7') return 'L7';
  return undefined;
}

type Ports = { sp: number; dp: number; proto: string };
const portsOf = (f: Flow): Ports | undefined => {
  const t = f.l4?.TCP ?? f.l4?.UDP;
  return t ? { sp: t.source_port, dp: t.destination_port, proto: f.l4?.TCP ? 'TCP' : 'UDP' } : undefined;
};

/**
 * The ports each node serves: destinations of a SYN or an L7 request, sources of a reply, a SYN-ACK or
 * an L7 response. A packet from a served port to one that is not is a reply even when the datapath
 * did not say so (a conntrack entry created again after it closed, a leg of the L7 proxy).
 */
function servedPorts(flows: Flow[], id: (ep: FlowEndpoint, names?: string[]) => string): Set<string> {
  const served = new Set<string>();
  for (const f of flows) {
    const p = portsOf(f);
    if (!p || !f.source || !f.destination) continue;
    const flags = f.l4?.TCP?.flags;
    if (f.is_reply === true || f.l7?.type === 'RESPONSE' || (flags?.SYN && flags.ACK)) served.add(`${id(f.source, f.source_names)}|${p.sp}/${p.proto}`);
    else if ((flags?.SYN && !flags.ACK) || f.l7?.type === 'REQUEST') served.add(`${id(f.destination, f.destination_names)}|${p.dp}/${p.proto}`);
  }
  return served;
}

const visibleLabels = (labels: string[]) =>
  labels.filter((l) => !l.startsWith('reserved:') && !l.includes('io.kubernetes.pod.namespace') && !l.includes('io.cilium.k8s.policy'))
    .map(stripSource);

/** Folds flows (oldest first) into the map; edges and nodes come out in a stable, sorted order. */
export function buildServiceMap(input: Iterable<Flow>): ServiceMap {
  const flows = [...input].filter((f) => f?.source && f.destination);
  const idOf = (ep: FlowEndpoint, names?: string[]) => nodeOf(ep, names).id;
  const served = servedPorts(flows, idOf);
  /** Responses and reply packets travel against the edge; they are counted on their node, not drawn. */
  const isReverse = (f: Flow): boolean => {
    if (f.is_reply === true || f.l7?.type === 'RESPONSE') return true;
    const p = portsOf(f);
    return !!p && served.has(`${idOf(f.source, f.source_names)}|${p.sp}/${p.proto}`) && !served.has(`${idOf(f.destination, f.destination_names)}|${p.dp}/${p.proto}`);
  };
  const nodes = new Map<string, MapNode>();
  const edges = new Map<string, MapEdge & { portSet: Set<string>; l7Set: Set<string>; delivered: number; egressFwd: number; ingressSeen: boolean }>();
  let total = 0;
  const touch = (ep: FlowEndpoint, names: string[] | undefined, seenOn: string): MapNode => {
    const base = nodeOf(ep, names);
    let n = nodes.get(base.id);
    if (!n) {
      n = { ...base, pods: [], identities: [], labels: visibleLabels(ep.labels), nodes: [], flows: 0 };
      if (n.namespace === undefined) delete n.namespace;
      if (n.workloadKind === undefined) delete n.workloadKind;
      nodes.set(base.id, n);
    }
    if (ep.pod_name && !n.pods.includes(ep.pod_name) && n.pods.length < MAX_PODS) n.pods.push(ep.pod_name);
    if (ep.identity && !n.identities.includes(ep.identity)) n.identities.push(ep.identity);
    // An endpoint ID is set only by the agent of the pod's own node.
    if (ep.pod_name && ep.ID && seenOn && !n.nodes.includes(seenOn)) n.nodes.push(seenOn);
    n.flows++;
    return n;
  };
  for (const f of flows) {
    total++;
    const reverse = isReverse(f);
    // A reply's source is the server: keep the edge pointing from client to server.
    const [from, to] = reverse ? [f.destination, f.source] : [f.source, f.destination];
    const [fromNames, toNames] = reverse ? [f.destination_names, f.source_names] : [f.source_names, f.destination_names];
    const a = touch(from, fromNames, f.node_name);
    const b = touch(to, toNames, f.node_name);
    // Socket-level translations (service VIP lookups) are not traffic.
    if (f.Type === 'SOCK') continue;
    const id = `${a.id}->${b.id}`;
    let e = edges.get(id);
    if (!e) {
      e = { id, source: a.id, destination: b.id, verdicts: {}, ports: [], l7: [], flows: 0, lastSeen: f.time, outcomes: [], portSet: new Set(), l7Set: new Set(), delivered: 0, egressFwd: 0, ingressSeen: false };
      edges.set(id, e);
    }
    const proto = l7ProtocolOf(f);
    if (proto) e.l7Set.add(proto);
    if (reverse) {
      // Responses carry the L7 protocol but their verdict and ports describe the other direction.
      if (f.time > e.lastSeen) e.lastSeen = f.time;
      continue;
    }
    e.flows++;
    e.verdicts[f.verdict] = (e.verdicts[f.verdict] ?? 0) + 1;
    const atDestination = f.traffic_direction === 'INGRESS' || f.trace_observation_point === 'TO_ENDPOINT';
    if (atDestination) e.ingressSeen = true;
    if (f.verdict === 'FORWARDED') {
      if (atDestination || f.Type === 'L7') e.delivered++;
      else e.egressFwd++;
    }
    const port = portOf(f);
    if (port) e.portSet.add(port);
    if (f.time > e.lastSeen) e.lastSeen = f.time;
  }
  const portKey = (p: string) => [Number.parseInt(p, 10) || 0, p] as const;
  const outEdges: MapEdge[] = [...edges.values()]
    // An edge seen only through responses (request before the ring's start) still shows the L7 link.
    .map(({ portSet, l7Set, delivered, egressFwd, ingressSeen, ...e }) => ({
      ...e,
      outcomes: outcomesOf(e.verdicts, delivered > 0 || (egressFwd > 0 && !ingressSeen)),
      ports: [...portSet].sort((x, y) => portKey(x)[0] - portKey(y)[0] || x.localeCompare(y)),
      l7: [...l7Set].sort(),
    }))
    .sort((x, y) => x.id.localeCompare(y.id));
  const outNodes = [...nodes.values()]
    .map((n) => ({ ...n, pods: [...n.pods].sort(), identities: [...n.identities].sort((x, y) => x - y), nodes: [...n.nodes].sort() }))
    .sort((x, y) => x.id.localeCompare(y.id));
  return { nodes: outNodes, edges: outEdges, flows: total };
}

function outcomesOf(verdicts: Record<string, number>, forwarded: boolean): MapEdge['outcomes'] {
  const out: MapEdge['outcomes'] = [];
  if (verdicts.DROPPED) out.push('DROPPED');
  if (forwarded) out.push('FORWARDED');
  if (!out.length && Object.keys(verdicts).length) out.push('other');
  return out;
}
