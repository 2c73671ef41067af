// The ipcache across nodes (Cilium's kvstore ipcache): every agent publishes its pods' addresses
// with their identity and its node IP under cilium/state/ip/v1/default/<ip> (the node's lease), and writes
// the other nodes' pods into its cilium_ipcache with tunnelendpoint = their node IP. Other nodes'
// own addresses carry remote-node, or kube-apiserver where the API server runs (Cilium's identity 7 for a
// remote node serving it; an API server outside the cluster gets it too).
import type { Logger } from 'pino';
import type { LpmTrieMap } from '../maps/index.ts';
import { ipcacheDef, IPCACHE_KEY, IPCACHE_VALUE } from '../maps/cilium/ipcache.ts';
import { RESERVED_IDENTITIES } from '../dataplane/vocab/reserved-identities.ts';
import type { KVLease, KVStore, KVWatch } from './kvstore.ts';
import type { NodeRecord } from './nodes.ts';

const REMOTE_NODE_ID = RESERVED_IDENTITIES['remote-node'];
const KUBE_APISERVER_ID = RESERVED_IDENTITIES['kube-apiserver'];

export const IP_PREFIX = 'cilium/state/ip/v1/default/';

/** Cilium's identity.IPIdentityPair, as stored under the ip prefix. */
export interface IPIdentityPair {
  IP: string;
  Mask: null;
  HostIP: string;
  ID: number;
  Key: number;
  Metadata: string;
  K8sNamespace: string;
  K8sPodName: string;
  NamedPorts: Array<{ name: string; port: number; protocol: string }>;
  /** ciliary's addition: the pod's labels, so other nodes' services select it. */
  Labels: Record<string, string>;
}

/** A pod as published: address, identity, name, labels, named ports. */
export interface PodAddress {
  ip: string;
  identity: number;
  namespace: string;
  name: string;
  labels: Record<string, string>;
  ports: Array<{ name: string; port: number; protocol: string }>;
}

/** A remote pod this agent wrote into cilium_ipcache, and the node IP it lives behind. */
export interface RemotePod extends PodAddress {
  hostIP: string;
}

export class IpcacheSync {
  /** ip → what this agent published for it (the JSON, to skip unchanged puts). */
  private readonly published = new Map<string, string>();
  /** Remote pod ip → its entry. */
  private readonly remote = new Map<string, RemotePod>();
  private readonly key = new Uint8Array(IPCACHE_KEY);
  private readonly value = new Uint8Array(IPCACHE_VALUE);
  private watch?: KVWatch;
  private chain: Promise<void> = Promise.resolve();
  private changeQueued = false;
  /** The API servers' addresses (the kubernetes service's Endpoints). */
  private apiServers = new Set<string>();
  /** Of those, the ones no node has: written here, not by nodeUp. */
  private readonly outsideApiServers = new Set<string>();
  /** Other nodes by name, for rewriting their address when the API servers change. */
  private readonly nodes = new Map<string, NodeRecord>();

  /** `onRemoteChange` runs after other nodes' pods appeared, changed or went (services reselect backends). */
  constructor(private readonly kv: KVStore, private readonly hostIP: string, private readonly ipcache: LpmTrieMap, private readonly lease: KVLease,
    private readonly onRemoteChange: () => void, private readonly log: Logger) {}

  async start(): Promise<void> {
    this.watch = this.kv.watch(IP_PREFIX, (e) => {
      const ip = e.key.slice(IP_PREFIX.length);
      if (e.type === 'delete') return this.forget(ip);
      let p: IPIdentityPair;
      try {
        p = JSON.parse(e.value) as IPIdentityPair;
      } catch {
        this.log.warn({ key: e.key }, 'ipcache sync: ignoring a bad entry');
        return;
      }
      if (p.HostIP === this.hostIP || typeof p.ID !== 'number') return;
      this.remote.set(ip, { ip, identity: p.ID, hostIP: p.HostIP, namespace: p.K8sNamespace, name: p.K8sPodName, labels: p.Labels ?? {}, ports: p.NamedPorts ?? [] });
      this.write(ip, 32, p.ID, p.HostIP);
      this.changed();
    });
    await this.watch.ready;
  }

  /** Publishes this node's pods (the whole current set: what is not in it any more is withdrawn); never rejects. */
  publish(addresses: PodAddress[]): Promise<void> {
    this.chain = this.chain.then(() => this.doPublish(addresses)).catch((e: Error) => this.log.warn({ err: e.message }, 'ipcache sync: publishing failed'));
    return this.chain;
  }

