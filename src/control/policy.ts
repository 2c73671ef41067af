// Policy in the agent: the repository of rules, their resolution into each endpoint's
// cilium_policy_<id> map, CIDR identities in the ipcache, persistence in the kvstore.
// Only endpoints whose selected identities or rules changed are recomputed.
import { LOCAL_IDENTITY_BASE } from '../dataplane/vocab/reserved-identities.ts';
import type { Logger } from 'pino';
import type { KVStore, KVWatch } from './kvstore.ts';
import { ApiError, type PolicyImportResult, type PolicySummary, type ResourceView, type Service } from './types.ts';
import type { ResourceDeps } from './resources/handlers.ts';
import type { LpmTrieMap } from '../maps/index.ts';
import { PolicyError, PolicyRepository, RESERVED_IDENTITIES, parsePolicy, encodeKey, decodeEntry, formatPolicyEntries, POLICY_KEY_SIZE, POLICY_FLAG_DENY, type PolicyEntry, type PolicyRules, type ResolvedPolicy, type SourceInfo } from '../policy/index.ts';
export type { PolicyImportResult };
import { reservedIdentityLabels } from '../policy/selector-cache.ts';
import { policyKey, resolutionKey } from '../policy/repository.ts';
import * as PM from '../maps/cilium/policy.ts';
import type { ProxyManager } from '../proxy/http/manager.ts';
import { FqdnManager } from '../fqdn/manager.ts';
import type { ServiceInfo } from '../policy/peers.ts';

const STORE_PREFIX = 'ciliary/policies/';
const KUBE_APISERVER_LABEL = 'reserved:kube-apiserver';
/** Node-local CIDR identities have bit 24 set, as Cilium's. */

export interface PolicyEndpoint {
  id: number;
  identity: number;
  labels: string[];
  namedPorts?: Record<string, { port: number; protocol: string }>;
}

export interface PolicyManagerDeps {
  kv: KVStore;
  log: Logger;
  enforcement: 'default' | 'always' | 'never';
  endpoints: () => PolicyEndpoint[];
  identities: () => Map<number, string[]>;
  policyMap: (endpointId: number) => LpmTrieMap | undefined;
  /** Tells the datapath which directions of the endpoint are enforced, so only those report policy verdicts. */
  setVerdictLogFilter?: (endpointId: number, ingress: boolean, egress: boolean) => void;
  /** Writes (or removes, identity 0) an ipcache prefix for a CIDR identity. */
  setIpcache: (cidr: string, identity: number) => void;
  /** L7 redirects: entries with HTTP or DNS rules get a proxy port from here. */
  proxies?: ProxyManager;
  /** Services toServices peers select the backends of (read at each regeneration). */
  services?: () => ServiceInfo[];
  /** tofqdns-min-ttl, seconds. */
  fqdnMinTtl?: number;
  /** enable-node-selector-labels: the host identity's labels (reserved:host + this node's labels). */
  hostNodeLabels?: string[];
}


export class PolicyManager {
  readonly repo = new PolicyRepository();
  private readonly cidrIds = new Map<string, number>();
  private nextLocalId = LOCAL_IDENTITY_BASE + 1;
  /** CIDRs a rule names (their identity stays while the rule does). */
  private readonly ruleCidrs = new Set<string>();
  /** `fqdn:<selector>` labels of the IPs DNS taught (keyed by their /32). */
  private readonly fqdnLabels = new Map<string, string[]>();
  /** Learned IPs and the toFQDNs selectors that select them. */
  readonly fqdn: FqdnManager;
  private regenerating = false;
  /** enable-node-selector-labels: node name → its node-local identity and labels. */
  private readonly nodeIds = new Map<string, { id: number; labels: string[] }>();
  /** Where the API servers run, as far as identities go (see setKubeApiServer). */
  private kubeApiServer = { host: false, remoteNode: false };
  private readonly enforced = new Map<number, { ingress: boolean; egress: boolean }>();
  /** Redirect keys each endpoint's policy uses, so unused proxy listeners can close. */
  private readonly redirectKeys = new Map<number, Set<string>>();
  private readonly key = new Uint8Array(POLICY_KEY_SIZE);
  private watch?: KVWatch;

