// Turns contributions from rules into policy-map entries that per-bucket longest-prefix lookups
// read correctly.
//
// Lookup contract the datapath implements (per packet: remote identity I, direction, proto P, dport N;
// for ICMP, N = ICMP type):
//   1. Look up four buckets (I,P), (I,0), (0,P), (0,0); each is a longest-prefix match on the port
//      (full key prefix 48 + 16). For ICMP (P = 1 or 58) the proto-0 buckets should be looked up
//      with prefix 48 (port bits ignored), so only their all-ports entries apply: a port on
//      protocol ANY means a TCP/UDP/SCTP port.
//   2. If any bucket's match has the deny flag → drop (policy denied).
//   3. Else if none matched → drop (default deny); else allow.
//   4. The proxy port (and L7 rules) come from the first allowing match in the order
//      (I,P), (I,0), (0,P), (0,0) — equivalently the longest port prefix, then identity over 0,
//      then protocol over 0: the entries below make both readings give the same answer.
// What this module guarantees so that contract is exact:
//   - an allow is never more specific than a deny covering it (such allows are dropped, so a
//     bucket's longest match can never hide a deny);
//   - every allow carries the union of the L7 rules of all allows covering it (an L4 allow without
//     L7 on the very same port adds an allow-all `{}` rule, as Cilium merges them);
//   - where allows overlap without either covering the other and L7 is involved, the overlap gets
//     its own entry (closed under intersection), so whichever match the lookup picks for a packet
//     carries the complete L7 rules for it.
import { blockContains } from './ports.ts';
import type { DnsRule, HttpRule, PolicyEntry } from './types.ts';

export interface Contribution {
  identity: number;
  egress: boolean;
  protocol: number;
  port: number;
  portPrefixLen: number;
  deny: boolean;
  http?: HttpRule[];
  dns?: DnsRule[];
  labels: readonly string[];
}

interface Acc {
  identity: number;
  egress: boolean;
  protocol: number;
  port: number;
  portPrefixLen: number;
  deny: boolean;
  /** An allow without L7 rules contributed here. */
  plain: boolean;
  http?: HttpRule[];
  dns?: DnsRule[];
  labels: Set<string>;
  synthetic: boolean;
}

type Key = Pick<Acc, 'identity' | 'egress' | 'protocol' | 'port' | 'portPrefixLen'>;

const isIcmp = (proto: number) => proto === 1 || proto === 58;
const keyOf = (k: Key) => `${k.egress ? 1 : 0}/${k.identity}/${k.protocol}/${k.port}/${k.portPrefixLen}`;

/** Every packet matching `inner` also matches `outer`. */
export function covers(outer: Key, inner: Key): boolean {
  return (
    outer.egress === inner.egress &&
    (outer.identity === 0 || outer.identity === inner.identity) &&
    (outer.protocol === inner.protocol || (outer.protocol === 0 && (outer.portPrefixLen === 0 || !isIcmp(inner.protocol)))) &&
    blockContains({ port: outer.port, prefixLen: outer.portPrefixLen }, { port: inner.port, prefixLen: inner.portPrefixLen })
  );
}

/** The key matched by exactly the packets both keys match, if it is one key. */
function intersect(a: Key, b: Key): Key | undefined {
  if (a.egress !== b.egress) return undefined;
  const identity = a.identity === b.identity || b.identity === 0 ? a.identity : a.identity === 0 ? b.identity : -1;
  if (identity < 0) return undefined;
  const [narrow, wide] = a.portPrefixLen >= b.portPrefixLen ? [a, b] : [b, a];
  if (!blockContains({ port: wide.port, prefixLen: wide.portPrefixLen }, { port: narrow.port, prefixLen: narrow.portPrefixLen })) return undefined;
  let protocol: number;
  if (a.protocol === b.protocol) protocol = a.protocol;
  else if (a.protocol === 0 || b.protocol === 0) {
    const [any, specific] = a.protocol === 0 ? [a, b] : [b, a];
    if (isIcmp(specific.protocol) && any.portPrefixLen > 0) return undefined;
    protocol = specific.protocol;
  } else return undefined;
  return { egress: a.egress, identity, protocol, port: narrow.port, portPrefixLen: narrow.portPrefixLen };
}

