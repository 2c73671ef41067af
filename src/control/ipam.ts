// Host-scope IPAM (Cilium's cluster-pool mode): each node owns one pod CIDR from the cluster pool,
// and hands out its addresses to pods. Leases live in the kvstore so a restarted agent keeps them.
import type { KVStore } from './kvstore.ts';
import { subnet } from './cidr.ts';
import { formatCidr, formatIPv4, parseCidr, type Cidr } from '../wire/ip-text.ts';

const POD_CIDR_PREFIX = 'ciliary/ipam/podcidr/';
export const leasePrefix = (node: string) => `ciliary/ipam/leases/${node}/`;

/** The node's pod CIDR: the configured one, the one it had, or the first free subnet of the pool. */
export async function claimPodCidr(kv: KVStore, node: string, configured: string, pool: string, maskSize: number): Promise<Cidr> {
  const mine = (await kv.list(POD_CIDR_PREFIX)).filter((p) => p.value === node);
  if (configured) {
    const c = parseCidr(configured);
    const key = POD_CIDR_PREFIX + formatCidr(c).replace('/', '_');
    const owner = await kv.get(key);
    if (owner && owner !== node) throw new Error(`pod CIDR ${configured} belongs to node ${owner}`);
    for (const p of mine) if (p.key !== key) await kv.delete(p.key);
    await kv.put(key, node);
    return c;
  }
  if (mine.length > 0) return parseCidr(mine[0].key.slice(POD_CIDR_PREFIX.length).replace('_', '/'));
  const p = parseCidr(pool);
  for (let i = 0; i < 2 ** (maskSize - p.bits); i++) {
    const c = subnet(p, maskSize, i);
    if (await kv.createOnly(POD_CIDR_PREFIX + formatCidr(c).replace('/', '_'), node)) return c;
  }
  throw new Error(`cluster pool ${pool} has no free /${maskSize} left`);
}

export class Ipam {
  /** The router (cilium_host) address: the first host address of the pod CIDR. */
  readonly routerIP: string;
  private readonly leases = new Map<string, string>(); // ip → owner

  private constructor(private readonly kv: KVStore, private readonly node: string, readonly cidr: Cidr) {
    this.routerIP = formatIPv4(cidr.base + 1);
  }

  static async open(kv: KVStore, node: string, cidr: Cidr): Promise<Ipam> {
    const ipam = new Ipam(kv, node, cidr);
    for (const p of await kv.list(leasePrefix(node))) ipam.leases.set(p.key.slice(leasePrefix(node).length), p.value);
    ipam.leases.set(ipam.routerIP, 'router');
    return ipam;
  }

  get allocated(): Array<{ ip: string; owner: string }> {
    return [...this.leases].map(([ip, owner]) => ({ ip, owner })).sort((a, b) => a.ip.localeCompare(b.ip, undefined, { numeric: true }));
  }

  async allocate(owner: string): Promise<string> {
    for (let i = 2; i < this.cidr.size - 1; i++) {
      const ip = formatIPv4(this.cidr.base + i);
      if (this.leases.has(ip)) continue;
      if (!(await this.kv.createOnly(leasePrefix(this.node) + ip, owner))) continue;
      this.leases.set(ip, owner);
      return ip;
    }
    throw new Error(`pod CIDR ${formatCidr(this.cidr)} is exhausted`);
  }

  async release(ip: string): Promise<void> {
    if (ip === this.routerIP) return;
    this.leases.delete(ip);
    await this.kv.delete(leasePrefix(this.node) + ip);
  }
}
