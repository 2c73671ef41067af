// The kinds `ciliary apply` knows: their apiVersions, kubectl's names for them, and the order they are applied in.

export type KindName =
  | 'Namespace' | 'Pod' | 'Deployment' | 'Service'
  | 'CiliumNetworkPolicy' | 'CiliumClusterwideNetworkPolicy' | 'NetworkPolicy' | 'CiliumLoadBalancerIPPool'
  | 'CiliumL2AnnouncementPolicy' | 'Lease' | 'Endpoints' | 'EndpointSlice';

export interface KindInfo {
  kind: KindName;
  apiVersions: readonly string[];
  /** kubectl's singular resource name in messages: `deployment.apps/web created`. */
  resource: string;
  /** kubectl's plural resource name: `deployments.apps "web" not found`. */
  plural: string;
  /** Everything `ciliary get KIND` accepts for it. */
  aliases: readonly string[];
  namespaced: boolean;
  /** Apply order: namespaces, then policies and pools, services, then workloads (delete runs it backwards). */
  order: number;
}

export const KINDS: readonly KindInfo[] = [
  { kind: 'Namespace', apiVersions: ['v1'], resource: 'namespace', plural: 'namespaces', aliases: ['ns', 'namespace', 'namespaces'], namespaced: false, order: 0 },
  { kind: 'CiliumLoadBalancerIPPool', apiVersions: ['cilium.io/v2alpha1', 'cilium.io/v2'], resource: 'ciliumloadbalancerippool.cilium.io', plural: 'ciliumloadbalancerippools.cilium.io', aliases: ['ippools', 'ippool', 'lbippool', 'lbippools', 'ciliumloadbalancerippool', 'ciliumloadbalancerippools'], namespaced: false, order: 1 },
  { kind: 'CiliumL2AnnouncementPolicy', apiVersions: ['cilium.io/v2alpha1', 'cilium.io/v2'], resource: 'ciliuml2announcementpolicy.cilium.io', plural: 'ciliuml2announcementpolicies.cilium.io', aliases: ['l2announcement', 'l2announcements', 'ciliuml2announcementpolicy', 'ciliuml2announcementpolicies'], namespaced: false, order: 1 },
  { kind: 'CiliumNetworkPolicy', apiVersions: ['cilium.io/v2'], resource: 'ciliumnetworkpolicy.cilium.io', plural: 'ciliumnetworkpolicies.cilium.io', aliases: ['cnp', 'ciliumnp', 'ciliumnetworkpolicy', 'ciliumnetworkpolicies'], namespaced: true, order: 1 },
  { kind: 'CiliumClusterwideNetworkPolicy', apiVersions: ['cilium.io/v2'], resource: 'ciliumclusterwidenetworkpolicy.cilium.io', plural: 'ciliumclusterwidenetworkpolicies.cilium.io', aliases: ['ccnp', 'ciliumclusterwidenetworkpolicy', 'ciliumclusterwidenetworkpolicies'], namespaced: false, order: 1 },
  { kind: 'NetworkPolicy', apiVersions: ['networking.k8s.io/v1'], resource: 'networkpolicy.networking.k8s.io', plural: 'networkpolicies.networking.k8s.io', aliases: ['netpol', 'networkpolicy', 'networkpolicies'], namespaced: true, order: 1 },
  { kind: 'Service', apiVersions: ['v1'], resource: 'service', plural: 'services', aliases: ['svc', 'service', 'services'], namespaced: true, order: 2 },
  // User-written only for a selector-less Service (its backends); a selector's are derived (src/kube/derived.ts).
  { kind: 'Endpoints', apiVersions: ['v1'], resource: 'endpoints', plural: 'endpoints', aliases: ['ep', 'endpoints'], namespaced: true, order: 3 },
  { kind: 'EndpointSlice', apiVersions: ['discovery.k8s.io/v1'], resource: 'endpointslice.discovery.k8s.io', plural: 'endpointslices.discovery.k8s.io', aliases: ['endpointslice', 'endpointslices'], namespaced: true, order: 3 },
  // Read-only here: the holders of the L2 announcement leases (and other kvstore leases) as kubectl lists them.
  { kind: 'Lease', apiVersions: ['coordination.k8s.io/v1'], resource: 'lease.coordination.k8s.io', plural: 'leases.coordination.k8s.io', aliases: ['lease', 'leases'], namespaced: true, order: 3 },
  { kind: 'Pod', apiVersions: ['v1'], resource: 'pod', plural: 'pods', aliases: ['po', 'pod', 'pods'], namespaced: true, order: 3 },
  { kind: 'Deployment', apiVersions: ['apps/v1'], resource: 'deployment.apps', plural: 'deployments.apps', aliases: ['deploy', 'deployment', 'deployments'], namespaced: true, order: 3 },
];

const byKind = new Map<string, KindInfo>(KINDS.map((k) => [k.kind, k]));
const byAlias = new Map<string, KindInfo>();
for (const k of KINDS) {
  for (const a of [...k.aliases, k.kind.toLowerCase(), k.resource, k.plural]) byAlias.set(a, k);
}

export function kindInfo(kind: string): KindInfo | undefined {
  return byKind.get(kind);
}

/** `po`, `pods`, `Deployment`, `deployments.apps`, `cnp`, ... → the kind; undefined when unknown. */
export function kindFromName(word: string): KindInfo | undefined {
  return byAlias.get(word.toLowerCase()) ?? byKind.get(word);
}

/** Namespaces that always exist (and cannot be deleted). */
export const BUILTIN_NAMESPACES = ['default', 'kube-system'];
