// The resource manager: the one writer of Kubernetes objects — namespaces, pods, deployments, services,
// policies, LB IP pools — whether they come from `ciliary apply -f` or from /v1/pods, /v1/services and
// PUT /v1/policy. It validates a whole request before changing anything, applies in dependency order
// through a handler per kind, rolls back what it created when a step fails, and keeps its records in
// the kvstore under one cluster-wide prefix, watching them so a record written or removed by another
// process or node takes effect here.
import type { KVEvent, KVWatch } from '../kvstore.ts';
import { ApiError, ManifestError, type ManifestResult, type ResourceApi, type ResourceView, type ResourceWriteOptions } from '../types.ts';
import { KINDS, kindFromName, kindInfo, type KindInfo, type KindName } from './kinds.ts';
import { FieldError, validateManifest } from './validate.ts';
import type { Manifest } from './convert.ts';
import { loadWorkloadFor } from './workloads.ts';
import {
  keyOf, leaseHandler, policyHandler, recordHandler, serviceHandler, withStatus, type HandlerContext, type KindHandler, type ResourceDeps, type Stored,
} from './handlers.ts';
import { deploymentHandler, podHandler, Scheduler } from './pods.ts';
import { endpointsHandler } from './user-endpoints.ts';
import { ClusterView } from './placement.ts';
import { evictFromNotReadyNodes } from './node-lifecycle.ts';
import { LeaderLease } from './leader.ts';
import { NODE_LEASE_TTL } from '../nodes.ts';
import type { StatusUpdate } from '../lbipam/status.ts';

export type { ResourceDeps } from './handlers.ts';

type Item = { info: KindInfo; m: Manifest; index: number };

export const RESOURCES_PREFIX = 'ciliary/resources/';
/** How often the periodic controllers run: pods waiting for the store, eviction from NotReady nodes. */
const CONTROLLERS_TICK_MS = 1000;

export class ResourceManager implements ResourceApi {
  private readonly stores = new Map<KindName, Map<string, Stored>>(KINDS.map((k) => [k.kind, new Map()]));
  private readonly handlers = new Map<KindName, KindHandler>();
  private chain: Promise<unknown> = Promise.resolve();
  private scheduler!: Scheduler;
  private watch?: KVWatch;
  private cluster?: ClusterView;
  private leader?: LeaderLease;
  /** False while the watch delivers the initial listing: records only, no reconciling. */
  private following = false;
  private readonly started = new Date().toISOString();
  private readonly changeListeners = new Set<(e: KVEvent) => void>();
  private controllersTimer?: NodeJS.Timeout;

  constructor(private readonly d: ResourceDeps) {}

  /** ciliary/resources/<Kind>/<namespace or _>/<name>: every node sees the same objects. */
  private readonly prefix = RESOURCES_PREFIX;

  /** Loads the stored records, brings deployments back to their count, then follows the store. */
  async restore(): Promise<void> {
    const ctx: HandlerContext = {
      d: this.d, started: this.started,
      records: (kind) => this.stores.get(kind)!,
      save: (kind, key, value) => this.save(kind, key, value),
      forget: (kind, key) => this.forget(kind, key),
      handler: (kind) => this.handlers.get(kind)!,
      notFound: (info, name) => new ApiError(404, `${info.plural} "${name}" not found`),
    };
    const retryPending = () => void this.locked(() => this.following ? this.scheduler.schedulePending() : Promise.resolve())
      .catch((err: Error) => this.d.log.warn({ err: err.message }, 'retrying pending pods failed'));
    const cluster = (this.cluster = new ClusterView(this.d.kv, this.d.node, retryPending));
    const leader = (this.leader = new LeaderLease(this.d.kv, this.d.node, NODE_LEASE_TTL, () => void this.locked(() => this.following ? this.scheduler.lead() : Promise.resolve())
      .catch((err: Error) => this.d.log.warn({ err: err.message }, 'taking over the controllers failed')), this.d.log));
    this.scheduler = new Scheduler(ctx, this.d.workloadFor ?? (await loadWorkloadFor()), cluster, () => leader.isLeader);
    for (const info of KINDS) {
      const h = info.kind === 'Namespace' || info.kind === 'CiliumLoadBalancerIPPool' || info.kind === 'CiliumL2AnnouncementPolicy' ? recordHandler(ctx, info)
        : info.kind === 'Lease' ? leaseHandler(ctx, info)
        : info.kind === 'Service' ? serviceHandler(ctx, info)
        : info.kind === 'Endpoints' || info.kind === 'EndpointSlice' ? endpointsHandler(ctx, info)
          : info.kind === 'Pod' ? podHandler(ctx, info, this.scheduler)
            : info.kind === 'Deployment' ? deploymentHandler(ctx, info, this.scheduler)
              : policyHandler(ctx, info);
      this.handlers.set(info.kind, h);
    }
    await this.moveNodeRecords();
    const watch = this.d.kv.watch(this.prefix, (e) => void this.locked(() => this.onStoreEvent(e.key)).then(() => { for (const l of this.changeListeners) l(e); })
      .catch((err: Error) => this.d.log.warn({ key: e.key, err: err.message }, 'resource change from the store failed')));
    this.watch = watch;
    await Promise.all([watch.ready, cluster.ready]);
    await leader.start();
    await this.locked(async () => {
      this.following = true;
      await this.scheduler.restore();
    });
    this.controllersTimer = setInterval(() => void this.locked(() => this.controllersTick())
      .catch((err: Error) => this.d.log.warn({ err: err.message }, 'periodic controllers failed')), CONTROLLERS_TICK_MS).unref();
  }

