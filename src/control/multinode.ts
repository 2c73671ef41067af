// This agent as a member of the cluster: the node registry drives the ipcache entries and routes
// of the other nodes; the local pods are published for them. With one node it lists just itself.
import type { Logger } from 'pino';
import type { HashMap, LpmTrieMap } from '../maps/index.ts';
import type { KVStore } from './kvstore.ts';
import type { Endpoint } from './types.ts';
import { IpcacheSync } from './ipcache-sync.ts';
import { NodeRegistry, parseNodeLabels, type NodeView } from './nodes.ts';
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
}

const SP = '   ';

export class MultiNode {
  private constructor(private readonly o: MultiNodeOptions, private readonly registry: NodeRegistry, private readonly ipcache: IpcacheSync, readonly routes: NodeRoutes) {}

  static async start(kv: KVStore, o: MultiNodeOptions, log: Logger): Promise<MultiNode> {
    const routes = new NodeRoutes(o.routingMode, o.autoDirectNodeRoutes, o.tunnel, o.clusterId, log);
    const ipcache = new IpcacheSync(kv, o.cluster, o.nodeIP, o.ipcache, log);
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
    return new MultiNode(o, registry, ipcache, routes);
  }

  /** Publishes the local pods (call after every endpoint change); a failure is logged, not thrown. */
  publish(endpoints: Endpoint[]): Promise<void> {
    return this.ipcache.publish(endpoints.filter((e) => !e.isHost && e.ipv4).map((e) => {
      const [namespace, name] = e.podName.split('/');
      return { ip: e.ipv4, identity: e.identity, namespace, name };
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
