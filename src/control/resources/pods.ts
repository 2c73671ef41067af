// Pod and Deployment handlers: pods are scheduled onto this node (or stay Pending on a required
// anti-affinity conflict), deployments are kept at their replica count with pods of their template.
import { type Pod, type ResourceView } from '../types.ts';
import type { KindInfo } from './kinds.ts';
import { FieldError, selectorMatches } from './validate.ts';
import { annotationsOnlyChange, canonical, podManifestOf, randomSuffix, replicaManifest, resolveWorkload, templateHash, toPodSpec, withAnnotations, type Manifest, type PodSpecManifest } from './convert.ts';
import { bandwidthAnnotationProblem } from '../bandwidth.ts';
import { keyOf, type HandlerContext, type KindHandler, type Stored } from './handlers.ts';
import type { WorkloadFor } from './workloads.ts';

interface PodRecord extends Stored {
  /** Deployment name, for its replicas. */
  owner?: string;
  hash?: string;
  /** Why the pod is not running (anti-affinity); it has no endpoint then. */
  pending?: string;
}

/** Scheduling shared by the Pod and Deployment handlers. */
export class Scheduler {
  constructor(private readonly c: HandlerContext, readonly workloadFor: WorkloadFor) {}

  get records(): Map<string, PodRecord> {
    return this.c.records('Pod') as Map<string, PodRecord>;
  }

  livePod(ns: string, name: string): Pod | undefined {
    return this.c.d.pods.list().find((p) => p.namespace === ns && p.name === name);
  }

  /** A pod spec this node can run: its node and its image. */
  validate(spec: PodSpecManifest, path: string): void {
    const node = this.c.d.node;
    if (spec.nodeName !== undefined && spec.nodeName !== node) throw new FieldError(`${path}.nodeName`, `node "${spec.nodeName}" is not this node (${node}): apply it to that node's agent (--node ${spec.nodeName}), or remove nodeName`);
    const w = resolveWorkload(this.workloadFor, spec.containers[0]);
    if ('error' in w) throw new FieldError(`${path}.containers[0].image`, w.error);
  }

  /** Pod annotations this node can honour (the bandwidth manager's). */
  validateAnnotations(annotations: Record<string, string> | undefined, path: string): void {
    const bw = bandwidthAnnotationProblem(annotations);
    if (bw) throw new FieldError(`${path}.annotations[${bw.key}]`, bw.reason);
  }

  /** Saves the record and starts the pod (or leaves it Pending); a failed start removes the record again. */
  async place(key: string, rec: PodRecord): Promise<void> {
    await this.c.save('Pod', key, rec);
    try {
      await this.schedule(key, rec);
    } catch (e) {
      await this.c.forget('Pod', key);
      throw e;
    }
  }

  /** Starts the pod unless a required podAntiAffinity term matches a pod on this (only) node: then it stays Pending. */
  async schedule(key: string, rec: PodRecord): Promise<void> {
    const blocked = this.antiAffinityConflict(rec.manifest);
    if (blocked) {
      rec.pending = blocked;
      await this.c.save('Pod', key, rec);
      this.c.d.log.info({ pod: key, reason: blocked }, 'pod pending');
      return;
    }
    await this.c.d.pods.create(toPodSpec(rec.manifest, this.workloadFor));
    const m = rec.manifest;
    this.c.d.pods.annotated?.(m.metadata.namespace ?? 'default', m.metadata.name, m.metadata.annotations ?? {});
    if (rec.pending) {
      delete rec.pending;
      await this.c.save('Pod', key, rec);
    }
  }

  private antiAffinityConflict(m: Manifest): string | undefined {
    const terms = (m.spec as PodSpecManifest).affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? [];
    if (!terms.length) return undefined;
    const pods = this.c.d.pods.list().filter((p) => !(p.namespace === m.metadata.namespace && p.name === m.metadata.name));
    for (const t of terms) {
      const namespaces = t.namespaces?.length ? t.namespaces : [m.metadata.namespace];
      // One node: whatever the topology key (hostname, zone, ...), every pod shares its domain.
      const hit = pods.find((p) => namespaces.includes(p.namespace) && selectorMatches(t.labelSelector ?? {}, p.labels));
      if (hit) return `0/1 nodes are available: 1 node(s) didn't match pod anti-affinity rules (pod ${hit.namespace}/${hit.name}, topologyKey ${t.topologyKey})`;
    }
    return undefined;
  }

  /** Retries pending pods (after something was deleted). */
  async schedulePending(): Promise<void> {
    for (const [key, rec] of [...this.records]) {
      if (!rec.pending || this.records.get(key) !== rec) continue;
      await this.schedule(key, rec).catch((e: Error) => this.c.d.log.warn({ pod: key, err: e.message }, 'scheduling pending pod failed'));
    }
  }

  async deletePod(key: string): Promise<void> {
    const [ns, name] = key.split('/');
    if (this.livePod(ns, name)) await this.c.d.pods.delete(ns, name);
    if (this.records.has(key)) await this.c.forget('Pod', key);
  }

  /** Brings a deployment to its replica count with pods of its current template (old-template pods are replaced). */
  async reconcile(deployKey: string): Promise<void> {
    const dep = this.c.records('Deployment').get(deployKey);
    if (!dep) return;
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

  /** After a restart: replicas whose pod is gone are forgotten, deployments brought back to their count. */
  async restore(): Promise<void> {
    const live = new Set(this.c.d.pods.list().map((p) => `${p.namespace}/${p.name}`));
    for (const [key, r] of [...this.records]) if (!r.pending && !live.has(key)) await this.c.forget('Pod', key);
    for (const key of this.c.records('Deployment').keys()) await this.reconcile(key);
    await this.schedulePending();
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
    for (const rec of this.records.values()) {
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
      return !exists(m.metadata.namespace, m.metadata.name) ? 'created' : old && canonical(old.manifest) === canonical(m) ? 'unchanged' : 'configured';
    },
    apply: async (m) => {
      const ns = m.metadata.namespace!;
      const key = keyOf(ns, m.metadata.name);
      const old = s.records.get(key);
      const live = s.livePod(ns, m.metadata.name);
      if (old && canonical(old.manifest) === canonical(m) && (live || old.pending)) return 'unchanged';
      // Annotations of a running pod change in place (a new bandwidth limit applies live); anything else replaces it.
      if (live && old && annotationsOnlyChange(old.manifest, m)) {
        await c.save('Pod', key, { ...old, manifest: withAnnotations(old.manifest, m.metadata.annotations) });
        c.d.pods.annotated?.(ns, m.metadata.name, m.metadata.annotations ?? {});
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
    reconcile: async (key, stored) => {
      const [ns, name] = key.split('/');
      const live = s.livePod(ns, name);
      if (!stored) {
        if (live) await c.d.pods.delete(ns, name);
        return;
      }
      if (live) await c.d.pods.delete(ns, name);
      await s.schedule(key, stored);
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
      else await deleteDeployment(key, previous);
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
