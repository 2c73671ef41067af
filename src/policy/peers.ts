// Selectors for the peers whose identities depend on more than labels: toServices (the backends
// of services, as they change) and fromNodes/toNodes (node identities by node labels).
import { valuesOf } from './labels.ts';
import { CidrSelector, type IdentitySelector, type IdentityView } from './selector-cache.ts';
import { EndpointSelector, POD_NAMESPACE_KEY } from './selector.ts';

/** What toServices needs of a service: its own labels and the pod selector choosing its backends. */
export interface ServiceInfo {
  namespace: string;
  name: string;
  labels?: Record<string, string>;
  /** Selector-less services have no pod backends to select. */
  selector?: Record<string, string>;
  /** A selector-less service's addresses from its user-written Endpoints: toServices allows them as /32 CIDRs. */
  addresses?: string[];
}

export type ServicePeer = { namespace?: string; name?: string; selector?: EndpointSelector };

/** The services toServices peers read; SelectorCache re-evaluates `service:` selectors when it changes. */
export class ServiceCatalog {
  private services: ServiceInfo[] = [];
  private gen = 0;
  /** Where the services are read from when they changed since (see invalidate()). */
  private source?: () => readonly ServiceInfo[];

  /** Replace the catalog; true when something a toServices peer can read changed. */
  set(list: readonly ServiceInfo[]): boolean {
    this.source = undefined;
    const next = [...list].sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
    if (JSON.stringify(next) === JSON.stringify(this.services)) return false;
    this.services = next;
    this.gen++;
    return true;
  }

  /** The services changed: read them from `source` when a peer next asks, not now. Listing every
   *  service on each service change made creating n services O(n²) with no toServices rule at all. */
  invalidate(source: () => readonly ServiceInfo[]): void {
    this.source = source;
  }

  /** Reads the services now if they changed since; true when what a peer can read changed. */
  load(): boolean {
    return this.source ? this.set(this.source()) : false;
  }

  get generation(): number {
    this.load();
    return this.gen;
  }

  /** The services a peer names. */
  private named(peer: ServicePeer): ServiceInfo[] {
    this.load();
    return this.services
      .filter((s) => peer.namespace === undefined || s.namespace === peer.namespace)
      .filter((s) => (peer.name !== undefined ? s.name === peer.name : peer.selector!.matches(Object.entries(s.labels ?? {}).map(([k, v]) => `k8s:${k}=${v}`))));
  }

  /** Pod selectors (scoped to each service's namespace) of the services a peer names. */
  backendSelectors(peer: ServicePeer): EndpointSelector[] {
    return this.named(peer).filter((s) => s.selector)
      .map((s) => EndpointSelector.fromSpec({ matchLabels: s.selector }, 'k8s').with({ source: 'k8s', key: POD_NAMESPACE_KEY, op: 'In', values: [s.namespace] }));
  }

  /** The /32 CIDRs of the endpoint addresses of the selector-less services a peer names. */
  addressCidrs(peer: ServicePeer): string[] {
    return [...new Set(this.named(peer).filter((s) => !s.selector).flatMap((s) => (s.addresses ?? []).map((a) => `${a}/32`)))].sort();
  }
}

/** toServices: the identities of the named services' backend pods, or of their endpoint addresses' CIDRs. */
export class ServiceBackendSelector implements IdentitySelector {
  readonly key: string;
  private cached: EndpointSelector[] = [];
  private cachedCidrs: CidrSelector[] = [];
  private cachedGen = -1;
  constructor(
    private readonly peer: ServicePeer,
    private readonly catalog: ServiceCatalog,
  ) {
    this.key = serviceSelectorKey(peer);
  }
  selects(id: IdentityView): boolean {
    if (this.cachedGen !== this.catalog.generation) {
      this.cached = this.catalog.backendSelectors(this.peer);
      this.cachedCidrs = this.catalog.addressCidrs(this.peer).map((c) => new CidrSelector(c, []));
      this.cachedGen = this.catalog.generation;
    }
    return this.cached.some((s) => s.matchesIndex(id.index)) || this.cachedCidrs.some((c) => c.selects(id));
  }
}

export const SERVICE_SELECTOR_PREFIX = 'service:';

export function serviceSelectorKey(peer: ServicePeer): string {
  const ns = peer.namespace ?? '*';
  return `${SERVICE_SELECTOR_PREFIX}${ns}/${peer.name !== undefined ? peer.name : `{${peer.selector!.key}}`}`;
}

/** fromNodes/toNodes: host and remote-node identities whose node labels match. */
export class NodeSelector implements IdentitySelector {
  readonly key: string;
  constructor(readonly selector: EndpointSelector) {
    this.key = `nodes:${selector.key}`;
  }
  selects(id: IdentityView): boolean {
    const node = valuesOf(id.index, 'reserved', 'host').length > 0 || valuesOf(id.index, 'reserved', 'remote-node').length > 0;
    return node && this.selector.matchesIndex(id.index);
  }
}
