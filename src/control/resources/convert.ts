// Manifests → the agent's specs (PodSpec, ServiceSpec), deployment pod names, and synthesized manifests
// for objects made without one (`ciliary run`, `ciliary create service`).
import type { ContainerPort, Pod, PodSpec, Service, ServicePort, ServiceSpec } from '../types.ts';
import type { Workload, WorkloadFor } from './workloads.ts';

export type Manifest = Record<string, unknown> & { metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> } };

export interface ContainerManifest {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: Array<{ name: string; value?: string }>;
  ports?: Array<{ name?: string; containerPort: number; protocol?: 'TCP' | 'UDP' }>;
}

export interface PodSpecManifest {
  containers: ContainerManifest[];
  nodeName?: string;
  restartPolicy?: 'Always' | 'OnFailure' | 'Never';
  hostname?: string;
  nodeSelector?: Record<string, string>;
  affinity?: { podAffinity?: RequiredTerms; podAntiAffinity?: RequiredTerms };
  /** serviceAccount is its deprecated alias. */
  serviceAccountName?: string;
  serviceAccount?: string;
}

export interface RequiredTerms {
  requiredDuringSchedulingIgnoredDuringExecution?: AffinityTerm[];
}

export interface AffinityTerm {
  labelSelector?: { matchLabels?: Record<string, string>; matchExpressions?: Array<{ key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }> };
  topologyKey: string;
  namespaces?: string[];
}

export function containerPorts(c: ContainerManifest): ContainerPort[] {
  return (c.ports ?? []).map((p) => ({ ...(p.name ? { name: p.name } : {}), containerPort: p.containerPort, protocol: p.protocol ?? 'TCP' }));
}

/** The image of pods made by `ciliary run` (POST /v1/pods): the command as given, or no process. */
export const RUN_IMAGE = 'ciliary/run';

/** What the pod's one container runs: the workloads module's program for the image, or command + args. */
export function resolveWorkload(workloadFor: WorkloadFor, c: ContainerManifest): Workload {
  if (c.image === RUN_IMAGE) return { argv: [...(c.command ?? []), ...(c.args ?? [])], env: Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value ?? ''])) };
  return workloadFor({
    image: c.image,
    ...(c.command ? { command: c.command } : {}),
    ...(c.args ? { args: c.args } : {}),
    ...(c.ports ? { ports: containerPorts(c) } : {}),
    ...(c.env ? { env: c.env } : {}),
  });
}

/** A Pod manifest (namespace filled in) → the agent's PodSpec. */
export function toPodSpec(m: Manifest, workloadFor: WorkloadFor): PodSpec {
  const spec = m.spec as PodSpecManifest;
  const c = spec.containers[0];
  const w = resolveWorkload(workloadFor, c);
  if ('error' in w) throw new Error(w.error);
  // The workload's env is the container's, with $(VAR) expanded.
  const env: Record<string, string> = { ...w.env };
  const ports = containerPorts(c);
  return {
    name: m.metadata.name,
    namespace: m.metadata.namespace ?? 'default',
    labels: { ...(m.metadata.labels ?? {}) },
    ...(spec.nodeName ? { node: spec.nodeName } : {}),
    ...(w.argv.length ? { command: w.argv } : {}),
    ...(ports.length ? { ports } : {}),
    process: { env, hostname: spec.hostname ?? m.metadata.name, restartPolicy: spec.restartPolicy ?? 'Always', image: c.image },
    ...(spec.serviceAccountName || spec.serviceAccount ? { serviceAccount: spec.serviceAccountName || spec.serviceAccount } : {}),
  };
}

/** A Service manifest → the agent's ServiceSpec. */
export function toServiceSpec(m: Manifest): ServiceSpec {
  const s = m.spec as {
    type?: ServiceSpec['type']; selector?: Record<string, string>; clusterIP?: string; externalIPs?: string[];
    sessionAffinity?: 'None' | 'ClientIP'; sessionAffinityConfig?: { clientIP?: { timeoutSeconds?: number } };
    ports?: Array<{ name?: string; port: number; targetPort?: number | string; protocol?: 'TCP' | 'UDP'; nodePort?: number }>;
  };
  const ports: ServicePort[] = (s.ports ?? []).map((p) => ({
    ...(p.name ? { name: p.name } : {}),
    port: p.port,
    // A numeric string targetPort ("8080") is a number, as Kubernetes' IntOrString reads it.
    targetPort: typeof p.targetPort === 'string' && /^\d+$/.test(p.targetPort) ? Number(p.targetPort) : (p.targetPort ?? p.port),
    protocol: p.protocol ?? 'TCP',
    ...(p.nodePort ? { nodePort: p.nodePort } : {}),
  }));
  const spec: ServiceSpec = { name: m.metadata.name, namespace: m.metadata.namespace ?? 'default', type: s.type ?? 'ClusterIP', ports };
  if (s.selector) spec.selector = { ...s.selector };
  if (s.clusterIP && s.clusterIP !== 'None') spec.clusterIP = s.clusterIP;
  if (s.externalIPs?.length) spec.externalIPs = [...s.externalIPs];
  if (s.sessionAffinity) spec.sessionAffinity = s.sessionAffinity;
  const timeout = s.sessionAffinityConfig?.clientIP?.timeoutSeconds;
  if (timeout !== undefined) spec.sessionAffinityTimeoutSeconds = timeout;
  const ingress = (m.status as { loadBalancer?: { ingress?: Array<{ ip?: string }> } } | undefined)?.loadBalancer?.ingress ?? [];
  const lbIPs = ingress.flatMap((i) => (i.ip ? [i.ip] : []));
  if (spec.type === 'LoadBalancer' && lbIPs.length) spec.loadBalancerIngress = lbIPs;
  return spec;
}

