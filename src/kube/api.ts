// The resource routes: list/get (objects or Tables), create, replace, patch, delete and pod logs, over a
// KubeBackend. Paths arrive parsed; the HTTPS server (server.ts) does TLS, auth, discovery and streams.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { BackendError, type KubeBackend, type KubeObject } from './backend.ts';
import { agentPodNode, agentPodObjects, DERIVED } from './derived.ts';
import { groupVersion, type KubeResource } from './resources.ts';
import { selectObjects, SelectorError } from './selectors.ts';
import { patchedManifest } from './patch.ts';
import { alreadyExists, badRequest, conflict, invalid, methodNotAllowed, notFound, StatusError } from './status.ts';
import { toTable } from './tables.ts';

export interface ResourceRequest {
  method: string;
  resource: KubeResource;
  namespace?: string;
  name?: string;
  subresource?: string;
  query: URLSearchParams;
  accept: string;
  contentType: string;
  body: string;
}

export interface ApiReply {
  status: number;
  body: unknown;
  contentType?: string;
}

/** Bookkeeping fields the server adds; a patch or re-apply never writes them back. */
const SERVER_FIELDS = ['uid', 'resourceVersion', 'creationTimestamp', 'generation', 'managedFields', 'selfLink'];

export class KubeApi {
  constructor(readonly backend: KubeBackend) {}

  /** The store's revision of the last change: every list's resourceVersion. */
  get resourceVersion(): string {
    return this.backend.resourceVersion();
  }

  /** uid, and the resourceVersion derived kinds take from the store's, as the API server stamps every object. */
  decorate(r: KubeResource, o: KubeObject): KubeObject {
    const ns = r.namespaced ? o.metadata.namespace : undefined;
    const h = createHash('sha1').update(`${groupVersion(r)}/${r.plural}/${ns ?? ''}/${o.metadata.name}@${o.metadata.creationTimestamp ?? ''}`).digest('hex');
    const uid = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
    return { ...o, apiVersion: groupVersion(r), kind: r.kind, metadata: { ...o.metadata, uid, resourceVersion: o.metadata.resourceVersion ?? this.resourceVersion } };
  }

  list(r: KubeResource, namespace?: string): KubeObject[] {
    const ns = r.namespaced ? namespace : undefined;
    const objects = r.kind === 'Pod' ? [...agentPodObjects(this.backend, ns), ...this.backend.list('Pod', ns)]
      : r.stored && !DERIVED[r.kind] ? this.backend.list(r.stored, ns) : DERIVED[r.kind](this.backend, ns);
    return objects.map((o) => this.decorate(r, o))
      .sort((a, b) => (a.metadata.namespace ?? '').localeCompare(b.metadata.namespace ?? '') || a.metadata.name.localeCompare(b.metadata.name));
  }

  /** kube-system/cilium-…: a node's agent pod, served here and not stored in the backend. */
  private isAgentPod(kind: string, ns: string | undefined, name: string): boolean {
    return kind === 'Pod' && agentPodNode(this.backend, ns, name) !== undefined;
  }

  /** argv of `kubectl exec`: an agent's pod runs the ciliary CLI against its node, other pods their namespaces' command. */
  execArgv(ns: string, name: string, command: string[]): string[] | undefined {
    const node = agentPodNode(this.backend, ns, name);
    return node ? this.backend.agentExecArgv(node, command) : this.backend.podExecArgv(ns, name, command);
  }

  private find(r: KubeResource, ns: string | undefined, name: string): KubeObject | undefined {
    if (r.stored && !DERIVED[r.kind] && !this.isAgentPod(r.kind, ns, name)) {
      const o = this.backend.get(r.stored, r.namespaced ? ns : undefined, name);
      return o && this.decorate(r, o);
    }
    return this.list(r, ns).find((o) => o.metadata.name === name);
  }

  private mustFind(r: KubeResource, ns: string | undefined, name: string): KubeObject {
    const o = this.find(r, ns, name);
    if (!o) throw notFound(r.plural, r.group, name);
    return o;
  }

  handle(req: ResourceRequest): Promise<ApiReply> | ApiReply {
    const { method, resource: r, name, subresource } = req;
    const ns = r.namespaced ? req.namespace : undefined;
    if (subresource === 'log' && r.kind === 'Pod' && method === 'GET') return this.log(ns!, name!, req.query);
    if (subresource === 'scale' && r.kind === 'Deployment' && name) return this.scale(req, r, ns, name);
    if (subresource) throw notFound(`${r.plural}/${subresource}`, r.group, name ?? '');
    if (method === 'GET' && !name) return this.getList(req, r, ns);
    if (method === 'GET') return this.reply(req, r, [this.mustFind(r, ns, name!)], true);
    if (!r.stored || this.isAgentPod(r.kind, ns, name ?? '')) throw methodNotAllowed();
    if (method === 'POST' && !name) return this.create(req, r, ns);
    if (method === 'PUT' && name) return this.replace(req, r, ns, name);
    if (method === 'PATCH' && name) return this.patch(req, r, ns, name);
    if (method === 'DELETE' && name) return this.remove(r, ns, name);
    throw methodNotAllowed();
  }

