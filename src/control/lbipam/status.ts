// What LB-IPAM reads from and writes to the records: pools and LoadBalancer services in, each
// service's status (ingress addresses, the IPRequestSatisfied condition) and each pool's counts out.
import type { ResourceView } from '../types.ts';
import type { Manifest } from '../resources/convert.ts';
import { allocate, servedByLbipam, serviceKey, type LBService, type ServiceAllocation } from './allocator.ts';
import { poolOf, type Pool, type PoolSpecManifest, type PoolStatus } from './pools.ts';

export const IP_REQUEST_SATISFIED = 'cilium.io/IPRequestSatisfied';

/** A status write the resource manager applies: the object's whole new status (undefined removes it). */
export interface StatusUpdate {
  kind: 'Service';
  namespace: string;
  name: string;
  status: Record<string, unknown> | undefined;
}

type ServiceStatus = { loadBalancer?: { ingress?: Array<{ ip?: string }> }; conditions?: Array<{ type: string }> };

/** The pools of the records (every node computes the same from the same records). */
export function poolsOf(views: ResourceView[]): Pool[] {
  return views.map((v) => poolOf(v.name, v.createdAt, (v.manifest.spec ?? {}) as PoolSpecManifest));
}

/** A Service manifest as LB-IPAM reads it. */
export function lbServiceOf(m: Manifest, createdAt: string): LBService {
  const spec = (m.spec ?? {}) as { type?: string; loadBalancerIP?: string; loadBalancerClass?: string; ports?: Array<{ port: number; protocol?: string }> };
  const status = (m.status ?? {}) as ServiceStatus;
  return {
    namespace: m.metadata.namespace ?? 'default', name: m.metadata.name, createdAt,
    type: spec.type ?? 'ClusterIP', labels: m.metadata.labels ?? {}, annotations: m.metadata.annotations ?? {},
    ...(spec.loadBalancerIP ? { loadBalancerIP: spec.loadBalancerIP } : {}),
    ...(spec.loadBalancerClass ? { loadBalancerClass: spec.loadBalancerClass } : {}),
    ports: (spec.ports ?? []).map((p) => ({ port: p.port, protocol: p.protocol ?? 'TCP' })),
    ingress: (status.loadBalancer?.ingress ?? []).flatMap((i) => (i.ip ? [i.ip] : [])),
  };
}

/** The status LB-IPAM writes for an outcome: the ingress addresses and the IPRequestSatisfied condition. */
export function statusFor(a: ServiceAllocation): Record<string, unknown> {
  return {
    loadBalancer: a.ips.length ? { ingress: a.ips.map((ip) => ({ ip })) } : {},
    conditions: [{ type: IP_REQUEST_SATISFIED, status: a.ips.length ? 'True' : 'False', reason: a.reason, message: a.message }],
  };
}

/** The statuses that differ from what the services carry: new outcomes, and addresses to release. */
export function statusUpdates(serviceViews: ResourceView[], poolViews: ResourceView[]): StatusUpdate[] {
  const services = serviceViews.map((v) => ({ v, s: lbServiceOf(v.manifest as Manifest, v.createdAt) }));
  const result = allocate(poolsOf(poolViews), services.map((x) => x.s));
  const updates: StatusUpdate[] = [];
  for (const { v, s } of services) {
    const current = (v.manifest as Manifest).status as ServiceStatus | undefined;
    const outcome = result.services.get(serviceKey(s));
    let next: Record<string, unknown> | undefined;
    if (outcome) next = { ...(current ?? {}), ...statusFor(outcome) };
    else if (!servedByLbipam(s) && (s.ingress.length || current?.conditions?.some((c) => c.type === IP_REQUEST_SATISFIED))) {
      // No longer a LoadBalancer (or another class's): its address goes back to the pool.
      const rest = { ...(current ?? {}) } as Record<string, unknown>;
      delete rest.loadBalancer;
      delete rest.conditions;
      next = Object.keys(rest).length ? rest : undefined;
    } else continue;
    if (JSON.stringify(next) !== JSON.stringify(current)) updates.push({ kind: 'Service', namespace: s.namespace, name: s.name, status: next });
  }
  return updates;
}

/** `get ippools`: each pool's conflict and counts, from the same allocation the leader writes. */
export function poolStatuses(serviceViews: ResourceView[], poolViews: ResourceView[]): Map<string, PoolStatus> {
  return allocate(poolsOf(poolViews), serviceViews.map((v) => lbServiceOf(v.manifest as Manifest, v.createdAt))).pools;
}