  constructor(private readonly d: PolicyManagerDeps) {
    this.fqdn = new FqdnManager({ minTtl: d.fqdnMinTtl ?? 0, apply: (changes) => this.applyLearned(changes) });
  }

  /** Loads the stored policies and follows the store: a policy put or deleted by another process or node takes effect. */
  async restore(): Promise<void> {
    let following = false;
    this.watch = this.d.kv.watch(STORE_PREFIX, (e) => {
      if (this.fromStore(e.key.slice(STORE_PREFIX.length), e.type === 'put' ? e.value : undefined) && following) this.regenerate();
    });
    await this.watch.ready;
    following = true;
    this.regenerate(true);
  }

  close(): void {
    this.watch?.close();
    this.fqdn.close();
  }

  /** A stored policy changed; true when the repository changed (our own writes are already in it). */
  private fromStore(key: string, value: string | undefined): boolean {
    const [kind, ns, ...name] = key.split('/');
    const namespace = ns === '' ? undefined : ns;
    const have = this.repo.get(kind, namespace, name.join('/'));
    if (value === undefined) return have !== undefined && this.repo.delete(kind, namespace, name.join('/')) !== undefined;
    try {
      const original = JSON.parse(value) as unknown;
      if (have && JSON.stringify(have.original) === JSON.stringify(original)) return false;
      this.repo.add(parsePolicy(original));
      return true;
    } catch (e) {
      this.d.log.warn({ key, err: (e as Error).message }, 'stored policy does not parse; skipped');
      return false;
    }
  }

  /** Parses every object first: one invalid object rejects the whole import and nothing changes. */
  async import(objects: unknown[], sources: SourceInfo[] = []): Promise<PolicyImportResult> {
    const parsed: PolicyRules[] = [];
    for (const [i, o] of objects.entries()) {
      try {
        parsed.push(parsePolicy(o, sources[i] ?? {}));
      } catch (e) {
        if (e instanceof PolicyError) throw new ApiError(400, objects.length > 1 ? `policy #${i + 1}: ${e.message}` : e.message);
        throw e;
      }
    }
    const policies: PolicyImportResult['policies'] = [];
    for (const p of parsed) {
      const old = this.repo.get(p.kind, p.namespace, p.name);
      const result = !old ? 'created' : JSON.stringify(old.original) === JSON.stringify(p.original) ? 'unchanged' : 'configured';
      if (result !== 'unchanged') {
        this.repo.add(p);
        await this.d.kv.put(STORE_PREFIX + policyKey(p.kind, p.namespace, p.name), JSON.stringify(p.original));
      }
      policies.push({ kind: p.kind, namespace: p.namespace, name: p.name, result });
    }
    this.regenerate();
    await this.redirectsReady();
    return { revision: this.repo.revision, policies };
  }

  async delete(kind: string, namespace: string | undefined, name: string): Promise<number> {
    if (this.repo.delete(kind, namespace, name) === undefined) throw new ApiError(404, `${kind} "${namespace ? `${namespace}/` : ''}${name}" not found`);
    await this.d.kv.delete(STORE_PREFIX + policyKey(kind, namespace, name));
    this.regenerate();
    return this.repo.revision;
  }

  async deleteAll(): Promise<number> {
    const all = this.repo.list();
    this.repo.deleteAll();
    for (const p of all) await this.d.kv.delete(STORE_PREFIX + policyKey(p.kind, p.namespace, p.name));
    this.regenerate();
    return this.repo.revision;
  }

  list(): PolicySummary[] {
    const eps = this.d.endpoints();
    return this.repo.list().map((p) => ({
      kind: p.kind, namespace: p.namespace, name: p.name, object: p.original,
      selects: eps.filter((e) => p.rules.some((r) => r.subject.matches(e.labels))).map((e) => e.id),
    }));
  }