  private getList(req: ResourceRequest, r: KubeResource, ns: string | undefined): ApiReply {
    try {
      return this.reply(req, r, selectObjects(this.list(r, ns), req.query.get('labelSelector') ?? undefined, req.query.get('fieldSelector') ?? undefined), false);
    } catch (e) {
      if (e instanceof SelectorError) throw badRequest(e.message);
      throw e;
    }
  }

  /** A Table when kubectl asks for one (Accept …;as=Table), else the object or the <Kind>List. */
  private reply(req: ResourceRequest, r: KubeResource, objects: KubeObject[], single: boolean): ApiReply {
    if (req.accept.includes('as=Table')) return { status: 200, body: toTable(r.kind, objects, this.resourceVersion, req.query.get('includeObject') === 'Object') };
    if (single) return { status: 200, body: objects[0] };
    return { status: 200, body: { kind: `${r.kind}List`, apiVersion: groupVersion(r), metadata: { resourceVersion: this.resourceVersion }, items: objects } };
  }

  private parseBody(req: ResourceRequest): Record<string, unknown> {
    try {
      const v: unknown = req.contentType.includes('yaml') ? parseYaml(req.body) : JSON.parse(req.body);
      if (typeof v !== 'object' || v === null) throw new Error('not an object');
      return v as Record<string, unknown>;
    } catch (e) {
      throw badRequest(`the request body could not be decoded: ${(e as Error).message}`);
    }
  }

  /** The body as a manifest of this resource: kind, apiVersion and the namespace of the path checked. */
  private manifest(r: KubeResource, ns: string | undefined, o: Record<string, unknown>, name?: string): KubeObject {
    const m = structuredClone(o) as KubeObject;
    if (m.kind !== undefined && m.kind !== r.kind) throw badRequest(`the kind of the object (${String(m.kind)}) does not match the resource (${r.kind})`);
    if (typeof m.metadata !== 'object' || m.metadata === null) m.metadata = {} as KubeObject['metadata'];
    if (!m.metadata.name) {
      if (name) m.metadata.name = name;
      else throw invalid(r.kind, r.group, '', 'metadata.name', 'name or generateName is required');
    }
    if (name && m.metadata.name !== name) throw badRequest(`the name of the object (${m.metadata.name}) does not match the name on the URL (${name})`);
    if (r.namespaced) {
      if (m.metadata.namespace && m.metadata.namespace !== ns) throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      m.metadata.namespace = ns;
    }
    for (const f of SERVER_FIELDS) delete m.metadata[f];
    delete m.status;
    return { ...m, apiVersion: groupVersion(r), kind: r.kind };
  }

  private async write(r: KubeResource, m: KubeObject, dryRun: boolean): Promise<'created' | 'configured' | 'unchanged'> {
    if (dryRun) return 'unchanged';
    try {
      return await this.backend.apply(m);
    } catch (e) {
      throw statusOf(e, r, m.metadata.name);
    }
  }

  private async create(req: ResourceRequest, r: KubeResource, ns: string | undefined): Promise<ApiReply> {
    const m = this.manifest(r, ns, this.parseBody(req));
    if (this.find(r, ns, m.metadata.name)) throw alreadyExists(r.plural, r.group, m.metadata.name);
    const dryRun = req.query.get('dryRun') === 'All';
    await this.write(r, m, dryRun);
    return { status: 201, body: dryRun ? this.decorate(r, m) : this.mustFind(r, ns, m.metadata.name) };
  }

  private async replace(req: ResourceRequest, r: KubeResource, ns: string | undefined, name: string): Promise<ApiReply> {
    const current = this.mustFind(r, ns, name);
    const body = this.parseBody(req);
    checkResourceVersion(r, current, body);
    const m = this.manifest(r, ns, body, name);
    await this.write(r, m, req.query.get('dryRun') === 'All');
    return { status: 200, body: this.mustFind(r, ns, name) };
  }

  private async patch(req: ResourceRequest, r: KubeResource, ns: string | undefined, name: string): Promise<ApiReply> {
    const current = this.find(r, ns, name);
    const dryRun = req.query.get('dryRun') === 'All';
    // Server-side apply: the body is the whole declared object; it creates when missing.
    if (req.contentType.startsWith('application/apply-patch')) {
      const m = this.manifest(r, ns, this.parseBody(req), name);
      // Annotations set by others (client-side apply's last-applied) stay, as fields of other managers do.
      const kept = current?.metadata.annotations;
      if (kept) m.metadata.annotations = { ...kept, ...m.metadata.annotations };
      await this.write(r, m, dryRun);
      return { status: current ? 200 : 201, body: dryRun ? this.decorate(r, m) : this.mustFind(r, ns, name) };
    }
    if (!current) throw notFound(r.plural, r.group, name);
    const patched = patchedManifest(current, req.contentType, this.parseBody(req));
    checkResourceVersion(r, current, patched);
    const m = this.manifest(r, ns, patched, name);
    await this.write(r, m, dryRun);
    return { status: 200, body: dryRun ? this.decorate(r, m) : this.mustFind(r, ns, name) };
  }

