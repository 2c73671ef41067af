// Pod and Deployment handlers over the cluster's records: a pod is placed on a node when applied (or stays
// Pending with the scheduler's reason) and only that node's agent runs it; deployments are kept at their
// replica count by the one agent holding the controllers' lease.
import { type Pod, type ResourceView } from '../types.ts';
import type { KindInfo } from './kinds.ts';
import { FieldError } from './validate.ts';
import { annotationsOnlyChange, canonical, podManifestOf, randomSuffix, replicaManifest, resolveWorkload, templateHash, toPodSpec, withAnnotations, type Manifest, type PodSpecManifest } from './convert.ts';
import { bandwidthAnnotationProblem } from '../bandwidth.ts';
import { keyOf, type HandlerContext, type KindHandler, type Stored } from './handlers.ts';
import { placePod, type ClusterView, type PlacedPod } from './placement.ts';
import type { WorkloadFor } from './workloads.ts';
import { KVUnreachableError } from '../kvstore.ts';

interface PodRecord extends Stored {
  /** Deployment name, for its replicas. */
  owner?: string;
  hash?: string;
  /** Why no node fits the pod (FailedScheduling); it has no node and no endpoint then. */
  pending?: string;
  /** spec.nodeName was set by the scheduler, not by the manifest. */
  scheduled?: boolean;
}

export const nodeOf = (r: Stored): string | undefined => (r.manifest.spec as PodSpecManifest).nodeName;

/** The node a stored Pod record (JSON) is placed on, if any. */
export function podRecordNode(value: string): string | undefined {
  try {
    return nodeOf(JSON.parse(value) as Stored);
  } catch {
    return undefined;
  }
}

/** Whether `m` equals the record by `same`, as applied or as stored (a `get -o yaml` copy carries the scheduled node). */
function matches(r: PodRecord, m: Manifest, same: (a: Manifest, b: Manifest) => boolean): boolean {
  return same(appliedManifest(r), m) || same(r.manifest, m);
}

const identical = (a: Manifest, b: Manifest): boolean => canonical(a) === canonical(b);

/** The manifest as applied: without the node the scheduler gave it. */
function appliedManifest(r: PodRecord): Manifest {
  if (!r.scheduled) return r.manifest;
  const spec = { ...(r.manifest.spec as PodSpecManifest) };
  delete spec.nodeName;
  return { ...r.manifest, spec };
}

/** Scheduling shared by the Pod and Deployment handlers. */
export class Scheduler {
  /**
   * Pods placed here whose start needs the store (a label set with no identity yet, as a Cilium
   * endpoint in waiting-for-identity): key → why; started by startWaiting once the store answers.
   */
  private readonly waiting = new Map<string, string>();

  constructor(
    private readonly c: HandlerContext,
    readonly workloadFor: WorkloadFor,
    readonly cluster: ClusterView,
    /** Whether this agent holds the controllers' lease (deployments, pending pods). */
    readonly leading: () => boolean,
  ) {}

  get records(): Map<string, PodRecord> {
    return this.c.records('Pod') as Map<string, PodRecord>;
  }

  get self(): string {
    return this.c.d.node;
  }

  get log(): HandlerContext['d']['log'] {
    return this.c.d.log;
  }

  livePod(ns: string, name: string): Pod | undefined {
    return this.c.d.pods.list().find((p) => p.namespace === ns && p.name === name);
  }

  /** A pod spec the cluster can run: a known node, if named, and a known image. */
  validate(spec: PodSpecManifest, path: string): void {
    if (spec.nodeName !== undefined && !this.cluster.has(spec.nodeName)) throw new FieldError(`${path}.nodeName`, `node "${spec.nodeName}" not found`, 422);
    const w = resolveWorkload(this.workloadFor, spec.containers[0]);
    if ('error' in w) throw new FieldError(`${path}.containers[0].image`, w.error);
  }

  /** Pod annotations the cluster can honour (the bandwidth manager's). */
  validateAnnotations(annotations: Record<string, string> | undefined, path: string): void {
    const bw = bandwidthAnnotationProblem(annotations);
    if (bw) throw new FieldError(`${path}.annotations[${bw.key}]`, bw.reason);
  }

