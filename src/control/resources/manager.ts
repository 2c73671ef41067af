// The resource manager: Kubernetes objects applied with `ciliary apply -f` — namespaces, pods, deployments,
// services, policies, LB IP pools. It validates a whole apply before changing anything, applies in
// dependency order, rolls back what it created when a step fails, keeps deployments at their replica
// count, and stores manifests in the kvstore so `get -o yaml` and re-applies see what was applied.
import type { Logger } from 'pino';
import type { KVStore } from '../kvstore.ts';
import {
  ApiError, ManifestError, type ManifestResult, type Pod, type PodSpec, type PolicyImportResult, type PolicySummary,
  type ResourceApi, type ResourceView, type Service, type ServiceSpec,
} from '../types.ts';
import { BUILTIN_NAMESPACES, kindFromName, kindInfo, type KindInfo, type KindName } from './kinds.ts';
import { FieldError, selectorMatches, validateManifest } from './validate.ts';
import { tryParseCidr, tryParseIPv4 } from '../../wire/ip-text.ts';
import {
  annotationsOnlyChange, canonical, podManifestOf, randomSuffix, withAnnotations, replicaManifest, resolveWorkload, serviceManifestOf, templateHash, toPodSpec, toServiceSpec,
  type Manifest, type PodSpecManifest,
} from './convert.ts';
import { loadWorkloadFor, type WorkloadFor } from './workloads.ts';
import { bandwidthAnnotationProblem } from '../bandwidth.ts';

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
}

interface Stored {
  manifest: Manifest;
  createdAt: string;
}

interface PodRecord extends Stored {
  /** Deployment name, for its replicas. */
  owner?: string;
  hash?: string;
  /** Why the pod is not running (anti-affinity); it has no endpoint then. */
  pending?: string;
}

type Store = 'Namespace' | 'Pod' | 'Deployment' | 'Service' | 'CiliumLoadBalancerIPPool';
const POLICY_KINDS: readonly KindName[] = ['CiliumNetworkPolicy', 'CiliumClusterwideNetworkPolicy', 'NetworkPolicy'];
const CLUSTER = '_';

const keyOf = (ns: string | undefined, name: string) => `${ns ?? CLUSTER}/${name}`;

export class ResourceManager implements ResourceApi {
  private readonly stores: Record<Store, Map<string, Stored>> = {
    Namespace: new Map(), Pod: new Map(), Deployment: new Map(), Service: new Map(), CiliumLoadBalancerIPPool: new Map(),
  };
  private chain: Promise<unknown> = Promise.resolve();
  private workloadFor!: WorkloadFor;
  private readonly started = new Date().toISOString();

  constructor(private readonly d: ResourceDeps) {}

  private get prefix(): string {
    return `ciliary/resources/${this.d.node}/`;
  }

  private get podRecords(): Map<string, PodRecord> {
    return this.stores.Pod as Map<string, PodRecord>;
  }

  /** Loads stored manifests, drops replicas whose pod is gone, and brings deployments back to their count. */
  async restore(): Promise<void> {
    this.workloadFor = this.d.workloadFor ?? (await loadWorkloadFor());
    for (const e of await this.d.kv.list(this.prefix)) {
      const [kind, ...rest] = e.key.slice(this.prefix.length).split('/');
      const store = this.stores[kind as Store];
      if (store) store.set(rest.join('/'), JSON.parse(e.value) as Stored);
    }
    await this.locked(async () => {
      const live = new Set(this.d.pods.list().map((p) => `${p.namespace}/${p.name}`));
      for (const [key, r] of [...this.podRecords]) {
        if (!r.pending && !live.has(key)) await this.forget('Pod', key);
      }
      for (const key of this.stores.Deployment.keys()) await this.reconcile(key);
      await this.schedulePending();
    });
  }

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async save(kind: Store, key: string, value: Stored): Promise<void> {
    this.stores[kind].set(key, value);
    await this.d.kv.put(`${this.prefix}${kind}/${key}`, JSON.stringify(value));
  }

