// The kinds made from others, as the cluster's controllers would keep them: Endpoints from services and
// their pods, the one Node, CiliumEndpoints from the agent's endpoints, and kube-system/cilium-config.
import { readFileSync } from 'node:fs';
import { arch, release } from 'node:os';
import type { KubeBackend, KubeObject } from './backend.ts';
import { endpointSliceObjects, replicaSetObjects } from './derived-controllers.ts';

type PodLike = KubeObject & { spec: { containers?: Array<{ ports?: Array<{ name?: string; containerPort: number }> }>; nodeName?: string }; status?: { podIP?: string; conditions?: Array<{ type: string; status: string }> } };
type ServiceLike = KubeObject & { spec: { selector?: Record<string, string>; ports?: Array<{ name?: string; port: number; targetPort?: number | string; protocol?: string }> } };

const matches = (selector: Record<string, string>, labels: Record<string, string> = {}) => Object.entries(selector).every(([k, v]) => labels[k] === v);
const isReady = (p: PodLike) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

const ipOrder = (ip: string) => ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);

function targetPort(port: { port: number; targetPort?: number | string }, pod: PodLike): number | undefined {
  const t = port.targetPort ?? port.port;
  if (typeof t === 'number') return t;
  return (pod.spec.containers ?? []).flatMap((c) => c.ports ?? []).find((p) => p.name === t)?.containerPort;
}

export function endpointsObjects(backend: KubeBackend, namespace?: string): KubeObject[] {
  const pods = backend.list('Pod', namespace) as PodLike[];
  // A selector-less service's Endpoints are the user's own (src/control/resources/user-endpoints.ts).
  const written = new Map(backend.list('Endpoints', namespace).map((e) => [`${e.metadata.namespace}/${e.metadata.name}`, e]));
  return (backend.list('Service', namespace) as ServiceLike[]).flatMap((svc): KubeObject[] => {
    // The endpoints controller leaves selector-less services alone: they have only what the user wrote.
    if (!svc.spec.selector) {
      const own = written.get(`${svc.metadata.namespace}/${svc.metadata.name}`);
      return own ? [own] : [];
    }
    const selected = pods.filter((p) => p.metadata.namespace === svc.metadata.namespace && p.status?.podIP && matches(svc.spec.selector!, p.metadata.labels))
      .sort((a, b) => ipOrder(a.status!.podIP!) - ipOrder(b.status!.podIP!));
    const address = (p: PodLike) => ({ ip: p.status!.podIP!, nodeName: p.spec.nodeName, targetRef: { kind: 'Pod', namespace: p.metadata.namespace, name: p.metadata.name } });
    const ports = (svc.spec.ports ?? []).flatMap((sp) => {
      const n = selected.length ? targetPort(sp, selected[0]) : undefined;
      return n === undefined ? [] : [{ ...(sp.name ? { name: sp.name } : {}), port: n, protocol: sp.protocol ?? 'TCP' }];
    });
    const ready = selected.filter(isReady);
    const notReady = selected.filter((p) => !isReady(p));
    const subsets = selected.length && ports.length
      ? [{ ...(ready.length ? { addresses: ready.map(address) } : {}), ...(notReady.length ? { notReadyAddresses: notReady.map(address) } : {}), ports }] : [];
    return [{
      apiVersion: 'v1', kind: 'Endpoints',
      metadata: { name: svc.metadata.name, namespace: svc.metadata.namespace, creationTimestamp: svc.metadata.creationTimestamp, ...(svc.metadata.labels ? { labels: svc.metadata.labels } : {}) },
      ...(subsets.length ? { subsets } : {}),
    }];
  });
}

function osImage(): string {
  try {
    return /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? 'Linux';
  } catch {
    return 'Linux';
  }
}

