// Where a pod runs, as kube-scheduler's required rules decide it: nodeSelector, required pod affinity
// and anti-affinity over node labels (topologyKey), then the node with the fewest pods (ties by name).
import type { KVStore, KVWatch } from '../kvstore.ts';
import { NODES_PREFIX } from '../nodes.ts';
import { selectorMatches } from './validate.ts';
import type { AffinityTerm, Manifest, PodSpecManifest } from './convert.ts';

export const HOSTNAME_LABEL = 'kubernetes.io/hostname';
export const CONTROL_PLANE_LABEL = 'node-role.kubernetes.io/control-plane';
/** The node kubeadm makes the control plane in the seeds' labs. */
const CONTROL_PLANE_NODE = 'k8s-ctr';

export interface SchedNode {
  name: string;
  labels: Record<string, string>;
}

/** A pod already placed: its namespace, labels and node. */
export interface PlacedPod {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  node: string;
}

export type Placement = { node: string } | { pending: string };

export function nodeLabels(name: string): Record<string, string> {
  return { [HOSTNAME_LABEL]: name, ...(name === CONTROL_PLANE_NODE ? { [CONTROL_PLANE_LABEL]: '' } : {}) };
}

/** The pods in a term's namespaces whose labels its selector matches. */
function termPods(t: AffinityTerm, ns: string, pods: PlacedPod[]): PlacedPod[] {
  const namespaces = t.namespaces?.length ? t.namespaces : [ns];
  return pods.filter((p) => namespaces.includes(p.namespace) && selectorMatches(t.labelSelector ?? {}, p.labels));
}

/** Whether node n shares term t's topology domain with one of the matching pods. */
function sharesDomain(t: AffinityTerm, n: SchedNode, matching: PlacedPod[], byName: Map<string, SchedNode>): boolean {
  const value = n.labels[t.topologyKey];
  return value !== undefined && matching.some((p) => byName.get(p.node)?.labels[t.topologyKey] === value);
}

/** Picks the node for pod m among the ready nodes, or says why none fits (kube-scheduler's FailedScheduling message). */
export function placePod(m: Manifest, nodes: SchedNode[], pods: PlacedPod[]): Placement {
  const spec = m.spec as PodSpecManifest;
  const ns = m.metadata.namespace ?? 'default';
  const self = { namespace: ns, name: m.metadata.name, labels: m.metadata.labels ?? {} };
  const others = pods.filter((p) => !(p.namespace === ns && p.name === m.metadata.name));
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const affinity = spec.affinity?.podAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? [];
  const anti = spec.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? [];
  const failures = new Map<string, number>();
  const fail = (why: string) => failures.set(why, (failures.get(why) ?? 0) + 1);
  const feasible = nodes.filter((n) => {
    if (!Object.entries(spec.nodeSelector ?? {}).every(([k, v]) => n.labels[k] === v)) return fail("didn't match Pod's node affinity/selector"), false;
    for (const t of affinity) {
      const matching = termPods(t, ns, others);
      // The first pod of a group that selects itself may go anywhere (as kube-scheduler allows).
      const first = !matching.length && termPods(t, ns, [{ ...self, node: n.name }]).length > 0;
      if (!first && !sharesDomain(t, n, matching, byName)) return fail("didn't match pod affinity rules"), false;
    }
    for (const t of anti) if (sharesDomain(t, n, termPods(t, ns, others), byName)) return fail("didn't match pod anti-affinity rules"), false;
    return true;
  });
  if (!feasible.length) {
    const why = [...failures].map(([reason, count]) => `${count} node(s) ${reason}`).join(', ');
    return { pending: `0/${nodes.length} nodes are available${why ? `: ${why}` : ''}.` };
  }
  const count = (n: SchedNode) => others.filter((p) => p.node === n.name).length;
  feasible.sort((a, b) => count(a) - count(b) || a.name.localeCompare(b.name));
  return { node: feasible[0].name };
}

/** ciliary/endpoints/<node>/<namespace>/<pod>: the endpoint records every node publishes (endpoints.ts). */
const ENDPOINTS_PREFIX = 'ciliary/endpoints/';

/** The cluster's ready nodes (this one, and those registered under a live lease) and every node's pod addresses, followed in the store. */
export class ClusterView {
  private readonly nodes = new Map<string, SchedNode>();
  /** "<namespace>/<pod>" → the pod IP its node published. */
  private readonly podIPs = new Map<string, string>();
  /** Node name → its IP on the node network, as registered. */
  private readonly nodeIPs = new Map<string, string>();
  /** Node name → when its registration vanished (NotReady since). */
  private readonly lostAt = new Map<string, number>();
  /** A node never seen ready here counts as NotReady since this view started. */
  private readonly startedAt = Date.now();
  private readonly watches: KVWatch[];

  constructor(kv: KVStore, private readonly self: string, onNodesChanged: () => void) {
    this.nodes.set(self, { name: self, labels: nodeLabels(self) });
    this.watches = [
      kv.watch(NODES_PREFIX, (e) => {
        const name = e.key.slice(NODES_PREFIX.length);
        if (e.type === 'put') {
          try {
            this.nodeIPs.set(name, (JSON.parse(e.value) as { nodeIP?: string }).nodeIP ?? '');
          } catch { /* not a node record: no address */ }
        }
        if (name === self) return;
        if (e.type === 'delete') {
          if (this.nodes.delete(name)) this.lostAt.set(name, Date.now());
        } else {
          this.nodes.set(name, { name, labels: nodeLabels(name) });
          this.lostAt.delete(name);
        }
        onNodesChanged();
      }),
      kv.watch(ENDPOINTS_PREFIX, (e) => {
        const [, ns, pod, extra] = e.key.slice(ENDPOINTS_PREFIX.length).split('/');
        if (!pod || extra !== undefined || ns === 'id') return;
        let podIP: string | undefined;
        try {
          podIP = e.type === 'put' ? (JSON.parse(e.value) as { podIP?: string }).podIP : undefined;
        } catch { /* not an endpoint record: no address */ }
        if (podIP) this.podIPs.set(`${ns}/${pod}`, podIP);
        else this.podIPs.delete(`${ns}/${pod}`);
      }),
    ];
  }

  get ready(): Promise<void> {
    return Promise.all(this.watches.map((w) => w.ready)).then(() => undefined);
  }

  list(): SchedNode[] {
    return [...this.nodes.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  has(name: string): boolean {
    return this.nodes.has(name);
  }

  /** How long a node has been NotReady (0 while it is ready). */
  notReadyMs(node: string): number {
    return this.nodes.has(node) ? 0 : Date.now() - (this.lostAt.get(node) ?? this.startedAt);
  }

  nodeIP(node: string): string | undefined {
    return this.nodeIPs.get(node) || undefined;
  }

  podIP(ns: string, name: string): string | undefined {
    return this.podIPs.get(`${ns}/${name}`);
  }

  close(): void {
    for (const w of this.watches) w.close();
  }
}
