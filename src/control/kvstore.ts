// The state store every control-plane module goes through: a local JSON file, or etcd (kvstore-etcd.ts).
import { join } from 'node:path';
import { EtcdKVStore } from './kvstore-etcd.ts';
import { LOCAL_KVSTORE_FILE, StoreFile, type StoreOp } from './kvstore-file.ts';

export interface KVPair {
  key: string;
  value: string;
}

/** A change under a watched prefix; revision: the store's revision of the change (etcd's mod_revision), where known. */
export type KVEvent = { type: 'put'; key: string; value: string; revision?: string } | { type: 'delete'; key: string; revision?: string };

export interface KVWatch {
  /** Resolves once the pairs present when the watch started were delivered (as puts). */
  readonly ready: Promise<void>;
  close(): void;
}

/** Keys written with a lease vanish when its holder stops keeping it alive for ttlSeconds. */
export interface KVLease {
  readonly id: string;
  readonly ttlSeconds: number;
  /** Deletes every key written with this lease now. */
  revoke(): Promise<void>;
}

export interface KVWriteOptions {
  lease?: KVLease;
}

/** What `status` prints for the store: healthy or the error of the last failed contact. */
export interface KVHealth {
  ok: boolean;
  /** "local /run/ciliary/k8s-ctr/kvstore.json", "etcd: 1/1 connected: http://…:2379 …", or the error. */
  message: string;
}

/**
 * The state store every control-plane module goes through (local file or etcd). A watch first
 * delivers the pairs present under its prefix as puts, then every change in order; after a lost
 * connection it resyncs by delivering the difference (puts for new or changed pairs, deletes for
 * vanished ones), so a watcher's view converges without restarting anything.
 */
export interface KVStore {
  get(key: string): Promise<string | undefined>;
  put(key: string, value: string, opts?: KVWriteOptions): Promise<void>;
  /** True when the key existed. */
  delete(key: string): Promise<boolean>;
  /** Pairs whose key starts with prefix, sorted by key. */
  list(prefix: string): Promise<KVPair[]>;
  /** Atomic create: false (and nothing written) when the key already exists. */
  createOnly(key: string, value: string, opts?: KVWriteOptions): Promise<boolean>;
  watch(prefix: string, onEvent: (e: KVEvent) => void): KVWatch;
  /** A lease kept alive by this store until revoked or closed. */
  grantLease(ttlSeconds: number): Promise<KVLease>;
  health(): KVHealth;
  close(): Promise<void>;
}

/** The store did not answer (refused, timed out, no leader): the same call may succeed later. */
export class KVUnreachableError extends Error {}

/** What every store refuses: use after close, an empty key, a value that is not a string. */
export function checkUse(closed: boolean, key?: string, value?: string): void {
  if (closed) throw new Error('kvstore is closed');
  if (key !== undefined && (typeof key !== 'string' || key === '')) throw new Error('kvstore key must be a non-empty string');
  if (value !== undefined && typeof value !== 'string') throw new Error(`kvstore value of "${key}" must be a string`);
}

interface LocalWatcher {
  prefix: string;
  onEvent: (e: KVEvent) => void;
}

/**
 * Everything in memory, on disk as a snapshot plus a log of changes (kvstore-file.ts), so a SIGKILL
 * loses no acknowledged change and leaves nothing torn. Leased keys live only in memory: the one
 * process holding a local lease is this one, so they end with it.
 */
export class LocalKVStore implements KVStore {
  readonly path: string;
  private readonly data: Map<string, string>;
  /** Leased keys → the lease id they were written with. */
  private readonly leased = new Map<string, string>();
  private readonly watchers = new Set<LocalWatcher>();
  private leaseSeq = 0;
  private closed = false;
  /** Changes not yet handed to the file, in order. */
  private ops: StoreOp[] = [];
  /** The queued write not started yet; later changes ride on it instead of queueing more. */
  private pending: Promise<void> | undefined;
  private chain: Promise<void> = Promise.resolve();
  /** Counts changes since open, as etcd's revision counts them. */
  private revision = 0;

  private constructor(
    readonly stateDir: string,
    data: Map<string, string>,
    private readonly file?: StoreFile,
  ) {
    this.path = stateDir === '' ? '(memory)' : join(stateDir, LOCAL_KVSTORE_FILE);
    this.data = data;
  }

  /** A store that never touches the disk (tests, an agent core without a state directory). */
  static inMemory(): LocalKVStore {
    return new LocalKVStore('', new Map());
  }