  private placed(): PlacedPod[] {
    return [...this.records.values()].flatMap((r) => {
      const node = nodeOf(r);
      return node === undefined ? [] : [{ namespace: r.manifest.metadata.namespace!, name: r.manifest.metadata.name, labels: r.manifest.metadata.labels ?? {}, node }];
    });
  }

  /** Gives an unplaced record its node, or the reason none fits. */
  private assign(rec: PodRecord): void {
    if (nodeOf(rec) !== undefined) return;
    const p = placePod(rec.manifest, this.cluster.list(), this.placed());
    if ('pending' in p) {
      rec.pending = p.pending;
      return;
    }
    rec.manifest = { ...rec.manifest, spec: { ...(rec.manifest.spec as PodSpecManifest), nodeName: p.node } };
    rec.scheduled = true;
    delete rec.pending;
  }

  /** Places the pod, saves its record and starts it if it landed here; a failed start removes the record again. */
  async place(key: string, rec: PodRecord): Promise<void> {
    this.assign(rec);
    await this.c.save('Pod', key, rec);
    if (rec.pending) this.c.d.log.info({ pod: key, reason: rec.pending }, 'pod pending');
    try {
      if (nodeOf(rec) === this.self) await this.start(rec);
    } catch (e) {
      await this.c.forget('Pod', key);
      throw e;
    }
  }

  /** Starts a pod placed here; one that needs the store while it is away waits for it instead. */
  private async start(rec: PodRecord): Promise<void> {
    const key = keyOf(rec.manifest.metadata.namespace, rec.manifest.metadata.name);
    try {
      await this.c.d.pods.create(toPodSpec(rec.manifest, this.workloadFor));
    } catch (e) {
      if (!(e instanceof KVUnreachableError)) throw e;
      this.waiting.set(key, `waiting-for-identity: ${e.message}`);
      this.c.d.log.info({ pod: key, err: e.message }, 'pod waits for the kvstore');
      return;
    }
    this.waiting.delete(key);
    this.annotated(rec);
  }

  get hasWaiting(): boolean {
    return this.waiting.size > 0;
  }

  /** Tries the pods waiting for the store again (each keeps waiting while it is away). */
  async startWaiting(): Promise<void> {
    for (const key of [...this.waiting.keys()]) {
      const rec = this.records.get(key);
      const [ns, name] = key.split('/');
      if (!rec || nodeOf(rec) !== this.self || this.livePod(ns, name)) await this.stopWaiting(key);
      else await this.start(rec).catch((e: Error) => this.c.d.log.warn({ pod: key, err: e.message }, 'starting a pod that waited for the kvstore failed'));
    }
  }

  /** Tells the running pod's node its annotations (a bandwidth limit applies live). */
  annotated(rec: PodRecord): void {
    const m = rec.manifest;
    this.c.d.pods.annotated?.(m.metadata.namespace!, m.metadata.name, m.metadata.annotations ?? {});
  }

  /** Brings this node's side of a record changed in the store in line: run it here if it is placed here, else not. */
  async follow(key: string, rec: PodRecord | undefined, previous?: PodRecord): Promise<void> {
    const [ns, name] = key.split('/');
    const live = this.livePod(ns, name);
    // Only annotations changed: the running pod stays, its new annotations apply in place.
    if (live && rec && previous && nodeOf(rec) === this.self && annotationsOnlyChange(previous.manifest, rec.manifest)) return this.annotated(rec);
    if (live) await this.c.d.pods.delete(ns, name);
    if (!rec) return;
    if (nodeOf(rec) === this.self) await this.start(rec);
    else if (nodeOf(rec) === undefined && !rec.pending && this.leading()) await this.place(key, rec);
  }