  private async forget(kind: Store, key: string): Promise<void> {
    this.stores[kind].delete(key);
    await this.d.kv.delete(`${this.prefix}${kind}/${key}`);
  }

  // ---- apply -----------------------------------------------------------------------------------

  apply(objects: unknown[], opts: { dryRun?: boolean } = {}): Promise<ManifestResult[]> {
    return this.locked(() => this.applyLocked(objects, opts));
  }

  /** Validates every object (kind, fields, namespace, node, image) before anything changes. */
  private validateAll(objects: unknown[]): Array<{ info: KindInfo; m: Manifest; index: number }> {
    const items: Array<{ info: KindInfo; m: Manifest; index: number }> = [];
    const newNamespaces = new Set<string>();
    objects.forEach((o, index) => {
      const fail = (e: FieldError, m?: unknown): never => {
        const meta = (m as Manifest | undefined)?.metadata;
        const kind = (m as { kind?: unknown } | undefined)?.kind;
        const who = typeof kind === 'string' && typeof meta?.name === 'string' ? `${kind} "${meta.name}": ` : '';
        throw new ManifestError(400, `${who}${e.message}`, index + 1, e.path);
      };
      let info: KindInfo;
      try {
        info = validateManifest(o);
      } catch (e) {
        if (e instanceof FieldError) fail(e, o);
        throw e;
      }
      const m = structuredClone(o) as Manifest;
      if (info!.namespaced) m.metadata.namespace ??= 'default';
      else delete m.metadata.namespace;
      if (info!.kind === 'Namespace') newNamespaces.add(m.metadata.name);
      items.push({ info: info!, m, index });
    });
    for (const { info, m, index } of items) {
      const fail = (path: string, reason: string): never => {
        throw new ManifestError(400, `${info.kind} "${m.metadata.name}": ${path}: ${reason}`, index + 1, path);
      };
      const ns = m.metadata.namespace;
      if (ns !== undefined && !newNamespaces.has(ns) && !this.namespaceExists(ns)) fail('metadata.namespace', `namespaces "${ns}" not found`);
      const podSpec = info.kind === 'Pod' ? { spec: m.spec as PodSpecManifest, path: 'spec' }
        : info.kind === 'Deployment' ? { spec: (m.spec as { template: { spec: PodSpecManifest } }).template.spec, path: 'spec.template.spec' } : undefined;
      if (podSpec) {
        const { spec, path } = podSpec;
        if (spec.nodeName !== undefined && spec.nodeName !== this.d.node) fail(`${path}.nodeName`, `node "${spec.nodeName}" is not this node (${this.d.node}): apply it to that node's agent (--node ${spec.nodeName}), or remove nodeName`);
        const w = resolveWorkload(this.workloadFor, spec.containers[0]);
        if ('error' in w) fail(`${path}.containers[0].image`, w.error);
        const meta = info.kind === 'Pod' ? { m: m.metadata, path: 'metadata' } : { m: (m.spec as { template: { metadata?: Manifest['metadata'] } }).template.metadata, path: 'spec.template.metadata' };
        const bw = bandwidthAnnotationProblem(meta.m?.annotations);
        if (bw) fail(`${meta.path}.annotations[${bw.key}]`, bw.reason);
      }
    }
    return items;
  }

  private async applyLocked(objects: unknown[], opts: { dryRun?: boolean }): Promise<ManifestResult[]> {
    const items = this.validateAll(objects);
    const order = [...items].sort((a, b) => a.info.order - b.info.order || a.index - b.index);
    const results: ManifestResult[] = new Array<ManifestResult>(items.length);
    const undo: Array<() => Promise<void>> = [];
    for (const { info, m, index } of order) {
      const base = { kind: info.kind, resource: info.resource, name: m.metadata.name, ...(m.metadata.namespace ? { namespace: m.metadata.namespace } : {}) };
      if (opts.dryRun) {
        results[index] = { ...base, result: this.wouldBe(info, m) };
        continue;
      }
      try {
        const result = await this.applyOne(info, m);
        if (result === 'created') undo.push(() => this.deleteLocked(info, m.metadata.namespace, m.metadata.name).then(() => undefined));
        results[index] = { ...base, result };
      } catch (e) {
        for (const u of undo.reverse()) await u().catch((err: Error) => this.d.log.warn({ err: err.message }, 'apply rollback step failed'));
        const status = e instanceof ApiError ? e.statusCode : 500;
        const path = e instanceof ManifestError ? e.path : undefined;
        throw new ManifestError(status, `${info.kind} "${m.metadata.name}": ${(e as Error).message}${undo.length ? ' (this apply\'s new objects were removed again)' : ''}`, index + 1, path);
      }
    }
    return results;
  }

