// This agent as a member of the cluster: the node registry drives the ipcache entries and routes
// of the other nodes; the local pods are published for them. With one node it lists just itself.
import type { Logger } from 'pino';
import type { HashMap, LpmTrieMap } from '../maps/index.ts';
import type { KVLease, KVStore } from './kvstore.ts';
import type { DatapathFeatures, Endpoint, Pod } from './types.ts';
import { IpcacheSync } from './ipcache-sync.ts';
import { NodeRegistry, type NodeRecord, type NodeView } from './nodes.ts';
import { NodeRoutes, type RoutingMode } from './routes.ts';

declare module './types.ts' {
  interface DatapathFeatures {
    /** Why pods on other nodes are not reachable although the mode says so. */
    routingNote?: string;
  }
}

export interface MultiNodeOptions {
  node: string;
  nodeIP: string;
  clusterId: number;
  podCidr: string;
  routingMode: RoutingMode;
  autoDirectNodeRoutes: boolean;
  /** The pods' MTU: the routes through cilium_host to the other nodes carry it in tunnel mode (none without). */
  podMtu?: number;
  ipcache: LpmTrieMap;
  tunnel: HashMap;
  /** The node's lease: its published pods vanish with its registration. */
  lease: KVLease;
  /** Other nodes' pods appeared, changed or went. */
  onRemotePods: () => void;
  /** enable-node-selector-labels: the identity of another node's addresses (default remote-node), and its release. */
  nodeIdentity?: { up: (n: NodeRecord, kubeApiServer: boolean) => number; down: (n: NodeRecord) => void };
}

export class MultiNode {
  private constructor(private readonly o: MultiNodeOptions, private readonly registry: NodeRegistry, private readonly ipcache: IpcacheSync, readonly routes: NodeRoutes) {}

  static async start(kv: KVStore, o: MultiNodeOptions, log: Logger): Promise<MultiNode> {
    const routes = new NodeRoutes(o.routingMode, o.autoDirectNodeRoutes, o.tunnel, o.clusterId, log, o.podMtu);
    const ipcache = new IpcacheSync(kv, o.nodeIP, o.ipcache, o.lease, o.onRemotePods, log);
    await ipcache.start();
    const registry = await NodeRegistry.start(kv, o.node, {
      upsert: (n) => {
        ipcache.nodeUp(n, o.nodeIdentity?.up(n, ipcache.isApiServer(n.nodeIP)));
        routes.upsert(n);
      },
      remove: (n) => {
        ipcache.nodeDown(n);
        o.nodeIdentity?.down(n);
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

  /** The API servers' addresses (the kubernetes service's Endpoints): their ipcache identity becomes kube-apiserver. */
  setKubeApiServers(ips: string[]): void {
    this.ipcache.setApiServers(ips);
    for (const n of this.registry.remotes) this.ipcache.nodeUp(n, this.o.nodeIdentity?.up(n, this.ipcache.isApiServer(n.nodeIP)));
  }

  /** The other nodes' pods as service backends see them (ready, on their node). */
  remoteBackendPods(): Pod[] {
    const nodeByIP = new Map(this.registry.remotes.map((n) => [n.nodeIP, n.name]));
    return this.ipcache.remotePods().map((r) => ({
      name: r.name, namespace: r.namespace, labels: r.labels, node: nodeByIP.get(r.hostIP) ?? r.hostIP, podIP: r.ip, endpointID: 0,
      state: 'ready' as const, netns: '', ifindex: 0, createdAt: '',
      ports: r.ports.map((c) => ({ name: c.name, containerPort: c.port, protocol: c.protocol as 'TCP' | 'UDP' })),
    }));
  }

  nodes(): NodeView[] {
    return this.registry.list();
  }

  /** Nodes that were in the cluster and whose agents stopped answering (their lease ran out). */
  unreachableNodes(): number {
    return this.registry.unreachable;
  }

  /** Pods on the other nodes, by address. */
  remotePods() {
    return this.ipcache.remotePods();
  }

  /**
   * Routing as it really is: the node's stack carries everything until a tunnel device runs, so
   * `native`; noted when other nodes' pod CIDRs are not routed (native without auto-direct-node-routes).
   */
  routing(): Pick<DatapathFeatures, 'routing' | 'routingNote'> {
    const unrouted = this.o.routingMode === 'native' && !this.routes.routesNodes && this.registry.remotes.length > 0;
    return unrouted ? { routing: 'native', routingNote: 'no routes to other nodes: auto-direct-node-routes is off' } : { routing: 'native' };
  }

  close(): void {
    this.registry.close();
    this.ipcache.close();
  }
}
