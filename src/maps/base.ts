import { randomBytes } from 'node:crypto';
import { H_COUNT, H_DIRTY, H_MAGIC, H_SEED, HEADER_WORDS, MAGIC, initHeader, validateHeader } from './header.ts';
import { mapLayout, type MapLayout } from './layout.ts';
import type { BpfMap, EntryPredicate, EntryVisitor, MapInfo, MapSpec, MapStorage, MapType, OpenOptions } from './types.ts';

/**
 * What every map type shares: the buffer views, header handling on open, and iteration-based
 * helpers (forEach, dump, sweep) built on the per-type slot primitives.
 */
export abstract class MapBase implements BpfMap {
  readonly spec: MapSpec;
  readonly name: string;
  readonly type: MapType;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly storage: MapStorage;
  readonly buffer: ArrayBuffer;
  readonly bytes: Uint8Array;
  readonly view: DataView;
  readonly readOnly: boolean;
  /** Entries deleted by the last sweep() call. */
  lastSweepDeleted = 0;
  protected readonly layout: MapLayout;
  protected readonly hdr: Int32Array;
  /** Byte offset of slot 0 (nil), so slot h is at slotBase + h * stride. */
  protected readonly slotBase: number;
  protected readonly stride: number;
  protected readonly valueRel: number;
  protected seed = 0;

  constructor(storage: MapStorage, spec: MapSpec, opts: OpenOptions = {}) {
    if (spec.type !== this.kind()) throw new Error(`map "${spec.name}": type mismatch: ${this.constructor.name} cannot open a ${spec.type} map`);
    this.layout = mapLayout(spec);
    const buf = storage.buffer;
    if (buf.byteLength < this.layout.total) {
      throw new Error(`map "${spec.name}": size mismatch: buffer has ${buf.byteLength} bytes, spec needs ${this.layout.total}`);
    }
    this.spec = { ...spec };
    this.name = spec.name;
    this.type = spec.type;
    this.keySize = spec.keySize;
    this.valueSize = spec.valueSize;
    this.maxEntries = spec.maxEntries;
    this.storage = storage;
    this.buffer = buf;
    this.bytes = new Uint8Array(buf, 0, this.layout.total);
    this.view = new DataView(buf, 0, this.layout.total);
    this.hdr = new Int32Array(buf, 0, HEADER_WORDS);
    this.readOnly = opts.readOnly === true;
    this.stride = this.layout.stride;
    this.slotBase = this.layout.entriesOff - this.stride;
    this.valueRel = this.layout.valueRel;
  }

  /** The map type this class implements (a prototype method, so usable from the base constructor). */
  protected abstract kind(): MapType;

  /** Called by the most-derived constructor once all views exist: initialise a zero buffer or validate and, after a crash, repair. */
  protected attach(opts: OpenOptions): void {
    const hdr = this.hdr;
    if (hdr[H_MAGIC] === 0) {
      if (this.readOnly) throw new Error(`map "${this.name}": magic mismatch: map was never initialised (read-only open)`);
      const seed = opts.seed ?? randomBytes(4).readInt32LE(0);
      initHeader(hdr, this.spec, this.layout, seed);
      this.initExtra();
      hdr[H_MAGIC] = MAGIC; // last: a crash before this point re-initialises
    } else {
      validateHeader(hdr, this.spec, this.layout);
      this.seed = hdr[H_SEED];
      if (hdr[H_DIRTY] !== 0 && !this.readOnly) this.repair();
    }
    this.seed = hdr[H_SEED];
  }

  /** Type-specific initialisation of a new (zero-filled) buffer. */
  protected initExtra(): void {}

  get count(): number {
    return this.hdr[H_COUNT];
  }

  pressure(): number {
    return this.hdr[H_COUNT] / this.maxEntries;
  }

  info(): MapInfo {
    return { name: this.name, type: this.type, keySize: this.keySize, valueSize: this.valueSize, maxEntries: this.maxEntries, count: this.count, pressure: this.pressure() };
  }

  flush(): void {
    this.storage.flush();
  }

  abstract lookup(key: Uint8Array, keyOff?: number): number;
  abstract update(key: Uint8Array, keyOff: number, value: Uint8Array, valueOff?: number, flags?: number): number;
  abstract reserve(key: Uint8Array, keyOff: number, flags?: number): number;
  abstract delete(key: Uint8Array, keyOff?: number): number;
  abstract clear(): void;
  /** Rebuild every derived structure from the authoritative one; run on open when H_DIRTY is set. */
  abstract repair(): void;
  /** Invariant check for tests and `ciliary map check`: a list of problems, empty when sound. */
  abstract validate(): string[];
  /** Highest slot handle that may be live. */
  protected abstract slotLimit(): number;
  protected abstract isLive(h: number): boolean;
  /** Delete the entry in slot h (arrays: zero its value). */
  protected abstract removeHandle(h: number): void;

  keyOffset(h: number): number {
    return this.slotBase + h * this.stride;
  }

  valueOffset(h: number): number {
    return this.slotBase + h * this.stride + this.valueRel;
  }

  /** Slot-order cursor: stable when the visited entry is deleted, bounded even if another process writes. */
  firstEntry(): number {
    return this.nextEntry(0);
  }

  nextEntry(prev: number): number {
    const limit = this.slotLimit();
    for (let h = prev + 1; h <= limit; h++) if (this.isLive(h)) return h;
    return 0;
  }

  forEach(cb: EntryVisitor): void {
    for (let h = this.firstEntry(); h !== 0; h = this.nextEntry(h)) cb(this.keyOffset(h), this.valueOffset(h));
  }

  dump(): Array<{ key: Uint8Array; value: Uint8Array }> {
    const out: Array<{ key: Uint8Array; value: Uint8Array }> = [];
    this.forEach((k, v) => out.push({ key: this.bytes.slice(k, k + this.keySize), value: this.bytes.slice(v, v + this.valueSize) }));
    return out;
  }

  /**
   * Bounded GC slice: examine at most `budget` slots from cursor `start` (0 = beginning), delete
   * live entries matching pred, return the cursor to resume from, or 0 once the end was reached.
   */
  sweep(start: number, budget: number, pred: EntryPredicate): number {
    let h = start > 0 ? start : 1;
    let seen = 0;
    let deleted = 0;
    while (seen < budget && h <= this.slotLimit()) {
      if (this.isLive(h) && pred(this.keyOffset(h), this.valueOffset(h))) {
        this.hdr[H_DIRTY] = 1;
        this.removeHandle(h);
        this.hdr[H_DIRTY] = 0;
        deleted++;
      }
      h++;
      seen++;
    }
    this.lastSweepDeleted = deleted;
    return h > this.slotLimit() ? 0 : h;
  }
}
