// Numeric security identities: one per distinct label set, from 256 up, agreed through the kvstore
// (cilium/state/identities/v1/… as Cilium's kvstore mode) so several nodes pick the same numbers.
import type { KVStore } from '../control/kvstore.ts';

export const MIN_IDENTITY = 256;
export const MAX_IDENTITY = 65535;
export const RESERVED_IDENTITIES: Record<string, number> = {
  host: 1, world: 2, unmanaged: 3, health: 4, init: 5, 'remote-node': 6, 'kube-apiserver': 7, ingress: 8,
};

const ID_PREFIX = 'cilium/state/identities/v1/id/';
const VALUE_PREFIX = 'cilium/state/identities/v1/value/';

export class IdentityAllocator {
  private readonly refs = new Map<number, number>();
  /** Every identity known to this node: id → labels (kept in step with the kvstore). */
  readonly known = new Map<number, string[]>();

  constructor(private readonly kv: KVStore) {}

  /** Loads the identities already allocated in the kvstore. */
  async load(): Promise<void> {
    for (const { id, labels } of await this.list()) this.known.set(id, labels);
  }

  /** The identity of a label set, allocating one if none exists; counts a local reference. */
  async acquire(labels: string[]): Promise<number> {
    const key = VALUE_PREFIX + labels.join(';');
    let id = Number(await this.kv.get(key));
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
    this.refs.set(id, (this.refs.get(id) ?? 0) + 1);
    this.known.set(id, labels);
    return id;
  }

  /** Drops a local reference; the identity stays allocated (reuse is cheap, churn is not). */
  release(id: number): void {
    const n = (this.refs.get(id) ?? 1) - 1;
    if (n <= 0) this.refs.delete(id);
    else this.refs.set(id, n);
  }

  async list(): Promise<Array<{ id: number; labels: string[] }>> {
    return (await this.kv.list(ID_PREFIX)).map((p) => ({ id: Number(p.key.slice(ID_PREFIX.length)), labels: p.value.split(';') })).sort((a, b) => a.id - b.id);
  }
}
