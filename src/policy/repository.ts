// The policy repository: policies by (kind, namespace, name), a revision, and incremental resolution.
//
// Cost model:
//   add/delete: registers/unregisters the policy's selectors (O(identities) per new distinct
//     selector) and marks stale the tracked endpoints its rules select, old or new version
//     (O(tracked endpoints × rules of that policy)).
//   addIdentity/removeIdentity: O(registered selectors) to update the selector sets, then the
//     endpoints that read a changed selector (reverse index) are the affected ones — no rule walk.
//   resolve: O(rules) subject matching + the entry builder (cover checks through a port-block
//     index; L7 intersections are O(entries²) only where L7 rules are involved).
//   reuse: O(selectors the resolution read) — endpoints with the same labels and named ports share
//     one resolution while nothing changes.
// Callers recompute only what changed: `addIdentity` returns the affected endpoints, and
// `takeStaleEndpoints()` returns every tracked endpoint whose policy may differ since its last resolve.
import { normalizeCidr } from './cidr.ts';
import { resolveRules, cidrsOfRule, fqdnSelectorsOfRule, selectorsOfRule } from './resolve.ts';
import { SERVICE_SELECTOR_PREFIX, type ServiceInfo } from './peers.ts';
import { reservedIdentityLabels, SelectorCache } from './selector-cache.ts';
import { RESERVED_IDENTITIES, type EndpointInfo, type PolicyKind, type PolicyRules, type ResolveContext, type ResolvedPolicy, type Rule } from './types.ts';

interface TrackedEndpoint {
  labels: readonly string[];
  usedSelectors: Set<string>;
}

/** What a resolve() result stands for, so reuse() can hand it to a like endpoint. */
interface Shareable {
  ctx: ResolveContext;
  /** Repository state it was computed in (see stamp()). */
  stamp: string;
  key: string;
  usedSelectors: Set<string>;
}

/**
 * Everything of an endpoint its resolution reads besides its id: labels and named ports. Endpoints
 * with equal keys resolve to the same entries under the same repository state and context.
 */
export function resolutionKey(ep: EndpointInfo): string {
  const labels = [...ep.labels].sort().join('\0');
  const ports = Object.entries(ep.namedPorts ?? {})
    .map(([name, p]) => `${name}=${p.port}/${p.protocol}`)
    .sort()
    .join('\0');
  return `${labels}\n${ports}`;
}

export function policyKey(kind: PolicyKind | string, namespace: string | undefined, name: string): string {
  return `${kind}/${kind === 'CiliumClusterwideNetworkPolicy' ? '' : namespace ?? 'default'}/${name}`;
}

export class PolicyRepository {
  readonly selectorCache = new SelectorCache();
  private readonly policies = new Map<string, PolicyRules>();
  private rev = 0;
  private rulesCache: Rule[] | undefined;
  private readonly endpoints = new Map<number, TrackedEndpoint>();
  /** selector key → endpoints whose last resolution read it. */
  private readonly readers = new Map<string, Set<number>>();
  private readonly stale = new Set<number>();
  /** Identities learnt from ctx.identities (the only ones a later sync may remove). */
  private readonly synced = new Set<number>();
  private readonly cidrIds = new Map<string, number>();
  private readonly shareable = new WeakMap<ResolvedPolicy, Shareable>();

  constructor() {
    for (const [id, labels] of reservedIdentityLabels()) this.selectorCache.addIdentity(id, labels);
  }

  get revision(): number {
    return this.rev;
  }

  /** Add or replace a policy; returns the new revision. */
  add(policy: PolicyRules): number {
    const key = policyKey(policy.kind, policy.namespace, policy.name);
    const old = this.policies.get(key);
    for (const r of policy.rules) for (const s of selectorsOfRule(r, this.selectorCache.services)) this.selectorCache.register(s);
    this.policies.set(key, policy);
    if (old) this.release(old);
    this.markSelected([...(old?.rules ?? []), ...policy.rules]);
    return this.bump();
  }

