// LB-IPAM's allocation, a pure function of the pools and the LoadBalancer services (with the addresses
// their status holds now): addresses already held stay where they are still valid, requests
// (lbipam.cilium.io/ips, spec.loadBalancerIP) are honoured, sharing keys share, the rest get the
// first free address of the oldest matching pool, in the order the services were created.
import { formatIPv4, tryParseIPv4 } from '../../wire/ip-text.ts';
import { selectorMatches } from '../resources/validate.ts';
import { byAge, conflicts, poolContains, poolStatusOf, type Pool, type PoolStatus } from './pools.ts';

export const ANNOTATION_IPS = 'lbipam.cilium.io/ips';
export const ANNOTATION_SHARING_KEY = 'lbipam.cilium.io/sharing-key';
export const ANNOTATION_SHARING_CROSS_NAMESPACE = 'lbipam.cilium.io/sharing-cross-namespace';
/** Classes LB-IPAM serves besides none (Cilium's L2 announcer and BGP control plane). */
const CILIUM_CLASSES = ['io.cilium/l2-announcer', 'io.cilium/bgp-control-plane'];

export interface LBService {
  namespace: string;
  name: string;
  createdAt: string;
  type: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  loadBalancerIP?: string;
  loadBalancerClass?: string;
  ports: Array<{ port: number; protocol: string }>;
  /** status.loadBalancer.ingress now. */
  ingress: string[];
}

/** A service's outcome: its addresses, or none and why (Cilium's cilium.io/IPRequestSatisfied condition). */
export interface ServiceAllocation {
  ips: string[];
  reason: 'satisfied' | 'no_pool' | 'already_allocated' | 'pool_exhausted';
  message: string;
}

export interface AllocationResult {
  /** "namespace/name" → outcome, for every LoadBalancer service LB-IPAM serves. */
  services: Map<string, ServiceAllocation>;
  pools: Map<string, PoolStatus>;
}

export const serviceKey = (s: Pick<LBService, 'namespace' | 'name'>) => `${s.namespace}/${s.name}`;

/** Whether LB-IPAM hands this service addresses at all (type LoadBalancer, no foreign class). */
export function servedByLbipam(s: Pick<LBService, 'type' | 'loadBalancerClass'>): boolean {
  return s.type === 'LoadBalancer' && (s.loadBalancerClass === undefined || CILIUM_CLASSES.includes(s.loadBalancerClass));
}

/** Requested addresses: the annotation (comma-separated) wins over the legacy spec.loadBalancerIP. */
export function requestedIPs(s: LBService): string[] {
  const text = s.annotations[ANNOTATION_IPS] ?? s.loadBalancerIP ?? '';
  return text.split(',').map((x) => x.trim()).filter((x) => x !== '');
}

function poolMatches(p: Pool, s: LBService): boolean {
  if (!p.serviceSelector) return true;
  // Cilium lets a pool select by namespace and name through these two labels.
  return selectorMatches(p.serviceSelector, { ...s.labels, 'io.kubernetes.service.namespace': s.namespace, 'io.kubernetes.service.name': s.name });
}

/** Two services may hold one address: the same sharing key, the same namespace (unless both allow any), no port in common. */
function canShare(a: LBService, b: LBService): boolean {
  const key = a.annotations[ANNOTATION_SHARING_KEY];
  if (key === undefined || key !== b.annotations[ANNOTATION_SHARING_KEY]) return false;
  const crossOk = (s: LBService, other: string) => {
    const allowed = (s.annotations[ANNOTATION_SHARING_CROSS_NAMESPACE] ?? '').split(',').map((x) => x.trim());
    return allowed.includes('*') || allowed.includes(other);
  };
  if (a.namespace !== b.namespace && !(crossOk(a, b.namespace) && crossOk(b, a.namespace))) return false;
  return !a.ports.some((p) => b.ports.some((q) => p.port === q.port && p.protocol === q.protocol));
}

