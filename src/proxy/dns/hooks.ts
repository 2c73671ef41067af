// The one place every DNS answer the proxy forwards passes through: toFQDNs (src/fqdn) registers
// here to learn the addresses of the names a pod looked up, before the pod sees the answer.

/** One forwarded answer, as the proxy saw it. */
export interface DnsResponseInfo {
  /** The endpoint whose policy redirected the query (the pod that asked). */
  endpointId: number;
  /** That endpoint's security identity. */
  sourceIdentity: number;
  /** The question name, lower case, with the trailing dot ("webpod.default.svc.cluster.local."). */
  name: string;
  /** The question type: 'A', 'AAAA', … */
  qtype: string;
  /** A and AAAA addresses of the answer section. */
  ips: string[];
  /** The lowest TTL of the A/AAAA/CNAME records, 4294967295 when there is none. */
  ttl: number;
  /** The response code (0 NOERROR, 3 NXDOMAIN, …). */
  rcode: number;
}

/** May return a promise: the answer waits for it (toFQDNs must allow the addresses before the pod connects). */
export type DnsResponseHandler = (r: DnsResponseInfo) => void | Promise<void>;

/** The longest an answer waits for the handlers, as Cilium's tofqdns-proxy-response-max-delay (100 ms). */
export const RESPONSE_MAX_DELAY_MS = 100;

export class DnsResponseHooks {
  private readonly handlers = new Set<DnsResponseHandler>();

  constructor(private readonly onError: (err: Error, r: DnsResponseInfo) => void = () => undefined) {}

  /** Registers `fn` for every forwarded answer; returns the function that unregisters it. */
  onDnsResponse(fn: DnsResponseHandler): () => void {
    this.handlers.add(fn);
    return () => this.handlers.delete(fn);
  }

  /** Runs every handler; resolves when all are done or after RESPONSE_MAX_DELAY_MS. A failing one does not stop the others. */
  emit(r: DnsResponseInfo): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const fn of this.handlers) {
      try {
        const p = fn(r);
        if (p) waits.push(p.catch((err: Error) => this.onError(err, r)));
      } catch (err) {
        this.onError(err as Error, r);
      }
    }
    if (waits.length === 0) return Promise.resolve();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => { timer = setTimeout(resolve, RESPONSE_MAX_DELAY_MS); });
    return Promise.race([Promise.all(waits).then(() => undefined), late]).finally(() => clearTimeout(timer));
  }
}
