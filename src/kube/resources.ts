// The resources the API subset serves, as discovery lists them: group, version, names, verbs. `stored` names
// the backend kind behind a resource; the others are derived (nodes, endpoints, ciliumendpoints, configmaps).
// Endpoints and EndpointSlices are both: written for selector-less services, read as the controllers keep them.
import { KINDS } from '../control/resources/kinds.ts';
import type { StoredKind } from './backend.ts';

export interface KubeResource {
  group: string;
  version: string;
  plural: string;
  singular: string;
  kind: string;
  namespaced: boolean;
  shortNames?: string[];
  verbs: string[];
  categories?: string[];
  stored?: StoredKind;
  /** Subresources (pods/log, pods/exec) with their verbs. */
  subresources?: Record<string, string[]>;
}

const RW = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'];
const RO = ['get', 'list', 'watch'];

const SERVED: readonly KubeResource[] = [
  { group: '', version: 'v1', plural: 'namespaces', singular: 'namespace', kind: 'Namespace', namespaced: false, shortNames: ['ns'], verbs: RW, stored: 'Namespace' },
  { group: '', version: 'v1', plural: 'pods', singular: 'pod', kind: 'Pod', namespaced: true, shortNames: ['po'], verbs: RW, categories: ['all'], stored: 'Pod', subresources: { log: ['get'], exec: ['create', 'get'] } },
  { group: '', version: 'v1', plural: 'services', singular: 'service', kind: 'Service', namespaced: true, shortNames: ['svc'], verbs: RW, categories: ['all'], stored: 'Service' },
  { group: '', version: 'v1', plural: 'endpoints', singular: 'endpoints', kind: 'Endpoints', namespaced: true, shortNames: ['ep'], verbs: RW, stored: 'Endpoints' },
  { group: '', version: 'v1', plural: 'nodes', singular: 'node', kind: 'Node', namespaced: false, shortNames: ['no'], verbs: RO },
  { group: '', version: 'v1', plural: 'events', singular: 'event', kind: 'Event', namespaced: true, shortNames: ['ev'], verbs: RO },
  { group: '', version: 'v1', plural: 'configmaps', singular: 'configmap', kind: 'ConfigMap', namespaced: true, shortNames: ['cm'], verbs: RO },
  { group: 'apps', version: 'v1', plural: 'deployments', singular: 'deployment', kind: 'Deployment', namespaced: true, shortNames: ['deploy'], verbs: RW, categories: ['all'], stored: 'Deployment', subresources: { scale: ['get', 'patch', 'update'] } },
  { group: 'apps', version: 'v1', plural: 'replicasets', singular: 'replicaset', kind: 'ReplicaSet', namespaced: true, shortNames: ['rs'], verbs: RO, categories: ['all'] },
  { group: 'discovery.k8s.io', version: 'v1', plural: 'endpointslices', singular: 'endpointslice', kind: 'EndpointSlice', namespaced: true, verbs: RW, stored: 'EndpointSlice' },
  { group: 'coordination.k8s.io', version: 'v1', plural: 'leases', singular: 'lease', kind: 'Lease', namespaced: true, verbs: RO },
  { group: 'apps', version: 'v1', plural: 'daemonsets', singular: 'daemonset', kind: 'DaemonSet', namespaced: true, shortNames: ['ds'], verbs: RO, categories: ['all'] },
  { group: 'networking.k8s.io', version: 'v1', plural: 'networkpolicies', singular: 'networkpolicy', kind: 'NetworkPolicy', namespaced: true, shortNames: ['netpol'], verbs: RW, stored: 'NetworkPolicy' },
  { group: 'cilium.io', version: 'v2', plural: 'ciliumnetworkpolicies', singular: 'ciliumnetworkpolicy', kind: 'CiliumNetworkPolicy', namespaced: true, shortNames: ['cnp', 'ciliumnp'], verbs: RW, categories: ['cilium', 'ciliumpolicy'], stored: 'CiliumNetworkPolicy' },
  { group: 'cilium.io', version: 'v2', plural: 'ciliumclusterwidenetworkpolicies', singular: 'ciliumclusterwidenetworkpolicy', kind: 'CiliumClusterwideNetworkPolicy', namespaced: false, shortNames: ['ccnp'], verbs: RW, categories: ['cilium', 'ciliumpolicy'], stored: 'CiliumClusterwideNetworkPolicy' },
  { group: 'cilium.io', version: 'v2', plural: 'ciliumendpoints', singular: 'ciliumendpoint', kind: 'CiliumEndpoint', namespaced: true, shortNames: ['cep', 'ciliumep'], verbs: RO, categories: ['cilium'] },
  { group: 'cilium.io', version: 'v2', plural: 'ciliumnodes', singular: 'ciliumnode', kind: 'CiliumNode', namespaced: false, shortNames: ['cn', 'ciliumn'], verbs: RO, categories: ['cilium'] },
  { group: 'cilium.io', version: 'v2', plural: 'ciliumidentities', singular: 'ciliumidentity', kind: 'CiliumIdentity', namespaced: false, shortNames: ['ciliumid'], verbs: RO, categories: ['cilium'] },
];

