import { MapBase } from './base.ts';
import { BPF_ANY, BPF_EXIST, BPF_NOEXIST, E2BIG, EEXIST, EINVAL, ENOENT, UPDATED_EVICTED } from './errors.ts';
import { H_COUNT, H_DIRTY, H_FREE_HEAD, H_USED } from './header.ts';
import { copyBytes, hashBytes } from './keyhash.ts';
import type { MapSpec, MapStorage, MapType, OpenOptions } from './types.ts';

/**
 * eBPF-style hash map: bucket heads + per-slot chain links + a free list, all int32 handles in the
 * buffer (handle h = slot h, 0 = nil). The bucket chains are the source of truth; count, the free
 * list and subclass structures are derived and rebuilt by repair() when a crash left H_DIRTY set.
 *
 * Subclasses (LRU, LPM) hook in through onLink/onUnlink/onHit/makeRoom/onClear/repairExtra.
 */
export class HashMap extends MapBase {
  protected readonly buckets: Int32Array;
  /** Chain link (>= 0, live slot) or free-list link encoded as -1 - nextFree (< 0, free slot). */
  protected readonly links: Int32Array;
  protected readonly hashes: Uint32Array;
  protected readonly bucketMask: number;
  /** Whether the last reserve/update had to make room (LRU eviction). */
  protected madeRoom = false;

  constructor(storage: MapStorage, spec: MapSpec, opts: OpenOptions = {}) {
    super(storage, spec, opts);
    const L = this.layout;
    const slots = this.maxEntries + 1;
    this.buckets = new Int32Array(this.buffer, L.bucketsOff, L.nBuckets);
    this.links = new Int32Array(this.buffer, L.linksOff, slots);
    this.hashes = new Uint32Array(this.buffer, L.hashesOff, slots);
    this.bucketMask = L.nBuckets - 1;
    if (new.target === HashMap) this.attach(opts);
  }

  protected kind(): MapType {
    return 'hash';
  }

  // ---- subclass hooks (no-ops for a plain hash) ----
  /** Entry h was just linked into its bucket. */
  protected onLink(_h: number): void {}
  /** Entry h was just unlinked from its bucket, its slot not yet freed. */
  protected onUnlink(_h: number): void {}
  /** Existing entry h was found by update/reserve. */
  protected onHit(_h: number): void {}
  /** The map is full and a new key arrives: free a slot and return true, or refuse. */
  protected makeRoom(): boolean {
    return false;
  }
  protected onClear(): void {}
  /** Rebuild subclass structures; live[h] = 1 for every slot on a bucket chain. */
  protected repairExtra(_live: Uint8Array): void {}
  protected validateExtra(_live: Uint8Array, _problems: string[]): void {}

  // ---- lookups ----
  protected hashKey(key: Uint8Array, off: number): number {
    return hashBytes(key, off, this.keySize, this.seed);
  }

  protected keyEquals(h: number, key: Uint8Array, off: number): boolean {
    const b = this.bytes;
    const p = this.slotBase + h * this.stride;
    const n = this.keySize;
    for (let i = 0; i < n; i++) if (b[p + i] !== key[off + i]) return false;
    return true;
  }

  /** Walk one chain; `h > 0` also stops on a free link seen by a concurrent reader. */
  protected findInBucket(b: number, hv: number, key: Uint8Array, off: number): number {
    let h = this.buckets[b];
    while (h > 0) {
      if (this.hashes[h] === hv && this.keyEquals(h, key, off)) return h;
      h = this.links[h];
    }
    return 0;
  }

  /** Handle of the entry whose key equals key exactly, or 0. */
  lookupHandle(key: Uint8Array, keyOff = 0): number {
    if (key.length - keyOff < this.keySize) return 0;
    const hv = this.hashKey(key, keyOff);
    return this.findInBucket(hv & this.bucketMask, hv, key, keyOff);
  }

  lookup(key: Uint8Array, keyOff = 0): number {
    const h = this.lookupHandle(key, keyOff);
    return h === 0 ? -1 : this.slotBase + h * this.stride + this.valueRel;
  }

