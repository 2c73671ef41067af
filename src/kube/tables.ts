// Server-side tables (meta.k8s.io/v1 Table): the columns kubectl prints for each kind, priority 1 for -o wide.
import { humanAge } from '../cli/pods.ts';
import type { KubeObject } from './backend.ts';

interface Column {
  name: string;
  type?: 'string' | 'integer';
  wide?: boolean;
  cell: (o: any, now: number) => string | number;
}

const age = (o: KubeObject, now: number) => (o.metadata.creationTimestamp ? humanAge((now - Date.parse(o.metadata.creationTimestamp)) / 1000) : '<unknown>');
const NAME: Column = { name: 'Name', cell: (o) => o.metadata.name };
const AGE: Column = { name: 'Age', cell: (o, now) => age(o, now) };
const selectorText = (s: Record<string, string> | undefined) => (s && Object.keys(s).length ? Object.entries(s).map(([k, v]) => `${k}=${v}`).join(',') : '<none>');

/** STATUS as kubectl's pod printer derives it: a container's waiting or terminated reason, else the phase. */
function podStatus(p: any): string {
  const cs = p.status?.containerStatuses?.[0];
  if (p.metadata.deletionTimestamp) return 'Terminating';
  return cs?.state?.waiting?.reason ?? cs?.state?.terminated?.reason ?? p.status?.phase ?? 'Unknown';
}

function servicePorts(s: any): string {
  const ports = (s.spec.ports ?? []) as Array<{ port: number; nodePort?: number; protocol?: string }>;
  return ports.length ? ports.map((p) => `${p.port}${p.nodePort ? `:${p.nodePort}` : ''}/${p.protocol ?? 'TCP'}`).join(',') : '<none>';
}

function externalIP(s: any): string {
  const ingress = ((s.status?.loadBalancer?.ingress ?? []) as Array<{ ip: string }>).map((i) => i.ip);
  const ips = [...ingress, ...((s.spec.externalIPs ?? []) as string[])];
  if (ips.length) return ips.join(',');
  return s.spec.type === 'LoadBalancer' ? '<pending>' : '<none>';
}

/** ENDPOINTS: ip:port pairs, the first three and then "+ N more...". */
function endpointsText(e: any): string {
  const pairs: string[] = [];
  for (const s of e.subsets ?? []) for (const a of s.addresses ?? []) for (const p of s.ports ?? []) pairs.push(`${a.ip}:${p.port}`);
  if (!pairs.length) return '<none>';
  return pairs.length > 3 ? `${pairs.slice(0, 3).join(',')} + ${pairs.length - 3} more...` : pairs.join(',');
}

/** ENDPOINTS of a slice: its addresses, the first three and then "+ N more...". */
function endpointSliceText(e: any): string {
  const ips = ((e.endpoints ?? []) as Array<{ addresses: string[] }>).flatMap((x) => x.addresses);
  if (!ips.length) return '<none>';
  return ips.length > 3 ? `${ips.slice(0, 3).join(',')} + ${ips.length - 3} more...` : ips.join(',');
}

const containers = (spec: any) => (spec?.containers ?? []) as Array<{ name: string; image: string }>;
const condition = (o: any, type: string) => ((o.status?.conditions ?? []) as Array<{ type: string; status: string; message?: string }>).find((c) => c.type === type);

