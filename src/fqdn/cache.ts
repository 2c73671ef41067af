// The DNS cache toFQDNs policy reads: per (endpoint, name) the IPv4 addresses the DNS proxy saw in
// answers, each kept until max(TTL, tofqdns-min-ttl) after the answer.
import { toFqdn } from './pattern.ts';

/** One DNS response the proxy forwarded (the DNS proxy's onDnsResponse hook hands these over). */
export interface DnsResponseEvent {
  endpointId: number;
  sourceIdentity: number;
  /** The question name, with or without the final dot. */
  name: string;
  /** Record type of the question: 'A', 'AAAA' or its number. */
  qtype: string | number;
  /** Addresses of the answer's A/AAAA records. */
  ips: readonly string[];
  /** Smallest TTL of those records, in seconds. */
  ttl: number;
  /** 0 / 'NOERROR' for an answer; anything else teaches nothing. */
  rcode: number | string;
}

/** A row of `fqdn cache list`. */
export interface FqdnCacheRow {
  endpointId: number;
  source: 'lookup';
  fqdn: string;
  /** TTL the last answer was kept for (after tofqdns-min-ttl), in seconds. */
  ttl: number;
  /** ms since the epoch when the last of its IPs expires. */
  expiresAt: number;
  ips: string[];
}

interface Lookup {
  endpointId: number;
  fqdn: string;
  ttl: number;
  /** IP → ms since the epoch it expires. */
  ips: Map<string, number>;
}

const IPV4 = /^\d{1,3}(?:\.\d{1,3}){3}$/;

export class DnsCache {
  private readonly lookups = new Map<string, Lookup>();

  constructor(
    /** tofqdns-min-ttl in seconds (0: the answer's TTL, as Cilium's default). */
    private readonly minTtl: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Learn an answer; returns the names whose address set changed. */
  observe(e: DnsResponseEvent): string[] {
    if (!(e.rcode === 0 || e.rcode === 'NOERROR') || e.ips.length === 0) return [];
    const ips = e.ips.filter((ip) => IPV4.test(ip));
    if (ips.length === 0) return [];
    const fqdn = toFqdn(e.name);
    const ttl = Math.max(Math.floor(e.ttl), this.minTtl);
    const key = `${e.endpointId}/${fqdn}`;
    let l = this.lookups.get(key);
    if (!l) this.lookups.set(key, (l = { endpointId: e.endpointId, fqdn, ttl, ips: new Map() }));
    const before = this.addressesOf(fqdn);
    const expiresAt = this.now() + ttl * 1000;
    l.ttl = ttl;
    for (const ip of ips) l.ips.set(ip, Math.max(expiresAt, l.ips.get(ip) ?? 0));
    return sameSet(before, this.addressesOf(fqdn)) ? [] : [fqdn];
  }

  /** Drop what has expired; returns the names whose address set changed. */
  expire(): string[] {
    const now = this.now();
    const changed = new Set<string>();
    for (const [key, l] of this.lookups) {
      for (const [ip, at] of l.ips) {
        if (at > now) continue;
        l.ips.delete(ip);
        changed.add(l.fqdn);
      }
      if (l.ips.size === 0) this.lookups.delete(key);
    }
    return [...changed];
  }

  /** `fqdn cache clean`: forget every entry (of one endpoint when given); returns the names that lost addresses. */
  clean(endpointId?: number): string[] {
    const names = new Set<string>();
    for (const [key, l] of this.lookups) {
      if (endpointId !== undefined && l.endpointId !== endpointId) continue;
      this.lookups.delete(key);
      names.add(l.fqdn);
    }
    return [...names];
  }

  /** When the next address expires (ms since the epoch), if any. */
  nextExpiry(): number | undefined {
    let next: number | undefined;
    for (const l of this.lookups.values()) for (const at of l.ips.values()) if (next === undefined || at < next) next = at;
    return next;
  }

  /** Every address of a name, over all endpoints. */
  addressesOf(fqdn: string): Set<string> {
    const out = new Set<string>();
    for (const l of this.lookups.values()) if (l.fqdn === fqdn) for (const ip of l.ips.keys()) out.add(ip);
    return out;
  }

  /** Every name with at least one live address. */
  names(): Set<string> {
    return new Set([...this.lookups.values()].map((l) => l.fqdn));
  }

  list(): FqdnCacheRow[] {
    return [...this.lookups.values()]
      .map((l) => ({ endpointId: l.endpointId, source: 'lookup' as const, fqdn: l.fqdn, ttl: l.ttl, expiresAt: Math.max(...l.ips.values()), ips: [...l.ips.keys()].sort() }))
      .sort((a, b) => a.endpointId - b.endpointId || (a.fqdn < b.fqdn ? -1 : a.fqdn > b.fqdn ? 1 : 0));
  }
}

function sameSet(a: Set<string>, b: Set<string>): boolean {
  return a.size === b.size && [...a].every((x) => b.has(x));
}
