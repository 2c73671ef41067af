import { MapBase } from './base.ts';
import { BPF_ANY, BPF_EXIST, BPF_NOEXIST, E2BIG, EEXIST, EINVAL } from './errors.ts';
import { H_COUNT, H_DIRTY } from './header.ts';
import { copyBytes, readU32LE, writeU32LE } from './keyhash.ts';
import type { MapSpec, MapStorage, MapType, OpenOptions } from './types.ts';

/**
 * eBPF array: u32 index -> value, every slot always present (count == maxEntries). Each slot
 * stores its index as the key so keyOffset/dump work as for the other types; delete is -EINVAL
 * as in the kernel, and sweep/clear reset values to zero.
 */
export class ArrayMap extends MapBase {
  constructor(storage: MapStorage, spec: MapSpec, opts: OpenOptions = {}) {
    super(storage, spec, opts);
    if (new.target === ArrayMap) this.attach(opts);
  }

  protected kind(): MapType {
    return 'array';
  }

  protected override initExtra(): void {
    this.repair();
  }

  /** Value offset of slot i, or -1 when i is not an index below maxEntries. */
  lookupIndex(i: number): number {
    return i >= 0 && i < this.maxEntries && Math.floor(i) === i ? this.slotBase + (i + 1) * this.stride + this.valueRel : -1;
  }

  lookup(key: Uint8Array, keyOff = 0): number {
    if (key.length - keyOff < 4) return -1;
    return this.lookupIndex(readU32LE(key, keyOff));
  }

  reserve(key: Uint8Array, keyOff: number, flags = BPF_ANY): number {
    if (flags !== BPF_ANY && flags !== BPF_NOEXIST && flags !== BPF_EXIST) return -EINVAL;
    if (key.length - keyOff < 4) return -EINVAL;
    const v = this.lookupIndex(readU32LE(key, keyOff));
    if (v < 0) return -E2BIG;
    return flags === BPF_NOEXIST ? -EEXIST : v;
  }

  update(key: Uint8Array, keyOff: number, value: Uint8Array, valueOff = 0, flags = BPF_ANY): number {
    if (value.length - valueOff < this.valueSize) return -EINVAL;
    const v = this.reserve(key, keyOff, flags);
    if (v < 0) return v;
    copyBytes(this.bytes, v, value, valueOff, this.valueSize);
    return 0;
  }

  delete(_key: Uint8Array, _keyOff = 0): number {
    return -EINVAL;
  }

  clear(): void {
    for (let h = 1; h <= this.maxEntries; h++) this.removeHandle(h);
  }

  protected slotLimit(): number {
    return this.maxEntries;
  }

  protected isLive(_h: number): boolean {
    return true;
  }

  protected removeHandle(h: number): void {
    const v = this.valueOffset(h);
    this.bytes.fill(0, v, v + this.valueSize);
  }

  /** Keys and count are derived from the slot position; rewrite them. */
  repair(): void {
    for (let h = 1; h <= this.maxEntries; h++) writeU32LE(this.bytes, this.keyOffset(h), h - 1);
    this.hdr[H_COUNT] = this.maxEntries;
    this.hdr[H_DIRTY] = 0;
  }

  validate(): string[] {
    const problems: string[] = [];
    if (this.hdr[H_COUNT] !== this.maxEntries) problems.push(`count ${this.hdr[H_COUNT]} != maxEntries ${this.maxEntries}`);
    for (let h = 1; h <= this.maxEntries; h++) {
      if (readU32LE(this.bytes, this.keyOffset(h)) !== h - 1) {
        problems.push(`slot ${h - 1}: key overwritten`);
        break;
      }
    }
    return problems;
  }
}
