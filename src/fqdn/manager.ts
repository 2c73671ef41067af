// Cilium's name manager: DNS answers and the toFQDNs selectors of the policies give every learned
// IP its `fqdn:<selector>` labels; the policy layer turns those into a CIDR identity in the ipcache.
// Runs off the packet path: on each DNS answer, policy change and expiry.
import { DnsCache, type DnsResponseEvent, type FqdnCacheRow } from './cache.ts';
import { compileSelector } from './pattern.ts';

export type { DnsResponseEvent, FqdnCacheRow } from './cache.ts';

export interface FqdnManagerDeps {
  /** tofqdns-min-ttl, seconds. */
  minTtl: number;
  /**
   * The learned IPs whose selectors changed: IP → canonical selector texts selecting it
   * ([] = no selector selects it any more: its identity and ipcache entry go).
   */
  apply: (changes: Map<string, string[]>) => void;
  now?: () => number;
}

export class FqdnManager {
  readonly cache: DnsCache;
  private readonly selectors = new Map<string, (fqdn: string) => boolean>();
  /** IP → selector texts currently applied. */
  private readonly applied = new Map<string, string[]>();
  private timer?: NodeJS.Timeout;
  private timerAt = 0;
  private readonly now: () => number;

  constructor(private readonly d: FqdnManagerDeps) {
    this.now = d.now ?? Date.now;
    this.cache = new DnsCache(d.minTtl, this.now);
  }

  /** The DNS proxy's hook: one forwarded response. */
  observe(e: DnsResponseEvent): void {
    if (this.cache.observe(e).length > 0) this.update();
    this.schedule();
  }

  /** The toFQDNs selectors of every policy (canonical texts, see selectorText). */
  setSelectors(texts: Iterable<string>): void {
    const want = new Set(texts);
    let changed = false;
    for (const t of [...this.selectors.keys()]) if (!want.has(t)) changed = this.selectors.delete(t);
    for (const t of want) {
      if (this.selectors.has(t)) continue;
      this.selectors.set(t, compileSelector(t));
      changed = true;
    }
    if (changed) this.update();
  }

  /** Drops what has expired now (the timer calls it; tests may too). */
  expire(): void {
    if (this.cache.expire().length > 0) this.update();
    this.schedule();
  }

  /** `fqdn cache clean`: returns how many entries went. */
  clean(endpointId?: number): number {
    const before = this.cache.list().length;
    if (this.cache.clean(endpointId).length > 0) this.update();
    this.schedule();
    return before - this.cache.list().length;
  }

  list(): FqdnCacheRow[] {
    return this.cache.list();
  }

  /** Selector texts an IP is selected by (what its identity's fqdn: labels say). */
  selectorsOf(ip: string): readonly string[] {
    return this.applied.get(ip) ?? [];
  }

  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Recompute IP → selectors from the cache and hand over what differs. */
  private update(): void {
    const want = new Map<string, Set<string>>();
    for (const fqdn of this.cache.names()) {
      const texts = [...this.selectors].filter(([, m]) => m(fqdn)).map(([t]) => t);
      if (texts.length === 0) continue;
      for (const ip of this.cache.addressesOf(fqdn)) {
        let s = want.get(ip);
        if (!s) want.set(ip, (s = new Set()));
        for (const t of texts) s.add(t);
      }
    }
    const changes = new Map<string, string[]>();
    for (const [ip, s] of want) {
      const texts = [...s].sort();
      const old = this.applied.get(ip);
      if (old && old.join('\0') === texts.join('\0')) continue;
      changes.set(ip, texts);
      this.applied.set(ip, texts);
    }
    for (const ip of [...this.applied.keys()]) {
      if (want.has(ip)) continue;
      changes.set(ip, []);
      this.applied.delete(ip);
    }
    if (changes.size > 0) this.d.apply(changes);
  }

  /** One timer, at the next expiry. */
  private schedule(): void {
    const next = this.cache.nextExpiry();
    if (next === undefined) return this.close();
    if (this.timer && this.timerAt === next) return;
    clearTimeout(this.timer);
    this.timerAt = next;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.expire();
    }, Math.max(0, next - this.now()) + 5);
    this.timer.unref();
  }
}