  /** Every identity known here, CIDR ones included. */
  allIdentities(): Map<number, string[]> {
    return this.identities();
  }

  enforcement(endpointId: number): { ingress: boolean; egress: boolean } {
    return this.enforced.get(endpointId) ?? { ingress: this.d.enforcement === 'always', egress: this.d.enforcement === 'always' };
  }

  endpointRemoved(id: number): void {
    this.repo.forgetEndpoint(id);
    this.enforced.delete(id);
    this.d.setVerdictLogFilter?.(id, false, false);
  }

  /** Recomputes stale endpoints (all of them with `all`, or when new ones appeared). */
  regenerate(all = false): number {
    this.regenerating = true;
    try {
      if (this.d.services) this.repo.setServices(this.d.services);
      this.fqdn.setSelectors(this.repo.fqdnSelectors());
      let n = this.regenerateOnce(all);
      // Resolving may reveal identities that change other endpoints' policy: settle them too.
      for (let i = 0; i < 3 && this.staleCount() > 0; i++) n += this.regenerateOnce(false);
      this.releaseRedirects();
      return n;
    } finally {
      this.regenerating = false;
    }
  }

  /**
   * IPs whose toFQDNs selectors changed: each selected IP gets a node-local CIDR identity labelled
   * `fqdn:<selector>` in the ipcache; one no selector wants any more loses it (unless a rule names its CIDR).
   */
  private applyLearned(changes: Map<string, string[]>): void {
    for (const [ip, texts] of changes) {
      const cidr = `${ip}/32`;
      if (texts.length > 0) {
        this.fqdnLabels.set(cidr, texts.map((t) => `fqdn:${t}`));
        const id = this.cidrIdentity(cidr);
        this.repo.addIdentity(id, this.cidrLabels(cidr));
        continue;
      }
      this.fqdnLabels.delete(cidr);
      const id = this.cidrIds.get(cidr);
      if (id === undefined) continue;
      if (this.ruleCidrs.has(cidr)) {
        this.repo.addIdentity(id, this.cidrLabels(cidr));
        continue;
      }
      this.cidrIds.delete(cidr);
      this.d.setIpcache(cidr, 0);
      this.repo.removeIdentity(id);
    }
    if (!this.regenerating && this.watch) this.regenerate();
  }

  /** Another node's identity (enable-node-selector-labels): reserved:remote-node (and kube-apiserver where it serves the API) plus its labels, for fromNodes/toNodes. */
  nodeIdentity(name: string, labels: Record<string, string> = {}, kubeApiServer = false): number {
    const want = ['reserved:remote-node', ...(kubeApiServer ? [KUBE_APISERVER_LABEL] : []), ...nodeLabelStrings(labels)];
    let n = this.nodeIds.get(name);
    if (!n) this.nodeIds.set(name, (n = { id: this.nextLocalId++, labels: want }));
    n.labels = want;
    this.repo.addIdentity(n.id, want);
    if (!this.regenerating && this.watch) this.regenerate();
    return n.id;
  }

  /**
   * Where the API servers are (Cilium's ipcache labels): on this node the host identity carries
   * reserved:kube-apiserver too; on a remote node identity 7 is that node (kube-apiserver and remote-node).
   */
  setKubeApiServer(where: { host: boolean; remoteNode: boolean }): void {
    if (where.host === this.kubeApiServer.host && where.remoteNode === this.kubeApiServer.remoteNode) return;
    this.kubeApiServer = where;
    if (!this.regenerating && this.watch) this.regenerate(true);
  }

  nodeGone(name: string): void {
    const n = this.nodeIds.get(name);
    if (!n) return;
    this.nodeIds.delete(name);
    this.repo.removeIdentity(n.id);
    if (!this.regenerating && this.watch) this.regenerate();
  }

