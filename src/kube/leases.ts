// coordination.k8s.io/v1 Leases over kvstore keys held under a kvstore lease: each registered source names
// a key prefix, and every key under it is one Lease (holder = the key's value). Other areas register their
// own (L2 announcements) with registerLeaseSource; the controllers' leader key is the operator's lock.
import { NODE_LEASE_TTL } from '../control/nodes.ts';
import type { KVStore, KVWatch } from '../control/kvstore.ts';
import { DEPLOYMENTS_LEADER_KEY } from '../control/resources/leader.ts';
import type { KubeObject } from './backend.ts';

export interface LeaseSource {
  /** kvstore key prefix (or one key) whose keys are held under a kvstore lease. */
  prefix: string;
  namespace: string;
  /** The Lease name of a key under the prefix. */
  name(key: string): string;
  /** holderIdentity from the key's value. */
  holder(value: string): string;
  /** How long the key outlives its holder's last renewal (the kvstore lease's TTL). */
  durationSeconds: number;
}

const LEASE_SOURCES: LeaseSource[] = [
  { prefix: DEPLOYMENTS_LEADER_KEY, namespace: 'kube-system', name: () => 'cilium-operator-resource-lock', holder: (v) => v, durationSeconds: NODE_LEASE_TTL },
];

const TABLES = new Set<LeaseTable>();

/** Adds a source of Leases; every LeaseTable serves it from then on, whenever it was made. */
export function registerLeaseSource(source: LeaseSource): void {
  LEASE_SOURCES.push(source);
  for (const t of TABLES) t.follow(source);
}

interface Held {
  source: LeaseSource;
  key: string;
  holder: string;
  acquired: string;
}

const seconds = (d: Date) => d.toISOString().replace(/\.\d+Z$/, 'Z');
const micro = (d: Date) => d.toISOString().replace(/Z$/, '000Z');

/** The Leases held now, kept current by one kvstore watch per source. */
export class LeaseTable {
  private readonly held = new Map<string, Held>();
  private readonly watches: KVWatch[] = [];
  private readonly listeners = new Set<() => void>();

  constructor(private readonly kv: KVStore) {
    for (const source of LEASE_SOURCES) this.follow(source);
    TABLES.add(this);
  }

  /** Keeps the source's keys in the table. */
  follow(source: LeaseSource): void {
    this.watches.push(this.kv.watch(source.prefix, (e) => {
      if (e.type === 'delete') this.held.delete(e.key);
      else {
        const holder = source.holder(e.value);
        const had = this.held.get(e.key);
        // A new holder acquires it anew; the same holder writing again keeps its acquire time.
        this.held.set(e.key, { source, key: e.key, holder, acquired: had?.holder === holder ? had.acquired : micro(new Date()) });
      }
      for (const l of this.listeners) l();
    }));
  }

  /** Calls back on every change of a held lease until the returned function is called. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  list(namespace?: string): KubeObject[] {
    // A key exists only while its holder renews the kvstore lease: renewTime is now.
    const now = new Date();
    return [...this.held.values()].filter((h) => namespace === undefined || h.source.namespace === namespace).map((h) => ({
      apiVersion: 'coordination.k8s.io/v1', kind: 'Lease',
      metadata: { name: h.source.name(h.key), namespace: h.source.namespace, creationTimestamp: seconds(new Date(h.acquired)) },
      spec: { holderIdentity: h.holder, leaseDurationSeconds: h.source.durationSeconds, acquireTime: h.acquired, renewTime: micro(now), leaseTransitions: 0 },
    }));
  }

  close(): void {
    TABLES.delete(this);
    for (const w of this.watches) w.close();
  }
}
