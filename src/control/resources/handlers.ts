// Per-kind handlers of the resource manager: how a kind is applied, deleted, listed and brought in
// line with the store. Namespaces, LB IP pools, L2 policies, leases, services and policies here; pods and deployments in pods.ts.
import type { Logger } from 'pino';
import type { KVStore } from '../kvstore.ts';
import { ApiError, type ManifestResult, type Pod, type PodSpec, type PolicyImportResult, type PolicySummary, type ResourceView, type Service, type ServiceSpec } from '../types.ts';
import { BUILTIN_NAMESPACES, type KindInfo, type KindName } from './kinds.ts';
import { poolStatuses } from '../lbipam/status.ts';
import { canonical, serviceManifestOf, type Manifest } from './convert.ts';
import { serviceSpecOf } from './user-endpoints.ts';
import type { WorkloadFor } from './workloads.ts';

/** What the manager drives: the endpoint, service and policy managers of the agent. */
export interface ResourceDeps {
  node: string;
  kv: KVStore;
  log: Logger;
  pods: {
    list(): Pod[];
    create(spec: PodSpec): Promise<Pod>;
    delete(namespace: string, name: string): Promise<void>;
    logPath(namespace: string, name: string): string | undefined;
    /** A running pod has these annotations (started, or changed in place). */
    annotated?(namespace: string, name: string, annotations: Record<string, string>): void;
  };
  services: {
    list(): Service[];
    get(namespace: string, name: string): Service | undefined;
    apply(spec: ServiceSpec): Promise<{ service: Service; result: 'created' | 'configured' | 'unchanged' }>;
    delete(namespace: string, name: string): Promise<void>;
  };
  policies: {
    import(objects: unknown[]): Promise<PolicyImportResult>;
    list(): PolicySummary[];
    delete(kind: string, namespace: string | undefined, name: string): Promise<number>;
  };
  /** Tests pass their own. */
  workloadFor?: WorkloadFor;
  /** pod-eviction-timeout: pods of a node NotReady this long are deleted (none: never). */
  podEvictionTimeoutMs?: number;
  /** The kvstore leases held now (L2 announcements), as Lease views. */
  leases?: () => ResourceView[];
}

/** A manifest as the manager keeps it in the store. */
export interface Stored {
  manifest: Manifest;
  createdAt: string;
}

export type ApplyResult = ManifestResult['result'];

/** What a handler may use of the manager: its records in the store, and the other kinds. */
export interface HandlerContext {
  readonly d: ResourceDeps;
  /** When the agent started: the age of built-in namespaces. */
  readonly started: string;
  records(kind: KindName): Map<string, Stored>;
  save(kind: KindName, key: string, value: Stored): Promise<void>;
  forget(kind: KindName, key: string): Promise<void>;
  handler(kind: KindName): KindHandler;
  notFound(info: KindInfo, name: string): ApiError;
}

export interface KindHandler {
  /** Checks that need the agent's state (node, image); throws FieldError. */
  validate?(m: Manifest, path: string): void;
  /** Whether the object exists now (create refuses it, delete needs it). */
  exists(ns: string | undefined, name: string): boolean;
  /** What apply would report, changing nothing (dry run). */
  wouldBe(m: Manifest): ApplyResult;
  apply(m: Manifest): Promise<ApplyResult>;
  /** Removes the object and what depends on it; 404 when absent. */
  delete(ns: string | undefined, name: string): Promise<void>;
  views(): ResourceView[];
  /** The store changed under the manager (another process or node): bring the live object in line. */
  reconcile?(key: string, stored: Stored | undefined, previous: Stored | undefined): Promise<void>;
}

export const CLUSTER = '_';
export const keyOf = (ns: string | undefined, name: string) => `${ns ?? CLUSTER}/${name}`;
const sameAs = (old: Stored | undefined, m: Manifest) => old !== undefined && canonical(old.manifest) === canonical(m);

/** `m` with `status` in place of its own (none when undefined). */
export function withStatus(m: Manifest, status: unknown): Manifest {
  const out: Manifest = { ...m };
  if (status === undefined) delete out.status;
  else out.status = status;
  return out;
}

