// The state store every control-plane module goes through: a local JSON file, or etcd (kvstore-etcd.ts).
import { existsSync, mkdirSync, readFileSync, readdirSync, unlinkSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { EtcdKVStore } from './kvstore-etcd.ts';

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

export const LOCAL_KVSTORE_FILE = 'kvstore.json';

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
 * Everything in one JSON file, rewritten whole on each change through temp + fsync + rename,
 * so a SIGKILL leaves either the old or the new file, never a torn one. Leased keys live only in
 * memory: the one process holding a local lease is this one, so they end with it.
 */
export class LocalKVStore implements KVStore {
  readonly path: string;
  private readonly data: Map<string, string>;
  /** Leased keys → the lease id they were written with. */
  private readonly leased = new Map<string, string>();
  private readonly watchers = new Set<LocalWatcher>();
  private leaseSeq = 0;
  private closed = false;
  /** The queued write not started yet; later changes ride on it instead of queueing more. */
  private pending: Promise<void> | undefined;
  private chain: Promise<void> = Promise.resolve();
  private seq = 0;
  /** Counts changes since open, as etcd's revision counts them. */
  private revision = 0;

  private constructor(readonly stateDir: string, data: Map<string, string>) {
    this.path = stateDir === '' ? '(memory)' : join(stateDir, LOCAL_KVSTORE_FILE);
    this.data = data;
  }

  /** A store that never touches the disk (tests, an agent core without a state directory). */
  static inMemory(): LocalKVStore {
    return new LocalKVStore('', new Map());
  }

  /** Opens (creating the directory if needed) and loads <stateDir>/kvstore.json. */
  static async open(stateDir: string): Promise<LocalKVStore> {
    mkdirSync(stateDir, { recursive: true });
    const path = join(stateDir, LOCAL_KVSTORE_FILE);
    // Temp files of a write cut short by a kill: the rename never happened, so they are garbage.
    for (const f of readdirSync(stateDir)) if (f.startsWith(`${LOCAL_KVSTORE_FILE}.tmp-`)) unlinkSync(join(stateDir, f));
    const data = new Map<string, string>();
    if (existsSync(path)) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(readFileSync(path, 'utf8'));
      } catch (e) {
        throw new Error(`kvstore ${path} is not valid JSON (${(e as Error).message}); move it away to start empty`);
      }
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error(`kvstore ${path}: expected a JSON object of key → string`);
      for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
        if (typeof v !== 'string') throw new Error(`kvstore ${path}: value of "${k}" is not a string`);
        data.set(k, v);
      }
    }
    return new LocalKVStore(stateDir, data);
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
    await this.chain;
    this.closed = true;
    this.watchers.clear();
  }

  private set(key: string, value: string, opts?: KVWriteOptions): void {
    this.data.set(key, value);
    if (opts?.lease) this.leased.set(key, opts.lease.id);
    else this.leased.delete(key);
    this.notify({ type: 'put', key, value, revision: String(++this.revision) });
  }

  private remove(key: string): boolean {
    if (!this.data.delete(key)) return false;
    this.leased.delete(key);
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
    if (this.stateDir === '') return Promise.resolve();
    if (!this.pending) {
      const p = this.chain.then(() => {
        this.pending = undefined;
        return this.writeNow();
      });
      this.pending = p;
      this.chain = p.catch(() => undefined);
    }
    return this.pending;
  }

  private async writeNow(): Promise<void> {
    const kept = [...this.data].filter(([k]) => !this.leased.has(k));
    const snapshot = Object.fromEntries(kept.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    const tmp = `${this.path}.tmp-${process.pid}-${this.seq++}`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(JSON.stringify(snapshot, null, 1) + '\n');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.path);
    // The rename itself must reach the disk too: fsync the directory.
    const dir = await open(this.stateDir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}

/** The store the configuration asks for: '' and 'local' are the local file, etcd takes `kvstore-opt`. */
export async function openKVStore(kind: '' | 'local' | 'etcd', stateDir: string, opts: Record<string, string> = {}): Promise<KVStore> {
  if (kind === 'etcd') return EtcdKVStore.open(opts);
  return LocalKVStore.open(stateDir);
}
