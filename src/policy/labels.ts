// Cilium labels: `source:key=value`; source `any` in a selector matches a label of every source.

export interface Label {
  source: string;
  key: string;
  value: string;
}

/** Sources Cilium knows; a prefix outside this list is part of the key (k8s keys never hold ':'). */
const SOURCES = new Set(['any', 'k8s', 'reserved', 'cidr', 'container', 'unspec', 'fqdn', 'cilium-generated', 'k8s-ns', 'node']);

/** Split `k8s:app` / `any:app` / `app` into source and key; a bare key has source `any`. */
export function parseLabelKey(s: string, defaultSource = 'any'): { source: string; key: string } {
  const i = s.indexOf(':');
  if (i > 0 && SOURCES.has(s.slice(0, i))) return { source: s.slice(0, i), key: s.slice(i + 1) };
  return { source: defaultSource, key: s };
}

/** Parse `k8s:app=web`, `any:app`, `reserved:host`, `app=web`, `cidr:10.0.0.0/8`. */
export function parseLabel(s: string, defaultSource = 'any'): Label {
  const { source, key: rest } = parseLabelKey(s, defaultSource);
  const eq = rest.indexOf('=');
  return eq < 0 ? { source, key: rest, value: '' } : { source, key: rest.slice(0, eq), value: rest.slice(eq + 1) };
}

export function formatLabel(l: Label): string {
  return `${l.source}:${l.key}${l.value === '' ? '' : `=${l.value}`}`;
}

/** A selector's label (source may be `any`) matches an identity's label. */
export function labelMatches(want: Label, have: Label): boolean {
  return want.key === have.key && want.value === have.value && (want.source === 'any' || want.source === have.source);
}

/** An identity's labels indexed by key, so a selector requirement is one map lookup. */
export type LabelIndex = Map<string, Array<{ source: string; value: string }>>;

export function indexLabels(labels: readonly string[]): LabelIndex {
  const idx: LabelIndex = new Map();
  for (const s of labels) {
    const l = parseLabel(s);
    let list = idx.get(l.key);
    if (!list) idx.set(l.key, (list = []));
    list.push({ source: l.source, value: l.value });
  }
  return idx;
}

/** Values of `key` in the index, restricted to `source` unless it is `any`. */
export function valuesOf(idx: LabelIndex, source: string, key: string): string[] {
  const list = idx.get(key);
  if (!list) return [];
  return list.filter((l) => source === 'any' || l.source === source).map((l) => l.value);
}