  private wouldBe(info: KindInfo, m: Manifest): ManifestResult['result'] {
    const ns = m.metadata.namespace;
    if (POLICY_KINDS.includes(info.kind)) {
      const p = this.d.policies.list().find((x) => x.kind === info.kind && x.name === m.metadata.name && x.namespace === ns);
      return !p ? 'created' : canonical(p.object) === canonical(m) ? 'unchanged' : 'configured';
    }
    const old = this.stores[info.kind as Store].get(keyOf(ns, m.metadata.name));
    return !old ? 'created' : canonical(old.manifest) === canonical(m) ? 'unchanged' : 'configured';
  }

  private async applyOne(info: KindInfo, m: Manifest): Promise<ManifestResult['result']> {
    const ns = m.metadata.namespace;
    const name = m.metadata.name;
    const key = keyOf(ns, name);
    const now = new Date().toISOString();
    if (POLICY_KINDS.includes(info.kind)) {
      const r = await this.d.policies.import([m]);
      return r.policies[0]?.result ?? 'configured';
    }
    const store = this.stores[info.kind as Store];
    const old = store.get(key);
    const same = old !== undefined && canonical(old.manifest) === canonical(m);
    switch (info.kind) {
      case 'Namespace':
      case 'CiliumLoadBalancerIPPool': {
        if (same) return 'unchanged';
        const builtin = info.kind === 'Namespace' && BUILTIN_NAMESPACES.includes(name);
        await this.save(info.kind, key, { manifest: m, createdAt: old?.createdAt ?? (builtin ? this.started : now) });
        return old || builtin ? 'configured' : 'created';
      }
      case 'Service': {
        if (same && this.d.services.get(ns!, name)) return 'unchanged';
        const r = await this.d.services.apply(toServiceSpec(m));
        await this.save('Service', key, { manifest: m, createdAt: old?.createdAt ?? r.service.createdAt ?? now });
        return r.result === 'created' ? 'created' : 'configured';
      }
      case 'Pod': {
        const live = this.livePod(ns!, name);
        if (same && (live || (old as PodRecord).pending)) return 'unchanged';
        // Annotations of a running pod change in place (a new bandwidth limit applies live); anything else replaces it.
        if (live && old && annotationsOnlyChange(old.manifest, m)) {
          await this.save('Pod', key, { ...old, manifest: withAnnotations(old.manifest, m.metadata.annotations) });
          this.d.pods.annotated?.(ns!, name, m.metadata.annotations ?? {});
          return 'configured';
        }
        // Pods are immutable: a changed one is replaced.
        const existed = old !== undefined || live !== undefined;
        if (live) await this.d.pods.delete(ns!, name);
        const rec: PodRecord = { manifest: m, createdAt: now };
        await this.save('Pod', key, rec);
        try {
          await this.schedule(key, rec);
        } catch (e) {
          await this.forget('Pod', key);
          throw e;
        }
        return existed ? 'configured' : 'created';
      }
      case 'Deployment': {
        await this.save('Deployment', key, { manifest: m, createdAt: old?.createdAt ?? now });
        try {
          await this.reconcile(key);
        } catch (e) {
          if (!old) await this.deleteDeployment(key);
          throw e;
        }
        return same ? 'unchanged' : old ? 'configured' : 'created';
      }
      default:
        throw new ApiError(400, `kind ${info.kind} cannot be applied`);
    }
  }

