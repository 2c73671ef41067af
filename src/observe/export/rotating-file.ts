// A size-rotated append-only file with lumberjack's behaviour (the logger Cilium's exporter uses):
// when a write would push the file past maxSize, the file is renamed to
// <name>-<UTC 2006-01-02T15-04-05.000><ext> and a new one started; only the newest maxBackups
// backups are kept (0 = keep all).
import { mkdir, open, readdir, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';

export interface RotatingFileOptions {
  maxSize: number; // bytes
  maxBackups: number;
}

/** lumberjack's backup time format, "2006-01-02T15-04-05.000", in UTC. */
export function backupTimestamp(d: Date): string {
  return d.toISOString().replace(/:/g, '-').replace(/Z$/, '');
}

export class RotatingFile {
  private fh?: FileHandle;
  private size = 0;
  private lastBackup = '';

  constructor(readonly path: string, private readonly opts: RotatingFileOptions) {}

  get maxSize(): number {
    return this.opts.maxSize;
  }

  /** Room left in the current file (the whole maxSize when no file is open yet and none exists). */
  get remaining(): number {
    return this.opts.maxSize - this.size;
  }

  get isOpen(): boolean {
    return this.fh !== undefined;
  }

  async openExisting(): Promise<void> {
    if (this.fh) return;
    await mkdir(dirname(this.path), { recursive: true, mode: 0o755 });
    const size = await stat(this.path).then((st) => st.size, () => 0);
    this.fh = await open(this.path, 'a', 0o600);
    this.size = size;
  }

  /** Appends buf (one or more whole lines); rotates first when it would not fit. */
  async write(buf: Buffer): Promise<void> {
    if (buf.length > this.opts.maxSize) throw new Error(`write length ${buf.length} exceeds maximum file size ${this.opts.maxSize}`);
    await this.openExisting();
    if (this.size + buf.length > this.opts.maxSize) await this.rotate();
    let off = 0;
    while (off < buf.length) {
      const { bytesWritten } = await this.fh!.write(buf, off, buf.length - off);
      off += bytesWritten;
      this.size += bytesWritten;
    }
  }

  async rotate(): Promise<void> {
    await this.close();
    let name = this.backupName(new Date());
    // Two rotations within one millisecond would collide: step the stamp on.
    for (let t = Date.now(); name <= this.lastBackup; t++) name = this.backupName(new Date(t + 1));
    this.lastBackup = name;
    try {
      await rename(this.path, name);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    this.fh = await open(this.path, 'w', 0o600);
    this.size = 0;
    await this.removeOldBackups();
  }

  private backupName(d: Date): string {
    const ext = extname(this.path);
    const prefix = basename(this.path, ext);
    return join(dirname(this.path), `${prefix}-${backupTimestamp(d)}${ext}`);
  }

  /** Backups of this file, newest first. */
  async backups(): Promise<string[]> {
    const dir = dirname(this.path);
    const ext = extname(this.path);
    const prefix = `${basename(this.path, ext)}-`;
    const stamp = /^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3}$/;
    const names = (await readdir(dir)).filter((n) => n.startsWith(prefix) && n.endsWith(ext) && stamp.test(n.slice(prefix.length, n.length - ext.length)));
    return names.sort().reverse().map((n) => join(dir, n));
  }

  private async removeOldBackups(): Promise<void> {
    if (this.opts.maxBackups <= 0) return;
    for (const old of (await this.backups()).slice(this.opts.maxBackups)) {
      await unlink(old).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    this.size = 0;
    if (fh) await fh.close().catch(() => undefined);
  }
}
