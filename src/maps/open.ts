import { ArrayMap } from './array.ts';
import { HashMap } from './hash.ts';
import { mapByteSize } from './layout.ts';
import { LpmTrieMap } from './lpm.ts';
import { LruHashMap } from './lru.ts';
import { fileStorage, type MapFileOpener, type MapFileSync } from './storage.ts';
import type { MapSpec, MapStorage, MapType, OpenOptions } from './types.ts';

/** Concrete class for each map type. */
export interface MapClasses {
  hash: HashMap;
  lru_hash: LruHashMap;
  lpm_trie: LpmTrieMap;
  array: ArrayMap;
}
export type AnyMap = MapClasses[MapType];
export type MapOf<T extends MapType> = MapClasses[T];

/** Open (or initialise, if zero-filled) the map of spec.type over storage. */
export function openMap<T extends MapType>(storage: MapStorage, spec: MapSpec<T>, opts: OpenOptions = {}): MapOf<T> {
  const s = spec as MapSpec;
  switch (s.type) {
    case 'hash':
      return new HashMap(storage, s, opts) as MapOf<T>;
    case 'lru_hash':
      return new LruHashMap(storage, s, opts) as MapOf<T>;
    case 'lpm_trie':
      return new LpmTrieMap(storage, s, opts) as MapOf<T>;
    case 'array':
      return new ArrayMap(storage, s, opts) as MapOf<T>;
    default:
      throw new Error(`map "${s.name}": type must be hash, lru_hash, lpm_trie or array, got ${String((s as MapSpec).type)}`);
  }
}

export interface PinnedOptions extends OpenOptions {
  sync?: MapFileSync;
}

/** Open a map pinned at path through an injected file opener (native mapFile in the agent). */
export function openPinned<T extends MapType>(path: string, spec: MapSpec<T>, open: MapFileOpener, opts: PinnedOptions = {}): MapOf<T> {
  return openMap(fileStorage(path, mapByteSize(spec), open, opts.sync), spec, opts);
}
