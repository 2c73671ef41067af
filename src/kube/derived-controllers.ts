// What a cluster's controllers keep from the stored kinds: ReplicaSets from deployments and their pods
// (<deployment>-<pod-template-hash>, the name each replica's ownerReference carries), and EndpointSlices
// from the Endpoints of every service.
import { createHash } from 'node:crypto';
import { templateHash } from '../control/resources/convert.ts';
import type { KubeBackend, KubeObject } from './backend.ts';
import { endpointsObjects } from './derived.ts';

type DeploymentLike = KubeObject & { spec: { replicas?: number; selector?: { matchLabels?: Record<string, string> }; template: { metadata?: { labels?: Record<string, string> }; spec?: unknown } } };
type PodLike = KubeObject & { metadata: { ownerReferences?: Array<{ kind: string; name: string }> }; status?: { conditions?: Array<{ type: string; status: string }> } };

const isReady = (p: PodLike) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

/** The ReplicaSet a deployment's pod belongs to (its ownerReference), from the pod's name. */
export function replicaSetOfPod(podName: string, deployment: string): string | undefined {
  const m = /^(.*)-[a-z0-9]{5}$/.exec(podName);
  return m && m[1].startsWith(`${deployment}-`) ? m[1] : undefined;
}

export function replicaSetObjects(backend: KubeBackend, namespace?: string): KubeObject[] {
  const pods = backend.list('Pod', namespace) as PodLike[];
  return (backend.list('Deployment', namespace) as DeploymentLike[]).flatMap((d) => {
    const current = templateHash(d.spec.template);
    const owned = pods.filter((p) => p.metadata.namespace === d.metadata.namespace && p.metadata.ownerReferences?.some((o) => o.kind === 'ReplicaSet' && o.name.startsWith(`${d.metadata.name}-`)));
    const rsName = (p: PodLike) => p.metadata.ownerReferences!.find((o) => o.kind === 'ReplicaSet')!.name;
    // The current template's set, then older ones while their pods are still there (scaled to 0).
    const names = [...new Set([`${d.metadata.name}-${current}`, ...owned.map(rsName)])];
    return names.map((name) => {
      const hash = name.slice(d.metadata.name.length + 1);
      const mine = owned.filter((p) => rsName(p) === name);
      const desired = hash === current ? d.spec.replicas ?? 1 : 0;
      const labels = { ...d.spec.template.metadata?.labels, 'pod-template-hash': hash };
      const created = mine.map((p) => p.metadata.creationTimestamp ?? '').filter(Boolean).sort()[0] ?? d.metadata.creationTimestamp;
      return {
        apiVersion: 'apps/v1', kind: 'ReplicaSet',
        metadata: {
          name, namespace: d.metadata.namespace, creationTimestamp: created, labels,
          ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: d.metadata.name, controller: true, blockOwnerDeletion: true }],
        },
        spec: {
          replicas: desired, selector: { matchLabels: { ...d.spec.selector?.matchLabels, 'pod-template-hash': hash } },
          template: { ...d.spec.template, metadata: { ...d.spec.template.metadata, labels } },
        },
        status: { replicas: mine.length, readyReplicas: mine.filter(isReady).length, availableReplicas: mine.filter(isReady).length, fullyLabeledReplicas: mine.length, observedGeneration: 1 },
      };
    });
  });
}

/** <service>-<5 characters>, stable for the service as the controller's generated name is for its slice. */
function sliceName(service: string): string {
  const h = createHash('sha1').update(service).digest();
  return `${service}-${[...h.subarray(0, 5)].map((b) => 'bcdfghjklmnpqrstvwxz2456789'[b % 27]).join('')}`;
}

export function endpointSliceObjects(backend: KubeBackend, namespace?: string): KubeObject[] {
  // A selector-less service's user-written slices stand in place of the one mirrored from its Endpoints.
  const written = backend.list('EndpointSlice', namespace);
  const served = new Set(written.map((s) => `${s.metadata.namespace}/${s.metadata.labels?.['kubernetes.io/service-name']}`));
  return [...written, ...endpointsObjects(backend, namespace).filter((ep) => !served.has(`${ep.metadata.namespace}/${ep.metadata.name}`)).map((ep) => {
    const subsets = (ep.subsets ?? []) as Array<{ addresses?: Array<Record<string, unknown>>; notReadyAddresses?: Array<Record<string, unknown>>; ports: unknown[] }>;
    const endpoint = (a: Record<string, unknown>, ready: boolean) => ({
      addresses: [a.ip], conditions: { ready, serving: ready, terminating: false }, ...(a.nodeName ? { nodeName: a.nodeName } : {}), targetRef: a.targetRef,
    });
    return {
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
      metadata: {
        name: sliceName(ep.metadata.name), namespace: ep.metadata.namespace, creationTimestamp: ep.metadata.creationTimestamp,
        labels: { ...ep.metadata.labels, 'kubernetes.io/service-name': ep.metadata.name, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' },
        ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: ep.metadata.name, controller: true, blockOwnerDeletion: true }],
      },
      addressType: 'IPv4',
      endpoints: subsets.flatMap((s) => [...(s.addresses ?? []).map((a) => endpoint(a, true)), ...(s.notReadyAddresses ?? []).map((a) => endpoint(a, false))]),
      ports: subsets[0]?.ports ?? null,
    };
  })];
}
