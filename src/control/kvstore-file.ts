// The local store on disk: a snapshot (kvstore.json, key → value, written whole through temp + fsync
// + rename) and a log of the changes since (kvstore.log, one JSON line per change, appended and
// fdatasync'ed once per batch), so a change costs its own bytes, not the whole store's. The log's
// first line names the snapshot it follows by SHA-1: a log left behind by a compaction cut short
// (new snapshot renamed, log not yet replaced) belongs to an older snapshot and is ignored.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, unlinkSync } from 'node:fs';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

export const LOCAL_KVSTORE_FILE = 'kvstore.json';
export const LOCAL_KVSTORE_LOG = 'kvstore.log';
/** The log is folded into a new snapshot once it outgrows the snapshot (and this floor). */
const COMPACT_MIN_BYTES = 1 << 20;

/** A change: a put, or a delete when the value is undefined. */
export type StoreOp = readonly [key: string, value?: string];

const sha1 = (bytes: string): string => createHash('sha1').update(bytes).digest('hex');

interface Loaded {
  data: Map<string, string>;
  snapshotText: string;
  /** The log's bytes when it follows this snapshot, else undefined. */
  logBytes?: number;
}

function load(stateDir: string): Loaded {
  const path = join(stateDir, LOCAL_KVSTORE_FILE);
  const snapshotText = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const data = new Map<string, string>();
  if (snapshotText !== '') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(snapshotText);
    } catch (e) {
      throw new Error(`kvstore ${path} is not valid JSON (${(e as Error).message}); move it away to start empty`);
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error(`kvstore ${path}: expected a JSON object of key → string`);
    for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
      if (typeof v !== 'string') throw new Error(`kvstore ${path}: value of "${k}" is not a string`);
      data.set(k, v);
    }
  }
  const logPath = join(stateDir, LOCAL_KVSTORE_LOG);
  if (!existsSync(logPath)) return { data, snapshotText };
  const log = readFileSync(logPath, 'utf8');
  const lines = log.split('\n');
  if ((JSON.parse(lines[0] || '{}') as { snapshot?: string }).snapshot !== sha1(snapshotText)) return { data, snapshotText };
  // The last line is either '' (complete) or a write cut short by a kill: never acknowledged, dropped.
  for (let i = 1; i < lines.length - 1; i++) {
    let op: unknown;
    try {
      op = JSON.parse(lines[i]);
    } catch (e) {
      throw new Error(`kvstore log ${logPath} line ${i + 1} is not valid JSON (${(e as Error).message}); move it away to start from the snapshot`);
    }
    if (!Array.isArray(op) || typeof op[0] !== 'string' || (op.length === 2 && typeof op[1] !== 'string') || op.length > 2) {
      throw new Error(`kvstore log ${logPath} line ${i + 1}: expected ["key", "value"] or ["key"]`);
    }
    if (op.length === 2) data.set(op[0], op[1] as string);
    else data.delete(op[0]);
  }
  return { data, snapshotText, logBytes: Buffer.byteLength(log) - Buffer.byteLength(lines[lines.length - 1]) };
}

/** What the agent left in stateDir (snapshot + log), read without opening the store: offline tools. */
export function readStoreFile(stateDir: string): Map<string, string> {
  return load(stateDir).data;
}

export class StoreFile {
  private log!: FileHandle;
  private logBytes = 0;
  private seq = 0;

  private constructor(private readonly stateDir: string, private snapshotBytes: number) {}

  /** Loads stateDir's store (creating the directory) and opens its log for appending. */
  static async open(stateDir: string): Promise<{ file: StoreFile; data: Map<string, string> }> {
    mkdirSync(stateDir, { recursive: true });
    // Temp files of a write cut short by a kill: their rename never happened, so they are garbage.
    for (const f of readdirSync(stateDir)) if (f.startsWith(`${LOCAL_KVSTORE_FILE}.tmp-`) || f.startsWith(`${LOCAL_KVSTORE_LOG}.tmp-`)) unlinkSync(join(stateDir, f));
    const { data, snapshotText, logBytes } = load(stateDir);
    const file = new StoreFile(stateDir, Buffer.byteLength(snapshotText));
    if (logBytes === undefined) await file.startLog(snapshotText);
    else await file.reopenLog(logBytes);
    return { file, data };
  }

  /** Appends the changes and waits until they are on the disk. */
  async append(ops: readonly StoreOp[]): Promise<void> {
    if (ops.length === 0) return;
    let text = '';
    for (const op of ops) text += JSON.stringify(op) + '\n';
    const bytes = Buffer.from(text);
    await this.log.write(bytes, 0, bytes.length, this.logBytes);
    await this.log.datasync();
    this.logBytes += bytes.length;
  }

  get wantsCompaction(): boolean {
    return this.logBytes > Math.max(COMPACT_MIN_BYTES, this.snapshotBytes);
  }

  /** Writes data as the new snapshot and starts an empty log after it. */
  async compact(data: Iterable<readonly [string, string]>): Promise<void> {
    const text = await this.writeSnapshot(data);
    await this.log.close();
    await this.startLog(text);
  }

  /** A last snapshot and no log: a cleanly stopped store is one plain JSON file. */
  async close(data: Iterable<readonly [string, string]>): Promise<void> {
    await this.writeSnapshot(data);
    await this.log.close();
    await unlink(join(this.stateDir, LOCAL_KVSTORE_LOG)).catch(() => undefined);
  }

  private async writeSnapshot(data: Iterable<readonly [string, string]>): Promise<string> {
    const sorted = [...data].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const text = JSON.stringify(Object.fromEntries(sorted), null, 1) + '\n';
    await this.replace(LOCAL_KVSTORE_FILE, text);
    this.snapshotBytes = Buffer.byteLength(text);
    return text;
  }

  private async startLog(snapshotText: string): Promise<void> {
    const header = JSON.stringify({ snapshot: sha1(snapshotText) }) + '\n';
    await this.replace(LOCAL_KVSTORE_LOG, header);
    this.log = await open(join(this.stateDir, LOCAL_KVSTORE_LOG), 'r+');
    this.logBytes = Buffer.byteLength(header);
  }

  private async reopenLog(validBytes: number): Promise<void> {
    this.log = await open(join(this.stateDir, LOCAL_KVSTORE_LOG), 'r+');
    await this.log.truncate(validBytes); // a torn last line goes before anything is appended after it
    this.logBytes = validBytes;
  }

  /** name's content becomes text or stays as it was, whatever kill comes in between. */
  private async replace(name: string, text: string): Promise<void> {
    const path = join(this.stateDir, name);
    const tmp = `${path}.tmp-${process.pid}-${this.seq++}`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    // The rename itself must reach the disk too: fsync the directory.
    const dir = await open(this.stateDir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}
