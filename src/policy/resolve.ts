// Resolve the rules that select an endpoint into its policy-map entries (see entries.ts for the
// lookup contract those entries assume).
import { EntryBuilder, type Contribution } from './entries.ts';
import { indexLabels } from './labels.ts';
import { portBlocks, type PortBlock } from './ports.ts';
import { CidrSelector, ClusterSelector, LabelIdentitySelector, type IdentitySelector, type SelectorCache } from './selector-cache.ts';
import { EndpointSelector } from './selector.ts';
import { NodeSelector, ServiceBackendSelector, type ServiceCatalog } from './peers.ts';
import { RESERVED_IDENTITIES, type EndpointInfo, type Peer, type PeerRule, type PolicyEntry, type PortRule, type ResolveContext, type Rule } from './types.ts';

const PROTO: Record<string, number> = { ANY: 0, TCP: 6, UDP: 17, SCTP: 132 };
const ALL_PORTS: PortBlock = { port: 0, prefixLen: 0 };

/** The selector a peer stands for; undefined for entity `all` (identity 0, no selector needed). */
export function peerSelector(peer: Peer, services: ServiceCatalog): IdentitySelector | undefined {
  switch (peer.kind) {
    case 'fqdn':
      return new LabelIdentitySelector(new EndpointSelector([{ source: 'fqdn', key: peer.text, op: 'Exists', values: [] }]));
    case 'service':
      return new ServiceBackendSelector(peer, services);
    case 'nodes':
      return new NodeSelector(peer.selector);
    case 'endpoints':
      return new LabelIdentitySelector(peer.selector);
    case 'cidr':
      return new CidrSelector(peer.cidr, peer.except);
    case 'entity':
      if (peer.entity === 'all') return undefined;
      if (peer.entity === 'cluster') return new ClusterSelector();
      return new LabelIdentitySelector(new EndpointSelector([{ source: 'reserved', key: peer.entity, op: 'Exists', values: [] }]));
  }
}

export function* peerRulesOf(rule: Rule): Generator<PeerRule> {
  for (const s of [rule.ingress, rule.egress, rule.ingressDeny, rule.egressDeny]) if (s) yield* s;
}

/** Every selector a rule's peers need tracked. */
export function selectorsOfRule(rule: Rule, services: ServiceCatalog): IdentitySelector[] {
  const out: IdentitySelector[] = [];
  for (const pr of peerRulesOf(rule)) {
    for (const p of pr.peers ?? []) {
      const s = peerSelector(p, services);
      if (s) out.push(s);
    }
  }
  return out;
}

/** Canonical toFQDNs selector texts of a rule. */
export function fqdnSelectorsOfRule(rule: Rule): string[] {
  const out: string[] = [];
  for (const pr of peerRulesOf(rule)) for (const p of pr.peers ?? []) if (p.kind === 'fqdn') out.push(p.text);
  return out;
}

/** CIDRs (and except prefixes) a rule's peers name, with the /32s of selector-less services toServices names. */
export function cidrsOfRule(rule: Rule, services: ServiceCatalog): string[] {
  const out: string[] = [];
  for (const pr of peerRulesOf(rule)) {
    for (const p of pr.peers ?? []) {
      if (p.kind === 'cidr') out.push(p.cidr, ...p.except);
      if (p.kind === 'service') out.push(...services.addressCidrs(p));
    }
  }
  return out;
}

export interface Resolution {
  ingressEnforced: boolean;
  egressEnforced: boolean;
  entries: PolicyEntry[];
  warnings: string[];
  /** Selector keys whose sets this resolution read: a change to one of them makes it stale. */
  usedSelectors: Set<string>;
}

const allowAll = (egress: boolean): PolicyEntry => ({ identity: 0, egress, protocol: 0, port: 0, portPrefixLen: 0, deny: false, proxyPort: 0, ruleLabels: [] });

/** Resolve `rules` (every rule of the repository) for one endpoint against the selector cache. */
export function resolveRules(rules: readonly Rule[], ep: EndpointInfo, ctx: ResolveContext, cache: SelectorCache): Resolution {
  const res: Resolution = { ingressEnforced: false, egressEnforced: false, entries: [], warnings: [], usedSelectors: new Set() };
  if (ctx.enforcement === 'never') {
    res.entries = [allowAll(false), allowAll(true)];
    return res;
  }
  const idx = indexLabels(ep.labels);
  const selected = rules.filter((r) => r.subject.matchesIndex(idx));
  const builder = new EntryBuilder();
  const extra: PolicyEntry[] = [];
  for (const egress of [false, true]) {
    const dir = egress ? 'egress' : 'ingress';
    const denyDir = egress ? 'egressDeny' : 'ingressDeny';
    const inDir = selected.filter((r) => (r[dir]?.length ?? 0) > 0 || (r[denyDir]?.length ?? 0) > 0);
    // Default deny unless every selecting rule turned it off (Cilium's enableDefaultDeny).
    const enforced = ctx.enforcement === 'always' || inDir.some((r) => r.enableDefaultDeny[dir] !== false);
    if (egress) res.egressEnforced = enforced;
    else res.ingressEnforced = enforced;
    if (!enforced) extra.push(allowAll(egress));
    else if (!egress && ctx.allowLocalhost) builder.add({ identity: RESERVED_IDENTITIES.host, egress, protocol: 0, port: 0, portPrefixLen: 0, deny: false, labels: ['reserved:host'] });
    for (const r of inDir) {
      for (const pr of r[dir] ?? []) addPeerRule(builder, pr, { egress, deny: false, labels: r.labels }, ep, ctx, cache, res);
      for (const pr of r[denyDir] ?? []) addPeerRule(builder, pr, { egress, deny: true, labels: r.labels }, ep, ctx, cache, res);
    }
  }
  // An allow-all for a non-enforced direction goes through the builder too, so denies still win.
  for (const e of extra) builder.add({ ...e, labels: [] });
  res.entries = builder.finish();
  return res;
}