  // ---- updates ----
  reserve(key: Uint8Array, keyOff: number, flags = BPF_ANY): number {
    if (flags !== BPF_ANY && flags !== BPF_NOEXIST && flags !== BPF_EXIST) return -EINVAL;
    if (key.length - keyOff < this.keySize) return -EINVAL;
    this.hdr[H_DIRTY] = 1;
    const r = this.upsert(key, keyOff, flags, null, 0);
    this.hdr[H_DIRTY] = 0;
    return r;
  }

  /** Returns 0, UPDATED_EVICTED (1) when an LRU map evicted to make room, or a negative errno. */
  update(key: Uint8Array, keyOff: number, value: Uint8Array, valueOff = 0, flags = BPF_ANY): number {
    if (flags !== BPF_ANY && flags !== BPF_NOEXIST && flags !== BPF_EXIST) return -EINVAL;
    if (key.length - keyOff < this.keySize || value.length - valueOff < this.valueSize) return -EINVAL;
    this.hdr[H_DIRTY] = 1;
    const r = this.upsert(key, keyOff, flags, value, valueOff);
    this.hdr[H_DIRTY] = 0;
    return r < 0 ? r : this.madeRoom ? UPDATED_EVICTED : 0;
  }

  /**
   * Find or insert key; returns the value offset or -errno. A new entry gets its hash, key and
   * value (copied from `value`, or zeros) before it is linked, so a crash never exposes a half-written entry.
   */
  protected upsert(key: Uint8Array, keyOff: number, flags: number, value: Uint8Array | null, valueOff: number): number {
    this.madeRoom = false;
    const hv = this.hashKey(key, keyOff);
    const b = hv & this.bucketMask;
    let h = this.findInBucket(b, hv, key, keyOff);
    if (h !== 0) {
      if (flags === BPF_NOEXIST) return -EEXIST;
      this.onHit(h);
      const v = this.slotBase + h * this.stride + this.valueRel;
      if (value !== null) copyBytes(this.bytes, v, value, valueOff, this.valueSize);
      return v;
    }
    if (flags === BPF_EXIST) return -ENOENT;
    if (this.hdr[H_COUNT] >= this.maxEntries) {
      if (!this.makeRoom()) return -E2BIG;
      this.madeRoom = true;
    }
    h = this.allocSlot();
    if (h === 0) return -E2BIG;
    const k = this.slotBase + h * this.stride;
    const v = k + this.valueRel;
    copyBytes(this.bytes, k, key, keyOff, this.keySize);
    if (value !== null) copyBytes(this.bytes, v, value, valueOff, this.valueSize);
    else this.bytes.fill(0, v, v + this.valueSize);
    this.hashes[h] = hv;
    this.links[h] = this.buckets[b]; // read after makeRoom: eviction may have changed this chain
    this.buckets[b] = h; // the linking write
    this.hdr[H_COUNT]++;
    this.onLink(h);
    return v;
  }

  protected allocSlot(): number {
    const f = this.hdr[H_FREE_HEAD];
    if (f > 0) {
      this.hdr[H_FREE_HEAD] = -1 - this.links[f];
      return f;
    }
    const u = this.hdr[H_USED];
    if (u >= this.maxEntries) return 0;
    this.links[u + 1] = -1; // mark free before the slot becomes visible to iteration
    this.hdr[H_USED] = u + 1;
    return u + 1;
  }

  delete(key: Uint8Array, keyOff = 0): number {
    if (key.length - keyOff < this.keySize) return -EINVAL;
    const h = this.lookupHandle(key, keyOff);
    if (h === 0) return -ENOENT;
    this.hdr[H_DIRTY] = 1;
    this.removeHandle(h);
    this.hdr[H_DIRTY] = 0;
    return 0;
  }

