// The node registry (Cilium's kvstore node discovery): each agent keeps its own node under a lease in
// cilium/state/nodes/v1/<cluster>/<name> and watches everyone's; a node whose agent stops renewing
// the lease vanishes for the others after its TTL.
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import type { Logger } from 'pino';
import type { KVLease, KVStore, KVWatch } from './kvstore.ts';

export const nodesPrefix = (cluster: string) => `cilium/state/nodes/v1/${cluster}/`;
/** Short enough that a stopped node is gone from the others within 10 s. */
export const NODE_LEASE_TTL_S = 5;

/** One node as it registers itself (Cilium's node.Node, in the fields ciliary uses). */
export interface ClusterNode {
  Name: string;
  Cluster: string;
  IPAddresses: Array<{ Type: 'InternalIP'; IP: string }>;
  IPv4AllocCIDR: string;
  /** cilium_host's address (kubectl get ciliumnodes' CILIUMINTERNALIP). */
  IPv4RouterIP: string;
  Labels: Record<string, string>;
  CreatedAt: string;
  Version: string;
  OSImage: string;
  KernelVersion: string;
}

/** What `node list` / `get nodes` show per node: the registration and where it came from. */
export interface NodeView extends ClusterNode {
  Source: 'local' | 'kvstore';
}

declare module './types.ts' {
  interface AgentFacade {
    /** Nodes of the cluster (this one included); absent on agents without a registry. */
    listNodes?(): NodeView[];
  }
}

export const nodeIP = (n: ClusterNode): string => n.IPAddresses.find((a) => a.Type === 'InternalIP')?.IP ?? '';

/** `key=value,key2=` → labels (an empty value is a role label's usual form). */
export function parseNodeLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = item.indexOf('=');
    out[eq < 0 ? item : item.slice(0, eq)] = eq < 0 ? '' : item.slice(eq + 1);
  }
  return out;
}

/** PRETTY_NAME of /etc/os-release, as kubectl's OS-IMAGE. */
export function osImage(): string {
  try {
    return /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? 'Linux';
  } catch {
    return 'Linux';
  }
}

export interface NodeHandlers {
  /** A node other than this one appeared or changed. */
  upsert(n: ClusterNode): void;
  /** A node other than this one is gone (deregistered or its lease expired). */
  remove(n: ClusterNode): void;
}

export class NodeRegistry {
  private readonly nodes = new Map<string, ClusterNode>();
  private watch?: KVWatch;
  private lease?: KVLease;

  private constructor(private readonly kv: KVStore, readonly self: ClusterNode, private readonly handlers: NodeHandlers, private readonly log: Logger) {}

  static async start(kv: KVStore, self: Omit<ClusterNode, 'CreatedAt' | 'OSImage' | 'KernelVersion'>, handlers: NodeHandlers, log: Logger): Promise<NodeRegistry> {
    const key = nodesPrefix(self.Cluster) + self.Name;
    const before = await kv.get(key);
    // A restarted agent keeps its node's creation time (kubectl's AGE).
    const createdAt = before ? (JSON.parse(before) as ClusterNode).CreatedAt : new Date().toISOString();
    const reg = new NodeRegistry(kv, { ...self, CreatedAt: createdAt, OSImage: osImage(), KernelVersion: release() }, handlers, log);
    reg.lease = await kv.grantLease(NODE_LEASE_TTL_S);
    await kv.put(key, JSON.stringify(reg.self), { lease: reg.lease });
    reg.watch = kv.watch(nodesPrefix(self.Cluster), (e) => {
      const name = e.key.slice(nodesPrefix(self.Cluster).length);
      if (name === self.Name) return;
      if (e.type === 'put') reg.put(name, e.value);
      else reg.delete(name);
    });
    await reg.watch.ready;
    return reg;
  }

  private put(name: string, value: string): void {
    let n: ClusterNode;
    try {
      n = JSON.parse(value) as ClusterNode;
      if (!nodeIP(n) || !n.IPv4AllocCIDR) throw new Error('no InternalIP or IPv4AllocCIDR');
    } catch (e) {
      this.log.warn({ node: name, err: (e as Error).message }, 'node registry: ignoring a bad node entry');
      return;
    }
    const old = this.nodes.get(name);
    if (old && (nodeIP(old) !== nodeIP(n) || old.IPv4AllocCIDR !== n.IPv4AllocCIDR)) this.handlers.remove(old);
    this.nodes.set(name, n);
    this.log.info({ node: name, ip: nodeIP(n), podCIDR: n.IPv4AllocCIDR }, 'node registry: node up');
    this.handlers.upsert(n);
  }

  private delete(name: string): void {
    const n = this.nodes.get(name);
    if (!n) return;
    this.nodes.delete(name);
    this.log.info({ node: name }, 'node registry: node gone');
    this.handlers.remove(n);
  }

  /** The other nodes, by name. */
  get remotes(): ClusterNode[] {
    return [...this.nodes.values()];
  }

  list(): NodeView[] {
    return [{ ...this.self, Source: 'local' as const }, ...this.remotes.map((n) => ({ ...n, Source: 'kvstore' as const }))]
      .sort((a, b) => a.Name.localeCompare(b.Name));
  }

  /** Stops watching; the registration stays until the lease runs out (a restart takes it over). */
  close(): void {
    this.watch?.close();
  }
}