interface Emit {
  egress: boolean;
  deny: boolean;
  labels: readonly string[];
}

/** Peer identities of a rule: 'any' (identity 0) or a set. */
function peerIdentities(pr: PeerRule, cache: SelectorCache, used: Set<string>): 'any' | Set<number> {
  // No L3 field: toPorts/icmps alone apply to every peer; an entirely empty rule selects nothing.
  if (pr.peers === undefined) return pr.toPorts.length > 0 || pr.icmps.length > 0 ? 'any' : new Set();
  const ids = new Set<number>();
  for (const p of pr.peers) {
    const s = peerSelector(p, cache.services);
    if (!s) return 'any';
    used.add(s.key);
    for (const id of cache.selections(s.key)) ids.add(id);
  }
  return ids;
}

function addPeerRule(b: EntryBuilder, pr: PeerRule, emit: Emit, ep: EndpointInfo, ctx: ResolveContext, cache: SelectorCache, res: Resolution): void {
  const peers = peerIdentities(pr, cache, res.usedSelectors);
  if (peers !== 'any' && peers.size === 0) return;
  const peerList = peers === 'any' ? [0] : [...peers].sort((x, y) => x - y);
  const base = { egress: emit.egress, deny: emit.deny, labels: emit.labels };
  const put = (identity: number, protocol: number, blk: PortBlock, rule?: PortRule) => {
    const c: Contribution = { ...base, identity, protocol, port: blk.port, portPrefixLen: blk.prefixLen };
    if (rule?.http) c.http = rule.http;
    if (rule?.dns) c.dns = rule.dns;
    b.add(c);
  };
  if (pr.toPorts.length === 0 && pr.icmps.length === 0) {
    for (const id of peerList) put(id, 0, ALL_PORTS);
    return;
  }
  for (const f of pr.icmps) for (const id of peerList) put(id, f.family === 'IPv6' ? 58 : 1, { port: f.type, prefixLen: 16 });
  for (const rule of pr.toPorts) {
    // HTTP is TCP: an L7 rule on protocol ANY redirects TCP only.
    const protoOf = (p: string) => (rule.http ? 6 : PROTO[p]);
    if (rule.ports.length === 0) for (const id of peerList) put(id, protoOf('ANY'), ALL_PORTS, rule);
    for (const spec of rule.ports) {
      if (spec.name === undefined) {
        const blocks = spec.endPort !== undefined ? portBlocks(spec.port, spec.endPort) : [spec.port === 0 ? ALL_PORTS : { port: spec.port, prefixLen: 16 }];
        for (const id of peerList) for (const blk of blocks) put(id, protoOf(spec.protocol), blk, rule);
        continue;
      }
      // Named ports: ingress names the endpoint's own ports; egress the ports of each peer.
      let resolved = 0;
      const resolveFor = (id: number, ports: Record<string, { port: number; protocol: string }> | undefined, asIdentity: number) => {
        const np = ports?.[spec.name!];
        if (!np) return;
        const proto = np.protocol.toUpperCase();
        if (spec.protocol !== 'ANY' && proto !== spec.protocol) return;
        resolved++;
        put(asIdentity, rule.http ? 6 : PROTO[proto] ?? 0, { port: np.port, prefixLen: 16 }, rule);
      };
      if (!emit.egress) for (const id of peerList) resolveFor(id, ep.namedPorts, id);
      else if (peers === 'any') for (const id of cache.identityIds()) resolveFor(id, ctx.namedPortsOf?.(id), 0);
      else for (const id of peerList) resolveFor(id, ctx.namedPortsOf?.(id), id);
      if (resolved === 0) {
        const whose = emit.egress ? 'any selected peer' : `endpoint ${ep.id}`;
        res.warnings.push(`named port ${JSON.stringify(spec.name)}/${spec.protocol} is not defined by ${whose}; no entry for it`);
      }
    }
  }
}
