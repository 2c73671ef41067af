import type { MapStorage } from './types.ts';

/** Opens (creating zero-filled if new) the file at path with exactly size bytes, e.g. native mapFile. */
export type MapFileOpener = (path: string, size: number) => ArrayBuffer;
/** Pushes a mapped buffer to disk, e.g. native syncMap. */
export type MapFileSync = (buffer: ArrayBuffer) => void;

/** Plain memory, for tests and scratch maps. */
export function memoryStorage(size: number): MapStorage {
  return { buffer: new ArrayBuffer(size), flush() {} };
}

/** A pinned file; without a sync function flush is a no-op (the page cache already survives SIGKILL). */
export function fileStorage(path: string, size: number, open: MapFileOpener, sync?: MapFileSync): MapStorage {
  const buffer = open(path, size);
  if (buffer.byteLength !== size) throw new Error(`map file ${path}: size mismatch: opener returned ${buffer.byteLength} bytes, expected ${size}`);
  return { buffer, flush: sync ? () => sync(buffer) : () => {} };
}