const COLUMNS: Record<string, Column[]> = {
  Pod: [
    NAME,
    { name: 'Ready', cell: (p) => `${(p.status?.containerStatuses ?? []).filter((c: any) => c.ready).length}/${containers(p.spec).length}` },
    { name: 'Status', cell: podStatus },
    { name: 'Restarts', type: 'integer', cell: (p) => (p.status?.containerStatuses ?? []).reduce((n: number, c: any) => n + (c.restartCount ?? 0), 0) },
    AGE,
    { name: 'IP', wide: true, cell: (p) => p.status?.podIP || '<none>' },
    { name: 'Node', wide: true, cell: (p) => p.spec.nodeName || '<none>' },
    { name: 'Nominated Node', wide: true, cell: () => '<none>' },
    { name: 'Readiness Gates', wide: true, cell: () => '<none>' },
  ],
  Service: [
    NAME,
    { name: 'Type', cell: (s) => s.spec.type ?? 'ClusterIP' },
    { name: 'Cluster-IP', cell: (s) => s.spec.clusterIP || '<none>' },
    { name: 'External-IP', cell: externalIP },
    { name: 'Port(s)', cell: servicePorts },
    AGE,
    { name: 'Selector', wide: true, cell: (s) => selectorText(s.spec.selector) },
  ],
  Endpoints: [NAME, { name: 'Endpoints', cell: endpointsText }, AGE],
  Node: [
    NAME,
    { name: 'Status', cell: (n) => (condition(n, 'Ready')?.status === 'True' ? 'Ready' : 'NotReady') },
    { name: 'Roles', cell: (n) => Object.keys(n.metadata.labels ?? {}).filter((k) => k.startsWith('node-role.kubernetes.io/')).map((k) => k.split('/')[1]).join(',') || '<none>' },
    AGE,
    { name: 'Version', cell: (n) => n.status.nodeInfo.kubeletVersion },
    { name: 'Internal-IP', wide: true, cell: (n) => n.status.addresses.find((a: any) => a.type === 'InternalIP')?.address ?? '<none>' },
    { name: 'External-IP', wide: true, cell: () => '<none>' },
    { name: 'OS-Image', wide: true, cell: (n) => n.status.nodeInfo.osImage },
    { name: 'Kernel-Version', wide: true, cell: (n) => n.status.nodeInfo.kernelVersion },
    { name: 'Container-Runtime', wide: true, cell: (n) => n.status.nodeInfo.containerRuntimeVersion },
  ],
  Namespace: [NAME, { name: 'Status', cell: (n) => n.status?.phase ?? 'Active' }, AGE],
  ConfigMap: [NAME, { name: 'Data', type: 'integer', cell: (c) => Object.keys(c.data ?? {}).length }, AGE],
  Deployment: [
    NAME,
    { name: 'Ready', cell: (d) => `${d.status?.readyReplicas ?? 0}/${d.spec.replicas ?? 1}` },
    { name: 'Up-to-date', type: 'integer', cell: (d) => d.status?.updatedReplicas ?? 0 },
    { name: 'Available', type: 'integer', cell: (d) => d.status?.availableReplicas ?? 0 },
    AGE,
    { name: 'Containers', wide: true, cell: (d) => containers(d.spec.template?.spec).map((c) => c.name).join(',') },
    { name: 'Images', wide: true, cell: (d) => containers(d.spec.template?.spec).map((c) => c.image).join(',') },
    { name: 'Selector', wide: true, cell: (d) => selectorText(d.spec.selector?.matchLabels) },
  ],
  ReplicaSet: [
    NAME,
    { name: 'Desired', type: 'integer', cell: (r) => r.spec.replicas },
    { name: 'Current', type: 'integer', cell: (r) => r.status.replicas },
    { name: 'Ready', type: 'integer', cell: (r) => r.status.readyReplicas },
    AGE,
    { name: 'Containers', wide: true, cell: (r) => containers(r.spec.template?.spec).map((c) => c.name).join(',') },
    { name: 'Images', wide: true, cell: (r) => containers(r.spec.template?.spec).map((c) => c.image).join(',') },
    { name: 'Selector', wide: true, cell: (r) => selectorText(r.spec.selector?.matchLabels) },
  ],
  EndpointSlice: [
    NAME,
    { name: 'AddressType', cell: (e) => e.addressType },
    { name: 'Ports', cell: (e) => (e.ports?.length ? e.ports.map((p: { port: number }) => p.port).join(',') : '<unset>') },
    { name: 'Endpoints', cell: endpointSliceText },
    AGE,
  ],
  Lease: [NAME, { name: 'Holder', cell: (l) => l.spec.holderIdentity ?? '' }, AGE],
  DaemonSet: [
    NAME,
    { name: 'Desired', type: 'integer', cell: (d) => d.status.desiredNumberScheduled },
    { name: 'Current', type: 'integer', cell: (d) => d.status.currentNumberScheduled },
    { name: 'Ready', type: 'integer', cell: (d) => d.status.numberReady },
    { name: 'Up-to-date', type: 'integer', cell: (d) => d.status.updatedNumberScheduled },
    { name: 'Available', type: 'integer', cell: (d) => d.status.numberAvailable },
    { name: 'Node Selector', cell: (d) => selectorText(d.spec.template.spec.nodeSelector) },
    AGE,
    { name: 'Containers', wide: true, cell: (d) => containers(d.spec.template.spec).map((c) => c.name).join(',') },
    { name: 'Images', wide: true, cell: (d) => containers(d.spec.template.spec).map((c) => c.image).join(',') },
    { name: 'Selector', wide: true, cell: (d) => selectorText(d.spec.selector.matchLabels) },
  ],
  CiliumEndpoint: [
    NAME,
    { name: 'Security Identity', type: 'integer', cell: (e) => e.status.identity.id },
    { name: 'Ingress Enforcement', wide: true, cell: (e) => (e.status.policy ? String(e.status.policy.ingress.enforcing) : '<unknown>') },
    { name: 'Egress Enforcement', wide: true, cell: (e) => (e.status.policy ? String(e.status.policy.egress.enforcing) : '<unknown>') },
    { name: 'Visibility Policy', wide: true, cell: () => '' },
    { name: 'Endpoint State', cell: (e) => e.status.state },
    { name: 'IPv4', cell: (e) => e.status.networking.addressing[0]?.ipv4 ?? '' },
    { name: 'IPv6', cell: () => '' },
  ],
  CiliumNode: [
    NAME,
    { name: 'CiliumInternalIP', cell: (n) => n.spec.addresses.find((a: any) => a.type === 'CiliumInternalIP')?.ip ?? '' },
    { name: 'InternalIP', cell: (n) => n.spec.addresses.find((a: any) => a.type === 'InternalIP')?.ip ?? '' },
    AGE,
  ],
  CiliumIdentity: [NAME, { name: 'Namespace', cell: (i) => i.metadata.labels?.['io.kubernetes.pod.namespace'] ?? '' }, AGE],
  CiliumLoadBalancerIPPool: [
    NAME,
    { name: 'Disabled', cell: (p) => String(p.spec?.disabled ?? false) },
    { name: 'Conflicting', cell: (p) => condition(p, 'cilium.io/PoolConflict')?.status ?? 'False' },
    { name: 'IPs Available', cell: (p) => condition(p, 'cilium.io/IPsAvailable')?.message ?? '' },
    AGE,
  ],
  CiliumNetworkPolicy: [NAME, AGE, { name: 'Valid', cell: (p) => condition(p, 'Valid')?.status ?? 'True' }],
  CiliumClusterwideNetworkPolicy: [NAME, AGE, { name: 'Valid', cell: (p) => condition(p, 'Valid')?.status ?? 'True' }],
  NetworkPolicy: [NAME, { name: 'Pod-Selector', cell: (p) => selectorText(p.spec?.podSelector?.matchLabels) }, AGE],
};

/** The Table of `objects`; rows carry each object's metadata (kubectl prints NAMESPACE and labels from it). */
export function toTable(kind: string, objects: KubeObject[], resourceVersion: string, withObject: boolean, now = Date.now()): Record<string, unknown> {
  const cols = COLUMNS[kind] ?? [NAME, AGE];
  return {
    kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata: { resourceVersion },
    columnDefinitions: cols.map((c) => ({ name: c.name, type: c.type ?? 'string', format: c === NAME ? 'name' : '', description: '', priority: c.wide ? 1 : 0 })),
    rows: objects.map((o) => ({
      cells: cols.map((c) => c.cell(o, now)),
      object: withObject ? o : { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata },
    })),
  };
}