  private livePod(ns: string, name: string): Pod | undefined {
    return this.d.pods.list().find((p) => p.namespace === ns && p.name === name);
  }

  /** Starts the pod unless a required podAntiAffinity term matches a pod on this (only) node: then it stays Pending. */
  private async schedule(key: string, rec: PodRecord): Promise<void> {
    const m = rec.manifest;
    const blocked = this.antiAffinityConflict(m);
    if (blocked) {
      rec.pending = blocked;
      await this.save('Pod', key, rec);
      this.d.log.info({ pod: key, reason: blocked }, 'pod pending');
      return;
    }
    await this.d.pods.create(toPodSpec(m, this.workloadFor));
    this.d.pods.annotated?.(m.metadata.namespace ?? 'default', m.metadata.name, m.metadata.annotations ?? {});
    if (rec.pending) {
      delete rec.pending;
      await this.save('Pod', key, rec);
    }
  }

  private antiAffinityConflict(m: Manifest): string | undefined {
    const terms = (m.spec as PodSpecManifest).affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? [];
    if (!terms.length) return undefined;
    const pods = this.d.pods.list().filter((p) => !(p.namespace === m.metadata.namespace && p.name === m.metadata.name));
    for (const t of terms) {
      const namespaces = t.namespaces?.length ? t.namespaces : [m.metadata.namespace];
      // One node: whatever the topology key (hostname, zone, ...), every pod shares its domain.
      const hit = pods.find((p) => namespaces.includes(p.namespace) && selectorMatches(t.labelSelector ?? {}, p.labels));
      if (hit) return `0/1 nodes are available: 1 node(s) didn't match pod anti-affinity rules (pod ${hit.namespace}/${hit.name}, topologyKey ${t.topologyKey})`;
    }
    return undefined;
  }

  /** Retries pending pods (after something was deleted). */
  private async schedulePending(): Promise<void> {
    for (const [key, rec] of [...this.podRecords]) {
      if (!rec.pending || this.podRecords.get(key) !== rec) continue;
      await this.schedule(key, rec).catch((e: Error) => this.d.log.warn({ pod: key, err: e.message }, 'scheduling pending pod failed'));
    }
  }

  /** Brings a deployment to its replica count with pods of its current template (old-template pods are replaced). */
  private async reconcile(deployKey: string): Promise<void> {
    const dep = this.stores.Deployment.get(deployKey);
    if (!dep) return;
    const m = dep.manifest;
    const ns = m.metadata.namespace!;
    const spec = m.spec as { replicas?: number; template: unknown };
    const replicas = spec.replicas ?? 1;
    const hash = templateHash(spec.template);
    const owned = [...this.podRecords].filter(([, r]) => r.owner === m.metadata.name && r.manifest.metadata.namespace === ns);
    for (const [key, r] of owned) if (r.hash !== hash) await this.deletePodRecord(key);
    const current = owned.filter(([, r]) => r.hash === hash && this.podRecords.has(r.manifest.metadata.namespace + '/' + r.manifest.metadata.name));
    // Scale down: pending pods first, then the newest.
    current.sort(([, a], [, b]) => Number(!!b.pending) - Number(!!a.pending) || b.createdAt.localeCompare(a.createdAt));
    while (current.length > replicas) await this.deletePodRecord(current.shift()![0]);
    for (let i = current.length; i < replicas; i++) {
      let name: string;
      do name = `${m.metadata.name}-${hash}-${randomSuffix()}`; while (this.podRecords.has(`${ns}/${name}`) || this.livePod(ns, name));
      const key = `${ns}/${name}`;
      const rec: PodRecord = { manifest: replicaManifest(m, name), createdAt: new Date().toISOString(), owner: m.metadata.name, hash };
      await this.save('Pod', key, rec);
      try {
        await this.schedule(key, rec);
      } catch (e) {
        await this.forget('Pod', key);
        throw e;
      }
    }
  }

  private async deletePodRecord(key: string): Promise<void> {
    const [ns, name] = key.split('/');
    if (this.livePod(ns, name)) await this.d.pods.delete(ns, name);
    await this.forget('Pod', key);
  }

