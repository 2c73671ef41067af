// Who an address is, for flows: a local endpoint (pod name, namespace, labels, workload), else the
// identity the ipcache gives it with that identity's labels (reserved:world, reserved:host, cidr:...).
import type { Endpoint, Pod } from '../../control/types.ts';
import type { FlowEndpoint } from '../flow.ts';
import { podEndpoint, type EndpointResolver } from './builder.ts';
import { reservedLabel } from '../../dataplane/vocab/reserved-identities.ts';

export interface ResolverSource {
  pods(): Pod[];
  endpoints(): Endpoint[];
  /** The ipcache's identity for an address (world when nothing more specific). */
  lookupIdentity(ip: string): number;
  /** Every identity's labels (read again at most once a second). */
  identities(): Map<number, string[]>;
  /** Pods on other nodes (the kvstore's ipcache): named in flows as Hubble does. */
  remotePods?(): Array<{ ip: string; namespace: string; name: string; identity: number }>;
  now?: () => number;
}

const MAX_AGE_MS = 1000;
const MISS_REFRESH_MS = 50;

export class AgentResolver implements EndpointResolver {
  private byIP = new Map<string, FlowEndpoint>();
  private ids = new Map<number, string[]>();
  private builtAt = -Infinity;
  private readonly now: () => number;

  constructor(private readonly src: ResolverSource) {
    this.now = src.now ?? Date.now;
  }

  private rebuild(): void {
    const m = new Map<string, FlowEndpoint>();
    const pods = new Map(this.src.pods().map((p) => [p.endpointID, p]));
    for (const ep of this.src.endpoints()) {
      if (!ep.ipv4) continue;
      const pod = pods.get(ep.id);
      m.set(ep.ipv4, pod ? podEndpoint(ep.id, ep.identity, pod, [...ep.labels]) : { ID: ep.id, identity: ep.identity, labels: [...ep.labels] });
    }
    this.ids = this.src.identities();
    for (const r of this.src.remotePods?.() ?? []) {
      if (!m.has(r.ip)) m.set(r.ip, { identity: r.identity, namespace: r.namespace, labels: [...(this.ids.get(r.identity) ?? [])], pod_name: r.name });
    }
    this.byIP = m;
    this.builtAt = this.now();
  }

  resolve(ip: string, identityHint?: number): FlowEndpoint {
    const age = this.now() - this.builtAt;
    if (age > MAX_AGE_MS) this.rebuild();
    let ep = this.byIP.get(ip);
    if (!ep && age > MISS_REFRESH_MS && age <= MAX_AGE_MS) {
      this.rebuild();
      ep = this.byIP.get(ip);
    }
    // Shared by every flow until the next rebuild replaces it: flows are never changed in place.
    if (ep) return ep;
    const identity = identityHint || this.src.lookupIdentity(ip);
    const reserved = reservedLabel(identity);
    const labels = this.ids.get(identity) ?? (reserved ? [reserved] : []);
    return { identity, labels: [...labels] };
  }
}
