// The L7 proxy's redirects: one listener per policy entry that needs HTTP (or DNS) inspection, on a
// port from 10000-20000, opened when a policy first needs it and closed when none does any more.
// HTTP listeners run in the proxy worker (proxy-thread.ts); DNS ones on this thread.
import type { Logger } from 'pino';
import type { DnsRule, HttpRule } from '../../policy/types.ts';
import type { ProxyRedirects } from '../../dataplane/lib/proxy.ts';
import type { L7Event } from './messages.ts';
import { HttpProxyThread } from './proxy-thread.ts';
import { UpstreamPorts } from './upstream-ports.ts';
import { PROXY_PORT_MAX, PROXY_PORT_MIN } from '../../maps/cilium/proxy.ts';
import { DnsProxyListener, type DnsL7Event } from '../dns/proxy.ts';
import { DnsResponseHooks } from '../dns/hooks.ts';

/** An HTTP redirect's listener, in the proxy worker. */
class HttpRedirect {
  constructor(readonly port: number, private rules: HttpRule[], private readonly thread: HttpProxyThread) {}

  setRules(rules: HttpRule[]): void {
    this.rules = rules;
    this.thread.setRules(this.port, rules);
  }

  listen(): Promise<void> {
    return this.thread.listen(this.port, this.rules);
  }

  close(): void {
    this.thread.close(this.port);
  }
}

export class ProxyManager {
  private readonly listeners = new Map<string, HttpRedirect | DnsProxyListener>();
  private readonly http: HttpProxyThread;
  /** Every answer the DNS proxy forwards passes through these (toFQDNs registers here). */
  readonly dnsResponses: DnsResponseHooks;
  private readonly pending = new Set<Promise<void>>();
  private readonly upstreamPorts = new UpstreamPorts();
  private nextPort = PROXY_PORT_MIN;

  constructor(
    private readonly routerIP: string,
    private readonly redirects: ProxyRedirects,
    private readonly onEvent: (e: L7Event | DnsL7Event) => void,
    private readonly log: Logger,
    /** The security identity of a local endpoint, for DNS answer hooks. */
    private readonly identityOf: (endpointId: number) => number = () => 0,
  ) {
    this.http = new HttpProxyThread({ routerIP, redirects, upstreamPorts: this.upstreamPorts, onEvent, log });
    this.dnsResponses = new DnsResponseHooks((err, r) => this.log.warn({ err: err.message, name: r.name }, 'DNS response hook failed'));
  }

  get count(): number {
    return this.listeners.size;
  }

  /** The proxy port for a redirect (an endpoint's policy entry), with these rules now. */
  ensure(key: string, rules: HttpRule[]): number {
    const have = this.listeners.get(key);
    if (have instanceof HttpRedirect) {
      have.setRules(rules);
      return have.port;
    }
    const port = this.replace(key);
    return this.open(key, new HttpRedirect(port, rules, this.http));
  }

  /** The DNS proxy port for a redirect with `rules: dns`, with these rules now. */
  ensureDns(key: string, rules: DnsRule[]): number {
    const have = this.listeners.get(key);
    if (have instanceof DnsProxyListener) {
      have.setRules(rules);
      return have.port;
    }
    const port = this.replace(key);
    return this.open(key, new DnsProxyListener(port, rules, {
      routerIP: this.routerIP, redirects: this.redirects, upstreamPorts: this.upstreamPorts, onEvent: this.onEvent,
      hooks: this.dnsResponses, identityOf: this.identityOf, log: this.log,
    }));
  }

  /** A free port for `key`, closing a listener of the other kind it had. */
  private replace(key: string): number {
    const old = this.listeners.get(key);
    if (old) {
      old.close();
      this.listeners.delete(key);
      this.redirects.active[old.port] = 0;
    }
    return this.allocatePort();
  }

  private open(key: string, l: HttpRedirect | DnsProxyListener): number {
    const port = l.port;
    this.listeners.set(key, l);
    this.redirects.active[port] = 1;
    const p = l.listen().catch((err) => this.log.error({ err: err.message, port }, 'proxy listener failed'));
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
    this.log.info({ key, port }, 'L7 redirect opened');
    return port;
  }

  /** Closes every redirect not in `keep`. */
  retain(keep: Set<string>): void {
    for (const [key, l] of this.listeners) {
      if (keep.has(key)) continue;
      l.close();
      this.listeners.delete(key);
      this.redirects.active[l.port] = 0;
      this.log.info({ key, port: l.port }, 'L7 redirect closed');
    }
  }

  /** Resolves once every listener opened so far is accepting connections. */
  async ready(): Promise<void> {
    await Promise.all([...this.pending]);
  }

  /** Closes every redirect and ends the proxy worker. */
  async close(): Promise<void> {
    this.retain(new Set());
    await this.http.stop();
  }

  private allocatePort(): number {
    for (let i = 0; i <= PROXY_PORT_MAX - PROXY_PORT_MIN; i++) {
      const p = this.nextPort;
      this.nextPort = p >= PROXY_PORT_MAX ? PROXY_PORT_MIN : p + 1;
      if (this.redirects.active[p] === 0) return p;
    }
    throw new Error('no free proxy port in 10000-20000');
  }
}