/** Namespaces, LB IP pools and L2 announcement policies: records, read by LB-IPAM and the L2 announcer. */
export function recordHandler(c: HandlerContext, info: KindInfo): KindHandler {
  const records = () => c.records(info.kind);
  const builtin = (name: string) => info.kind === 'Namespace' && BUILTIN_NAMESPACES.includes(name);
  return {
    exists: (_ns, name) => builtin(name) || records().has(keyOf(undefined, name)),
    wouldBe: (m) => {
      const old = records().get(keyOf(undefined, m.metadata.name));
      return !old ? 'created' : sameAs(old, m) ? 'unchanged' : 'configured';
    },
    apply: async (m) => {
      const key = keyOf(undefined, m.metadata.name);
      const old = records().get(key);
      if (sameAs(old, m)) return 'unchanged';
      const isBuiltin = builtin(m.metadata.name);
      await c.save(info.kind, key, { manifest: m, createdAt: old?.createdAt ?? (isBuiltin ? c.started : new Date().toISOString()) });
      return old || isBuiltin ? 'configured' : 'created';
    },
    delete: async (_ns, name) => {
      if (builtin(name)) throw new ApiError(403, `namespaces "${name}" is forbidden: this namespace may not be deleted`);
      if (!records().has(keyOf(undefined, name))) throw c.notFound(info, name);
      if (info.kind === 'Namespace') await deleteNamespaceContents(c, name);
      await c.forget(info.kind, keyOf(undefined, name));
    },
    views: () => {
      if (info.kind === 'Namespace') return namespaceViews(c);
      const views: ResourceView[] = [...records().values()].map((p) => ({ kind: info.kind, name: p.manifest.metadata.name, createdAt: p.createdAt, manifest: p.manifest, status: {} }));
      if (info.kind !== 'CiliumLoadBalancerIPPool') return views;
      const pools = poolStatuses(c.handler('Service').views(), views);
      return views.map((v) => ({ ...v, status: { ...pools.get(v.name) } }));
    },
  };
}

/** Leases: read-only views of what their owners hold in the kvstore. */
export function leaseHandler(c: HandlerContext, info: KindInfo): KindHandler {
  const views = () => c.d.leases?.() ?? [];
  const readOnly = () => new ApiError(405, `${info.plural} are held by the agents, not applied`);
  return {
    exists: (ns, name) => views().some((v) => v.namespace === ns && v.name === name),
    wouldBe: () => { throw readOnly(); },
    apply: () => Promise.reject(readOnly()),
    delete: () => Promise.reject(readOnly()),
    views,
  };
}

/** Everything in a namespace goes before it: workloads, services, namespaced policies. */
async function deleteNamespaceContents(c: HandlerContext, ns: string): Promise<void> {
  for (const kind of ['Deployment', 'Pod', 'Endpoints', 'EndpointSlice', 'Service', 'CiliumNetworkPolicy', 'NetworkPolicy'] as const) {
    const h = c.handler(kind);
    for (const v of h.views()) if (v.namespace === ns) await h.delete(ns, v.name).catch((e: unknown) => { if (!(e instanceof ApiError && e.statusCode === 404)) throw e; });
  }
}

function namespaceViews(c: HandlerContext): ResourceView[] {
  const records = c.records('Namespace');
  const names = new Set([...BUILTIN_NAMESPACES, ...[...records.values()].map((s) => s.manifest.metadata.name)]);
  return [...names].map((n) => {
    const s = records.get(keyOf(undefined, n));
    return {
      kind: 'Namespace', name: n, createdAt: s?.createdAt ?? c.started,
      manifest: s?.manifest ?? { apiVersion: 'v1', kind: 'Namespace', metadata: { name: n } }, status: { phase: 'Active' },
    };
  });
}