  /** The controllers' leader retries pending pods (after pods or nodes changed). */
  async schedulePending(): Promise<void> {
    if (!this.leading()) return;
    for (const [key, rec] of [...this.records]) {
      if (!rec.pending || this.records.get(key) !== rec) continue;
      const retry: PodRecord = { ...rec };
      delete retry.pending;
      this.assign(retry);
      if (retry.pending === rec.pending) continue;
      await this.place(key, retry).catch((e: Error) => this.c.d.log.warn({ pod: key, err: e.message }, 'scheduling pending pod failed'));
    }
  }

  /** A waiting pod that is gone or placed elsewhere: its endpoint row goes too. */
  private async stopWaiting(key: string): Promise<void> {
    if (!this.waiting.delete(key)) return;
    const [ns, name] = key.split('/');
    if (!this.livePod(ns, name)) await this.c.d.pods.delete(ns, name).catch(() => undefined);
  }

  async deletePod(key: string): Promise<void> {
    const [ns, name] = key.split('/');
    await this.stopWaiting(key);
    if (this.livePod(ns, name)) await this.c.d.pods.delete(ns, name);
    if (this.records.has(key)) await this.c.forget('Pod', key);
  }

  /** The leader brings a deployment to its replica count with pods of its current template (old-template pods are replaced). */
  async reconcile(deployKey: string): Promise<void> {
    const dep = this.c.records('Deployment').get(deployKey);
    if (!dep || !this.leading()) return;
    const m = dep.manifest;
    const ns = m.metadata.namespace!;
    const spec = m.spec as { replicas?: number; template: unknown };
    const replicas = spec.replicas ?? 1;
    const hash = templateHash(spec.template);
    const owned = [...this.records].filter(([, r]) => r.owner === m.metadata.name && r.manifest.metadata.namespace === ns);
    for (const [key, r] of owned) if (r.hash !== hash) await this.deletePod(key);
    const current = owned.filter(([key, r]) => r.hash === hash && this.records.has(key));
    // Scale down: pending pods first, then the newest.
    current.sort(([, a], [, b]) => Number(!!b.pending) - Number(!!a.pending) || b.createdAt.localeCompare(a.createdAt));
    while (current.length > replicas) await this.deletePod(current.shift()![0]);
    for (let i = current.length; i < replicas; i++) {
      let name: string;
      do name = `${m.metadata.name}-${hash}-${randomSuffix()}`; while (this.records.has(`${ns}/${name}`) || this.livePod(ns, name));
      await this.place(`${ns}/${name}`, { manifest: replicaManifest(m, name), createdAt: new Date().toISOString(), owner: m.metadata.name, hash });
    }
  }

  /**
   * After a (re)start: pods running here that the cluster no longer places here (evicted while this node
   * was away) are deleted; this node's pods placed while it was away, or gone, are started; deployments
   * brought back to their count.
   */
  async restore(): Promise<void> {
    for (const p of this.c.d.pods.list()) {
      const rec = this.records.get(keyOf(p.namespace, p.name));
      if (rec && nodeOf(rec) === this.self) continue;
      this.c.d.log.info({ pod: `${p.namespace}/${p.name}` }, 'deleting a pod this node no longer owns');
      await this.c.d.pods.delete(p.namespace, p.name).catch((e: Error) => this.c.d.log.warn({ pod: `${p.namespace}/${p.name}`, err: e.message }, 'deleting a pod this node no longer owns failed'));
    }
    for (const [key, r] of [...this.records]) {
      const [ns, name] = key.split('/');
      if (nodeOf(r) !== this.self || this.livePod(ns, name)) continue;
      await this.start(r).catch((e: Error) => this.c.d.log.warn({ pod: key, err: e.message }, 'starting a pod placed on this node failed'));
    }
    await this.lead();
  }

  /** What the leader does on taking over: deployments to their count, pending pods placed. */
  async lead(): Promise<void> {
    for (const key of this.c.records('Deployment').keys()) await this.reconcile(key);
    await this.schedulePending();
  }

  /** kube's status.hostIP: the node's address, for reaching its agent across machines. */
  private hostIP(node: string | undefined): { hostIP?: string } {
    const ip = node === undefined ? undefined : this.cluster.nodeIP(node);
    return ip ? { hostIP: ip } : {};
  }