  private async remove(r: KubeResource, ns: string | undefined, name: string): Promise<ApiReply> {
    const current = this.mustFind(r, ns, name);
    try {
      await this.backend.delete(r.stored!, ns, name);
    } catch (e) {
      throw statusOf(e, r, name);
    }
    return { status: 200, body: current };
  }

  /** deployments/<name>/scale (kubectl scale): an autoscaling/v1 Scale over spec.replicas. */
  private async scale(req: ResourceRequest, r: KubeResource, ns: string | undefined, name: string): Promise<ApiReply> {
    const view = (d: KubeObject) => {
      const spec = d.spec as { replicas?: number; selector?: { matchLabels?: Record<string, string> } };
      return {
        apiVersion: 'autoscaling/v1', kind: 'Scale', metadata: { name, namespace: ns, uid: d.metadata.uid, resourceVersion: d.metadata.resourceVersion, creationTimestamp: d.metadata.creationTimestamp },
        spec: { replicas: spec.replicas ?? 1 },
        status: { replicas: (d.status as { replicas?: number } | undefined)?.replicas ?? 0, selector: Object.entries(spec.selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`).join(',') },
      };
    };
    const current = this.mustFind(r, ns, name);
    if (req.method === 'GET') return { status: 200, body: view(current) };
    if (req.method !== 'PATCH' && req.method !== 'PUT') throw methodNotAllowed();
    const body = this.parseBody(req);
    const scale = req.method === 'PUT' ? body : patchedManifest(view(current), req.contentType, body);
    const replicas = (scale.spec as { replicas?: unknown } | undefined)?.replicas;
    if (!Number.isInteger(replicas) || (replicas as number) < 0) throw invalid('Scale', 'autoscaling', name, 'spec.replicas', `${String(replicas)}: must be greater than or equal to 0`);
    const m = this.manifest(r, ns, { ...current, spec: { ...(current.spec as object), replicas } }, name);
    await this.write(r, m, req.query.get('dryRun') === 'All');
    return { status: 200, body: view(this.mustFind(r, ns, name)) };
  }

  /** Where a pod's log is (404 for an unknown pod): this node's file (undefined while it has none), or the command that reads another node's. */
  logSource(ns: string, name: string, follow: boolean): { path?: string; argv?: string[] } {
    if (!this.backend.list('Pod', ns).some((p) => p.metadata.name === name)) throw notFound('pods', '', name);
    const argv = this.backend.remoteLogArgv(ns, name, follow);
    return argv ? { argv } : { path: this.backend.podLogPath(ns, name) };
  }

  private async log(ns: string, name: string, query: URLSearchParams): Promise<ApiReply> {
    const { path, argv } = this.logSource(ns, name, false);
    let text = argv ? await commandOutput(argv) : path && existsSync(path) ? readFileSync(path, 'utf8') : '';
    const tail = Number(query.get('tailLines') ?? -1);
    if (tail >= 0) text = tail === 0 ? '' : text.split(/(?<=\n)/).slice(-tail).join('');
    return { status: 200, body: text, contentType: 'text/plain' };
  }
}

const MAX_LOG_BYTES = 64 << 20;

function commandOutput(argv: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(argv[0], argv.slice(1), { maxBuffer: MAX_LOG_BYTES, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new StatusError(500, 'InternalError', `reading the pod's log on its node failed: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

/** An update naming a resourceVersion must name the current one (optimistic concurrency), else 409 Conflict. */
function checkResourceVersion(r: KubeResource, current: KubeObject, update: Record<string, unknown>): void {
  const rv = (update.metadata as { resourceVersion?: unknown } | undefined)?.resourceVersion;
  if (rv === undefined || rv === '' || rv === current.metadata.resourceVersion) return;
  throw conflict(r.plural, r.group, current.metadata.name, 'the object has been modified; please apply your changes to the latest version and try again');
}

/** A backend rejection as the API server's Status: 400/422 → 422 Invalid naming the field, 404, 403, 409. */
export function statusOf(e: unknown, r: KubeResource, name: string): unknown {
  if (!(e instanceof BackendError)) return e;
  const nsMissing = e.field === 'metadata.namespace' ? /^namespaces "([^"]+)" not found$/.exec(e.message) : null;
  if (nsMissing) return notFound('namespaces', '', nsMissing[1]);
  switch (e.statusCode) {
    case 400:
    case 422: return invalid(r.kind, r.group, name, e.field, e.message);
    case 404: return notFound(r.plural, r.group, name);
    case 403: return new StatusError(403, 'Forbidden', e.message);
    case 409: return conflict(r.plural, r.group, name, e.message);
    default: return new StatusError(500, 'InternalError', e.message);
  }
}
