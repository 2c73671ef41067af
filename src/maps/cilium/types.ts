// What every catalog module describes about one Cilium map (or a family sharing one layout).
import type { MapSpec, MapType } from '../types.ts';

/** One entry as `cilium map get` prints it, and as the `bpf … list` two-column tables do. */
export interface MapEntryText {
  key: string;
  value: string;
}

/**
 * A map's spec, codec and `map get` text. Codecs work on exact key/value slices (CLI, API, tests:
 * never the per-packet path, which reads fields in place through the layout constants).
 */
export interface MapDef<K, V> {
  /** Pinned name, or its pattern for per-endpoint maps (`cilium_policy_<id>`). */
  readonly name: string;
  matches(name: string): boolean;
  readonly type: MapType;
  readonly keySize: number;
  /** Bytes per value; 0 where it is configured (the Maglev table size). */
  readonly valueSize: number;
  /** max_entries: fixed, or the option that sets it. */
  readonly maxEntries: number | string;
  decodeKey(key: Uint8Array): K;
  decodeValue(value: Uint8Array): V;
  encodeKey(key: K, out: Uint8Array): void;
  encodeValue(value: V, out: Uint8Array): void;
  format(key: K, value: V): MapEntryText;
}

/** A MapDef's spec for a map whose sizes are configured (name and max_entries from the caller). */
export function specOf(def: MapDef<unknown, unknown>, maxEntries: number, name = def.name, valueSize = def.valueSize): MapSpec {
  return { name, type: def.type, keySize: def.keySize, valueSize, maxEntries };
}

/** Little-endian-by-default DataView over a slice (the map header requires a little-endian host). */
export const viewOf = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);