  podViews(): ResourceView[] {
    const views: ResourceView[] = this.c.d.pods.list().map((p) => {
      const rec = this.records.get(`${p.namespace}/${p.name}`);
      const ps = p.processStatus;
      return {
        kind: 'Pod', namespace: p.namespace, name: p.name, createdAt: p.createdAt,
        manifest: rec?.manifest ?? podManifestOf(p),
        status: {
          phase: ps && (ps.status === 'Completed') ? 'Succeeded' : ps && ps.status === 'Error' && !['Always', 'OnFailure'].includes(p.process?.restartPolicy ?? 'Always') ? 'Failed' : 'Running',
          status: ps?.status ?? 'Running',
          ready: ps === undefined || ps.status === 'Running' ? '1/1' : '0/1',
          restarts: ps?.restarts ?? 0,
          podIP: p.podIP, node: p.node, ...this.hostIP(p.node), endpointID: p.endpointID, hostname: p.process?.hostname ?? p.name,
          ...(p.process?.image ? { image: p.process.image } : {}),
          ...(rec?.owner ? { owner: rec.owner } : {}),
          ...(p.pid ? { pid: p.pid } : {}),
          ...(ps?.exitCode !== undefined ? { exitCode: ps.exitCode } : {}),
          ...(ps?.startedAt ? { startedAt: ps.startedAt } : {}),
          ...(p.command ? { command: p.command } : {}),
        },
      };
    });
    const here = new Set(views.map((v) => `${v.namespace}/${v.name}`));
    for (const [key, rec] of this.records) {
      if (here.has(key)) continue;
      const m = rec.manifest;
      const ns = m.metadata.namespace!;
      // Another node's pod: running once its node published the endpoint (address and identity).
      const podIP = rec.pending ? undefined : this.cluster.podIP(ns, m.metadata.name);
      const status = rec.pending ? 'Pending' : podIP ? 'Running' : 'ContainerCreating';
      views.push({
        kind: 'Pod', namespace: ns, name: m.metadata.name, createdAt: rec.createdAt, manifest: m,
        status: {
          phase: podIP ? 'Running' : 'Pending', status, ready: podIP ? '1/1' : '0/1', restarts: 0, podIP: podIP ?? '', node: nodeOf(rec) ?? '', ...this.hostIP(nodeOf(rec)),
          ...(rec.pending ? { reason: rec.pending } : this.waiting.has(key) ? { reason: this.waiting.get(key) } : {}),
          image: (m.spec as PodSpecManifest).containers[0].image, ...(rec.owner ? { owner: rec.owner } : {}),
        },
      });
    }
    return views;
  }
}

export function podHandler(c: HandlerContext, info: KindInfo, s: Scheduler): KindHandler {
  const exists = (ns: string | undefined, name: string) => s.records.has(keyOf(ns, name)) || s.livePod(ns!, name) !== undefined;
  return {
    validate: (m, path) => {
      s.validate(m.spec as PodSpecManifest, path);
      s.validateAnnotations(m.metadata.annotations, 'metadata');
    },
    exists,
    wouldBe: (m) => {
      const old = s.records.get(keyOf(m.metadata.namespace, m.metadata.name));
      return !exists(m.metadata.namespace, m.metadata.name) ? 'created' : old && matches(old, m, identical) ? 'unchanged' : 'configured';
    },
    apply: async (m) => {
      const ns = m.metadata.namespace!;
      const key = keyOf(ns, m.metadata.name);
      const old = s.records.get(key);
      const live = s.livePod(ns, m.metadata.name);
      const elsewhere = old !== undefined && (old.pending !== undefined || nodeOf(old) !== c.d.node);
      if (old && matches(old, m, identical) && (live || elsewhere)) return 'unchanged';
      // Annotations of a placed pod change in place (a new bandwidth limit applies live); anything else replaces it.
      if (old && (live || elsewhere) && matches(old, m, annotationsOnlyChange)) {
        const rec = { ...old, manifest: withAnnotations(old.manifest, m.metadata.annotations) };
        await c.save('Pod', key, rec);
        if (live) s.annotated(rec);
        return 'configured';
      }
      // Pods are immutable: a changed one is replaced.
      if (live) await c.d.pods.delete(ns, m.metadata.name);
      await s.place(key, { manifest: m, createdAt: new Date().toISOString() });
      return old || live ? 'configured' : 'created';
    },
    delete: async (ns, name) => {
      const key = keyOf(ns, name);
      const rec = s.records.get(key);
      if (!exists(ns, name)) throw c.notFound(info, name);
      await s.deletePod(key);
      // A deployment's pod is replaced, as the ReplicaSet would.
      if (rec?.owner) await s.reconcile(keyOf(ns, rec.owner));
    },
    views: () => s.podViews(),
    reconcile: async (key, stored, previous) => {
      await s.follow(key, stored, previous as PodRecord | undefined);
      if (stored) return;
      const owner = (previous as PodRecord | undefined)?.owner;
      if (owner) await s.reconcile(keyOf(key.split('/')[0], owner));
      await s.schedulePending();
    },
  };
}

