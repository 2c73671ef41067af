import { expect, it } from 'vitest';
import { BPF_NOEXIST, HashMap, mapByteSize, memoryStorage, type MapSpec } from '../../src/maps/index.ts';

it('1,000,000 lookups on a 100,000-entry hash with 16-byte keys', () => {
  const N = 100_000;
  const LOOKUPS = 1_000_000;
  const spec: MapSpec = { name: 'bench', type: 'hash', keySize: 16, valueSize: 16, maxEntries: N };
  const map = new HashMap(memoryStorage(mapByteSize(spec)), spec);
  // All keys in one buffer: the lookup loop then only passes offsets, as the datapath does with packets.
  const keys = new Uint8Array(16 * N);
  const kv = new DataView(keys.buffer);
  for (let i = 0; i < N; i++) {
    kv.setUint32(16 * i, 0x0a000000 + i, false); // saddr
    kv.setUint32(16 * i + 4, 0x0a800000 + (i % 977), false); // daddr
    kv.setUint16(16 * i + 8, 1024 + (i % 50000), false); // sport
    kv.setUint16(16 * i + 10, 80, false); // dport
    keys[16 * i + 12] = 6; // proto
    const off = map.reserve(keys, 16 * i, BPF_NOEXIST);
    expect(off).toBeGreaterThan(0);
    map.view.setUint32(off, i, true);
  }
  expect(map.count).toBe(N);
  const missKey = new Uint8Array(16).fill(0xee);
  let found = 0;
  let sum = 0;
  const t0 = process.hrtime.bigint();
  let i = 0;
  for (let j = 0; j < LOOKUPS; j++) {
    i += 7919; // a stride coprime with N: visits keys in scattered order, no double-precision modulo
    if (i >= N) i -= N;
    const off = map.lookup(keys, 16 * i);
    if (off >= 0) {
      found++;
      sum += map.view.getUint32(off, true) === i ? 1 : 0;
    }
  }
  const ns = Number(process.hrtime.bigint() - t0);
  expect(found).toBe(LOOKUPS);
  expect(sum).toBe(LOOKUPS);
  expect(map.lookup(missKey)).toBe(-1);
  console.log(`hash lookup: ${((LOOKUPS / ns) * 1e9 / 1e6).toFixed(2)} M ops/s (${(ns / LOOKUPS).toFixed(0)} ns/op), ${N} entries, 16-byte keys`);
});
