// The kvstore revisions behind the API's resourceVersions: each record's last change (the resource
// manager's records, the policy store, pod endpoints) as the store numbered it, and one callback per change
// for the watches, so `kubectl get -w` sees a change when the store does instead of by polling.
import type { KVEvent, KVStore, KVWatch } from '../control/kvstore.ts';
import type { ResourceApi } from '../control/types.ts';
import { RESOURCES_PREFIX } from '../control/resources/manager.ts';
import { policyKey } from '../policy/repository.ts';

const POLICIES_PREFIX = 'ciliary/policies/';
/** Pod endpoints (address, identity) of every node: a pod's status follows them. */
const ENDPOINTS_PREFIX = 'ciliary/endpoints/';
/** The writer's own change event normally follows within milliseconds; past this the reply goes without it. */
const OWN_WRITE_WAIT_MS = 3000;

const KINDS_IN_POLICY_STORE = new Set(['CiliumNetworkPolicy', 'CiliumClusterwideNetworkPolicy', 'NetworkPolicy']);

export class StoreRevisions {
  private readonly byKey = new Map<string, bigint>();
  private latest = 0n;
  private readonly listeners = new Set<(key: string) => void>();
  private readonly stops: Array<() => void> = [];

  constructor(kv: KVStore, resources: ResourceApi) {
    const stopManager = resources.onChange?.((e) => this.record(e));
    if (stopManager) this.stops.push(stopManager);
    for (const prefix of [POLICIES_PREFIX, ENDPOINTS_PREFIX]) {
      const w: KVWatch = kv.watch(prefix, (e) => this.record(e));
      this.stops.push(() => w.close());
    }
  }

  /** The kvstore key of a stored object. */
  keyOf(kind: string, namespace: string | undefined, name: string): string {
    return KINDS_IN_POLICY_STORE.has(kind) ? POLICIES_PREFIX + policyKey(kind, namespace, name) : `${RESOURCES_PREFIX}${kind}/${namespace ?? '_'}/${name}`;
  }

  private record(e: Pick<KVEvent, 'type' | 'key' | 'revision'>): void {
    const rev = e.revision !== undefined ? BigInt(e.revision) : this.latest + 1n;
    if (rev > this.latest) this.latest = rev;
    if (e.type === 'delete') this.byKey.delete(e.key);
    else this.byKey.set(e.key, rev);
    this.changed(e.key);
  }

  /** Tells the watches that something changed (a store key, or a source of its own such as the leases). */
  changed(key: string): void {
    for (const l of this.listeners) l(key);
  }

  /** The revision of the object's last change; the latest for one written before this server started watching. */
  of(kind: string, namespace: string | undefined, name: string): string {
    return String(this.byKey.get(this.keyOf(kind, namespace, name)) ?? 1n);
  }

  get current(): string {
    return String(this.latest > 0n ? this.latest : 1n);
  }

  onChange(listener: (key: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves once the object's revision differs from `before` (the change a write just made has arrived). */
  async settled(kind: string, namespace: string | undefined, name: string, before: string): Promise<void> {
    if (this.of(kind, namespace, name) !== before) return;
    const key = this.keyOf(kind, namespace, name);
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        stop();
        resolve();
      };
      const timer = setTimeout(done, OWN_WRITE_WAIT_MS);
      const stop = this.onChange((k) => {
        if (k === key) done();
      });
    });
  }

  close(): void {
    for (const s of this.stops) s();
  }
}