/** The resource manager's kinds the list above does not name (pools, L2 announcement policies), as its table registers them. */
function managerResources(): KubeResource[] {
  return KINDS.filter((k) => !SERVED.some((r) => r.kind === k.kind)).map((k) => {
    const [group, version] = k.apiVersions[0].includes('/') ? k.apiVersions[0].split('/') : ['', k.apiVersions[0]];
    const plural = k.plural.split('.')[0];
    const singular = k.resource.split('.')[0];
    const shortNames = k.aliases.filter((a) => a !== plural && a !== singular);
    return {
      group, version, plural, singular, kind: k.kind, namespaced: k.namespaced, verbs: RW, stored: k.kind,
      ...(shortNames.length ? { shortNames } : {}), ...(group === 'cilium.io' ? { categories: ['cilium'] } : {}),
    };
  });
}

export const RESOURCES: readonly KubeResource[] = [...SERVED, ...managerResources()];

export const groupVersion = (r: { group: string; version: string }) => (r.group ? `${r.group}/${r.version}` : r.version);

/** The resource a request path names: /api/v1/<plural> or /apis/<group>/<version>/<plural>. */
export function findResource(group: string, version: string, plural: string): KubeResource | undefined {
  return RESOURCES.find((r) => r.group === group && r.version === version && r.plural === plural);
}

export function resourceOfKind(apiVersion: string, kind: string): KubeResource | undefined {
  return RESOURCES.find((r) => groupVersion(r) === apiVersion && r.kind === kind);
}

/** GET /api/v1, /apis/<group>/<version>: the APIResourceList. */
export function resourceList(group: string, version: string): Record<string, unknown> | undefined {
  const rs = RESOURCES.filter((r) => r.group === group && r.version === version);
  if (!rs.length) return undefined;
  return {
    kind: 'APIResourceList', apiVersion: 'v1', groupVersion: groupVersion({ group, version }),
    resources: rs.flatMap((r) => [
      {
        name: r.plural, singularName: r.singular, namespaced: r.namespaced, kind: r.kind, verbs: r.verbs,
        ...(r.shortNames ? { shortNames: r.shortNames } : {}), ...(r.categories ? { categories: r.categories } : {}),
      },
      ...Object.entries(r.subresources ?? {}).map(([sub, verbs]) => ({ name: `${r.plural}/${sub}`, singularName: '', namespaced: r.namespaced, kind: sub === 'exec' ? 'PodExecOptions' : sub === 'scale' ? 'Scale' : r.kind, ...(sub === 'scale' ? { group: 'autoscaling', version: 'v1' } : {}), verbs })),
    ]),
  };
}

/** GET /apis: every named group with its versions (the first is preferred). */
export function groupList(): Record<string, unknown> {
  const groups = new Map<string, string[]>();
  for (const r of RESOURCES) {
    if (!r.group) continue;
    const vs = groups.get(r.group) ?? [];
    if (!vs.includes(r.version)) vs.push(r.version);
    groups.set(r.group, vs);
  }
  return {
    kind: 'APIGroupList', apiVersion: 'v1',
    groups: [...groups].map(([name, versions]) => ({
      name, versions: versions.map((version) => ({ groupVersion: `${name}/${version}`, version })),
      preferredVersion: { groupVersion: `${name}/${versions[0]}`, version: versions[0] },
    })),
  };
}
