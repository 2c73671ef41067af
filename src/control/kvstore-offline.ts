// Writes that may wait for the kvstore: while etcd is unreachable a node keeps creating pods on its own
// pod CIDR, so the writes that only describe this node's own things (its endpoints, IPAM leases, ipcache
// entries, identity claims, the records of pods placed on it) are applied to a local view and queued;
// once the store answers again the queue is replayed in order, each key's last write only, so a replay
// cut short and started over writes the same. Every other write still fails with the store's error.
// The queue's unleased writes are kept in a file too, so an agent killed meanwhile writes them on its
// next start; leased ones (ipcache entries, identity claims) the next agent process makes again itself.
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkUse, KVUnreachableError, type KVHealth, type KVPair, type KVStore, type KVWatch, type KVWriteOptions } from './kvstore.ts';

const REPLAY_INTERVAL_MS = 1000;
/** Under the state directory: the queued writes not yet in the store, as [key, value or null] pairs. */
export const QUEUE_FILE = 'kvstore-queue.json';

/** Which keys a node may write while the store is away. */
export interface OfflineKeys {
  /** Prefixes only this node writes: their values are known here, so get and createOnly answer offline too. */
  owned: string[];
  /** Other keys whose puts and deletes may wait (value undefined: a delete). */
  deferrable(key: string, value: string | undefined): boolean;
}

interface QueuedWrite {
  key: string;
  /** undefined: a delete. */
  value: string | undefined;
  opts?: KVWriteOptions;
}

export class WriteBehindKVStore implements KVStore {
  /** Keys under the owned prefixes → their values, as this node last wrote them. */
  private readonly mirror = new Map<string, string>();
  /** Writes not in the store yet, oldest first; a key written again moves to the end with its new value. */
  private readonly queue = new Map<string, QueuedWrite>();
  private timer?: NodeJS.Timeout;
  private replaying?: Promise<void>;
  private closed = false;

  private constructor(private readonly inner: KVStore, private readonly keys: OfflineKeys, private readonly onReplayError: (key: string, err: Error) => void,
    private readonly file?: string) {}

  /**
   * Wraps a reachable store: first writes what a previous agent process left queued under `stateDir`,
   * then loads what the store holds under the owned prefixes.
   */
  static async wrap(inner: KVStore, keys: OfflineKeys, onReplayError: (key: string, err: Error) => void, stateDir?: string): Promise<WriteBehindKVStore> {
    const file = stateDir === undefined ? undefined : join(stateDir, QUEUE_FILE);
    const store = new WriteBehindKVStore(inner, keys, onReplayError, file);
    for (const [key, value] of store.leftQueued()) {
      if (value === null) await inner.delete(key);
      else await inner.put(key, value);
    }
    if (file) rmSync(file, { force: true });
    for (const prefix of keys.owned) for (const p of await inner.list(prefix)) store.mirror.set(p.key, p.value);
    return store;
  }

  private leftQueued(): Array<[string, string | null]> {
    if (!this.file) return [];
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch {
      return [];
    }
    try {
      return JSON.parse(text) as Array<[string, string | null]>;
    } catch (e) {
      // Written whole and renamed, so only a hand-edited file gets here: reported, not fatal.
      this.onReplayError(this.file, e as Error);
      return [];
    }
  }

  /** Keeps the unleased queued writes on disk (written whole, then renamed: never torn). */
  private saveQueue(): void {
    if (!this.file) return;
    const pairs = [...this.queue.values()].filter((w) => !w.opts?.lease).map((w) => [w.key, w.value ?? null]);
    if (pairs.length === 0) return void rmSync(this.file, { force: true });
    writeFileSync(`${this.file}.tmp`, JSON.stringify(pairs));
    renameSync(`${this.file}.tmp`, this.file);
  }

  /** Writes waiting for the store. */
  get queued(): number {
    return this.queue.size;
  }

  async get(key: string): Promise<string | undefined> {
    checkUse(this.closed, key);
    const q = this.queue.get(key);
    if (q) return q.value;
    if (this.owned(key) && !this.inner.health().ok) return this.mirror.get(key);
    return this.inner.get(key);
  }