  private async deleteDeployment(key: string): Promise<void> {
    const dep = this.stores.Deployment.get(key);
    await this.forget('Deployment', key);
    if (!dep) return;
    for (const [k, r] of [...this.podRecords]) {
      if (r.owner === dep.manifest.metadata.name && r.manifest.metadata.namespace === dep.manifest.metadata.namespace) await this.deletePodRecord(k);
    }
  }

  // ---- delete ----------------------------------------------------------------------------------

  deleteObjects(objects: unknown[]): Promise<ManifestResult[]> {
    return this.locked(async () => {
      const items = objects.map((o, index) => {
        const x = o as Manifest & { kind?: unknown };
        const info = typeof x?.kind === 'string' ? kindInfo(x.kind) : undefined;
        if (!info) throw new ManifestError(400, `no matches for kind ${JSON.stringify(x?.kind)}`, index + 1, 'kind');
        if (typeof x.metadata?.name !== 'string') throw new ManifestError(400, `${info.kind}: metadata.name: required field is missing`, index + 1, 'metadata.name');
        return { info, ns: info.namespaced ? (x.metadata.namespace ?? 'default') : undefined, name: x.metadata.name, index };
      });
      const results: ManifestResult[] = new Array<ManifestResult>(items.length);
      // Workloads first, namespaces last.
      for (const it of [...items].sort((a, b) => b.info.order - a.info.order || a.index - b.index)) {
        results[it.index] = await this.deleteLocked(it.info, it.ns, it.name).catch((e: Error) => {
          if (e instanceof ApiError && e.statusCode === 404) return this.result(it.info, it.ns, it.name, 'not found');
          throw e;
        });
      }
      await this.schedulePending();
      return results;
    });
  }

  delete(kind: string, namespace: string | undefined, name: string): Promise<ManifestResult> {
    const info = this.kindOf(kind);
    return this.locked(async () => {
      const r = await this.deleteLocked(info, info.namespaced ? (namespace ?? 'default') : undefined, name);
      await this.schedulePending();
      return r;
    });
  }

  private result(info: KindInfo, ns: string | undefined, name: string, result: ManifestResult['result']): ManifestResult {
    return { kind: info.kind, resource: info.resource, name, ...(ns ? { namespace: ns } : {}), result };
  }

  private notFound(info: KindInfo, name: string): ApiError {
    return new ApiError(404, `${info.plural} "${name}" not found`);
  }

  private async deleteLocked(info: KindInfo, ns: string | undefined, name: string): Promise<ManifestResult> {
    const key = keyOf(ns, name);
    const done = this.result(info, ns, name, 'deleted');
    if (POLICY_KINDS.includes(info.kind)) {
      try {
        await this.d.policies.delete(info.kind, ns, name);
      } catch (e) {
        if (e instanceof ApiError && e.statusCode === 404) throw this.notFound(info, name);
        throw e;
      }
      return done;
    }
    switch (info.kind) {
      case 'Namespace': {
        if (BUILTIN_NAMESPACES.includes(name)) throw new ApiError(403, `namespaces "${name}" is forbidden: this namespace may not be deleted`);
        if (!this.stores.Namespace.has(key)) throw this.notFound(info, name);
        // Everything in it goes first.
        for (const k of [...this.stores.Deployment.keys()]) if (k.startsWith(`${name}/`)) await this.deleteDeployment(k);
        for (const k of [...this.podRecords.keys()]) if (k.startsWith(`${name}/`)) await this.deletePodRecord(k);
        for (const p of this.d.pods.list()) if (p.namespace === name) await this.d.pods.delete(p.namespace, p.name);
        for (const s of this.d.services.list()) if (s.namespace === name) await this.deleteService(s.namespace, s.name);
        for (const p of this.d.policies.list()) if (p.namespace === name && p.kind !== 'CiliumClusterwideNetworkPolicy') await this.d.policies.delete(p.kind, p.namespace, p.name);
        await this.forget('Namespace', key);
        return done;
      }
      case 'CiliumLoadBalancerIPPool':
        if (!this.stores.CiliumLoadBalancerIPPool.has(key)) throw this.notFound(info, name);
        await this.forget('CiliumLoadBalancerIPPool', key);
        return done;
      case 'Service':
        if (!this.d.services.get(ns!, name)) {
          if (this.stores.Service.has(key)) await this.forget('Service', key);
          throw this.notFound(info, name);
        }
        await this.deleteService(ns!, name);
        return done;
      case 'Deployment':
        if (!this.stores.Deployment.has(key)) throw this.notFound(info, name);
        await this.deleteDeployment(key);
        return done;
      case 'Pod': {
        const rec = this.podRecords.get(key);
        if (!rec && !this.livePod(ns!, name)) throw this.notFound(info, name);
        await this.deletePodRecord(key);
        // A deployment's pod is replaced, as the ReplicaSet would.
        if (rec?.owner) await this.reconcile(keyOf(ns, rec.owner));
        return done;
      }
    }
    throw new ApiError(400, `kind ${info.kind} cannot be deleted`);
  }