export function nodeObjects(backend: KubeBackend): KubeObject[] {
  const goArch = arch() === 'x64' ? 'amd64' : arch();
  return backend.nodes().map((n) => ({
    apiVersion: 'v1', kind: 'Node',
    metadata: { name: n.name, creationTimestamp: n.createdAt.replace(/\.\d+Z$/, 'Z'), labels: { ...n.labels, 'kubernetes.io/arch': goArch } },
    spec: { podCIDR: n.podCIDR, podCIDRs: [n.podCIDR] },
    status: {
      addresses: [{ type: 'InternalIP', address: n.internalIP }, { type: 'Hostname', address: n.name }],
      // A node whose agent stopped renewing its lease is NotReady, as the node lifecycle controller marks a silent kubelet.
      conditions: [n.ready === false
        ? { type: 'Ready', status: 'Unknown', reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.' }
        : { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'ciliary agent is running' }],
      nodeInfo: {
        kubeletVersion: 'v1.32.0', osImage: n.osImage ?? osImage(), kernelVersion: n.kernelVersion ?? release(), containerRuntimeVersion: `ciliary://${n.agentVersion}`,
        operatingSystem: 'linux', architecture: goArch,
      },
    },
  }));
}

export function ciliumEndpointObjects(backend: KubeBackend, namespace?: string): KubeObject[] {
  const pods = new Map(backend.list('Pod', namespace).map((p) => [`${p.metadata.namespace}/${p.metadata.name}`, p]));
  const enforcing = (on: boolean) => ({ enforcing: on, state: on ? 'enforcing' : '<status disabled>' });
  return backend.endpoints().filter((e) => pods.has(`${e.namespace}/${e.pod}`)).map((e) => ({
    apiVersion: 'cilium.io/v2', kind: 'CiliumEndpoint',
    metadata: { name: e.pod, namespace: e.namespace, creationTimestamp: pods.get(`${e.namespace}/${e.pod}`)!.metadata.creationTimestamp, labels: pods.get(`${e.namespace}/${e.pod}`)!.metadata.labels ?? {} },
    status: {
      ...(e.id !== undefined ? { id: e.id } : {}), identity: { id: e.identity, labels: e.labels }, state: e.state,
      networking: { addressing: [{ ipv4: e.ipv4 }], node: e.nodeIP },
      ...(e.policyIngress !== undefined && e.policyEgress !== undefined ? { policy: { ingress: enforcing(e.policyIngress), egress: enforcing(e.policyEgress) } } : {}),
    },
  })).sort((a, b) => a.metadata.namespace.localeCompare(b.metadata.namespace) || a.metadata.name.localeCompare(b.metadata.name));
}

export function configMapObjects(backend: KubeBackend, namespace?: string): KubeObject[] {
  if (namespace !== undefined && namespace !== 'kube-system') return [];
  // The address families are no agent keys (ciliary is IPv4 only), but Cilium's map always says them:
  // `cilium connectivity test` runs no IPv4 action unless enable-ipv4 is "true".
  const entries = { 'enable-ipv4': 'true', 'enable-ipv6': 'false', ...backend.config() };
  const data = Object.fromEntries(Object.entries(entries).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, Array.isArray(v) ? v.join(' ') : String(v)]));
  return [{
    apiVersion: 'v1', kind: 'ConfigMap',
    metadata: { name: 'cilium-config', namespace: 'kube-system', creationTimestamp: backend.node().createdAt.replace(/\.\d+Z$/, 'Z'), labels: { 'app.kubernetes.io/managed-by': 'ciliary' } },
    data,
  }];
}

// ---- kube-system/cilium: the agent as a Cilium cluster shows it (DaemonSet and one hostNetwork pod) ----

const AGENT_LABELS = { 'k8s-app': 'cilium', 'app.kubernetes.io/name': 'cilium-agent', 'app.kubernetes.io/part-of': 'cilium' };
const AGENT_IMAGE = 'quay.io/cilium/cilium:v1.17.6';
const ALPHANUMS = 'bcdfghjklmnpqrstvwxz2456789';

/** cilium-<5 characters>, stable for the node as a DaemonSet pod's name is for its node. */
export function agentPodName(node: string): string {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(node)) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  let s = '';
  for (let i = 0; i < 5; i++, h = Math.floor(h / ALPHANUMS.length)) s += ALPHANUMS[h % ALPHANUMS.length];
  return `cilium-${s}`;
}

/** The node whose agent pod kube-system/<name> is, if it is one. */
export function agentPodNode(backend: KubeBackend, namespace: string | undefined, name: string): string | undefined {
  return namespace === 'kube-system' && name.startsWith('cilium-') ? backend.nodes().find((n) => agentPodName(n.name) === name)?.name : undefined;
}

