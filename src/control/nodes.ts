// The node registry (cilium/state/nodes/v1/default/<name>, as Cilium's kvstore mode): each agent
// writes its node under the node's lease, so it vanishes when the agent stops renewing it, and
// watches everyone's; another node's arrival and departure drive its ipcache entries and routes.
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import type { Logger } from 'pino';
import type { KVLease, KVStore, KVWatch } from './kvstore.ts';

export const NODES_PREFIX = 'cilium/state/nodes/v1/default/';
/** Seconds a node's registration and identity claims outlive its agent: short enough that a stopped node is gone from the others within 10 s. */
export const NODE_LEASE_TTL = 5;

export interface NodeRecord {
  name: string;
  nodeIP: string;
  podCIDR: string;
  /** cilium_host's address (kubectl get ciliumnodes' CILIUMINTERNALIP). */
  routerIP: string;
  version: string;
  labels?: Record<string, string>;
  /** When the node first registered (kubectl's AGE); a restarted agent keeps it. */
  createdAt?: string;
  osImage?: string;
  kernelVersion?: string;
}

/** What `node list` / `get nodes` show per node: the registration and where it came from. */
export interface NodeView extends NodeRecord {
  source: 'local' | 'kvstore';
  /** False for a node whose registration vanished (its agent stopped renewing the lease): kubectl's NotReady. */
  ready: boolean;
}

declare module './types.ts' {
  interface AgentFacade {
    /** Nodes of the cluster (this one included); absent on agents without a registry. */
    listNodes?(): NodeView[];
  }
}

/** The node's labels: kubelet's hostname and os, then `key=value,key2=` from node-labels (a role label's value is empty). */
export function nodeLabels(node: string, text: string): Record<string, string> {
  const out: Record<string, string> = { 'kubernetes.io/hostname': node, 'kubernetes.io/os': 'linux' };
  for (const item of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = item.indexOf('=');
    out[eq < 0 ? item : item.slice(0, eq)] = eq < 0 ? '' : item.slice(eq + 1);
  }
  return out;
}

/** PRETTY_NAME of /etc/os-release, as kubectl's OS-IMAGE. */
function osImage(): string {
  try {
    return /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? 'Linux';
  } catch {
    return 'Linux';
  }
}

/** Writes this node's registration under its lease (keeping the first registration's time). */
export async function registerNode(kv: KVStore, lease: KVLease, node: NodeRecord): Promise<void> {
  const before = await kv.get(NODES_PREFIX + node.name);
  const createdAt = (before && (JSON.parse(before) as NodeRecord).createdAt) || new Date().toISOString();
  const record: NodeRecord = { ...node, createdAt, osImage: osImage(), kernelVersion: release() };
  await kv.put(NODES_PREFIX + node.name, JSON.stringify(record), { lease });
}

export interface NodeHandlers {
  /** A node other than this one appeared or changed. */
  upsert(n: NodeRecord): void;
  /** A node other than this one is gone (deregistered or its lease expired). */
  remove(n: NodeRecord): void;
}

/** Follows the registry: the other nodes, and this one's own entry as written. */
export class NodeRegistry {
  private readonly nodes = new Map<string, NodeRecord>();
  /** Nodes whose registration vanished (their agent stopped renewing its lease) and that have not come back, as last registered. */
  private readonly lost = new Map<string, NodeRecord>();
  private self?: NodeRecord;
  private watch?: KVWatch;

  private constructor(private readonly name: string, private readonly handlers: NodeHandlers, private readonly log: Logger) {}

  static async start(kv: KVStore, name: string, handlers: NodeHandlers, log: Logger): Promise<NodeRegistry> {
    const reg = new NodeRegistry(name, handlers, log);
    reg.watch = kv.watch(NODES_PREFIX, (e) => {
      const node = e.key.slice(NODES_PREFIX.length);
      if (e.type === 'put') reg.put(node, e.value);
      else reg.delete(node);
    });
    await reg.watch.ready;
    return reg;
  }

  private put(name: string, value: string): void {
    let n: NodeRecord;
    try {
      n = JSON.parse(value) as NodeRecord;
      if (!n.nodeIP || !n.podCIDR) throw new Error('no nodeIP or podCIDR');
    } catch (e) {
      this.log.warn({ node: name, err: (e as Error).message }, 'node registry: ignoring a bad node entry');
      return;
    }
    if (name === this.name) {
      this.self = n;
      return;
    }
    this.lost.delete(name);
    const old = this.nodes.get(name);
    if (old && (old.nodeIP !== n.nodeIP || old.podCIDR !== n.podCIDR)) this.handlers.remove(old);
    this.nodes.set(name, n);
    this.log.info({ node: name, ip: n.nodeIP, podCIDR: n.podCIDR }, 'node registry: node up');
    this.handlers.upsert(n);
  }

  private delete(name: string): void {
    const n = this.nodes.get(name);
    if (!n) return;
    this.nodes.delete(name);
    this.lost.set(name, n);
    this.log.info({ node: name }, 'node registry: node gone');
    this.handlers.remove(n);
  }

  /** The other nodes. */
  get remotes(): NodeRecord[] {
    return [...this.nodes.values()];
  }

  /** How many nodes left without coming back (cilium_unreachable_nodes): their agents stopped answering. */
  get unreachable(): number {
    return this.lost.size;
  }

  list(): NodeView[] {
    const local = this.self ? [{ ...this.self, source: 'local' as const, ready: true }] : [];
    const lost = [...this.lost.values()].map((n) => ({ ...n, source: 'kvstore' as const, ready: false }));
    return [...local, ...this.remotes.map((n) => ({ ...n, source: 'kvstore' as const, ready: true })), ...lost].sort((a, b) => a.name.localeCompare(b.name));
  }

  close(): void {
    this.watch?.close();
  }
}
