// Numeric security identities: one per distinct label set, from 256 up, agreed through the kvstore
// (cilium/state/identities/v1/… as Cilium's kvstore mode) so several nodes pick the same numbers.
import type { KVLease, KVStore, KVWatch } from '../control/kvstore.ts';

export const MIN_IDENTITY = 256;
export const MAX_IDENTITY = 65535;
export { RESERVED_IDENTITIES } from '../dataplane/vocab/reserved-identities.ts';

const ID_PREFIX = 'cilium/state/identities/v1/id/';
const VALUE_PREFIX = 'cilium/state/identities/v1/value/';
/** users/<id>/<node>: which nodes hold references, so one node's release never frees another's identity. */
export const USERS_PREFIX = 'cilium/state/identities/v1/users/';
export const DEFAULT_IDENTITY_GRACE_MS = 30_000;

export class IdentityAllocator {
  private readonly refs = new Map<number, number>();
  private readonly gcTimers = new Map<number, NodeJS.Timeout>();
  /** Every identity known to this node: id → labels (kept in step with the kvstore). */
  readonly known = new Map<number, string[]>();

  private watch?: KVWatch;
  /** Runs once per burst of changes other nodes make (their pods are selected by their labels). */
  onChange?: () => void;
  private changeQueued = false;

  /** lease: the node's; its claims (users/<id>/<node>) vanish with it when the node stops renewing it. */
  constructor(private readonly kv: KVStore, private readonly node = 'local', private readonly graceMs = DEFAULT_IDENTITY_GRACE_MS, private readonly lease?: KVLease) {}

  /** Loads the identities allocated in the kvstore and follows them (other nodes allocate and free them too). */
  async load(): Promise<void> {
    this.watch = this.kv.watch(ID_PREFIX, (e) => {
      const id = Number(e.key.slice(ID_PREFIX.length));
      if (e.type === 'put') this.known.set(id, e.value.split(';'));
      else this.known.delete(id);
      this.changed();
    });
    await this.watch.ready;
  }

  private changed(): void {
    if (!this.onChange || this.changeQueued) return;
    this.changeQueued = true;
    setImmediate(() => {
      this.changeQueued = false;
      this.onChange?.();
    });
  }

  /** The identity of a label set, allocating one if none exists; counts a local reference. */
  async acquire(labels: string[]): Promise<number> {
    const key = VALUE_PREFIX + labels.join(';');
    // Known labels need no store round trip (and work while the store is away).
    let id = this.cachedId(labels) ?? Number(await this.kv.get(key));
    if (!id) {
      for (id = MIN_IDENTITY; id <= MAX_IDENTITY; id++) {
        if (await this.kv.createOnly(ID_PREFIX + id, labels.join(';'))) break;
      }
      if (id > MAX_IDENTITY) throw new Error('identity space exhausted');
      if (!(await this.kv.createOnly(key, String(id)))) {
        // Another node won the race for these labels: use its number, free ours.
        await this.kv.delete(ID_PREFIX + id);
        id = Number(await this.kv.get(key));
      }
    }
    const n = (this.refs.get(id) ?? 0) + 1;
    this.refs.set(id, n);
    clearTimeout(this.gcTimers.get(id));
    this.gcTimers.delete(id);
    if (n === 1) await this.kv.put(`${USERS_PREFIX}${id}/${this.node}`, '1', { lease: this.lease });
    this.known.set(id, labels);
    return id;
  }

  private cachedId(labels: string[]): number | undefined {
    const text = labels.join(';');
    for (const [id, l] of this.known) if (l.join(';') === text) return id;
    return undefined;
  }

  /**
   * Drops a local reference. When this node holds none any more, its claim goes; after a grace
   * period (a pod recreated with the same labels keeps its number) an identity no node claims is freed.
   */
  release(id: number): void {
    const n = (this.refs.get(id) ?? 1) - 1;
    if (n > 0) {
      this.refs.set(id, n);
      return;
    }
    this.refs.delete(id);
    const t = setTimeout(() => void this.collect(id).catch(() => undefined), this.graceMs);
    t.unref();
    this.gcTimers.set(id, t);
  }

  private async collect(id: number): Promise<void> {
    this.gcTimers.delete(id);
    if (this.refs.has(id)) return;
    await this.kv.delete(`${USERS_PREFIX}${id}/${this.node}`);
    if ((await this.kv.list(`${USERS_PREFIX}${id}/`)).length > 0) return;
    const labels = await this.kv.get(ID_PREFIX + id);
    await this.kv.delete(ID_PREFIX + id);
    if (labels !== undefined) await this.kv.delete(VALUE_PREFIX + labels);
    this.known.delete(id);
  }

  /** Stops pending collections (agent shutdown: the next agent process takes over). */
  close(): void {
    this.watch?.close();
    for (const t of this.gcTimers.values()) clearTimeout(t);
    this.gcTimers.clear();
  }

  async list(): Promise<Array<{ id: number; labels: string[] }>> {
    return (await this.kv.list(ID_PREFIX)).map((p) => ({ id: Number(p.key.slice(ID_PREFIX.length)), labels: p.value.split(';') })).sort((a, b) => a.id - b.id);
  }
}