  private cidrLabels(cidr: string): string[] {
    return [`cidr:${cidr}`, 'reserved:world', ...(this.fqdnLabels.get(cidr) ?? [])];
  }

  private staleCount(): number {
    const stale = this.repo.takeStaleEndpoints();
    for (const id of stale) this.enforced.delete(id); // re-marks them for regenerateOnce
    return stale.length;
  }

  private regenerateOnce(all: boolean): number {
    const eps = this.d.endpoints();
    const stale = new Set(this.repo.takeStaleEndpoints());
    const ctx = {
      identities: this.identities(),
      enforcement: this.d.enforcement,
      cidrIdentity: (cidr: string) => {
        this.ruleCidrs.add(cidr);
        return this.cidrIdentity(cidr);
      },
      namedPortsOf: (identity: number) => eps.find((e) => e.identity === identity)?.namedPorts,
      allowLocalhost: true,
    };
    // Endpoints with the same labels and named ports (e.g. replicas sharing an identity) resolve
    // alike: resolve the first, hand its result to the others while the repository is unchanged.
    const resolved = new Map<string, ResolvedPolicy>();
    let n = 0;
    for (const ep of eps) {
      if (!all && !stale.has(ep.id) && this.enforced.has(ep.id)) continue;
      const map = this.d.policyMap(ep.id);
      if (!map) continue;
      const key = resolutionKey(ep);
      const prior = resolved.get(key);
      let res = prior && this.repo.reuse(ep, ctx, prior);
      if (!res) resolved.set(key, (res = this.repo.resolve(ep, ctx)));
      writePolicyMap(map, this.withProxyPorts(ep.id, res.entries), this.key);
      this.enforced.set(ep.id, { ingress: res.ingressEnforced, egress: res.egressEnforced });
      this.d.setVerdictLogFilter?.(ep.id, res.ingressEnforced, res.egressEnforced);
      for (const w of res.warnings) this.d.log.warn({ endpoint: ep.id }, w);
      n++;
    }
    return n;
  }

  /** Gives entries that need the L7 proxy (marker proxyPort 1) their listener's real port. */
  private withProxyPorts(endpointId: number, entries: PolicyEntry[]): PolicyEntry[] {
    const keys = new Set<string>();
    this.redirectKeys.set(endpointId, keys);
    const proxies = this.d.proxies;
    return entries.map((e) => {
      if (e.proxyPort !== 1 || e.deny) return e;
      if (!proxies) return { ...e, proxyPort: 0 }; // no proxy (enable-l7-proxy=false): enforced at L4
      const key = `${endpointId}/${e.egress ? 'egress' : 'ingress'}/${e.protocol}/${e.port}/${e.portPrefixLen}/${e.identity}`;
      keys.add(key);
      return { ...e, proxyPort: e.dns ? proxies.ensureDns(key, e.dns) : proxies.ensure(key, e.l7 ?? []) };
    });
  }

  /** Closes proxy listeners no endpoint's policy uses any more. */
  private releaseRedirects(): void {
    const keep = new Set<string>();
    const live = new Set(this.d.endpoints().map((e) => e.id));
    for (const [id, keys] of this.redirectKeys) {
      if (!live.has(id)) this.redirectKeys.delete(id);
      else for (const k of keys) keep.add(k);
    }
    this.d.proxies?.retain(keep);
  }

  /** Waits until every L7 redirect the last regeneration opened is listening. */
  async redirectsReady(): Promise<void> {
    await this.d.proxies?.ready();
  }

  /** `bpf policy get` for one endpoint's map. */
  format(endpointId: number): string | undefined {
    const map = this.d.policyMap(endpointId);
    if (!map) return undefined;
    const ids = this.identities();
    const rows = map.dump().map((e) => decodeEntry(e.key, e.value));
    return formatPolicyEntries(rows, (id) => ids.get(id) ?? (id >= LOCAL_IDENTITY_BASE ? [...this.cidrIds].filter(([, v]) => v === id).map(([c]) => `cidr:${c}`) : undefined));
  }