  put(key: string, value: string, opts?: KVWriteOptions): Promise<void> {
    checkUse(this.closed, key, value);
    return this.write({ key, value, opts }, () => this.inner.put(key, value, opts));
  }

  async delete(key: string): Promise<boolean> {
    checkUse(this.closed, key);
    const existed = this.queue.has(key) ? this.queue.get(key)!.value !== undefined : this.mirror.has(key);
    let deleted = existed;
    await this.write({ key, value: undefined }, async () => void (deleted = await this.inner.delete(key)));
    return deleted;
  }

  list(prefix: string): Promise<KVPair[]> {
    return this.inner.list(prefix);
  }

  async createOnly(key: string, value: string, opts?: KVWriteOptions): Promise<boolean> {
    checkUse(this.closed, key, value);
    const offline = this.owned(key) && (this.queue.size > 0 || !this.inner.health().ok);
    if (!offline) {
      try {
        const created = await this.inner.createOnly(key, value, opts);
        if (created && this.owned(key)) this.mirror.set(key, value);
        return created;
      } catch (e) {
        if (!(e instanceof KVUnreachableError && this.owned(key))) throw e;
      }
    }
    // Only this node writes here, so what it wrote is all there is.
    if (this.queue.has(key) ? this.queue.get(key)!.value !== undefined : this.mirror.has(key)) return false;
    this.enqueue({ key, value, opts });
    return true;
  }

  watch(prefix: string, onEvent: Parameters<KVStore['watch']>[1]): KVWatch {
    return this.inner.watch(prefix, onEvent);
  }

  grantLease(ttlSeconds: number): ReturnType<KVStore['grantLease']> {
    return this.inner.grantLease(ttlSeconds);
  }

  health(): KVHealth {
    const h = this.inner.health();
    return this.queue.size === 0 ? h : { ok: h.ok, message: `${h.message}; ${this.queue.size} write(s) queued for the store` };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    await this.inner.close();
  }

  /** Straight to the store unless writes already wait (order) or it is away; a deferrable write then queues. */
  private async write(w: QueuedWrite, direct: () => Promise<void>): Promise<void> {
    const mayWait = this.owned(w.key) || this.queue.has(w.key) || this.keys.deferrable(w.key, w.value);
    if (mayWait && (this.queue.size > 0 || !this.inner.health().ok)) return this.enqueue(w);
    try {
      await direct();
    } catch (e) {
      if (!(mayWait && e instanceof KVUnreachableError)) throw e;
      return this.enqueue(w);
    }
    this.remember(w);
  }

  private enqueue(w: QueuedWrite): void {
    this.queue.delete(w.key);
    this.queue.set(w.key, w);
    this.remember(w);
    this.saveQueue();
    this.timer ??= setInterval(() => void this.replay(), REPLAY_INTERVAL_MS).unref();
  }

  private remember(w: QueuedWrite): void {
    if (!this.owned(w.key)) return;
    if (w.value === undefined) this.mirror.delete(w.key);
    else this.mirror.set(w.key, w.value);
  }

  /** Writes the queue into the store, oldest first, while it answers. */
  replay(): Promise<void> {
    this.replaying ??= this.drain().finally(() => (this.replaying = undefined));
    return this.replaying;
  }

  private async drain(): Promise<void> {
    while (!this.closed && this.inner.health().ok) {
      const next = this.queue.values().next();
      if (next.done) {
        clearInterval(this.timer);
        this.timer = undefined;
        this.saveQueue();
        return;
      }
      const w = next.value;
      try {
        if (w.value === undefined) await this.inner.delete(w.key);
        else await this.inner.put(w.key, w.value, w.opts);
      } catch (e) {
        if (e instanceof KVUnreachableError) return; // still away: the next tick tries again
        // The store refuses this write for good (its lease was revoked): it cannot hold up the rest.
        this.onReplayError(w.key, e as Error);
      }
      // Written again meanwhile: the newer write waits at the end of the queue.
      if (this.queue.get(w.key) === w) this.queue.delete(w.key);
    }
  }

  private owned(key: string): boolean {
    return this.keys.owned.some((p) => key.startsWith(p));
  }
}