export function allocate(poolList: Pool[], services: LBService[]): AllocationResult {
  const conflicted = conflicts(poolList);
  const pools = byAge(poolList).filter((p) => !conflicted.has(p.name));
  const owners = new Map<number, { pool: string; services: LBService[] }>();
  const out = new Map<string, ServiceAllocation>();
  const served = services.filter(servedByLbipam).sort((a, b) => a.createdAt.localeCompare(b.createdAt) || serviceKey(a).localeCompare(serviceKey(b)));
  const shareable = (ip: number, s: LBService) => (owners.get(ip)?.services ?? []).every((o) => canShare(o, s));
  const take = (ip: number, pool: string, s: LBService) => {
    const o = owners.get(ip);
    if (o) o.services.push(s);
    else owners.set(ip, { pool, services: [s] });
    out.set(serviceKey(s), { ips: [formatIPv4(ip)], reason: 'satisfied', message: '' });
  };
  const poolFor = (ip: number, s: LBService, forNew: boolean) => pools.find((p) => poolContains(p, ip) && poolMatches(p, s) && !(forNew && p.disabled));

  // Addresses held now stay while their pool still serves the service (a disabled pool keeps them).
  for (const s of served) {
    const requested = requestedIPs(s);
    for (const text of s.ingress) {
      const ip = tryParseIPv4(text);
      if (ip === undefined || (requested.length && !requested.includes(text)) || out.has(serviceKey(s))) continue;
      const pool = poolFor(ip, s, false);
      if (pool && shareable(ip, s)) take(ip, pool.name, s);
    }
  }
  for (const s of served) {
    if (out.has(serviceKey(s))) continue;
    const pending = (reason: ServiceAllocation['reason'], message: string) => out.set(serviceKey(s), { ips: [], reason, message });
    const requested = requestedIPs(s);
    if (requested.length) {
      // One address per family: the first requested IPv4 address that can be had.
      let why: [ServiceAllocation['reason'], string] = ['no_pool', `No pool serves the requested IP ${requested.join(',')}`];
      for (const text of requested) {
        const ip = tryParseIPv4(text);
        const pool = ip === undefined ? undefined : poolFor(ip, s, true);
        if (!pool || ip === undefined) continue;
        if (shareable(ip, s)) {
          take(ip, pool.name, s);
          break;
        }
        why = ['already_allocated', `The IP ${text} is already allocated to a service it cannot share with`];
      }
      if (!out.has(serviceKey(s))) pending(...why);
      continue;
    }
    const matching = pools.filter((p) => !p.disabled && poolMatches(p, s));
    if (!matching.length) {
      pending('no_pool', 'There are no enabled CiliumLoadBalancerIPPools that match this service');
      continue;
    }
    if (s.annotations[ANNOTATION_SHARING_KEY] !== undefined) {
      const shared = [...owners].find(([ip, o]) => matching.some((p) => p.name === o.pool && poolContains(p, ip)) && shareable(ip, s));
      if (shared) {
        take(shared[0], shared[1].pool, s);
        continue;
      }
    }
    const free = firstFree(matching, owners);
    if (free) take(free.ip, free.pool, s);
    else pending('pool_exhausted', 'All matching pools are exhausted');
  }

  const used = new Map<string, number>();
  for (const o of owners.values()) used.set(o.pool, (used.get(o.pool) ?? 0) + 1);
  const poolStatus = new Map(poolList.map((p) => [p.name, poolStatusOf(p, conflicted.get(p.name), used.get(p.name) ?? 0)]));
  return { services: out, pools: poolStatus };
}

function firstFree(pools: Pool[], owners: Map<number, unknown>): { ip: number; pool: string } | undefined {
  for (const p of pools) {
    for (const r of p.ranges) {
      for (let ip = r.first; ip <= r.last; ip++) if (!owners.has(ip)) return { ip, pool: p.name };
    }
  }
  return undefined;
}