function dedupe<T>(rules: T[]): T[] {
  const seen = new Set<string>();
  return rules.filter((r) => {
    const s = JSON.stringify(r);
    if (seen.has(s)) return false;
    seen.add(s);
    return true;
  });
}

export class EntryBuilder {
  private readonly accs = new Map<string, Acc>();

  add(c: Contribution): void {
    const k = keyOf(c);
    let a = this.accs.get(k);
    if (!a) {
      a = { identity: c.identity, egress: c.egress, protocol: c.protocol, port: c.port, portPrefixLen: c.portPrefixLen, deny: false, plain: false, labels: new Set(), synthetic: false };
      this.accs.set(k, a);
    }
    if (c.deny) {
      if (!a.deny) a.labels.clear(); // a deny's origin is the deny rule, not the allows it overrides
      a.deny = true;
      for (const l of c.labels) a.labels.add(l);
      return;
    }
    if (a.deny) return;
    if (c.http) a.http = [...(a.http ?? []), ...c.http];
    if (c.dns) a.dns = [...(a.dns ?? []), ...c.dns];
    if (!c.http && !c.dns) a.plain = true;
    for (const l of c.labels) a.labels.add(l);
  }

  finish(): PolicyEntry[] {
    const all = [...this.accs.values()];
    const denies = new Buckets(all.filter((a) => a.deny));
    let allows = all.filter((a) => !a.deny && !denies.anyCovers(a));
    allows = addIntersections(allows, denies);
    const byBucket = new Buckets(allows);
    const out: PolicyEntry[] = [];
    for (const d of denies.all) out.push(toEntry(d, { labels: d.labels }));
    for (const a of allows) out.push(toEntry(a, effective(a, byBucket)));
    return out.sort(entryOrder);
  }
}

/**
 * Entries indexed by (direction, identity, protocol): whatever covers a key sits in four buckets.
 * Within a bucket, entries are indexed by port block — (prefix length, top bits of the port) — so
 * the blocks that can contain a key's block are found directly (at most 17 look-ups a bucket).
 */
class Buckets {
  private readonly map = new Map<string, Bucket>();
  readonly all: Acc[] = [];
  private readonly byIdentity = new Map<number, Acc[]>();
  /** Some entry carries HTTP or DNS rules. */
  hasL7 = false;

  constructor(items: Acc[] = []) {
    for (const a of items) this.add(a);
  }

  add(a: Acc): void {
    this.all.push(a);
    const key = `${a.egress ? 1 : 0}/${a.identity}/${a.protocol}`;
    let b = this.map.get(key);
    if (!b) this.map.set(key, (b = new Bucket()));
    b.add(a);
    push(this.byIdentity, a.identity, a);
    if (a.http || a.dns) this.hasL7 = true;
  }

  /** Entries that may cover `k`: per bucket in insertion order, buckets in the order (I,P), (I,0), (0,P), (0,0). */
  *coverCandidates(k: Key): Generator<Acc> {
    const d = k.egress ? 1 : 0;
    const ids = k.identity === 0 ? [0] : [k.identity, 0];
    const protos = k.protocol === 0 ? [0] : [k.protocol, 0];
    for (const id of ids) {
      for (const p of protos) {
        const b = this.map.get(`${d}/${id}/${p}`);
        if (b) yield* b.containing(k);
      }
    }
  }

  anyCovers(k: Key): boolean {
    for (const c of this.coverCandidates(k)) if (covers(c, k)) return true;
    return false;
  }

  /** Entries whose identity can overlap `k`'s. */
  overlapCandidates(k: Key): Acc[] {
    if (k.identity === 0) return this.all;
    return [...(this.byIdentity.get(k.identity) ?? []), ...(this.byIdentity.get(0) ?? [])];
  }
}

/** One (direction, identity, protocol) bucket, its entries by port block. */
class Bucket {
  private count = 0;
  private readonly seq = new Map<Acc, number>();
  /** prefix length → (port >>> (16 - prefix length)) → entries, in insertion order. */
  private readonly blocks = new Map<number, Map<number, Acc[]>>();

  add(a: Acc): void {
    this.seq.set(a, this.count++);
    let byPort = this.blocks.get(a.portPrefixLen);
    if (!byPort) this.blocks.set(a.portPrefixLen, (byPort = new Map()));
    push(byPort, a.port >>> (16 - a.portPrefixLen), a);
  }

