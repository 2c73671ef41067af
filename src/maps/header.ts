import { endianness } from 'node:os';
import { HEADER_SIZE, type MapLayout } from './layout.ts';
import { MAP_TYPES, type MapSpec, type MapType } from './types.ts';

// Typed arrays use host byte order; the file format is little-endian.
if (endianness() !== 'LE') throw new Error('ciliary maps require a little-endian host');

/** "CMAP" little-endian; 0 means the buffer has never been initialised. */
export const MAGIC = 0x50414d43;
export const FORMAT_VERSION = 1;

// int32 word indices of the header fields.
export const H_MAGIC = 0;
export const H_VERSION = 1;
export const H_TYPE = 2;
export const H_KEY_SIZE = 3;
export const H_VALUE_SIZE = 4;
export const H_MAX_ENTRIES = 5;
export const H_COUNT = 6;
export const H_N_BUCKETS = 7;
/** High-water mark of slots ever handed out; slots above it are untouched zeros. */
export const H_USED = 8;
export const H_FREE_HEAD = 9;
export const H_LRU_HEAD = 10;
export const H_LRU_TAIL = 11;
export const H_EVICTIONS = 12;
/** Non-zero while a mutation is in progress: seen at open, it means "crashed mid-write, repair". */
export const H_DIRTY = 13;
export const H_SEED = 14;
export const H_STRIDE = 15;
export const H_N_LENS = 16;
export const H_TOTAL_SIZE = 17;
export const HEADER_WORDS = HEADER_SIZE / 4;

const TYPE_CODES: Record<MapType, number> = { hash: 1, lru_hash: 2, lpm_trie: 3, array: 4 };

export function typeCode(t: MapType): number {
  return TYPE_CODES[t];
}

export function typeName(code: number): MapType | undefined {
  return MAP_TYPES.find((t) => TYPE_CODES[t] === code);
}

/** Write a fresh header; the caller stores MAGIC last so a crash mid-init reads as "new map" again. */
export function initHeader(hdr: Int32Array, spec: MapSpec, layout: MapLayout, seed: number): void {
  hdr.fill(0);
  hdr[H_VERSION] = FORMAT_VERSION;
  hdr[H_TYPE] = typeCode(spec.type);
  hdr[H_KEY_SIZE] = spec.keySize;
  hdr[H_VALUE_SIZE] = spec.valueSize;
  hdr[H_MAX_ENTRIES] = spec.maxEntries;
  hdr[H_N_BUCKETS] = layout.nBuckets;
  hdr[H_SEED] = seed | 0;
  hdr[H_STRIDE] = layout.stride;
  hdr[H_TOTAL_SIZE] = layout.total;
}

function check(spec: MapSpec, field: string, got: number | string, want: number | string): void {
  if (got !== want) throw new Error(`map "${spec.name}": ${field} mismatch: file has ${got}, spec wants ${want}`);
}

/** Throws an Error naming the first header field that disagrees with the spec. */
export function validateHeader(hdr: Int32Array, spec: MapSpec, layout: MapLayout): void {
  if (hdr[H_MAGIC] !== MAGIC) throw new Error(`map "${spec.name}": magic mismatch: not a ciliary map (0x${(hdr[H_MAGIC] >>> 0).toString(16)})`);
  check(spec, 'version', hdr[H_VERSION], FORMAT_VERSION);
  check(spec, 'type', typeName(hdr[H_TYPE]) ?? `code ${hdr[H_TYPE]}`, spec.type);
  check(spec, 'keySize', hdr[H_KEY_SIZE], spec.keySize);
  check(spec, 'valueSize', hdr[H_VALUE_SIZE], spec.valueSize);
  check(spec, 'maxEntries', hdr[H_MAX_ENTRIES], spec.maxEntries);
  check(spec, 'nBuckets', hdr[H_N_BUCKETS], layout.nBuckets);
  check(spec, 'stride', hdr[H_STRIDE], layout.stride);
  check(spec, 'size', hdr[H_TOTAL_SIZE], layout.total);
}

/** The spec recorded in a header (first HEADER_SIZE bytes of a map file), so a CLI can open maps it was not told about. */
export function readHeaderSpec(bytes: Uint8Array, name: string): MapSpec {
  if (bytes.length < HEADER_SIZE) throw new Error(`map "${name}": size mismatch: ${bytes.length} bytes is shorter than a header`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, HEADER_SIZE);
  const word = (i: number): number => dv.getInt32(i * 4, true);
  if (word(H_MAGIC) !== MAGIC) throw new Error(`map "${name}": magic mismatch: not a ciliary map`);
  if (word(H_VERSION) !== FORMAT_VERSION) throw new Error(`map "${name}": version mismatch: file has ${word(H_VERSION)}, expected ${FORMAT_VERSION}`);
  const type = typeName(word(H_TYPE));
  if (type === undefined) throw new Error(`map "${name}": type mismatch: unknown type code ${word(H_TYPE)}`);
  return { name, type, keySize: word(H_KEY_SIZE), valueSize: word(H_VALUE_SIZE), maxEntries: word(H_MAX_ENTRIES) };
}
