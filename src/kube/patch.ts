// PATCH bodies: JSON merge patch, strategic merge patch (lists of objects merged by their `name`/`port`
// key, directives dropped), JSON patch, and client-side apply's last-applied annotation.
import { badRequest } from './status.ts';

export const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
const isObject = (v: unknown): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function mergePatch(target: Json, patch: Json, strategic = false): Json {
  if (!isObject(patch)) return patch;
  const out: Record<string, Json> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (strategic && k.startsWith('$')) continue;
    if (v === null) delete out[k];
    else if (strategic && Array.isArray(v) && Array.isArray(out[k])) out[k] = mergeList(out[k] as Json[], v);
    else out[k] = mergePatch(out[k] ?? null, v, strategic);
  }
  return out;
}

/** Strategic merge of a list: elements with the same merge key are merged, new ones appended. */
function mergeList(target: Json[], patch: Json[]): Json[] {
  const key = ['name', 'port', 'containerPort', 'ip'].find((k) => patch.every((e) => isObject(e) && k in e) && target.every((e) => isObject(e) && k in e));
  if (!key) return patch;
  const out = [...target];
  for (const p of patch as Array<Record<string, Json>>) {
    const i = out.findIndex((e) => (e as Record<string, Json>)[key] === p[key]);
    if (p.$patch === 'delete') {
      if (i >= 0) out.splice(i, 1);
    } else if (i >= 0) out[i] = mergePatch(out[i], p, true);
    else out.push(mergePatch(null, p, true));
  }
  return out;
}

function pointer(path: string): string[] {
  return path.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

export function jsonPatch(target: Json, ops: unknown): Json {
  if (!Array.isArray(ops)) throw badRequest('json patch must be a list of operations');
  let doc = structuredClone(target);
  for (const op of ops as Array<{ op: string; path: string; value?: Json; from?: string }>) {
    const parts = pointer(op.path ?? '');
    if (!parts.length) {
      if (op.op === 'add' || op.op === 'replace') doc = op.value ?? null;
      continue;
    }
    let parent: Json = doc;
    for (const p of parts.slice(0, -1)) {
      parent = Array.isArray(parent) ? parent[Number(p)] : isObject(parent) ? parent[p] : null;
      if (parent === undefined || parent === null) throw badRequest(`jsonpatch ${op.op} operation does not apply: doc is missing path: ${op.path}`);
    }
    const last = parts[parts.length - 1];
    if (op.op === 'test') {
      const cur = Array.isArray(parent) ? parent[Number(last)] : (parent as Record<string, Json>)[last];
      if (JSON.stringify(cur) !== JSON.stringify(op.value)) throw badRequest(`testing value ${op.path} failed`);
    } else if (Array.isArray(parent)) {
      const i = last === '-' ? parent.length : Number(last);
      if (op.op === 'add') parent.splice(i, 0, op.value ?? null);
      else if (op.op === 'replace') parent[i] = op.value ?? null;
      else if (op.op === 'remove') parent.splice(i, 1);
      else throw badRequest(`unsupported json patch operation "${op.op}"`);
    } else if (isObject(parent)) {
      if (op.op === 'add' || op.op === 'replace') parent[last] = op.value ?? null;
      else if (op.op === 'remove') {
        if (!(last in parent)) throw badRequest(`jsonpatch remove operation does not apply: doc is missing key: ${op.path}`);
        delete parent[last];
      } else throw badRequest(`unsupported json patch operation "${op.op}"`);
    }
  }
  return doc;
}

/**
 * The manifest a PATCH leaves. Client-side apply sends the whole new configuration in the last-applied
 * annotation: that is what was declared, so it becomes the manifest (with the annotation kept).
 */
export function patchedManifest(stored: Record<string, unknown>, contentType: string, body: unknown): Record<string, unknown> {
  return dropTypeDependentFields(stored, patchedBody(stored, contentType, body));
}

type ServiceLike = { kind?: unknown; spec?: { type?: string; externalTrafficPolicy?: string; ports?: Array<{ nodePort?: number }> } };
const needsNodePorts = (type: string | undefined) => type === 'NodePort' || type === 'LoadBalancer';

/**
 * The API server's dropTypeDependentFields: a Service whose update makes it a ClusterIP loses the
 * nodePorts and externalTrafficPolicy it kept unchanged from its NodePort or LoadBalancer days.
 */
export function dropTypeDependentFields<T>(stored: unknown, next: T): T {
  const old = stored as ServiceLike;
  const svc = next as ServiceLike;
  if (svc?.kind !== 'Service' || old?.kind !== 'Service' || needsNodePorts(svc.spec?.type) || !needsNodePorts(old.spec?.type)) return next;
  const oldPorts = old.spec?.ports ?? [];
  const ports = svc.spec!.ports ?? [];
  const same = ports.every((p, i) => p.nodePort === undefined || p.nodePort === oldPorts[i]?.nodePort);
  const spec = { ...svc.spec! };
  if (same) spec.ports = ports.map(({ nodePort: _cleared, ...p }) => p);
  if (spec.externalTrafficPolicy === old.spec?.externalTrafficPolicy) delete spec.externalTrafficPolicy;
  return { ...svc, spec } as T;
}

function patchedBody(stored: Record<string, unknown>, contentType: string, body: unknown): Record<string, unknown> {
  const type = contentType.split(';')[0].trim();
  if (type === 'application/json-patch+json') return jsonPatch(stored as Json, body) as Record<string, unknown>;
  if (type !== 'application/merge-patch+json' && type !== 'application/strategic-merge-patch+json') {
    throw badRequest(`the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json`);
  }
  const lastApplied = (body as { metadata?: { annotations?: Record<string, unknown> } })?.metadata?.annotations?.[LAST_APPLIED];
  if (typeof lastApplied === 'string') {
    const declared = JSON.parse(lastApplied) as Record<string, unknown> & { metadata?: { annotations?: Record<string, string> } };
    declared.metadata = { ...declared.metadata, annotations: { ...declared.metadata?.annotations, [LAST_APPLIED]: lastApplied } };
    return declared;
  }
  return mergePatch(stored as Json, body as Json, type === 'application/strategic-merge-patch+json') as Record<string, unknown>;
}