  /** Unlink slot h from its chain (the unlinking write first), then push it on the free list. */
  protected removeHandle(h: number): void {
    const b = this.hashes[h] & this.bucketMask;
    let p = 0;
    let c = this.buckets[b];
    while (c > 0 && c !== h) {
      p = c;
      c = this.links[c];
    }
    if (c !== h) return;
    if (p === 0) this.buckets[b] = this.links[h];
    else this.links[p] = this.links[h];
    this.onUnlink(h);
    this.hdr[H_COUNT]--;
    this.links[h] = -1 - this.hdr[H_FREE_HEAD];
    this.hdr[H_FREE_HEAD] = h;
  }

  clear(): void {
    this.hdr[H_DIRTY] = 1;
    this.buckets.fill(0);
    this.hdr[H_USED] = 0;
    this.hdr[H_FREE_HEAD] = 0;
    this.hdr[H_COUNT] = 0;
    this.onClear();
    this.hdr[H_DIRTY] = 0;
  }

  // ---- iteration primitives ----
  protected slotLimit(): number {
    return this.hdr[H_USED];
  }

  protected isLive(h: number): boolean {
    return this.links[h] >= 0;
  }

  // ---- crash recovery ----
  /** Walk every chain, dropping links that cannot be right; returns live[h] flags and the live count. */
  private scanChains(fix: boolean, problems: string[]): Uint8Array {
    const used = this.hdr[H_USED];
    const live = new Uint8Array(this.maxEntries + 1);
    for (let b = 0; b < this.buckets.length; b++) {
      let p = 0;
      let h = this.buckets[b];
      while (h !== 0) {
        let bad = '';
        if (!(h > 0 && h <= used)) bad = `handle ${h} outside 1..${used}`;
        else if (live[h]) bad = `slot ${h} linked twice`;
        else if ((this.hashes[h] & this.bucketMask) !== b || this.hashes[h] !== this.hashKey(this.bytes, this.keyOffset(h))) bad = `slot ${h} in the wrong bucket`;
        if (bad !== '') {
          problems.push(`bucket ${b}: ${bad}`);
          if (fix) {
            if (p === 0) this.buckets[b] = 0;
            else this.links[p] = 0;
          }
          break;
        }
        live[h] = 1;
        p = h;
        h = this.links[h];
      }
    }
    return live;
  }

  repair(): void {
    const hdr = this.hdr;
    const used = hdr[H_USED];
    if (!(used >= 0 && used <= this.maxEntries)) hdr[H_USED] = this.maxEntries;
    const live = this.scanChains(true, []);
    let free = 0;
    let count = 0;
    for (let h = hdr[H_USED]; h >= 1; h--) {
      if (live[h]) count++;
      else {
        this.links[h] = -1 - free;
        free = h;
      }
    }
    hdr[H_FREE_HEAD] = free;
    hdr[H_COUNT] = count;
    this.repairExtra(live);
    hdr[H_DIRTY] = 0;
  }

  validate(): string[] {
    const problems: string[] = [];
    const hdr = this.hdr;
    const used = hdr[H_USED];
    if (!(used >= 0 && used <= this.maxEntries)) return [`used ${used} outside 0..${this.maxEntries}`];
    if (hdr[H_DIRTY] !== 0) problems.push('dirty flag set');
    const live = this.scanChains(false, problems);
    let count = 0;
    for (let h = 1; h <= used; h++) {
      if (live[h]) count++;
      if (live[h] && this.links[h] < 0) problems.push(`slot ${h} is chained but marked free`);
    }
    if (count !== hdr[H_COUNT]) problems.push(`count ${hdr[H_COUNT]} but ${count} entries are chained`);
    const onFree = new Uint8Array(this.maxEntries + 1);
    let nFree = 0;
    for (let f = hdr[H_FREE_HEAD]; f !== 0; f = -1 - this.links[f]) {
      if (!(f > 0 && f <= used) || onFree[f] || live[f] || this.links[f] >= 0) {
        problems.push(`free list broken at slot ${f}`);
        break;
      }
      onFree[f] = 1;
      nFree++;
    }
    if (nFree + count !== used) problems.push(`${used} slots used but ${count} live + ${nFree} free`);
    this.validateExtra(live, problems);
    return problems;
  }
}
