// What another node's arrival changes in this node's routing: in native mode with
// auto-direct-node-routes a kernel route to its pod CIDR via its node IP; in tunnel mode an entry
// of cilium_tunnel_map (pod CIDR → node IP) and, as Cilium's, a kernel route to the CIDR through
// cilium_host with the tunnel's MTU, so the node's own packets (DNS replies, health) are encapsulated too.
// All go when the node goes.
import type { Logger } from 'pino';
import type { HashMap } from '../maps/index.ts';
import { tunnelDef, TUNNEL_ENTRY } from '../maps/cilium/tunnel.ts';
import { formatIPv4, parseCidr } from '../wire/ip-text.ts';
import { ipBatch, run } from './sh.ts';
import { HOST_IFNAME as HOST_DEVICE } from './host.ts';
import type { NodeRecord } from './nodes.ts';

export type RoutingMode = 'native' | 'tunnel';

/** The `proto` of the routes this agent installs, so a restarted agent finds those it no longer wants. */
export const NODE_ROUTE_PROTO = 199;

export class NodeRoutes {
  /** node name → the `ip route` destination and gateway this agent installed. */
  private readonly installed = new Map<string, { cidr: string; via: string }>();
  private readonly key = new Uint8Array(TUNNEL_ENTRY);
  private readonly value = new Uint8Array(TUNNEL_ENTRY);
  private chain: Promise<void> = Promise.resolve();

  /** `tunnelMtu`: the MTU of the routes through cilium_host in tunnel mode (the pods' MTU). */
  constructor(private readonly mode: RoutingMode, private readonly directRoutes: boolean, private readonly tunnel: HashMap, private readonly clusterId: number, private readonly log: Logger, private readonly tunnelMtu = 0) {}

  /** True when kernel routes to the other nodes are this agent's job (native + auto-direct-node-routes). */
  get routesNodes(): boolean {
    return this.mode === 'native' && this.directRoutes;
  }

  /** True when this agent installs kernel routes to the other nodes' pod CIDRs (either mode). */
  private get installsRoutes(): boolean {
    return this.routesNodes || (this.mode === 'tunnel' && this.tunnelMtu > 0);
  }

  upsert(n: NodeRecord): void {
    const cidr = parseCidr(n.podCIDR);
    const via = n.nodeIP;
    if (this.mode === 'tunnel') {
      tunnelDef.encodeKey({ ip: formatIPv4(cidr.base), clusterId: this.clusterId }, this.key);
      tunnelDef.encodeValue({ ip: via, key: 0 }, this.value);
      if (this.tunnel.update(this.key, 0, this.value, 0, 0) < 0) this.log.warn({ node: n.name }, 'cilium_tunnel_map update failed');
      if (!this.installsRoutes) return;
      this.installed.set(n.name, { cidr: n.podCIDR, via: '' });
      this.queue(`route replace ${n.podCIDR} dev ${HOST_DEVICE} proto ${NODE_ROUTE_PROTO} mtu ${this.tunnelMtu}`, n.name);
      return;
    }
    if (!this.routesNodes) return;
    this.installed.set(n.name, { cidr: n.podCIDR, via });
    this.queue(`route replace ${n.podCIDR} via ${via} proto ${NODE_ROUTE_PROTO}`, n.name);
  }

  remove(n: NodeRecord): void {
    if (this.mode === 'tunnel') {
      tunnelDef.encodeKey({ ip: formatIPv4(parseCidr(n.podCIDR).base), clusterId: this.clusterId }, this.key);
      this.tunnel.delete(this.key, 0);
    }
    const r = this.installed.get(n.name);
    if (!r) return;
    this.installed.delete(n.name);
    this.queue(`route del ${r.cidr} ${r.via ? `via ${r.via}` : `dev ${HOST_DEVICE}`} proto ${NODE_ROUTE_PROTO}`, n.name);
  }

  /**
   * After the registry's first sync: removes the routes a previous agent process installed for nodes
   * that are gone now (they vanished while no agent watched).
   */
  prune(): Promise<void> {
    if (!this.installsRoutes) return Promise.resolve();
    this.chain = this.chain.then(async () => {
      const wanted = new Set([...this.installed.values()].map((r) => r.cidr));
      const out = await run('ip', ['-4', 'route', 'show', 'proto', String(NODE_ROUTE_PROTO)]);
      const stale = out.split('\n').map((l) => l.split(' ')[0]).filter((dst) => dst && !wanted.has(dst));
      if (stale.length) await ipBatch(stale.map((dst) => `route del ${dst} proto ${NODE_ROUTE_PROTO}`));
    }).catch((e: Error) => this.log.warn({ err: e.message }, 'node routes: pruning stale routes failed'));
    return this.chain;
  }

  /** Routes are changed one `ip` run at a time, in the order the nodes came and went. */
  private queue(line: string, node: string): void {
    this.chain = this.chain.then(() => ipBatch([line]).then(() => undefined)).catch((e: Error) => {
      this.log.warn({ node, err: e.message }, `node route: ${line} failed`);
    });
  }

  /** Resolves when every queued route change ran (tests, shutdown). */
  settled(): Promise<void> {
    return this.chain;
  }
}
