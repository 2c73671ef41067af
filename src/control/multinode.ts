// This agent as a member of the cluster: the node registry drives the ipcache entries and routes
// of the other nodes; the local pods are published for them. With one node it lists just itself.
import type { Logger } from 'pino';
import type { HashMap, LpmTrieMap } from '../maps/index.ts';
import type { KVStore } from './kvstore.ts';
import type { Endpoint, Pod } from './types.ts';
import { IpcacheSync } from './ipcache-sync.ts';
import { nodeIP, NodeRegistry, parseNodeLabels, type NodeView } from './nodes.ts';
import { NodeRoutes, type RoutingMode } from './routes.ts';

declare module './types.ts' {
  interface AgentStatus {
    /** The `Routing:` value of what really runs (absent on agents without the registry). */
    routing?: string;
  }
}

export interface MultiNodeOptions {
  node: string;
  cluster: string;
  clusterId: number;
  nodeIP: string;
  podCidr: string;
  routerIP: string;
  nodeLabels: string;
  version: string;
  routingMode: RoutingMode;
  tunnelProtocol: string;
  autoDirectNodeRoutes: boolean;
  ipcache: LpmTrieMap;
  tunnel: HashMap;
  /** Other nodes' pods appeared, changed or went. */
  onRemotePods: () => void;
}

const SP = '   ';

export class MultiNode {
  private constructor(private readonly o: MultiNodeOptions, private readonly registry: NodeRegistry, private readonly ipcache: IpcacheSync, readonly routes: NodeRoutes) {}

  static async start(kv: KVStore, o: MultiNodeOptions, log: Logger): Promise<MultiNode> {
    const routes = new NodeRoutes(o.routingMode, o.autoDirectNodeRoutes, o.tunnel, o.clusterId, log);
    const ipcache = new IpcacheSync(kv, o.cluster, o.nodeIP, o.ipcache, o.onRemotePods, log);
    await ipcache.start();
    const registry = await NodeRegistry.start(kv, {
      Name: o.node, Cluster: o.cluster, IPAddresses: [{ Type: 'InternalIP', IP: o.nodeIP }], IPv4AllocCIDR: o.podCidr,
      IPv4RouterIP: o.routerIP, Labels: { 'kubernetes.io/hostname': o.node, 'kubernetes.io/os': 'linux', ...parseNodeLabels(o.nodeLabels) }, Version: o.version,
    }, {
      upsert: (n) => {
        ipcache.nodeUp(n);
        routes.upsert(n);
      },
      remove: (n) => {
        ipcache.nodeDown(n);
        routes.remove(n);
      },
    }, log);
    await routes.prune();
    return new MultiNode(o, registry, ipcache, routes);
  }

  /** Publishes the local pods (call after every endpoint change); a failure is logged, not thrown. */
  publish(pods: Pod[], endpoints: Endpoint[]): Promise<void> {
    const identity = new Map(endpoints.map((e) => [e.id, e.identity]));
    return this.ipcache.publish(pods.filter((p) => p.podIP && identity.get(p.endpointID)).map((p) => ({
      ip: p.podIP, identity: identity.get(p.endpointID)!, namespace: p.namespace, name: p.name, labels: p.labels,
      ports: (p.ports ?? []).filter((c) => c.name).map((c) => ({ name: c.name!, port: c.containerPort, protocol: c.protocol ?? 'TCP' })),
    })));
  }

  /** The other nodes' pods as service backends see them (ready, on their node). */
  remoteBackendPods(): Pod[] {
    const nodeByIP = new Map(this.registry.remotes.map((n) => [nodeIP(n), n.Name]));
    return this.ipcache.remotePods().map((r) => ({
      name: r.name, namespace: r.namespace, labels: r.labels, node: nodeByIP.get(r.hostIP) ?? r.hostIP, podIP: r.ip, endpointID: 0,
      state: 'ready' as const, netns: '', ifindex: 0, createdAt: '',
      ports: r.ports.map((c) => ({ name: c.name, containerPort: c.port, protocol: c.protocol as 'TCP' | 'UDP' })),
    }));
  }

  nodes(): NodeView[] {
    return this.registry.list();
  }

  /** Pods on the other nodes, by address. */
  remotePods() {
    return this.ipcache.remotePods();
  }

  /** `Network: Native` only while routes to other nodes are installed; otherwise what is really the case. */
  routingText(): string {
    const others = this.registry.remotes.length;
    if (this.o.routingMode === 'native') {
      if (others > 0 && this.routes.routesNodes) return `Network: Native${SP}Host: BPF`;
      return `Network: Native (${others === 0 ? 'single node' : 'no auto-direct-node-routes'})${SP}Host: BPF`;
    }
    return `Network: Tunnel [${this.o.tunnelProtocol}] (not running: no ${this.o.tunnelProtocol} device)${SP}Host: BPF`;
  }

  close(): void {
    this.registry.close();
    this.ipcache.close();
  }
}