  private identities(): Map<number, string[]> {
    const m = new Map(reservedIdentityLabels());
    for (const [id, labels] of this.d.identities()) m.set(id, labels);
    for (const [cidr, id] of this.cidrIds) m.set(id, this.cidrLabels(cidr));
    for (const n of this.nodeIds.values()) m.set(n.id, n.labels);
    if (this.d.hostNodeLabels) m.set(RESERVED_IDENTITIES.host, this.d.hostNodeLabels);
    if (this.kubeApiServer.host) m.set(RESERVED_IDENTITIES.host, [...m.get(RESERVED_IDENTITIES.host)!, KUBE_APISERVER_LABEL]);
    if (this.kubeApiServer.remoteNode) m.set(RESERVED_IDENTITIES['kube-apiserver'], [KUBE_APISERVER_LABEL, 'reserved:remote-node']);
    return m;
  }

  private cidrIdentity(cidr: string): number {
    let id = this.cidrIds.get(cidr);
    if (id === undefined) {
      id = this.nextLocalId++;
      this.cidrIds.set(cidr, id);
      this.d.setIpcache(cidr, id);
    }
    return id;
  }
}

/** What toServices peers read of each service: its labels (from the manifest), pod selector, or (selector-less) its Endpoints' addresses. */
export function serviceInfosOf(views: ResourceView[]): ServiceInfo[] {
  return views.map((v) => {
    const meta = (v.manifest.metadata ?? {}) as { labels?: Record<string, string> };
    const spec = (v.manifest.spec ?? {}) as { selector?: Record<string, string> };
    const live = (v.status as { service?: Service } | undefined)?.service;
    const info: ServiceInfo = { namespace: v.namespace ?? 'default', name: v.name, labels: meta.labels, selector: spec.selector };
    if (!spec.selector && live?.backends?.length) info.addresses = [...new Set(live.backends.map((b) => b.ip))];
    return info;
  });
}

/** The service manager as the resource manager uses it, with policy re-resolved after each change (toServices). */
export function followedByPolicy(svc: ResourceDeps['services'], regenerate: () => void): ResourceDeps['services'] {
  return {
    list: () => svc.list(),
    get: (ns, name) => svc.get(ns, name),
    apply: async (spec) => {
      const r = await svc.apply(spec);
      regenerate();
      return r;
    },
    delete: async (ns, name) => {
      await svc.delete(ns, name);
      regenerate();
    },
  };
}

/** Node labels as identity labels: `k8s:key=value` (a role label's empty value without `=`), sorted. */
export function nodeLabelStrings(labels: Record<string, string>): string[] {
  return Object.entries(labels).map(([k, v]) => `k8s:${k}${v === '' ? '' : `=${v}`}`).sort();
}

/**
 * Brings a policy map to exactly `entries`: existing keys keep their counters, new ones start at
 * zero, and keys no longer wanted go last, so no packet sees a half-written policy.
 */
export function writePolicyMap(map: LpmTrieMap, entries: PolicyEntry[], key: Uint8Array): void {
  const wanted = new Set<string>();
  for (const e of entries) {
    encodeKey(e, key, 0);
    wanted.add(Buffer.from(key).toString('hex'));
    const off = map.reserve(key, 0, 0);
    if (off < 0) throw new ApiError(507, `policy map ${map.name} is full (${map.maxEntries} entries); raise bpf-policy-map-max`);
    map.bytes[off + PM.V_FLAGS] = e.deny ? POLICY_FLAG_DENY : 0;
    map.view.setUint16(off + PM.V_PROXY_PORT, e.deny ? 0 : e.proxyPort, true);
  }
  const stale: Uint8Array[] = [];
  map.forEach((k) => {
    const kb = map.bytes.slice(k, k + POLICY_KEY_SIZE);
    if (!wanted.has(Buffer.from(kb).toString('hex'))) stale.push(kb);
  });
  for (const k of stale) map.delete(k, 0);
}
