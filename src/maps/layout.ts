import { MAP_TYPES, type MapSpec } from './types.ts';

/** Bytes reserved for the header at offset 0 (see header.ts for the fields). */
export const HEADER_SIZE = 128;
/** Keeps every offset well below 2^31 entries-wise and handles in int32. */
export const MAX_ENTRIES_LIMIT = 1 << 26;
/** Kernel limit for LPM data (LPM_DATA_SIZE_MAX). */
export const LPM_DATA_SIZE_MAX = 256;

/** Byte offsets of every region of a map's buffer; a pure function of the spec. */
export interface MapLayout {
  /** Type-specific extension (LPM prefix-length tables). */
  extOff: number;
  extSize: number;
  /** Hash bucket heads, int32 handles (0 = empty). */
  bucketsOff: number;
  nBuckets: number;
  /** Per-slot int32 chain link (>= 0) or free-list link (-1 - next free), index = handle. */
  linksOff: number;
  /** Per-slot uint32 cached key hash. */
  hashesOff: number;
  /** Per-slot int32 LRU prev and next handles (lru_hash only). */
  lruPrevOff: number;
  lruNextOff: number;
  /** Slots: key then value, each 8-aligned; handle h lives at entriesOff + (h - 1) * stride. */
  entriesOff: number;
  stride: number;
  /** Value offset within a slot. */
  valueRel: number;
  total: number;
}

const align = (n: number, a: number): number => Math.ceil(n / a) * a;

function posInt(spec: MapSpec, field: 'keySize' | 'valueSize' | 'maxEntries', max: number): void {
  const v = spec[field];
  if (!Number.isInteger(v) || v < 1 || v > max) {
    throw new Error(`map "${spec.name}": ${field} must be an integer in [1, ${max}], got ${v}`);
  }
}

/** Throws an Error naming the offending field. */
export function validateSpec(spec: MapSpec): void {
  if (!MAP_TYPES.includes(spec.type)) throw new Error(`map "${spec.name}": type must be one of ${MAP_TYPES.join(', ')}, got ${String(spec.type)}`);
  posInt(spec, 'keySize', 1 << 16);
  posInt(spec, 'valueSize', 1 << 20);
  posInt(spec, 'maxEntries', MAX_ENTRIES_LIMIT);
  if (spec.type === 'array' && spec.keySize !== 4) throw new Error(`map "${spec.name}": keySize must be 4 for an array, got ${spec.keySize}`);
  if (spec.type === 'lpm_trie' && (spec.keySize < 5 || spec.keySize > 4 + LPM_DATA_SIZE_MAX)) {
    throw new Error(`map "${spec.name}": keySize must be 4 (prefixlen) + 1..${LPM_DATA_SIZE_MAX} data bytes for an lpm_trie, got ${spec.keySize}`);
  }
}

export function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

export function mapLayout(spec: MapSpec): MapLayout {
  validateSpec(spec);
  const isArray = spec.type === 'array';
  const slots = spec.maxEntries + 1; // slot 0 is the nil handle
  const keyBytes = isArray ? 8 : align(spec.keySize, 8); // arrays store their u32 index as the key
  const stride = keyBytes + align(spec.valueSize, 8);
  const extOff = HEADER_SIZE;
  // LPM: per-length counts, then the distinct lengths sorted longest first.
  const extSize = spec.type === 'lpm_trie' ? align(2 * 4 * ((spec.keySize - 4) * 8 + 1), 8) : 0;
  let off = extOff + extSize;
  const nBuckets = isArray ? 0 : nextPow2(spec.maxEntries);
  const bucketsOff = off;
  off = align(off + 4 * nBuckets, 8);
  const linksOff = off;
  off = align(off + (isArray ? 0 : 4 * slots), 8);
  const hashesOff = off;
  off = align(off + (isArray ? 0 : 4 * slots), 8);
  const lru = spec.type === 'lru_hash';
  const lruPrevOff = off;
  off = align(off + (lru ? 4 * slots : 0), 8);
  const lruNextOff = off;
  off = align(off + (lru ? 4 * slots : 0), 8);
  const entriesOff = align(off, 64);
  const total = align(entriesOff + stride * spec.maxEntries, 64);
  return { extOff, extSize, bucketsOff, nBuckets, linksOff, hashesOff, lruPrevOff, lruNextOff, entriesOff, stride, valueRel: keyBytes, total };
}

/** Size of the single buffer (file) holding the complete state of a map with this spec. */
export function mapByteSize(spec: MapSpec): number {
  return mapLayout(spec).total;
}
