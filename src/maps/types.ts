/** Map types, named as their eBPF counterparts. */
export type MapType = 'hash' | 'lru_hash' | 'lpm_trie' | 'array';

export const MAP_TYPES: readonly MapType[] = ['hash', 'lru_hash', 'lpm_trie', 'array'];

/** What a map is: everything needed to compute its byte size and validate a pinned file. */
export interface MapSpec<T extends MapType = MapType> {
  name: string;
  type: T;
  keySize: number;
  valueSize: number;
  maxEntries: number;
}

/** One row of `ciliary map list`. */
export interface MapInfo {
  name: string;
  type: MapType;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  count: number;
  pressure: number;
}

/** Backing bytes of one map: an mmap of a pinned file, or plain memory in tests. */
export interface MapStorage {
  buffer: ArrayBuffer;
  /** Push the bytes to stable storage (msync); a no-op for memory. */
  flush(): void;
}

export interface OpenOptions {
  /** Inspect only (CLI next to a running agent): never initialise or repair, since that would write. */
  readOnly?: boolean;
  /** Hash seed for a new map (tests); a random one otherwise. Existing maps keep theirs. */
  seed?: number;
}

/** Visitor for forEach/sweep: offsets into `map.bytes` of the entry's key and value. */
export type EntryVisitor = (keyOff: number, valueOff: number) => void;
export type EntryPredicate = (keyOff: number, valueOff: number) => boolean;

/** The surface shared by every map type. Hot-path methods do not allocate. */
export interface BpfMap {
  readonly spec: MapSpec;
  readonly name: string;
  readonly type: MapType;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  /** The whole buffer; values are read and written in place through offsets returned by lookup. */
  readonly bytes: Uint8Array;
  readonly view: DataView;
  readonly count: number;
  lookup(key: Uint8Array, keyOff?: number): number;
  update(key: Uint8Array, keyOff: number, value: Uint8Array, valueOff?: number, flags?: number): number;
  reserve(key: Uint8Array, keyOff: number, flags?: number): number;
  delete(key: Uint8Array, keyOff?: number): number;
  firstEntry(): number;
  nextEntry(prev: number): number;
  keyOffset(handle: number): number;
  valueOffset(handle: number): number;
  forEach(cb: EntryVisitor): void;
  dump(): Array<{ key: Uint8Array; value: Uint8Array }>;
  sweep(start: number, budget: number, pred: EntryPredicate): number;
  pressure(): number;
  clear(): void;
  validate(): string[];
  repair(): void;
  flush(): void;
  info(): MapInfo;
}
