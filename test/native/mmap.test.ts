// Pinned map files: bytes written through the mapping survive the writer being SIGKILLed.
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { native, addonPath } from '../../src/native/index.ts';

describe('pinned map files', () => {
  it('keeps data written before a SIGKILL', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ciliary-mmap-'));
    try {
      const file = join(dir, 'cilium_test_map');
      const child = join(dir, 'child.cjs');
      writeFileSync(child, `
        const n = require(${JSON.stringify(addonPath)});
        const ab = n.mapFile(${JSON.stringify(file)}, 1 << 20);
        const v = new Uint32Array(ab);
        for (let i = 0; i < v.length; i++) v[i] = i * 2654435761 >>> 0;
        process.kill(process.pid, 'SIGKILL');
      `);
      const r = spawnSync(process.execPath, [child]);
      expect(r.signal).toBe('SIGKILL');
      expect(statSync(file).size).toBe(1 << 20);
      const v = new Uint32Array(native.mapFile(file, 1 << 20));
      let bad = 0;
      for (let i = 0; i < v.length; i++) if (v[i] !== (i * 2654435761) >>> 0) bad++;
      expect(bad).toBe(0);
      expect(native.residentBytes(v.buffer as ArrayBuffer)).toBeGreaterThan(0);
      native.syncMap(v.buffer as ArrayBuffer);
      expect(() => native.mapFile(file, 4096)).toThrow(/expected 4096/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('creates a zero-filled map for a new file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ciliary-mmap-'));
    try {
      const v = new Uint8Array(native.mapFile(join(dir, 'm'), 8192));
      expect(v.length).toBe(8192);
      expect(v.every((x) => x === 0)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // A hash map's entries sit at scattered slots: touching one page per 64 KiB must not make the
  // 64 KiB around it resident (read-ahead did: a default-size maglev map was 51 of its 64 MiB).
  it('makes only the touched pages of a sparse map resident', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ciliary-mmap-'));
    try {
      const size = 16 << 20;
      const v = new Uint8Array(native.mapFile(join(dir, 'sparse'), size));
      let sum = 0;
      for (let off = 0; off < size; off += 64 << 10) {
        v[off] = 1;
        sum += v[off + (32 << 10)];
      }
      expect(sum).toBe(0);
      // 256 written pages and 256 read ones; a page or two more of slack each.
      expect(native.residentBytes(v.buffer as ArrayBuffer)).toBeLessThanOrEqual(2 * 256 * 4096 * 1.1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