// ---- deployment pod names: <deployment>-<pod-template-hash>-<5 random> as Kubernetes makes them ----

/** Kubernetes' rand.SafeEncodeString alphabet (no vowels, no confusable digits). */
const ALPHANUMS = 'bcdfghjklmnpqrstvwxz2456789';

function fnv32a(s: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(s, 'utf8')) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Canonical JSON (sorted keys), so equal templates hash alike whatever the key order in the file. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  return JSON.stringify(v) ?? 'null';
}

/** Metadata the API server owns: a manifest read back (`get -o json`) carries it, an apply does not change it. */
const SERVER_METADATA = ['uid', 'resourceVersion', 'creationTimestamp', 'generation', 'managedFields', 'selfLink'];

/** Whether a re-apply changes only what a running pod takes in place (annotations), ignoring status and server metadata. */
export function annotationsOnlyChange(a: Manifest, b: Manifest): boolean {
  const core = (x: Manifest) => {
    const copy: Record<string, unknown> = { ...x, metadata: { ...x.metadata } };
    delete copy.status;
    for (const k of ['annotations', ...SERVER_METADATA]) delete (copy.metadata as Record<string, unknown>)[k];
    return canonical(copy);
  };
  return core(a) === core(b);
}

/** `m` with `annotations` in place of its own (none when undefined). */
export function withAnnotations(m: Manifest, annotations: Record<string, string> | undefined): Manifest {
  const metadata = { ...m.metadata };
  if (annotations && Object.keys(annotations).length) metadata.annotations = annotations;
  else delete metadata.annotations;
  return { ...m, metadata };
}

/** The pod-template-hash: fnv32a of the template, its decimal digits safe-encoded (9-10 characters). */
export function templateHash(template: unknown): string {
  return [...String(fnv32a(canonical(template)))].map((ch) => ALPHANUMS[ch.charCodeAt(0) % ALPHANUMS.length]).join('');
}

export function randomSuffix(n = 5, random: () => number = Math.random): string {
  let s = '';
  for (let i = 0; i < n; i++) s += ALPHANUMS[Math.floor(random() * ALPHANUMS.length)];
  return s;
}

/** A deployment's replica as a Pod manifest. */
export function replicaManifest(deploy: Manifest, podName: string): Manifest {
  const tmpl = (deploy.spec as { template: { metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> }; spec: PodSpecManifest } }).template;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: podName,
      namespace: deploy.metadata.namespace ?? 'default',
      labels: { ...(tmpl.metadata?.labels ?? {}) },
      ...(tmpl.metadata?.annotations ? { annotations: { ...tmpl.metadata.annotations } } : {}),
    },
    spec: structuredClone(tmpl.spec),
  };
}

// ---- manifests for objects that were not applied (ciliary run / create service) ----

/** A pod (or the spec of `ciliary run`) as a Pod manifest. */
export function podManifestOf(p: Pick<Pod, 'name' | 'namespace' | 'labels' | 'command' | 'ports' | 'process'> & { node?: string }): Manifest {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name: p.name, namespace: p.namespace || 'default', labels: { ...(p.labels ?? {}) } },
    spec: {
      ...(p.node ? { nodeName: p.node } : {}),
      containers: [{ name: p.name, image: p.process?.image ?? RUN_IMAGE, ...(p.command ? { command: p.command } : {}), ...(p.ports?.length ? { ports: p.ports } : {}) }],
    },
  };
}

/** A service (or the spec of `ciliary create service` / POST /v1/services) as a Service manifest. */
export function serviceManifestOf(s: Service | ServiceSpec): Manifest {
  return {
    apiVersion: 'v1', kind: 'Service',
    metadata: { name: s.name, namespace: s.namespace || 'default' },
    spec: {
      type: s.type ?? 'ClusterIP', ...(s.clusterIP ? { clusterIP: s.clusterIP } : {}),
      ...(s.selector ? { selector: s.selector } : {}),
      ports: s.ports.map((p) => ({ ...(p.name ? { name: p.name } : {}), port: p.port, targetPort: p.targetPort ?? p.port, protocol: p.protocol ?? 'TCP', ...(p.nodePort ? { nodePort: p.nodePort } : {}) })),
      ...(s.externalIPs?.length ? { externalIPs: s.externalIPs } : {}),
      ...(s.sessionAffinity ? { sessionAffinity: s.sessionAffinity } : {}),
      ...(s.sessionAffinityTimeoutSeconds ? { sessionAffinityConfig: { clientIP: { timeoutSeconds: s.sessionAffinityTimeoutSeconds } } } : {}),
    },
  };
}