  private async deleteService(ns: string, name: string): Promise<void> {
    await this.d.services.delete(ns, name);
    if (this.stores.Service.has(keyOf(ns, name))) await this.forget('Service', keyOf(ns, name));
  }

  // ---- get -------------------------------------------------------------------------------------

  private kindOf(kind: string): KindInfo {
    const info = kindFromName(kind);
    if (!info) throw new ApiError(404, `the server doesn't have a resource type "${kind}"`);
    return info;
  }

  private namespaceExists(ns: string): boolean {
    return BUILTIN_NAMESPACES.includes(ns) || this.stores.Namespace.has(keyOf(undefined, ns));
  }

  list(kind: string, namespace?: string): ResourceView[] {
    const info = this.kindOf(kind);
    const inNs = (ns: string | undefined) => namespace === undefined || !info.namespaced || ns === namespace;
    let views: ResourceView[];
    switch (info.kind) {
      case 'Namespace': {
        const names = new Set([...BUILTIN_NAMESPACES, ...[...this.stores.Namespace.values()].map((s) => s.manifest.metadata.name)]);
        views = [...names].map((n) => {
          const s = this.stores.Namespace.get(keyOf(undefined, n));
          return {
            kind: 'Namespace', name: n, createdAt: s?.createdAt ?? this.started,
            manifest: s?.manifest ?? { apiVersion: 'v1', kind: 'Namespace', metadata: { name: n } }, status: { phase: 'Active' },
          };
        });
        break;
      }
      case 'Pod':
        views = this.podViews();
        break;
      case 'Deployment':
        views = [...this.stores.Deployment.values()].map((d) => this.deploymentView(d));
        break;
      case 'Service':
        views = this.d.services.list().map((s) => {
          const stored = this.stores.Service.get(keyOf(s.namespace, s.name));
          return { kind: 'Service', namespace: s.namespace, name: s.name, createdAt: s.createdAt, manifest: stored?.manifest ?? serviceManifestOf(s), status: { service: s } };
        });
        break;
      case 'CiliumLoadBalancerIPPool':
        views = [...this.stores.CiliumLoadBalancerIPPool.values()].map((p) => ({
          kind: info.kind, name: p.manifest.metadata.name, createdAt: p.createdAt, manifest: p.manifest, status: poolStatus(p.manifest),
        }));
        break;
      default:
        views = this.d.policies.list().filter((p) => p.kind === info.kind).map((p) => ({
          kind: p.kind, ...(p.namespace ? { namespace: p.namespace } : {}), name: p.name, createdAt: '',
          manifest: p.object as Record<string, unknown>, status: { selects: p.selects },
        }));
    }
    return views.filter((v) => inNs(v.namespace)).sort((a, b) => (a.namespace ?? '').localeCompare(b.namespace ?? '') || a.name.localeCompare(b.name));
  }

