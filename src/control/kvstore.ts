// The state store every control-plane module goes through: a local JSON file now, etcd later.
import { existsSync, mkdirSync, readFileSync, readdirSync, unlinkSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';

export interface KVPair {
  key: string;
  value: string;
}

export interface KVStore {
  get(key: string): Promise<string | undefined>;
  put(key: string, value: string): Promise<void>;
  /** True when the key existed. */
  delete(key: string): Promise<boolean>;
  /** Pairs whose key starts with prefix, sorted by key. */
  list(prefix: string): Promise<KVPair[]>;
  /** Atomic create: false (and nothing written) when the key already exists. */
  createOnly(key: string, value: string): Promise<boolean>;
  close(): Promise<void>;
}

export const LOCAL_KVSTORE_FILE = 'kvstore.json';

/**
 * Everything in one JSON file, rewritten whole on each change through temp + fsync + rename,
 * so a SIGKILL leaves either the old or the new file, never a torn one.
 */
export class LocalKVStore implements KVStore {
  readonly path: string;
  private readonly data: Map<string, string>;
  private closed = false;
  /** The queued write not started yet; later changes ride on it instead of queueing more. */
  private pending: Promise<void> | undefined;
  private chain: Promise<void> = Promise.resolve();
  private seq = 0;

  private constructor(readonly stateDir: string, data: Map<string, string>) {
    this.path = join(stateDir, LOCAL_KVSTORE_FILE);
    this.data = data;
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

  async put(key: string, value: string): Promise<void> {
    this.check(key, value);
    this.data.set(key, value);
    await this.persist();
  }

  async delete(key: string): Promise<boolean> {
    this.check(key);
    if (!this.data.delete(key)) return false;
    await this.persist();
    return true;
  }

  async list(prefix: string): Promise<KVPair[]> {
    this.check();
    const out: KVPair[] = [];
    for (const [key, value] of this.data) if (key.startsWith(prefix)) out.push({ key, value });
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async createOnly(key: string, value: string): Promise<boolean> {
    this.check(key, value);
    // Test and set happen in one synchronous step, so concurrent callers cannot both win.
    if (this.data.has(key)) return false;
    this.data.set(key, value);
    await this.persist();
    return true;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.chain;
    this.closed = true;
  }

  private check(key?: string, value?: string): void {
    if (this.closed) throw new Error('kvstore is closed');
    if (key !== undefined && (typeof key !== 'string' || key === '')) throw new Error('kvstore key must be a non-empty string');
    if (value !== undefined && typeof value !== 'string') throw new Error(`kvstore value of "${key}" must be a string`);
  }

  private persist(): Promise<void> {
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
    const snapshot = Object.fromEntries([...this.data].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
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

/** The store the configuration asks for ('' and 'local' are the local file; etcd comes later). */
export async function openKVStore(kind: '' | 'local' | 'etcd', stateDir: string): Promise<KVStore> {
  if (kind === 'etcd') throw new Error('kvstore etcd is not implemented yet; use kvstore local');
  return LocalKVStore.open(stateDir);
}
