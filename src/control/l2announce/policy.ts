// CiliumL2AnnouncementPolicy as the announcer reads it: which services' addresses this node may
// announce, on which of its interfaces.
import type { ResourceView } from '../types.ts';
import { selectorMatches, type LabelSelector } from '../resources/validate.ts';

export interface L2Policy {
  name: string;
  serviceSelector?: LabelSelector;
  nodeSelector?: LabelSelector;
  /** Regular expressions over interface names; none selects every interface. */
  interfaces: RegExp[];
  externalIPs: boolean;
  loadBalancerIPs: boolean;
}

export interface L2PolicySpecManifest {
  serviceSelector?: LabelSelector;
  nodeSelector?: LabelSelector;
  interfaces?: string[];
  externalIPs?: boolean;
  loadBalancerIPs?: boolean;
}

export function l2PolicyOf(v: ResourceView): L2Policy {
  const spec = (v.manifest.spec ?? {}) as L2PolicySpecManifest;
  return {
    name: v.name,
    ...(spec.serviceSelector ? { serviceSelector: spec.serviceSelector } : {}),
    ...(spec.nodeSelector ? { nodeSelector: spec.nodeSelector } : {}),
    interfaces: (spec.interfaces ?? []).map((r) => new RegExp(r)),
    externalIPs: spec.externalIPs === true,
    loadBalancerIPs: spec.loadBalancerIPs === true,
  };
}

/** What a service offers for announcement. */
export interface AnnouncedService {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  loadBalancerClass?: string;
  /** status.loadBalancer.ingress addresses. */
  loadBalancerIPs: string[];
  externalIPs: string[];
}

/** An address this node answers ARP for on one of its interfaces. */
export interface Announcement {
  ip: string;
  dev: string;
}

/** Cilium's lease name for a service: one lease, one holder, for all of its addresses. */
export const leaseName = (s: Pick<AnnouncedService, 'namespace' | 'name'>) => `cilium-l2announce-${s.namespace}-${s.name}`;

/**
 * The (address, interface) pairs this node would answer for a service, from every policy that selects
 * both the service and this node; empty when none does (a service of another loadBalancerClass is never announced).
 */
export function announcementsFor(s: AnnouncedService, policies: L2Policy[], nodeLabels: Record<string, string>, devices: string[]): Announcement[] {
  if (s.loadBalancerClass !== undefined && s.loadBalancerClass !== 'io.cilium/l2-announcer') return [];
  const labels = { ...s.labels, 'io.kubernetes.service.namespace': s.namespace, 'io.kubernetes.service.name': s.name };
  const out = new Map<string, Announcement>();
  for (const p of policies) {
    if (p.serviceSelector && !selectorMatches(p.serviceSelector, labels)) continue;
    if (p.nodeSelector && !selectorMatches(p.nodeSelector, nodeLabels)) continue;
    const devs = p.interfaces.length ? devices.filter((d) => p.interfaces.some((r) => r.test(d))) : devices;
    const ips = [...(p.loadBalancerIPs ? s.loadBalancerIPs : []), ...(p.externalIPs ? s.externalIPs : [])];
    for (const ip of ips) for (const dev of devs) out.set(`${ip} ${dev}`, { ip, dev });
  }
  return [...out.values()].sort((a, b) => a.ip.localeCompare(b.ip, undefined, { numeric: true }) || a.dev.localeCompare(b.dev));
}