  /** Opens (creating the directory if needed) and loads <stateDir>/kvstore.json and its log. */
  static async open(stateDir: string): Promise<LocalKVStore> {
    const { file, data } = await StoreFile.open(stateDir);
    return new LocalKVStore(stateDir, data, file);
  }

  async get(key: string): Promise<string | undefined> {
    this.check(key);
    return this.data.get(key);
  }

  async put(key: string, value: string, opts?: KVWriteOptions): Promise<void> {
    this.check(key, value);
    this.set(key, value, opts);
    await this.persist();
  }

  async delete(key: string): Promise<boolean> {
    this.check(key);
    if (!this.remove(key)) return false;
    await this.persist();
    return true;
  }

  async list(prefix: string): Promise<KVPair[]> {
    this.check();
    const out: KVPair[] = [];
    for (const [key, value] of this.data) if (key.startsWith(prefix)) out.push({ key, value });
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async createOnly(key: string, value: string, opts?: KVWriteOptions): Promise<boolean> {
    this.check(key, value);
    // Test and set happen in one synchronous step, so concurrent callers cannot both win.
    if (this.data.has(key)) return false;
    this.set(key, value, opts);
    await this.persist();
    return true;
  }

  watch(prefix: string, onEvent: (e: KVEvent) => void): KVWatch {
    this.check();
    const w: LocalWatcher = { prefix, onEvent };
    // The initial listing is delivered asynchronously, like etcd's, so callers can set up first.
    const ready = Promise.resolve().then(() => {
      for (const [key, value] of [...this.data].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
        if (key.startsWith(prefix)) onEvent({ type: 'put', key, value });
      }
      if (!this.closed) this.watchers.add(w);
    });
    return { ready, close: () => void this.watchers.delete(w) };
  }

  async grantLease(ttlSeconds: number): Promise<KVLease> {
    this.check();
    const id = `local-${++this.leaseSeq}`;
    return {
      id,
      ttlSeconds,
      revoke: async () => {
        let changed = false;
        for (const [key, lease] of [...this.leased]) if (lease === id) changed = this.remove(key) || changed;
        if (changed) await this.persist();
      },
    };
  }

  health(): KVHealth {
    return this.closed ? { ok: false, message: 'closed' } : { ok: true, message: `local ${this.path}` };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.watchers.clear();
    await this.chain;
    await this.file?.close(this.durable());
  }

  private set(key: string, value: string, opts?: KVWriteOptions): void {
    this.data.set(key, value);
    if (opts?.lease) this.leased.set(key, opts.lease.id);
    else this.leased.delete(key);
    this.ops.push(opts?.lease ? [key] : [key, value]); // a leased value never reaches the disk
    this.notify({ type: 'put', key, value, revision: String(++this.revision) });
  }

  private remove(key: string): boolean {
    if (!this.data.delete(key)) return false;
    this.leased.delete(key);
    this.ops.push([key]);
    this.notify({ type: 'delete', key, revision: String(++this.revision) });
    return true;
  }

  private notify(e: KVEvent): void {
    for (const w of this.watchers) if (e.key.startsWith(w.prefix)) w.onEvent(e);
  }

  private check(key?: string, value?: string): void {
    checkUse(this.closed, key, value);
  }

  private persist(): Promise<void> {
    const file = this.file;
    if (!file || this.closed) {
      this.ops = [];
      return Promise.resolve();
    }
    if (!this.pending) {
      const p = this.chain.then(async () => {
        this.pending = undefined;
        const ops = this.ops;
        this.ops = [];
        await file.append(ops);
        // The snapshot may hold changes still queued: the new log replays them again, in order.
        if (file.wantsCompaction) await file.compact(this.durable());
      });
      this.pending = p;
      this.chain = p.catch(() => undefined);
    }
    return this.pending;
  }

  /** The pairs the disk keeps: all but the leased ones. */
  private durable(): Array<[string, string]> {
    return [...this.data].filter(([k]) => !this.leased.has(k));
  }
}

/** The store the configuration asks for: '' and 'local' are the local file, etcd takes `kvstore-opt`. */
export async function openKVStore(kind: '' | 'local' | 'etcd', stateDir: string, opts: Record<string, string> = {}): Promise<KVStore> {
  if (kind === 'etcd') return EtcdKVStore.open(opts);
  return LocalKVStore.open(stateDir);
}
