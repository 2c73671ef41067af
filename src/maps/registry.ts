import { closeSync, existsSync, mkdirSync, openSync, readSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { readHeaderSpec } from './header.ts';
import { HEADER_SIZE } from './layout.ts';
import { openPinned, type AnyMap, type MapOf } from './open.ts';
import type { MapFileOpener, MapFileSync } from './storage.ts';
import type { MapInfo, MapSpec, MapType } from './types.ts';

const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export interface RegistryOptions {
  sync?: MapFileSync;
  /** For a CLI next to a running agent: open without initialising or repairing. */
  readOnly?: boolean;
  /** Maps in plain memory, no files (an agent core in tests): the opener is not used. */
  inMemory?: boolean;
}

const memoryOpener: MapFileOpener = (_path, size) => new ArrayBuffer(size);

/** Named maps pinned under <stateDir>/maps/<name>, opened once each. */
export class MapRegistry {
  readonly dir: string;
  private readonly maps = new Map<string, AnyMap>();

  constructor(
    stateDir: string,
    private readonly opener: MapFileOpener,
    private readonly opts: RegistryOptions = {},
  ) {
    this.dir = join(stateDir, 'maps');
  }

  pathOf(name: string): string {
    if (!NAME_RE.test(name)) throw new Error(`map name "${name}" is invalid: use letters, digits, '_', '.', '-'`);
    return join(this.dir, name);
  }

  /** Create or open the map; opening a name again returns the same instance if the spec agrees. */
  open<T extends MapType>(spec: MapSpec<T>): MapOf<T> {
    const have = this.maps.get(spec.name);
    if (have) {
      for (const f of ['type', 'keySize', 'valueSize', 'maxEntries'] as const) {
        if (have.spec[f] !== spec[f]) throw new Error(`map "${spec.name}": ${f} mismatch: open with ${have.spec[f]}, requested ${spec[f]}`);
      }
      return have as MapOf<T>;
    }
    const path = this.pathOf(spec.name);
    if (!this.opts.readOnly && !this.opts.inMemory) mkdirSync(this.dir, { recursive: true });
    const m = openPinned(path, spec, this.opts.inMemory ? memoryOpener : this.opener, this.opts);
    this.maps.set(spec.name, m);
    return m;
  }

  /** Open every map file in the directory using the spec recorded in its header (CLI without the agent). */
  openAll(): AnyMap[] {
    for (const name of this.names()) if (!this.maps.has(name)) this.open(this.specOnDisk(name));
    return [...this.maps.values()];
  }

  /** Names of map files present on disk. */
  names(): string[] {
    if (this.opts.inMemory) return [...this.maps.keys()].sort();
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir, { withFileTypes: true })
      .filter((d) => d.isFile() && NAME_RE.test(d.name))
      .map((d) => d.name)
      .sort();
  }

  /** The spec stored in a pinned map's header. */
  specOnDisk(name: string): MapSpec {
    const fd = openSync(this.pathOf(name), 'r');
    try {
      const buf = new Uint8Array(HEADER_SIZE);
      const n = readSync(fd, buf, 0, HEADER_SIZE, 0);
      return readHeaderSpec(buf.subarray(0, n), name);
    } finally {
      closeSync(fd);
    }
  }

  get(name: string): AnyMap | undefined {
    return this.maps.get(name);
  }

  require<T extends MapType>(name: string, type?: T): MapOf<T> {
    const m = this.maps.get(name);
    if (!m) throw new Error(`map "${name}" is not open`);
    if (type !== undefined && m.type !== type) throw new Error(`map "${name}": type mismatch: is ${m.type}, wanted ${type}`);
    return m as MapOf<T>;
  }

  /** Rows for `ciliary map list`, sorted by name. */
  list(): MapInfo[] {
    return [...this.maps.values()].map((m) => m.info()).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Unpins a map: forgets it and removes its file (an endpoint's program array when it goes). */
  remove(name: string): void {
    this.maps.delete(name);
    rmSync(this.pathOf(name), { force: true });
  }

  flushAll(): void {
    for (const m of this.maps.values()) m.flush();
  }
}
