import { BPF_ANY, EINVAL } from './errors.ts';
import { H_N_LENS } from './header.ts';
import { HashMap } from './hash.ts';
import { readU32LE, writeU32LE } from './keyhash.ts';
import type { MapSpec, MapStorage, MapType, OpenOptions } from './types.ts';

/**
 * Longest-prefix-match map with the eBPF LPM key layout: u32 LE prefixlen, then data bytes
 * (network order, most significant bit first). Stored as a HashMap keyed by (prefixlen, masked
 * data) plus per-length counts and the distinct lengths sorted longest first, so a lookup is at most
 * one hash probe per distinct prefix length present. Keys are normalised (host bits cleared) on
 * update/delete, so 10.1.2.3/8 and 10.0.0.0/8 are the same entry.
 */
export class LpmTrieMap extends HashMap {
  readonly dataSize: number;
  readonly maxPrefixLen: number;
  /** counts[L] = entries with prefix length L. */
  protected readonly counts: Int32Array;
  /** lens[0 .. H_N_LENS) = distinct prefix lengths present, longest first. */
  protected readonly lens: Int32Array;
  /** Masked probe key, reused so lookups do not allocate. */
  private readonly probe: Uint8Array;

  constructor(storage: MapStorage, spec: MapSpec, opts: OpenOptions = {}) {
    super(storage, spec, opts);
    this.dataSize = this.keySize - 4;
    this.maxPrefixLen = this.dataSize * 8;
    const n = this.maxPrefixLen + 1;
    this.counts = new Int32Array(this.buffer, this.layout.extOff, n);
    this.lens = new Int32Array(this.buffer, this.layout.extOff + 4 * n, n);
    this.probe = new Uint8Array(this.keySize);
    if (new.target === LpmTrieMap) this.attach(opts);
  }

  protected override kind(): MapType {
    return 'lpm_trie';
  }

  /** Write (plen, data masked to plen) into the probe key. */
  private mask(key: Uint8Array, keyOff: number, plen: number): void {
    const p = this.probe;
    writeU32LE(p, 0, plen);
    const d = keyOff + 4;
    for (let i = 0; i < this.dataSize; i++) {
      const bits = plen - 8 * i;
      p[4 + i] = bits >= 8 ? key[d + i] : bits <= 0 ? 0 : key[d + i] & (0xff00 >>> bits);
    }
  }

  /** Longest prefix that contains the key's data, considering lengths up to the key's own prefixlen. */
  override lookup(key: Uint8Array, keyOff = 0): number {
    if (key.length - keyOff < this.keySize) return -1;
    const plen = readU32LE(key, keyOff);
    const n = this.hdr[H_N_LENS];
    for (let i = 0; i < n; i++) {
      const L = this.lens[i];
      if (L > plen) continue;
      this.mask(key, keyOff, L);
      const h = this.lookupHandle(this.probe, 0);
      if (h !== 0) return this.valueOffset(h);
    }
    return -1;
  }

  /** The entry for exactly this prefix (not the longest match), or -1. */
  lookupExact(key: Uint8Array, keyOff = 0): number {
    if (this.normalise(key, keyOff) < 0) return -1;
    return super.lookup(this.probe, 0);
  }

  private normalise(key: Uint8Array, keyOff: number): number {
    if (key.length - keyOff < this.keySize) return -EINVAL;
    const plen = readU32LE(key, keyOff);
    if (plen > this.maxPrefixLen) return -EINVAL;
    this.mask(key, keyOff, plen);
    return 0;
  }

  override update(key: Uint8Array, keyOff: number, value: Uint8Array, valueOff = 0, flags = BPF_ANY): number {
    const r = this.normalise(key, keyOff);
    return r < 0 ? r : super.update(this.probe, 0, value, valueOff, flags);
  }

  override reserve(key: Uint8Array, keyOff: number, flags = BPF_ANY): number {
    const r = this.normalise(key, keyOff);
    return r < 0 ? r : super.reserve(this.probe, 0, flags);
  }

  override delete(key: Uint8Array, keyOff = 0): number {
    const r = this.normalise(key, keyOff);
    return r < 0 ? r : super.delete(this.probe, 0);
  }

  /** Prefix length of entry h. */
  prefixLen(h: number): number {
    return readU32LE(this.bytes, this.keyOffset(h));
  }

  protected override onLink(h: number): void {
    const L = this.prefixLen(h);
    if (this.counts[L]++ !== 0) return;
    const n = this.hdr[H_N_LENS];
    let i = n;
    while (i > 0 && this.lens[i - 1] < L) {
      this.lens[i] = this.lens[i - 1];
      i--;
    }
    this.lens[i] = L;
    this.hdr[H_N_LENS] = n + 1;
  }

  protected override onUnlink(h: number): void {
    const L = this.prefixLen(h);
    if (--this.counts[L] !== 0) return;
    const n = this.hdr[H_N_LENS];
    let i = 0;
    while (i < n && this.lens[i] !== L) i++;
    for (; i < n - 1; i++) this.lens[i] = this.lens[i + 1];
    this.hdr[H_N_LENS] = n - 1;
  }

  protected override onClear(): void {
    this.counts.fill(0);
    this.hdr[H_N_LENS] = 0;
  }

  protected override repairExtra(live: Uint8Array): void {
    this.onClear();
    for (let h = 1; h < live.length; h++) if (live[h]) this.onLink(h);
  }

  protected override validateExtra(live: Uint8Array, problems: string[]): void {
    const want = new Int32Array(this.counts.length);
    for (let h = 1; h < live.length; h++) {
      if (!live[h]) continue;
      const L = this.prefixLen(h);
      if (L > this.maxPrefixLen) problems.push(`slot ${h}: prefixlen ${L} > ${this.maxPrefixLen}`);
      else want[L]++;
    }
    const lens: number[] = [];
    for (let L = this.maxPrefixLen; L >= 0; L--) {
      if (want[L] !== this.counts[L]) problems.push(`prefixlen ${L}: count ${this.counts[L]} but ${want[L]} entries`);
      if (want[L] > 0) lens.push(L);
    }
    const have = Array.from(this.lens.subarray(0, this.hdr[H_N_LENS]));
    if (have.join() !== lens.join()) problems.push(`prefix lengths [${have}] but entries have [${lens}]`);
  }
}
