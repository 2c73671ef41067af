// Field masks (`hubble-export-fieldmask`): keep only the listed top-level or dotted paths of a flow,
// e.g. "time,verdict,source.pod_name,l7.http.url".

export type FieldMask = string[][];

export function parseFieldMask(s: string | string[]): FieldMask {
  const parts = Array.isArray(s) ? s : s.split(/[\s,]+/);
  const out: FieldMask = [];
  for (const p of parts.map((x) => x.trim()).filter(Boolean)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/.test(p)) throw new Error(`hubble-export-fieldmask: invalid path "${p}"`);
    out.push(p.split('.'));
  }
  return out;
}

/** A copy of obj with only the masked paths; an empty mask keeps everything. */
export function applyFieldMask<T extends object>(obj: T, mask: FieldMask): Partial<T> {
  if (mask.length === 0) return obj;
  const out: Record<string, unknown> = {};
  for (const path of mask) {
    let src: unknown = obj;
    for (const k of path) {
      src = src !== null && typeof src === 'object' && !Array.isArray(src) ? (src as Record<string, unknown>)[k] : undefined;
      if (src === undefined) break;
    }
    if (src === undefined) continue;
    let dst = out;
    for (let i = 0; i < path.length - 1; i++) {
      const next = dst[path[i]];
      if (next === undefined || next === null || typeof next !== 'object') dst[path[i]] = {};
      dst = dst[path[i]] as Record<string, unknown>;
    }
    dst[path[path.length - 1]] = structuredClone(src);
  }
  return out as Partial<T>;
}