  /** Remove a policy; returns the new revision, or undefined when there was none. */
  delete(kind: PolicyKind | string, namespace: string | undefined, name: string): number | undefined {
    const key = policyKey(kind, namespace, name);
    const old = this.policies.get(key);
    if (!old) return undefined;
    this.policies.delete(key);
    this.release(old);
    this.markSelected(old.rules);
    return this.bump();
  }

  deleteAll(): number {
    const all = [...this.policies.values()];
    this.policies.clear();
    for (const p of all) this.release(p);
    this.markSelected(all.flatMap((p) => p.rules));
    return this.bump();
  }

  get(kind: PolicyKind | string, namespace: string | undefined, name: string): PolicyRules | undefined {
    return this.policies.get(policyKey(kind, namespace, name));
  }

  /** Every policy (each keeps its original object), ordered by kind, namespace, name. */
  list(): PolicyRules[] {
    return [...this.policies.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, p]) => p);
  }

  /** Policies with a rule selecting these labels. */
  policiesSelecting(labels: readonly string[]): PolicyRules[] {
    return this.list().filter((p) => p.rules.some((r) => r.subject.matches(labels)));
  }

  /** The services toServices peers read; returns the tracked endpoints whose policy changes. */
  setServices(source: () => readonly ServiceInfo[]): number[] {
    const catalog = this.selectorCache.services;
    catalog.invalidate(source);
    // With no toServices peer nothing reads them: the catalog reads them when one first does.
    const reads = (k: string) => k.startsWith(SERVICE_SELECTOR_PREFIX);
    if (!this.selectorCache.hasKey(reads) && ![...this.readers.keys()].some(reads)) return [];
    if (!catalog.load()) return [];
    const changed = this.selectorCache.refresh(SERVICE_SELECTOR_PREFIX);
    // Every reader re-resolves: a selector-less service's new address has no CIDR identity until then.
    return this.affectedEndpoints([...new Set([...changed, ...[...this.readers.keys()].filter((k) => k.startsWith(SERVICE_SELECTOR_PREFIX))])]);
  }

  /** Every toFQDNs selector text of every policy. */
  fqdnSelectors(): Set<string> {
    return new Set(this.rules().flatMap(fqdnSelectorsOfRule));
  }

  /** A new (or relabelled) identity; returns the tracked endpoints whose policy it changes. */
  addIdentity(id: number, labels: readonly string[]): number[] {
    return this.affectedEndpoints(this.selectorCache.addIdentity(id, labels));
  }

  removeIdentity(id: number): number[] {
    this.synced.delete(id);
    return this.affectedEndpoints(this.selectorCache.removeIdentity(id));
  }

  /** Tracked endpoints that read any of these selectors (they are also marked stale). */
  affectedEndpoints(changedSelectors: readonly string[]): number[] {
    const out = new Set<number>();
    for (const key of changedSelectors) for (const ep of this.readers.get(key) ?? []) out.add(ep);
    for (const ep of out) this.stale.add(ep);
    return [...out].sort((a, b) => a - b);
  }

  /** Tracked endpoints whose policy may have changed since their last resolve; clears the set. */
  takeStaleEndpoints(): number[] {
    const out = [...this.stale].sort((a, b) => a - b);
    this.stale.clear();
    return out;
  }

  /** Stop tracking an endpoint (it was deleted). */
  forgetEndpoint(id: number): void {
    const ep = this.endpoints.get(id);
    if (!ep) return;
    for (const key of ep.usedSelectors) this.readers.get(key)?.delete(id);
    this.endpoints.delete(id);
    this.stale.delete(id);
  }

  /** Resolve an endpoint's policy-map entries; the endpoint is tracked for incremental updates from now on. */
  resolve(ep: EndpointInfo, ctx: ResolveContext): ResolvedPolicy {
    this.syncIdentities(ctx.identities);
    const rules = this.rules();
    const selected = rules.filter((r) => r.subject.matches(ep.labels));
    const cidrs = new Set<string>();
    for (const r of selected) for (const c of cidrsOfRule(r, this.selectorCache.services)) cidrs.add(c);
    for (const c of cidrs) this.ensureCidrIdentity(c, ctx);
    const res = resolveRules(rules, ep, ctx, this.selectorCache);
    this.track(ep, res.usedSelectors);
    this.stale.delete(ep.id);
    const out: ResolvedPolicy = {
      ingressEnforced: res.ingressEnforced,
      egressEnforced: res.egressEnforced,
      entries: res.entries,
      revision: this.rev,
      cidrs: [...cidrs].sort(),
      warnings: res.warnings,
    };
    // Warnings name the endpoint: such a result is not handed to others.
    if (res.warnings.length === 0) this.shareable.set(out, { ctx, stamp: this.stamp(), key: resolutionKey(ep), usedSelectors: res.usedSelectors });
    return out;
  }

  /**
   * `ep`'s policy taken from `prior`, a resolve() result for another endpoint with the same
   * resolutionKey() under the same `ctx`, when nothing has changed in the repository since (no
   * policy, identity or selector added or removed): `ep` is then tracked exactly as resolve() would
   * track it. Undefined when `prior` cannot stand for `ep` — call resolve().
   * The returned entries are the same objects as prior's: neither may be mutated.
   */
  reuse(ep: EndpointInfo, ctx: ResolveContext, prior: ResolvedPolicy): ResolvedPolicy | undefined {
    const s = this.shareable.get(prior);
    if (!s || s.ctx !== ctx || s.stamp !== this.stamp() || s.key !== resolutionKey(ep)) return undefined;
    this.track(ep, s.usedSelectors);
    this.stale.delete(ep.id);
    return { ...prior, entries: [...prior.entries], cidrs: [...prior.cidrs], warnings: [] };
  }

  /** Every rule of every policy, in list() order. */
  rules(): Rule[] {
    return (this.rulesCache ??= this.list().flatMap((p) => p.rules));
  }

  /** The repository state a resolution depends on: rules and the selector cache. */
  private stamp(): string {
    return `${this.rev}/${this.selectorCache.generation}`;
  }

  private bump(): number {
    this.rulesCache = undefined;
    return ++this.rev;
  }

  private release(p: PolicyRules): void {
    for (const r of p.rules) for (const s of selectorsOfRule(r, this.selectorCache.services)) this.selectorCache.unregister(s.key);
  }

  private markSelected(rules: readonly Rule[]): void {
    for (const [id, ep] of this.endpoints) if (rules.some((r) => r.subject.matches(ep.labels))) this.stale.add(id);
  }

  private track(ep: EndpointInfo, used: Set<string>): void {
    const old = this.endpoints.get(ep.id);
    for (const key of old?.usedSelectors ?? []) this.readers.get(key)?.delete(ep.id);
    for (const key of used) {
      let set = this.readers.get(key);
      if (!set) this.readers.set(key, (set = new Set()));
      set.add(ep.id);
    }
    this.endpoints.set(ep.id, { labels: [...ep.labels], usedSelectors: used });
  }

  /** Bring the selector cache in line with the caller's identity table (cheap when nothing changed). */
  private syncIdentities(identities: Map<number, string[]>): void {
    for (const [id, labels] of identities) {
      this.synced.add(id);
      this.affectedEndpoints(this.selectorCache.addIdentity(id, labels));
    }
    for (const id of [...this.synced]) {
      if (identities.has(id)) continue;
      this.synced.delete(id);
      const reserved = Object.values(RESERVED_IDENTITIES).includes(id as never);
      const cidr = [...this.cidrIds.values()].includes(id);
      if (!reserved && !cidr) this.affectedEndpoints(this.selectorCache.removeIdentity(id));
    }
  }

  /** The caller allocates CIDR identities; 0.0.0.0/0 is world itself. */
  private ensureCidrIdentity(cidr: string, ctx: ResolveContext): void {
    const c = normalizeCidr(cidr) ?? cidr;
    if (c === '0.0.0.0/0') return;
    const id = ctx.cidrIdentity(c);
    this.cidrIds.set(c, id);
    if (!this.selectorCache.hasIdentity(id)) this.affectedEndpoints(this.selectorCache.addIdentity(id, [`cidr:${c}`, 'reserved:world']));
  }
}