  private async controllersTick(): Promise<void> {
    if (this.scheduler.hasWaiting && this.d.kv.health().ok) await this.scheduler.startWaiting();
    if (this.d.podEvictionTimeoutMs !== undefined) await evictFromNotReadyNodes(this.scheduler, this.d.podEvictionTimeoutMs);
  }

  /** Records an older agent kept per node (ciliary/resources/<node>/…) move to the cluster's prefix, its pods placed on it. */
  private async moveNodeRecords(): Promise<void> {
    const old = `${this.prefix}${this.d.node}/`;
    for (const { key, value } of await this.d.kv.list(old)) {
      const rest = key.slice(old.length);
      let moved = value;
      if (rest.startsWith('Pod/')) {
        const rec = JSON.parse(value) as Stored & { scheduled?: boolean };
        const spec = rec.manifest.spec as { nodeName?: string };
        if (spec.nodeName === undefined) moved = JSON.stringify({ ...rec, manifest: { ...rec.manifest, spec: { ...spec, nodeName: this.d.node } }, scheduled: true });
      }
      await this.d.kv.createOnly(this.prefix + rest, moved);
      await this.d.kv.delete(key);
    }
  }

  /** Calls back after each change of a record in the store (this node's or another's) took effect here. */
  onChange(listener: (e: KVEvent) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /** Stops following the store and hands the controllers' lease over. */
  async close(): Promise<void> {
    clearInterval(this.controllersTimer);
    this.watch?.close();
    this.cluster?.close();
    await this.leader?.close();
  }

  /**
   * A record changed in the store: our own writes match memory and are skipped; others take effect.
   * Events wait for the lock, so the record is read again: a stale event (a put undone since) changes nothing.
   */
  private async onStoreEvent(fullKey: string): Promise<void> {
    const [kind, ...rest] = fullKey.slice(this.prefix.length).split('/');
    const store = this.stores.get(kind as KindName);
    if (!store) return;
    const key = rest.join('/');
    const value = await this.d.kv.get(fullKey);
    const have = store.get(key);
    if (value === undefined ? have === undefined : have !== undefined && JSON.stringify(have) === value) return;
    const stored = value === undefined ? undefined : JSON.parse(value) as Stored;
    if (stored) store.set(key, stored);
    else store.delete(key);
    if (this.following) await this.handlers.get(kind as KindName)?.reconcile?.(key, stored, have);
  }

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async save(kind: KindName, key: string, value: Stored): Promise<void> {
    const store = this.stores.get(kind)!;
    const before = store.get(key);
    store.set(key, value);
    try {
      await this.d.kv.put(`${this.prefix}${kind}/${key}`, JSON.stringify(value));
    } catch (e) {
      // Not stored (the kvstore is away): not applied here either, or a retry would find it "already exists".
      if (before === undefined) store.delete(key);
      else store.set(key, before);
      throw e;
    }
  }

  private async forget(kind: KindName, key: string): Promise<void> {
    this.stores.get(kind)!.delete(key);
    await this.d.kv.delete(`${this.prefix}${kind}/${key}`);
  }

  // ---- apply -----------------------------------------------------------------------------------

  apply(objects: unknown[], opts: ResourceWriteOptions = {}): Promise<ManifestResult[]> {
    return this.locked(() => this.applyLocked(objects, opts));
  }

  /** Validates every object (kind, fields, namespace, node, image) before anything changes. */
  private validateAll(objects: unknown[], opts: ResourceWriteOptions): Item[] {
    const items: Item[] = [];
    const newNamespaces = new Set<string>();
    const fail = (index: number, e: FieldError, m: unknown): never => {
      const meta = (m as Manifest | undefined)?.metadata;
      const kind = (m as { kind?: unknown } | undefined)?.kind;
      const who = typeof kind === 'string' && typeof meta?.name === 'string' ? `${kind} "${meta.name}": ` : '';
      throw new ManifestError(e.status, `${who}${e.message}`, index + 1, e.path);
    };
    objects.forEach((o, index) => {
      try {
        const info = validateManifest(o);
        const m = structuredClone(o) as Manifest;
        if (info.namespaced) m.metadata.namespace ??= 'default';
        else delete m.metadata.namespace;
        if (info.kind === 'Namespace') newNamespaces.add(m.metadata.name);
        items.push({ info, m, index });
      } catch (e) {
        if (e instanceof FieldError) fail(index, e, o);
        throw e;
      }
    });
    for (const { info, m, index } of items) {
      try {
        const ns = m.metadata.namespace;
        if (ns !== undefined && !opts.anyNamespace && !newNamespaces.has(ns) && !this.handlers.get('Namespace')!.exists(undefined, ns)) {
          throw new FieldError('metadata.namespace', `namespaces "${ns}" not found`);
        }
        this.handlers.get(info.kind)!.validate?.(m, 'spec');
      } catch (e) {
        if (e instanceof FieldError) fail(index, e, m);
        throw e;
      }
      if (opts.createOnly && this.handlers.get(info.kind)!.exists(m.metadata.namespace, m.metadata.name)) {
        throw new ManifestError(409, `${info.plural} "${m.metadata.name}" already exists`, index + 1);
      }
    }
    return items;
  }

  private async applyLocked(objects: unknown[], opts: ResourceWriteOptions): Promise<ManifestResult[]> {
    const items = this.validateAll(objects, opts);
    const order = [...items].sort((a, b) => a.info.order - b.info.order || a.index - b.index);
    const results: ManifestResult[] = new Array<ManifestResult>(items.length);
    const undo: Array<() => Promise<void>> = [];
    for (const { info, m, index } of order) {
      const h = this.handlers.get(info.kind)!;
      const ns = m.metadata.namespace;
      if (opts.dryRun) {
        results[index] = this.result(info, ns, m.metadata.name, h.wouldBe(m));
        continue;
      }
      try {
        const result = await h.apply(m);
        if (result === 'created') undo.push(() => h.delete(ns, m.metadata.name));
        results[index] = this.result(info, ns, m.metadata.name, result);
      } catch (e) {
        for (const u of undo.reverse()) await u().catch((err: Error) => this.d.log.warn({ err: err.message }, 'apply rollback step failed'));
        const status = e instanceof ApiError ? e.statusCode : 500;
        const path = e instanceof ManifestError ? e.path : undefined;
        throw new ManifestError(status, `${info.kind} "${m.metadata.name}": ${(e as Error).message}${undo.length ? ' (this apply\'s new objects were removed again)' : ''}`, index + 1, path);
      }
    }
    return results;
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
      await this.scheduler.schedulePending();
      return results;
    });
  }

  delete(kind: string, namespace: string | undefined, name: string): Promise<ManifestResult> {
    const info = this.kindOf(kind);
    return this.locked(async () => {
      const r = await this.deleteLocked(info, info.namespaced ? (namespace ?? 'default') : undefined, name);
      await this.scheduler.schedulePending();
      return r;
    });
  }

  private async deleteLocked(info: KindInfo, ns: string | undefined, name: string): Promise<ManifestResult> {
    await this.handlers.get(info.kind)!.delete(ns, name);
    return this.result(info, ns, name, 'deleted');
  }

  private result(info: KindInfo, ns: string | undefined, name: string, result: ManifestResult['result']): ManifestResult {
    return { kind: info.kind, resource: info.resource, name, ...(ns ? { namespace: ns } : {}), result };
  }

  // ---- get -------------------------------------------------------------------------------------

  private kindOf(kind: string): KindInfo {
    const info = kindFromName(kind);
    if (!info) throw new ApiError(404, `the server doesn't have a resource type "${kind}"`);
    return info;
  }

  list(kind: string, namespace?: string): ResourceView[] {
    const info = this.kindOf(kind);
    const inNs = (ns: string | undefined) => namespace === undefined || !info.namespaced || ns === namespace;
    return this.handlers.get(info.kind)!.views().filter((v) => inNs(v.namespace))
      .sort((a, b) => (a.namespace ?? '').localeCompare(b.namespace ?? '') || a.name.localeCompare(b.name));
  }

  get(kind: string, namespace: string | undefined, name: string): ResourceView | undefined {
    const info = this.kindOf(kind);
    return this.list(kind, info.namespaced ? (namespace ?? 'default') : undefined).find((v) => v.name === name);
  }

  /** LB-IPAM's writes: `compute` runs once every earlier change took effect; each status replaces the object's own and the live object follows. */
  updateStatuses(compute: () => StatusUpdate[]): Promise<void> {
    return this.locked(async () => {
      for (const u of compute()) {
        const key = keyOf(u.namespace, u.name);
        const h = this.handlers.get(u.kind)!;
        const view = h.views().find((v) => v.namespace === u.namespace && v.name === u.name);
        if (!view) continue;
        const old = this.stores.get(u.kind)!.get(key);
        const next: Stored = { manifest: withStatus(old?.manifest ?? (view.manifest as Manifest), u.status), createdAt: old?.createdAt ?? view.createdAt };
        await this.save(u.kind, key, next);
        await h.reconcile?.(key, next, old);
      }
    });
  }

  podLogPath(namespace: string, name: string): string | undefined {
    return this.d.pods.logPath(namespace, name);
  }
}