  /** Entries whose port block contains `k`'s (see blockContains), in insertion order. */
  containing(k: Key): Acc[] {
    const lists: Acc[][] = [];
    for (const [prefixLen, byPort] of this.blocks) {
      if (prefixLen > k.portPrefixLen) continue;
      const list = byPort.get(k.port >>> (16 - prefixLen));
      if (list) lists.push(list);
    }
    if (lists.length <= 1) return lists[0] ?? [];
    return lists.flat().sort((x, y) => this.seq.get(x)! - this.seq.get(y)!);
  }
}

function push<K>(m: Map<K, Acc[]>, k: K, a: Acc): void {
  const list = m.get(k);
  if (list) list.push(a);
  else m.set(k, [a]);
}

/** Close the allows under intersection with anything that carries L7 rules (own or inherited). */
function addIntersections(allows: Acc[], denies: Buckets): Acc[] {
  if (!allows.some((a) => a.http || a.dns)) return allows;
  const present = new Set(allows.map(keyOf));
  const index = new Map<Acc, number>();
  const seen = new Buckets();
  const l7 = new Buckets();
  const queue = [...allows];
  for (let i = 0; i < queue.length; i++) {
    const a = queue[i];
    index.set(a, i);
    const carriesL7 = a.synthetic || a.http !== undefined || a.dns !== undefined;
    // Each entry meets every earlier one it can overlap; one side must carry L7 rules.
    for (const b of (carriesL7 ? seen : l7).overlapCandidates(a)) {
      if (index.get(b)! >= i || covers(a, b) || covers(b, a)) continue;
      const k = intersect(a, b);
      if (!k || present.has(keyOf(k)) || denies.anyCovers(k)) continue;
      present.add(keyOf(k));
      queue.push({ ...k, deny: false, plain: false, labels: new Set([...a.labels, ...b.labels]), synthetic: true });
    }
    seen.add(a);
    if (carriesL7) l7.add(a);
  }
  return queue;
}

/** L7 rules of every allow covering `a`; an allow without L7 on the very same port adds `{}`. */
function effective(a: Acc, allows: Buckets): { http?: HttpRule[]; dns?: DnsRule[]; labels: Set<string> } {
  if (!allows.hasL7) return { labels: a.labels }; // nothing to inherit
  const coverers = [...allows.coverCandidates(a)].filter((c) => covers(c, a));
  const http = coverers.flatMap((c) => c.http ?? []);
  const dns = coverers.flatMap((c) => c.dns ?? []);
  const res: { http?: HttpRule[]; dns?: DnsRule[]; labels: Set<string> } = { labels: a.labels };
  if (http.length > 0) {
    const samePortPlain = coverers.some((c) => c.plain && c.port === a.port && c.portPrefixLen === a.portPrefixLen);
    res.http = dedupe(samePortPlain ? [...http, {}] : http);
  }
  if (dns.length > 0) {
    // As for HTTP: a plain L4 allow on the very same port lets every name through the proxy.
    const samePortPlain = coverers.some((c) => c.plain && c.port === a.port && c.portPrefixLen === a.portPrefixLen);
    res.dns = dedupe(samePortPlain ? [...dns, { matchPattern: '*' }] : dns);
  }
  return res;
}

function toEntry(a: Acc, eff: { http?: HttpRule[]; dns?: DnsRule[]; labels: Set<string> }): PolicyEntry {
  const e: PolicyEntry = {
    identity: a.identity,
    egress: a.egress,
    protocol: a.protocol,
    port: a.port,
    portPrefixLen: a.portPrefixLen,
    deny: a.deny,
    proxyPort: !a.deny && (eff.http || eff.dns) ? 1 : 0,
    ruleLabels: [...eff.labels].sort(),
  };
  if (!a.deny && eff.http) e.l7 = eff.http;
  if (!a.deny && eff.dns) e.dns = eff.dns;
  return e;
}

/** Ingress before egress, denies first, then by identity, protocol, port, wider blocks first. */
export function entryOrder(a: PolicyEntry, b: PolicyEntry): number {
  return (
    Number(a.egress) - Number(b.egress) ||
    Number(b.deny) - Number(a.deny) ||
    a.identity - b.identity ||
    a.protocol - b.protocol ||
    a.port - b.port ||
    a.portPrefixLen - b.portPrefixLen
  );
}