export function agentPodObjects(backend: KubeBackend, namespace?: string): KubeObject[] {
  if (namespace !== undefined && namespace !== 'kube-system') return [];
  return backend.nodes().map((n) => {
    const started = n.createdAt.replace(/\.\d+Z$/, 'Z');
    return {
      apiVersion: 'v1', kind: 'Pod',
      metadata: { name: agentPodName(n.name), namespace: 'kube-system', creationTimestamp: started, labels: AGENT_LABELS, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'cilium', controller: true }] },
      spec: { nodeName: n.name, hostNetwork: true, containers: [{ name: 'cilium-agent', image: AGENT_IMAGE }] },
      status: {
        phase: 'Running', hostIP: n.internalIP, podIP: n.internalIP, podIPs: [{ ip: n.internalIP }], startTime: started, qosClass: 'Burstable',
        conditions: ['Initialized', 'Ready', 'ContainersReady', 'PodScheduled'].map((type) => ({ type, status: 'True', lastTransitionTime: started })),
        containerStatuses: [{ name: 'cilium-agent', image: AGENT_IMAGE, imageID: '', ready: true, started: true, restartCount: 0, state: { running: { startedAt: started } } }],
      },
    };
  });
}

export function daemonSetObjects(backend: KubeBackend, namespace?: string): KubeObject[] {
  if (namespace !== undefined && namespace !== 'kube-system') return [];
  const started = backend.node().createdAt.replace(/\.\d+Z$/, 'Z');
  const nodes = backend.nodes().length;
  return [{
    apiVersion: 'apps/v1', kind: 'DaemonSet',
    metadata: { name: 'cilium', namespace: 'kube-system', creationTimestamp: started, labels: { 'k8s-app': 'cilium', 'app.kubernetes.io/part-of': 'cilium' } },
    spec: {
      selector: { matchLabels: { 'k8s-app': 'cilium' } },
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 2, maxSurge: 0 } },
      template: { metadata: { labels: AGENT_LABELS }, spec: { hostNetwork: true, nodeSelector: { 'kubernetes.io/os': 'linux' }, containers: [{ name: 'cilium-agent', image: AGENT_IMAGE }] } },
    },
    status: { ...Object.fromEntries(['desiredNumberScheduled', 'currentNumberScheduled', 'numberReady', 'updatedNumberScheduled', 'numberAvailable'].map((k) => [k, nodes])), numberMisscheduled: 0, observedGeneration: 1 },
  }];
}

export function ciliumNodeObjects(backend: KubeBackend): KubeObject[] {
  return backend.nodes().map((n) => ({
    apiVersion: 'cilium.io/v2', kind: 'CiliumNode',
    metadata: { name: n.name, creationTimestamp: n.createdAt.replace(/\.\d+Z$/, 'Z'), labels: n.labels },
    spec: {
      addresses: [{ type: 'InternalIP', ip: n.internalIP }, { type: 'CiliumInternalIP', ip: n.routerIP }],
      ipam: { podCIDRs: [n.podCIDR] },
    },
    status: { ipam: { 'operator-status': {} } },
  }));
}

/** Global identities (256 and up) as the CiliumIdentity CRDs Cilium keeps: the name is the number. */
export function ciliumIdentityObjects(backend: KubeBackend): KubeObject[] {
  const now = backend.node().createdAt.replace(/\.\d+Z$/, 'Z');
  return backend.identities().filter((i) => i.id >= 256 && i.id < 1 << 24).map((i) => {
    const security = Object.fromEntries(i.labels.map((l) => {
      const eq = l.indexOf('=');
      return eq < 0 ? [l, ''] : [l.slice(0, eq), l.slice(eq + 1)];
    }));
    const k8s = Object.fromEntries(Object.entries(security).filter(([k]) => k.startsWith('k8s:')).map(([k, v]) => [k.slice(4), v]));
    return { apiVersion: 'cilium.io/v2', kind: 'CiliumIdentity', metadata: { name: String(i.id), creationTimestamp: now, labels: k8s }, 'security-labels': security };
  });
}

/** The derived kinds by kind name (namespace undefined = all namespaces). */
export const DERIVED: Record<string, (backend: KubeBackend, namespace?: string) => KubeObject[]> = {
  // No controller here records events: describe and get events find none.
  Event: () => [],
  Endpoints: endpointsObjects,
  EndpointSlice: endpointSliceObjects,
  ReplicaSet: replicaSetObjects,
  Lease: (b, ns) => b.leases(ns),
  Node: (b) => nodeObjects(b),
  ConfigMap: configMapObjects,
  DaemonSet: daemonSetObjects,
  CiliumEndpoint: ciliumEndpointObjects,
  CiliumNode: (b) => ciliumNodeObjects(b),
  CiliumIdentity: (b) => ciliumIdentityObjects(b),
};