export function deploymentHandler(c: HandlerContext, info: KindInfo, s: Scheduler): KindHandler {
  const records = () => c.records('Deployment');
  const deleteDeployment = async (key: string, dep: Stored | undefined) => {
    if (records().has(key)) await c.forget('Deployment', key);
    if (!dep) return;
    for (const [k, r] of [...s.records]) {
      if (r.owner === dep.manifest.metadata.name && r.manifest.metadata.namespace === dep.manifest.metadata.namespace) await s.deletePod(k);
    }
  };
  return {
    validate: (m, path) => {
      const template = (m.spec as { template: { metadata?: Manifest['metadata']; spec: PodSpecManifest } }).template;
      s.validate(template.spec, `${path}.template.spec`);
      s.validateAnnotations(template.metadata?.annotations, `${path}.template.metadata`);
    },
    exists: (ns, name) => records().has(keyOf(ns, name)),
    wouldBe: (m) => {
      const old = records().get(keyOf(m.metadata.namespace, m.metadata.name));
      return !old ? 'created' : canonical(old.manifest) === canonical(m) ? 'unchanged' : 'configured';
    },
    apply: async (m) => {
      const key = keyOf(m.metadata.namespace, m.metadata.name);
      const old = records().get(key);
      const same = old !== undefined && canonical(old.manifest) === canonical(m);
      await c.save('Deployment', key, { manifest: m, createdAt: old?.createdAt ?? new Date().toISOString() });
      try {
        await s.reconcile(key);
      } catch (e) {
        if (!old) await deleteDeployment(key, records().get(key));
        throw e;
      }
      return same ? 'unchanged' : old ? 'configured' : 'created';
    },
    delete: async (ns, name) => {
      const key = keyOf(ns, name);
      if (!records().has(key)) throw c.notFound(info, name);
      await deleteDeployment(key, records().get(key));
    },
    views: () => [...records().values()].map((d) => deploymentView(s, d)),
    reconcile: async (key, stored, previous) => {
      if (stored) await s.reconcile(key);
      else if (s.leading()) await deleteDeployment(key, previous);
    },
  };
}

function deploymentView(s: Scheduler, d: Stored): ResourceView {
  const m = d.manifest;
  const spec = m.spec as { replicas?: number; template: unknown };
  const hash = templateHash(spec.template);
  const pods = s.podViews().filter((v) => v.namespace === m.metadata.namespace && v.status.owner === m.metadata.name);
  const ready = pods.filter((p) => p.status.ready === '1/1').length;
  const upToDate = pods.filter((p) => s.records.get(`${p.namespace}/${p.name}`)?.hash === hash).length;
  return {
    kind: 'Deployment', namespace: m.metadata.namespace, name: m.metadata.name, createdAt: d.createdAt, manifest: m,
    status: { replicas: spec.replicas ?? 1, ready, upToDate, available: ready, pods: pods.map((p) => p.name), templateHash: hash },
  };
}