  get(kind: string, namespace: string | undefined, name: string): ResourceView | undefined {
    const info = this.kindOf(kind);
    return this.list(kind, info.namespaced ? (namespace ?? 'default') : undefined).find((v) => v.name === name);
  }

  podLogPath(namespace: string, name: string): string | undefined {
    return this.d.pods.logPath(namespace, name);
  }

  private podViews(): ResourceView[] {
    const live = this.d.pods.list();
    const views: ResourceView[] = live.map((p) => {
      const rec = this.podRecords.get(`${p.namespace}/${p.name}`);
      const ps = p.processStatus;
      return {
        kind: 'Pod', namespace: p.namespace, name: p.name, createdAt: p.createdAt,
        manifest: rec?.manifest ?? podManifestOf(p),
        status: {
          phase: ps && (ps.status === 'Completed') ? 'Succeeded' : ps && ps.status === 'Error' && !['Always', 'OnFailure'].includes(p.process?.restartPolicy ?? 'Always') ? 'Failed' : 'Running',
          status: ps?.status ?? 'Running',
          ready: ps === undefined || ps.status === 'Running' ? '1/1' : '0/1',
          restarts: ps?.restarts ?? 0,
          podIP: p.podIP, node: p.node, endpointID: p.endpointID, hostname: p.process?.hostname ?? p.name,
          ...(p.process?.image ? { image: p.process.image } : {}),
          ...(rec?.owner ? { owner: rec.owner } : {}),
          ...(p.pid ? { pid: p.pid } : {}),
          ...(ps?.exitCode !== undefined ? { exitCode: ps.exitCode } : {}),
          ...(ps?.startedAt ? { startedAt: ps.startedAt } : {}),
          ...(p.command ? { command: p.command } : {}),
        },
      };
    });
    for (const rec of this.podRecords.values()) {
      if (!rec.pending) continue;
      const m = rec.manifest;
      views.push({
        kind: 'Pod', namespace: m.metadata.namespace, name: m.metadata.name, createdAt: rec.createdAt, manifest: m,
        status: {
          phase: 'Pending', status: 'Pending', ready: '0/1', restarts: 0, podIP: '', node: '', reason: rec.pending,
          image: (m.spec as PodSpecManifest).containers[0].image, ...(rec.owner ? { owner: rec.owner } : {}),
        },
      });
    }
    return views;
  }

  private deploymentView(d: Stored): ResourceView {
    const m = d.manifest;
    const spec = m.spec as { replicas?: number; template: unknown };
    const hash = templateHash(spec.template);
    const pods = this.podViews().filter((v) => v.namespace === m.metadata.namespace && v.status.owner === m.metadata.name);
    const ready = pods.filter((p) => p.status.ready === '1/1').length;
    const upToDate = pods.filter((p) => this.podRecords.get(`${p.namespace}/${p.name}`)?.hash === hash).length;
    return {
      kind: 'Deployment', namespace: m.metadata.namespace, name: m.metadata.name, createdAt: d.createdAt, manifest: m,
      status: { replicas: spec.replicas ?? 1, ready, upToDate, available: ready, pods: pods.map((p) => p.name), templateHash: hash },
    };
  }
}

/** IPS AVAILABLE of a pool: addresses in its blocks (first and last of a CIDR only with allowFirstLastIPs Yes). */
export function poolStatus(m: Manifest): Record<string, unknown> {
  const spec = m.spec as { blocks?: Array<Record<string, string>>; cidrs?: Array<Record<string, string>>; allowFirstLastIPs?: string; disabled?: boolean };
  let total = 0;
  for (const b of spec.blocks ?? spec.cidrs ?? []) {
    if (b.cidr) {
      const c = tryParseCidr(b.cidr)!;
      const size = 2 ** (32 - c.bits);
      total += spec.allowFirstLastIPs === 'No' && size > 2 ? size - 2 : size;
    } else {
      total += tryParseIPv4(b.stop ?? b.start)! - tryParseIPv4(b.start)! + 1;
    }
  }
  return { disabled: spec.disabled ?? false, conflicting: false, ipsAvailable: total, ipsUsed: 0 };
}
