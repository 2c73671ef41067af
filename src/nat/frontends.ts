// The frontends a service has on this node, as Cilium's service list shows them: its ClusterIP, its
// externalIPs, for NodePort and LoadBalancer services a NodePort frontend per node address plus the
// 0.0.0.0 surrogate, and a LoadBalancer's ingress addresses; with the lb4_service flags each one gets.
import type { ServiceSpec } from '../control/types.ts';
import * as L from '../maps/cilium/lb.ts';

/** Cilium's SVCType names (the `Service Type` column of `cilium service list`). */
export type FrontendType = 'ClusterIP' | 'NodePort' | 'ExternalIPs' | 'LoadBalancer' | 'HostPort';

/** The NodePort surrogate: Cilium's frontend with the unspecified address, listed but never routable. */
export const SURROGATE_ADDRESS = '0.0.0.0';

export interface FrontendAddress {
  address: string;
  port: number;
  protocol: 'TCP' | 'UDP';
  type: FrontendType;
  /** Index into spec.ports: the service port whose backends it has. */
  portIndex: number;
}

export const hasNodePorts = (spec: Pick<ServiceSpec, 'type'>) => spec.type === 'NodePort' || spec.type === 'LoadBalancer';

/** Every frontend of a service, in the order service list numbers them. */
export function frontendAddresses(spec: ServiceSpec, clusterIP: string, nodeIPs: readonly string[]): FrontendAddress[] {
  const out: FrontendAddress[] = [];
  spec.ports.forEach((p, portIndex) => {
    const protocol = p.protocol ?? 'TCP';
    const add = (address: string, port: number, type: FrontendType) => out.push({ address, port, protocol, type, portIndex });
    add(clusterIP, p.port, 'ClusterIP');
    for (const ip of spec.externalIPs ?? []) add(ip, p.port, 'ExternalIPs');
    if (hasNodePorts(spec) && p.nodePort) {
      add(SURROGATE_ADDRESS, p.nodePort, 'NodePort');
      for (const ip of nodeIPs) add(ip, p.nodePort, 'NodePort');
    }
    if (spec.type === 'LoadBalancer') for (const ip of spec.loadBalancerIngress ?? []) add(ip, p.port, 'LoadBalancer');
  });
  return out;
}

/** Whether the frontend serves only this node's backends (externalTrafficPolicy: Local). */
export function isLocalScope(spec: Pick<ServiceSpec, 'externalTrafficPolicy'>, type: FrontendType): boolean {
  return spec.externalTrafficPolicy === 'Local' && type !== 'ClusterIP' && type !== 'HostPort';
}

/** lb4_service flags as Cilium's NewSvcFlag sets them: the type, Local scope, affinity, routable. */
export function serviceFlags(type: FrontendType, address: string, spec: Pick<ServiceSpec, 'externalTrafficPolicy' | 'sessionAffinity'>): number {
  let flags = spec.sessionAffinity === 'ClientIP' ? L.SVC_FLAG_AFFINITY : 0;
  if (type === 'ExternalIPs') flags |= L.SVC_FLAG_EXTERNAL_IP;
  if (type === 'NodePort') flags |= L.SVC_FLAG_NODEPORT;
  if (type === 'LoadBalancer') flags |= L.SVC_FLAG_LOADBALANCER;
  if (type === 'HostPort') flags |= L.SVC_FLAG_HOSTPORT;
  if (isLocalScope(spec, type)) flags |= L.SVC_FLAG_EXT_LOCAL_SCOPE;
  if (type !== 'ClusterIP' && address !== SURROGATE_ADDRESS) flags |= L.SVC_FLAG_ROUTABLE;
  return flags;
}