/** Services: the service manager holds the live ones (ClusterIP, frontends); the record keeps the manifest. */
export function serviceHandler(c: HandlerContext, info: KindInfo): KindHandler {
  const records = () => c.records('Service');
  const svc = c.d.services;
  const applyLive = async (key: string, given: Manifest, old: Stored | undefined): Promise<ApplyResult> => {
    // The status belongs to the cluster (LB-IPAM's addresses), as the API server's status subresource: an apply keeps it.
    const m = withStatus(given, old?.manifest.status);
    if (sameAs(old, m) && svc.get(m.metadata.namespace!, m.metadata.name)) return 'unchanged';
    const r = await svc.apply(serviceSpecOf(c, m));
    // The allocated nodePorts go into the stored spec, as the API server writes them: every node reads the same ports.
    const allocated = withNodePorts(m, r.service);
    await c.save('Service', key, { manifest: allocated, createdAt: old?.createdAt ?? r.service.createdAt ?? new Date().toISOString() });
    return r.result === 'created' ? 'created' : r.result === 'unchanged' && sameAs(old, allocated) ? 'unchanged' : 'configured';
  };
  return {
    exists: (ns, name) => svc.get(ns!, name) !== undefined,
    wouldBe: (m) => {
      const old = records().get(keyOf(m.metadata.namespace, m.metadata.name));
      return !svc.get(m.metadata.namespace!, m.metadata.name) ? 'created' : sameAs(old, withStatus(m, old?.manifest.status)) ? 'unchanged' : 'configured';
    },
    apply: (m) => {
      const key = keyOf(m.metadata.namespace, m.metadata.name);
      return applyLive(key, m, records().get(key));
    },
    delete: async (ns, name) => {
      const key = keyOf(ns, name);
      if (!svc.get(ns!, name)) {
        if (records().has(key)) await c.forget('Service', key);
        throw c.notFound(info, name);
      }
      await svc.delete(ns!, name);
      if (records().has(key)) await c.forget('Service', key);
    },
    views: () => svc.list().map((s) => {
      const stored = records().get(keyOf(s.namespace, s.name));
      const status = (stored?.manifest.status ?? {}) as Record<string, unknown>;
      return { kind: 'Service', namespace: s.namespace, name: s.name, createdAt: s.createdAt, manifest: stored?.manifest ?? serviceManifestOf(s), status: { ...status, service: s } };
    }),
    reconcile: async (key, stored) => {
      const [ns, name] = key.split('/');
      if (stored) await svc.apply(serviceSpecOf(c, stored.manifest));
      else if (svc.get(ns, name)) await svc.delete(ns, name);
    },
  };
}

/** A Service manifest with the nodePort of each port the service manager allocated. */
function withNodePorts(m: Manifest, s: Service): Manifest {
  const ports = (m.spec as { ports?: Array<Record<string, unknown>> } | undefined)?.ports;
  if (!ports) return m;
  const nodePort = (p: Record<string, unknown>) => s.ports.find((x) => x.port === p.port && (x.protocol ?? 'TCP') === (p.protocol ?? 'TCP'))?.nodePort;
  return { ...m, spec: { ...(m.spec as object), ports: ports.map((p) => (nodePort(p) ? { ...p, nodePort: nodePort(p) } : p)) } };
}

/** CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy, NetworkPolicy: the policy manager keeps and stores them. */
export function policyHandler(c: HandlerContext, info: KindInfo): KindHandler {
  const pol = c.d.policies;
  const find = (ns: string | undefined, name: string) => pol.list().find((p) => p.kind === info.kind && p.name === name && p.namespace === ns);
  return {
    exists: (ns, name) => find(ns, name) !== undefined,
    wouldBe: (m) => {
      const p = find(m.metadata.namespace, m.metadata.name);
      return !p ? 'created' : canonical(p.object) === canonical(m) ? 'unchanged' : 'configured';
    },
    apply: async (m) => (await pol.import([m])).policies[0]?.result ?? 'configured',
    delete: async (ns, name) => {
      if (!find(ns, name)) throw c.notFound(info, name);
      await pol.delete(info.kind, ns, name);
    },
    views: () => pol.list().filter((p) => p.kind === info.kind).map((p) => ({
      kind: p.kind, ...(p.namespace ? { namespace: p.namespace } : {}), name: p.name, createdAt: '',
      manifest: p.object as Record<string, unknown>, status: { selects: p.selects },
    })),
  };
}