  private async doPublish(addresses: PodAddress[]): Promise<void> {
    const want = new Map<string, string>();
    for (const a of addresses) {
      const pair: IPIdentityPair = {
        IP: a.ip, Mask: null, HostIP: this.hostIP, ID: a.identity, Key: 0, Metadata: '', K8sNamespace: a.namespace, K8sPodName: a.name, NamedPorts: a.ports, Labels: a.labels,
      };
      want.set(a.ip, JSON.stringify(pair));
    }
    for (const [ip, json] of want) {
      if (this.published.get(ip) === json) continue;
      await this.kv.put(IP_PREFIX + ip, json, { lease: this.lease });
      this.published.set(ip, json);
    }
    for (const ip of [...this.published.keys()]) {
      if (want.has(ip)) continue;
      await this.kv.delete(IP_PREFIX + ip);
      this.published.delete(ip);
    }
  }

  /**
   * A node appeared: its own addresses are remote-node (cilium_host's reached through its node IP),
   * or the node's own identity with enable-node-selector-labels.
   */
  nodeUp(n: NodeRecord, identity: number = REMOTE_NODE_ID): void {
    this.nodes.set(n.name, n);
    this.outsideApiServers.delete(n.nodeIP);
    // A per-node identity (enable-node-selector-labels) carries the kube-apiserver label itself.
    const own = identity === REMOTE_NODE_ID && this.apiServers.has(n.nodeIP) ? KUBE_APISERVER_ID : identity;
    this.write(n.nodeIP, 32, own, '0.0.0.0');
    if (n.routerIP) this.write(n.routerIP, 32, identity, n.nodeIP);
  }

  /** A node is gone: its addresses and every pod it hosted leave the ipcache at once (an API server's address stays kube-apiserver). */
  nodeDown(n: NodeRecord): void {
    const ip = n.nodeIP;
    this.nodes.delete(n.name);
    this.erase(ip, 32);
    if (n.routerIP) this.erase(n.routerIP, 32);
    for (const [podIP, e] of this.remote) if (e.hostIP === ip) this.forget(podIP);
    this.writeOutsideApiServers();
  }

  isApiServer(ip: string): boolean {
    return this.apiServers.has(ip);
  }

  /** The API servers' addresses changed; the caller then brings the nodes up again (their identity follows). */
  setApiServers(ips: string[]): void {
    this.apiServers = new Set(ips);
    for (const ip of this.outsideApiServers) {
      if (this.apiServers.has(ip)) continue;
      this.erase(ip, 32);
      this.outsideApiServers.delete(ip);
    }
    this.writeOutsideApiServers();
  }

  /** API server addresses that are neither this node's nor another node's: kube-apiserver, reached directly. */
  private writeOutsideApiServers(): void {
    const nodeIPs = new Set([...this.nodes.values()].map((n) => n.nodeIP));
    for (const ip of this.apiServers) {
      if (ip === this.hostIP || nodeIPs.has(ip)) continue;
      this.write(ip, 32, KUBE_APISERVER_ID, '0.0.0.0');
      this.outsideApiServers.add(ip);
    }
  }

  /** The other nodes' pods. */
  remotePods(): RemotePod[] {
    return [...this.remote.values()];
  }

  private forget(ip: string): void {
    if (!this.remote.delete(ip)) return;
    this.erase(ip, 32);
    this.changed();
  }

  /** One onRemoteChange per burst of watch events (the first sync delivers every pod at once). */
  private changed(): void {
    if (this.changeQueued) return;
    this.changeQueued = true;
    setImmediate(() => {
      this.changeQueued = false;
      this.onRemoteChange();
    });
  }

  private write(ip: string, prefixLen: number, identity: number, tunnelEndpoint: string): void {
    ipcacheDef.encodeKey({ ip, prefixLen }, this.key);
    ipcacheDef.encodeValue({ identity, tunnelEndpoint, encryptKey: 0, flags: 0 }, this.value);
    const rc = this.ipcache.update(this.key, 0, this.value, 0, 0);
    if (rc < 0) this.log.warn({ ip, rc }, 'ipcache sync: cilium_ipcache update failed');
  }

  private erase(ip: string, prefixLen: number): void {
    ipcacheDef.encodeKey({ ip, prefixLen }, this.key);
    this.ipcache.delete(this.key, 0);
  }

  close(): void {
    this.watch?.close();
  }
}
