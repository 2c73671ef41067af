// The identities each distinct selector selects, kept current as identities come and go.
//
// Cost model: addIdentity/removeIdentity test the identity against every registered selector once
// (O(selectors × requirements)); register() scans every known identity once (O(identities)).
// Lookups of a selector's set are O(1). Selectors are reference-counted: equal selectors in
// different rules share one entry.
import { parsePrefix, prefixContains, type Prefix } from './cidr.ts';
import { indexLabels, valuesOf, type LabelIndex } from './labels.ts';
import type { EndpointSelector } from './selector.ts';
import { ServiceCatalog } from './peers.ts';
import { RESERVED_IDENTITIES } from './types.ts';

/** What a selector sees of an identity. */
export interface IdentityView {
  id: number;
  labels: readonly string[];
  index: LabelIndex;
  /** The most specific `cidr:` prefix (world = 0.0.0.0/0), for CIDR identities. */
  prefix?: Prefix;
  /** A CIDR or world identity: outside the cluster. */
  outside: boolean;
}

export interface IdentitySelector {
  readonly key: string;
  selects(id: IdentityView): boolean;
}

/** fromEndpoints/toEndpoints and reserved entities: a label selector. */
export class LabelIdentitySelector implements IdentitySelector {
  readonly key: string;
  constructor(readonly selector: EndpointSelector) {
    this.key = `labels:${selector.key}`;
  }
  selects(id: IdentityView): boolean {
    return this.selector.matchesIndex(id.index);
  }
}

/** The `cluster` entity: every identity that is neither world nor a CIDR. */
export class ClusterSelector implements IdentitySelector {
  readonly key = 'entity:cluster';
  selects(id: IdentityView): boolean {
    return !id.outside;
  }
}

/** A CIDR minus its excepts: CIDR identities whose prefix lies inside cidr and outside every except. */
export class CidrSelector implements IdentitySelector {
  readonly key: string;
  private readonly prefix: Prefix;
  private readonly except: Prefix[];
  constructor(
    readonly cidr: string,
    readonly exceptCidrs: readonly string[],
  ) {
    this.key = `cidr:${cidr}${exceptCidrs.length ? ` except ${[...exceptCidrs].sort().join(',')}` : ''}`;
    this.prefix = parsePrefix(cidr)!;
    this.except = exceptCidrs.map((c) => parsePrefix(c)!);
  }
  selects(id: IdentityView): boolean {
    const p = id.prefix;
    return p !== undefined && prefixContains(this.prefix, p) && !this.except.some((e) => prefixContains(e, p));
  }
}

function viewOf(id: number, labels: readonly string[]): IdentityView {
  const index = indexLabels(labels);
  let prefix: Prefix | undefined;
  for (const [key, list] of index) {
    if (!list.some((l) => l.source === 'cidr')) continue;
    const p = parsePrefix(key);
    if (p && (!prefix || p.len > prefix.len)) prefix = p;
  }
  const world = id === RESERVED_IDENTITIES.world || valuesOf(index, 'reserved', 'world').length > 0;
  if (!prefix && id === RESERVED_IDENTITIES.world) prefix = { addr: 0, len: 0 };
  // CIDR identities are part of world even when the caller left the label out.
  if (prefix && !world) index.set('world', [...(index.get('world') ?? []), { source: 'reserved', value: '' }]);
  return { id, labels, index, prefix, outside: world || prefix !== undefined };
}

export { reservedIdentityLabels } from '../identity/labels.ts';

export class SelectorCache {
  /** Services toServices selectors read (see refresh()). */
  readonly services = new ServiceCatalog();
  private readonly identities = new Map<number, IdentityView>();
  private readonly entries = new Map<string, { selector: IdentitySelector; ids: Set<number>; refs: number }>();
  private gen = 0;

  /** Add (or relabel) an identity; returns the keys of selectors whose sets changed. */
  addIdentity(id: number, labels: readonly string[]): string[] {
    const old = this.identities.get(id);
    if (old && sameLabels(old.labels, labels)) return [];
    this.gen++;
    const view = viewOf(id, labels);
    this.identities.set(id, view);
    const changed: string[] = [];
    for (const [key, e] of this.entries) {
      const now = e.selector.selects(view);
      if (now === e.ids.has(id)) continue;
      if (now) e.ids.add(id);
      else e.ids.delete(id);
      changed.push(key);
    }
    return changed;
  }

  /** Forget an identity; returns the keys of selectors that had selected it. */
  removeIdentity(id: number): string[] {
    if (!this.identities.delete(id)) return [];
    this.gen++;
    const changed: string[] = [];
    for (const [key, e] of this.entries) if (e.ids.delete(id)) changed.push(key);
    return changed;
  }

  /** Re-evaluate the selectors whose key starts with `prefix` (their outside data changed); returns the keys whose sets changed. */
  refresh(prefix: string): string[] {
    const changed: string[] = [];
    for (const [key, e] of this.entries) {
      if (!key.startsWith(prefix)) continue;
      const ids = new Set<number>();
      for (const view of this.identities.values()) if (e.selector.selects(view)) ids.add(view.id);
      if (ids.size === e.ids.size && [...ids].every((id) => e.ids.has(id))) continue;
      e.ids.clear();
      for (const id of ids) e.ids.add(id);
      changed.push(key);
    }
    if (changed.length > 0) this.gen++;
    return changed;
  }

  /** Is a selector registered under a key that `match` accepts? */
  hasKey(match: (key: string) => boolean): boolean {
    for (const key of this.entries.keys()) if (match(key)) return true;
    return false;
  }

  hasIdentity(id: number): boolean {
    return this.identities.has(id);
  }

  labelsOf(id: number): readonly string[] | undefined {
    return this.identities.get(id)?.labels;
  }

  /** Changes with every identity or selector added or removed (a resolution made at one value holds while it stays). */
  get generation(): number {
    return this.gen;
  }

  identityIds(): IterableIterator<number> {
    return this.identities.keys();
  }

  /** Start (or share) tracking a selector; returns its current set. */
  register(selector: IdentitySelector): ReadonlySet<number> {
    let e = this.entries.get(selector.key);
    if (!e) {
      const ids = new Set<number>();
      for (const view of this.identities.values()) if (selector.selects(view)) ids.add(view.id);
      e = { selector, ids, refs: 0 };
      this.entries.set(selector.key, e);
      this.gen++;
    }
    e.refs++;
    return e.ids;
  }

  unregister(key: string): void {
    const e = this.entries.get(key);
    if (e && --e.refs <= 0) {
      this.entries.delete(key);
      this.gen++;
    }
  }

  /** The identities a registered selector selects (empty when unknown). */
  selections(key: string): ReadonlySet<number> {
    return this.entries.get(key)?.ids ?? EMPTY;
  }

  get selectorCount(): number {
    return this.entries.size;
  }
}

const EMPTY: ReadonlySet<number> = new Set();

function sameLabels(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  const sa = [...a].sort();
  const sb = [...b].sort();
  return sa.every((x, i) => x === sb[i]);
}
