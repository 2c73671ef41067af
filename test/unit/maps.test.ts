import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ArrayMap,
  BPF_ANY,
  BPF_EXIST,
  BPF_NOEXIST,
  E2BIG,
  EEXIST,
  EINVAL,
  ENOENT,
  HashMap,
  LpmTrieMap,
  LruHashMap,
  MapRegistry,
  UPDATED_EVICTED,
  mapByteSize,
  memoryStorage,
  openMap,
  openPinned,
  type MapSpec,
  type MapStorage,
  type MapType,
} from '../../src/maps/index.ts';
import { H_DIRTY, H_FREE_HEAD, H_USED } from '../../src/maps/header.ts';

const u32 = (n: number): Uint8Array => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
};
const key8 = (n: number): Uint8Array => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setUint32(0, n, true);
  new DataView(b.buffer).setUint32(4, n ^ 0x5a5a5a5a, true);
  return b;
};
const val = (n: number, size = 8): Uint8Array => {
  const b = new Uint8Array(size);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
};

function create<T extends MapType>(type: T, keySize: number, valueSize: number, maxEntries: number, name = 'm') {
  const spec: MapSpec<T> = { name, type, keySize, valueSize, maxEntries };
  const storage = memoryStorage(mapByteSize(spec));
  return { spec, storage, map: openMap(storage, spec, { seed: 1234 }) };
}

/** The file as a crash would leave it: same bytes, fresh buffer. */
function copyStorage(s: MapStorage): MapStorage {
  return { buffer: s.buffer.slice(0), flush() {} };
}

/** IPv4 LPM key: u32 LE prefixlen + 4 address bytes. */
function lpmKey(cidr: string): Uint8Array {
  const [addr, len] = cidr.split('/');
  const k = new Uint8Array(8);
  new DataView(k.buffer).setUint32(0, len === undefined ? 32 : Number(len), true);
  addr.split('.').forEach((o, i) => (k[4 + i] = Number(o)));
  return k;
}

describe('layout and header', () => {
  it('computes a deterministic size that grows with the spec', () => {
    const s: MapSpec = { name: 'a', type: 'hash', keySize: 16, valueSize: 24, maxEntries: 1000 };
    expect(mapByteSize(s)).toBe(mapByteSize({ ...s }));
    expect(mapByteSize({ ...s, maxEntries: 2000 })).toBeGreaterThan(mapByteSize(s));
    expect(mapByteSize({ ...s, type: 'lru_hash' })).toBeGreaterThan(mapByteSize(s));
    expect(mapByteSize(s) % 64).toBe(0);
  });

  it('rejects bad specs naming the field', () => {
    expect(() => mapByteSize({ name: 'a', type: 'hash', keySize: 0, valueSize: 4, maxEntries: 1 })).toThrow(/keySize/);
    expect(() => mapByteSize({ name: 'a', type: 'array', keySize: 8, valueSize: 4, maxEntries: 1 })).toThrow(/keySize/);
    expect(() => mapByteSize({ name: 'a', type: 'hash', keySize: 4, valueSize: 4, maxEntries: 0 })).toThrow(/maxEntries/);
    expect(() => mapByteSize({ name: 'a', type: 'bloom' as MapType, keySize: 4, valueSize: 4, maxEntries: 1 })).toThrow(/type/);
  });

  it('throws naming the field when the buffer was made for another spec', () => {
    const { spec, storage } = create('hash', 8, 8, 64);
    expect(() => openMap(storage, { ...spec, valueSize: 16 })).toThrow(/size|valueSize/);
    // Same byte size, different field: a 16-byte value with 8-byte keys vs 8-byte value with 16-byte keys.
    const a = create('hash', 16, 8, 64);
    expect(mapByteSize(a.spec)).toBe(mapByteSize({ ...a.spec, keySize: 8, valueSize: 16 }));
    expect(() => openMap(a.storage, { ...a.spec, keySize: 8, valueSize: 16 })).toThrow(/keySize mismatch/);
    expect(() => openMap(a.storage, { ...a.spec, keySize: 12 })).toThrow(/keySize mismatch/);
    expect(() => openMap(a.storage, { ...a.spec, maxEntries: 63 })).toThrow(/maxEntries mismatch/);
    const l = create('hash', 8, 8, 16);
    const lbytes = mapByteSize({ ...l.spec, type: 'lpm_trie' });
    expect(lbytes).toBeGreaterThan(0);
    expect(() => openMap(l.storage, { ...l.spec, type: 'array', keySize: 4 })).toThrow(/type mismatch|keySize/);
  });

  it('throws on a buffer too small or not a map', () => {
    const spec: MapSpec = { name: 'x', type: 'hash', keySize: 4, valueSize: 4, maxEntries: 8 };
    expect(() => openMap(memoryStorage(64), spec)).toThrow(/size mismatch/);
    const s = memoryStorage(mapByteSize(spec));
    new Uint8Array(s.buffer)[0] = 1;
    expect(() => openMap(s, spec)).toThrow(/magic/);
  });

  it('checks the type against the class', () => {
    const { storage, spec } = create('hash', 4, 4, 8);
    expect(() => new LruHashMap(storage, spec)).toThrow(/type mismatch/);
    expect(() => new HashMap(storage, { ...spec, type: 'lru_hash' })).toThrow(/type mismatch/);
    // A hash file in a buffer big enough for the LRU layout: the header's type field disagrees.
    const big = new Uint8Array(mapByteSize({ ...spec, type: 'lru_hash' }));
    big.set(new Uint8Array(storage.buffer));
    expect(() => openMap({ buffer: big.buffer, flush() {} }, { ...spec, type: 'lru_hash' })).toThrow(/type mismatch: file has hash/);
  });
});

describe('HashMap', () => {
  it('inserts, looks up, updates in place and deletes', () => {
    const { map } = create('hash', 8, 8, 16);
    expect(map.lookup(key8(1))).toBe(-1);
    expect(map.update(key8(1), 0, val(100), 0, BPF_ANY)).toBe(0);
    expect(map.update(key8(2), 0, val(200), 0, BPF_ANY)).toBe(0);
    expect(map.count).toBe(2);
    const off = map.lookup(key8(1));
    expect(map.view.getUint32(off, true)).toBe(100);
    map.view.setUint32(off, 101, true); // in-place write
    expect(map.view.getUint32(map.lookup(key8(1)), true)).toBe(101);
    expect(map.update(key8(1), 0, val(111), 0, BPF_ANY)).toBe(0);
    expect(map.view.getUint32(map.lookup(key8(1)), true)).toBe(111);
    expect(map.count).toBe(2);
    expect(map.delete(key8(1))).toBe(0);
    expect(map.delete(key8(1))).toBe(-ENOENT);
    expect(map.lookup(key8(1))).toBe(-1);
    expect(map.view.getUint32(map.lookup(key8(2)), true)).toBe(200);
    expect(map.count).toBe(1);
    expect(map.validate()).toEqual([]);
  });

  it('honours key offsets within a larger buffer', () => {
    const { map } = create('hash', 8, 8, 16);
    const pkt = new Uint8Array(32);
    pkt.set(key8(7), 10);
    const vb = new Uint8Array(20);
    vb.set(val(77), 5);
    expect(map.update(pkt, 10, vb, 5, BPF_ANY)).toBe(0);
    expect(map.view.getUint32(map.lookup(key8(7)), true)).toBe(77);
    expect(map.lookup(pkt, 10)).toBe(map.lookup(key8(7)));
    expect(map.delete(pkt, 10)).toBe(0);
  });

  it('implements BPF_NOEXIST / BPF_EXIST and rejects bad flags and lengths', () => {
    const { map } = create('hash', 8, 8, 16);
    expect(map.update(key8(1), 0, val(1), 0, BPF_EXIST)).toBe(-ENOENT);
    expect(map.update(key8(1), 0, val(1), 0, BPF_NOEXIST)).toBe(0);
    expect(map.update(key8(1), 0, val(2), 0, BPF_NOEXIST)).toBe(-EEXIST);
    expect(map.view.getUint32(map.lookup(key8(1)), true)).toBe(1);
    expect(map.update(key8(1), 0, val(3), 0, BPF_EXIST)).toBe(0);
    expect(map.view.getUint32(map.lookup(key8(1)), true)).toBe(3);
    expect(map.update(key8(1), 0, val(3), 0, 7)).toBe(-EINVAL);
    expect(map.update(new Uint8Array(4), 0, val(3), 0, BPF_ANY)).toBe(-EINVAL);
    expect(map.update(key8(1), 0, new Uint8Array(4), 0, BPF_ANY)).toBe(-EINVAL);
    expect(map.update(key8(1), 4, val(3), 0, BPF_ANY)).toBe(-EINVAL);
    expect(map.delete(new Uint8Array(2))).toBe(-EINVAL);
    expect(map.lookup(new Uint8Array(2))).toBe(-1);
    expect(map.count).toBe(1);
  });

  it('reserve inserts zero-filled entries and locates existing ones', () => {
    const { map } = create('hash', 8, 16, 4);
    map.update(key8(9), 0, val(0xffffffff, 16), 0, BPF_ANY);
    map.delete(key8(9)); // leave garbage in the freed slot
    const off = map.reserve(key8(1), 0, BPF_NOEXIST);
    expect(off).toBeGreaterThan(0);
    expect([...map.bytes.subarray(off, off + 16)]).toEqual(new Array(16).fill(0));
    map.view.setUint32(off + 12, 42, true);
    expect(map.reserve(key8(1), 0, BPF_ANY)).toBe(off);
    expect(map.reserve(key8(1), 0, BPF_NOEXIST)).toBe(-EEXIST);
    expect(map.reserve(key8(2), 0, BPF_EXIST)).toBe(-ENOENT);
    expect(map.view.getUint32(map.lookup(key8(1)) + 12, true)).toBe(42);
  });

  it('returns -E2BIG when full and works again after deletes', () => {
    const { map } = create('hash', 8, 8, 5);
    for (let i = 0; i < 5; i++) expect(map.update(key8(i), 0, val(i), 0, BPF_ANY)).toBe(0);
    expect(map.pressure()).toBe(1);
    expect(map.update(key8(99), 0, val(99), 0, BPF_ANY)).toBe(-E2BIG);
    expect(map.reserve(key8(99), 0, BPF_ANY)).toBe(-E2BIG);
    expect(map.update(key8(3), 0, val(33), 0, BPF_ANY)).toBe(0); // existing keys still update
    expect(map.delete(key8(1))).toBe(0);
    expect(map.delete(key8(4))).toBe(0);
    expect(map.update(key8(99), 0, val(99), 0, BPF_ANY)).toBe(0);
    expect(map.update(key8(98), 0, val(98), 0, BPF_ANY)).toBe(0);
    expect(map.update(key8(97), 0, val(97), 0, BPF_ANY)).toBe(-E2BIG);
    for (const [k, v] of [[0, 0], [2, 2], [3, 33], [99, 99], [98, 98]]) expect(map.view.getUint32(map.lookup(key8(k)), true)).toBe(v);
    expect(map.validate()).toEqual([]);
  });

  it('handles heavy collisions (more keys than a few buckets)', () => {
    const { map } = create('hash', 4, 4, 3);
    for (let i = 0; i < 3; i++) map.update(u32(i * 1024), 0, u32(i), 0, BPF_ANY);
    for (let i = 0; i < 3; i++) expect(map.view.getUint32(map.lookup(u32(i * 1024)), true)).toBe(i);
    expect(map.delete(u32(1024))).toBe(0);
    expect(map.lookup(u32(0))).toBeGreaterThan(0);
    expect(map.lookup(u32(2048))).toBeGreaterThan(0);
  });

  it('iterates with forEach, the cursor API and dump; survives deleting during forEach', () => {
    const { map } = create('hash', 8, 8, 100);
    for (let i = 0; i < 50; i++) map.update(key8(i), 0, val(i * 2), 0, BPF_ANY);
    const seen = new Set<number>();
    for (let h = map.firstEntry(); h !== 0; h = map.nextEntry(h)) {
      const k = map.view.getUint32(map.keyOffset(h), true);
      expect(map.view.getUint32(map.valueOffset(h), true)).toBe(k * 2);
      seen.add(k);
    }
    expect(seen.size).toBe(50);
    const d = map.dump();
    expect(d).toHaveLength(50);
    expect(new Set(d.map((e) => new DataView(e.key.buffer).getUint32(0, true)))).toEqual(seen);
    expect(d.every((e) => e.key.length === 8 && e.value.length === 8)).toBe(true);
    let visited = 0;
    map.forEach((k) => {
      visited++;
      const id = map.view.getUint32(k, true);
      if (id % 2 === 0) expect(map.delete(key8(id))).toBe(0);
    });
    expect(visited).toBe(50);
    expect(map.count).toBe(25);
    expect(map.validate()).toEqual([]);
  });

  it('sweeps in bounded slices', () => {
    const { map } = create('hash', 8, 8, 1000);
    for (let i = 0; i < 1000; i++) map.update(key8(i), 0, val(i), 0, BPF_ANY);
    const isOdd = (_k: number, v: number): boolean => (map.view.getUint32(v, true) & 1) === 1;
    let cursor = 0;
    let slices = 0;
    let deleted = 0;
    do {
      cursor = map.sweep(cursor, 64, isOdd);
      deleted += map.lastSweepDeleted;
      slices++;
      expect(slices).toBeLessThan(100);
    } while (cursor !== 0);
    expect(slices).toBe(Math.ceil(1000 / 64));
    expect(deleted).toBe(500);
    expect(map.count).toBe(500);
    expect(map.lookup(key8(3))).toBe(-1);
    expect(map.lookup(key8(4))).toBeGreaterThan(0);
    expect(map.validate()).toEqual([]);
  });

  it('clears', () => {
    const { map } = create('hash', 8, 8, 10);
    for (let i = 0; i < 10; i++) map.update(key8(i), 0, val(i), 0, BPF_ANY);
    map.clear();
    expect(map.count).toBe(0);
    expect(map.firstEntry()).toBe(0);
    expect(map.lookup(key8(1))).toBe(-1);
    for (let i = 0; i < 10; i++) expect(map.update(key8(i + 100), 0, val(i), 0, BPF_ANY)).toBe(0);
    expect(map.validate()).toEqual([]);
  });

  it('reopens from a copy of its bytes with the same content', () => {
    const { map, storage, spec } = create('hash', 8, 8, 100);
    for (let i = 0; i < 80; i++) map.update(key8(i), 0, val(i), 0, BPF_ANY);
    for (let i = 0; i < 80; i += 3) map.delete(key8(i));
    const again = openMap(copyStorage(storage), spec);
    expect(again.count).toBe(map.count);
    expect(again.dump()).toEqual(map.dump());
    for (let i = 0; i < 80; i++) expect(again.lookup(key8(i)) === -1).toBe(i % 3 === 0);
    expect(again.update(key8(500), 0, val(5), 0, BPF_ANY)).toBe(0);
    expect(again.validate()).toEqual([]);
  });

  it('repairs the free list and count after a crash mid-insert or mid-delete', () => {
    const { map, storage, spec } = create('hash', 8, 8, 4);
    for (let i = 0; i < 3; i++) map.update(key8(i), 0, val(i), 0, BPF_ANY);
    map.delete(key8(1));
    const hdr = new Int32Array(storage.buffer, 0, 32);
    // Crash after popping a free slot, before linking: the slot leaks.
    hdr[H_DIRTY] = 1;
    hdr[H_FREE_HEAD] = 0;
    hdr[H_USED] = 4;
    const crashed = copyStorage(storage);
    expect(openMap(crashed, spec, { readOnly: true }).validate().length).toBeGreaterThan(0);
    const again = openMap(crashed, spec);
    expect(again.validate()).toEqual([]);
    expect(again.count).toBe(2);
    expect(again.update(key8(10), 0, val(10), 0, BPF_ANY)).toBe(0);
    expect(again.update(key8(11), 0, val(11), 0, BPF_ANY)).toBe(0);
    expect(again.update(key8(12), 0, val(12), 0, BPF_ANY)).toBe(-E2BIG);
  });

  it('a crash during initialisation (no magic yet) re-initialises', () => {
    const spec: MapSpec = { name: 'i', type: 'hash', keySize: 4, valueSize: 4, maxEntries: 8 };
    const s = memoryStorage(mapByteSize(spec));
    new Int32Array(s.buffer, 0, 32)[3] = 4; // header half written, magic still 0
    const m = openMap(s, spec);
    expect(m.count).toBe(0);
    expect(m.update(u32(1), 0, u32(1), 0, BPF_ANY)).toBe(0);
  });
});

describe('LruHashMap', () => {
  it('evicts the least recently used entry and reports it', () => {
    const { map } = create('lru_hash', 8, 8, 3);
    for (let i = 1; i <= 3; i++) expect(map.update(key8(i), 0, val(i), 0, BPF_ANY)).toBe(0);
    expect(map.lookup(key8(1))).toBeGreaterThan(0); // 1 is now most recent; LRU order 1,3,2
    const evicted: number[] = [];
    map.onEvict = (k) => evicted.push(map.view.getUint32(k, true));
    expect(map.update(key8(4), 0, val(4), 0, BPF_ANY)).toBe(UPDATED_EVICTED);
    expect(evicted).toEqual([2]);
    expect(map.evictions).toBe(1);
    expect(map.lookupNoTouch(key8(2))).toBe(-1);
    expect(map.count).toBe(3);
    // Update of an existing key touches it and evicts nothing.
    expect(map.update(key8(3), 0, val(33), 0, BPF_ANY)).toBe(0); // order 3,4,1
    expect(map.reserve(key8(5), 0, BPF_ANY)).toBeGreaterThan(0); // evicts 1
    expect(evicted).toEqual([2, 1]);
    expect(map.lookupNoTouch(key8(1))).toBe(-1);
    expect(map.validate()).toEqual([]);
  });

  it('lookupNoTouch does not protect an entry', () => {
    const { map } = create('lru_hash', 8, 8, 2);
    map.update(key8(1), 0, val(1), 0, BPF_ANY);
    map.update(key8(2), 0, val(2), 0, BPF_ANY);
    expect(map.lookupNoTouch(key8(1))).toBeGreaterThan(0);
    map.update(key8(3), 0, val(3), 0, BPF_ANY);
    expect(map.lookupNoTouch(key8(1))).toBe(-1);
    expect(map.lookupNoTouch(key8(2))).toBeGreaterThan(0);
  });

  it('keeps flags semantics and never returns -E2BIG', () => {
    const { map } = create('lru_hash', 8, 8, 2);
    expect(map.update(key8(1), 0, val(1), 0, BPF_EXIST)).toBe(-ENOENT);
    expect(map.update(key8(1), 0, val(1), 0, BPF_NOEXIST)).toBe(0);
    expect(map.update(key8(1), 0, val(1), 0, BPF_NOEXIST)).toBe(-EEXIST);
    for (let i = 2; i < 100; i++) expect(map.update(key8(i), 0, val(i), 0, BPF_NOEXIST)).toBeGreaterThanOrEqual(0);
    expect(map.count).toBe(2);
    expect(map.evictions).toBe(97);
    const order: number[] = [];
    for (let h = map.lruFirst(); h !== 0; h = map.lruNext(h)) order.push(map.view.getUint32(map.keyOffset(h), true));
    expect(order).toEqual([99, 98]);
  });

  it('reopens with recency order intact and repairs a list cut mid-move', () => {
    const { map, storage, spec } = create('lru_hash', 8, 8, 4);
    for (let i = 1; i <= 4; i++) map.update(key8(i), 0, val(i), 0, BPF_ANY);
    map.lookup(key8(2)); // order 2,4,3,1
    const order = (m: LruHashMap): number[] => {
      const o: number[] = [];
      for (let h = m.lruFirst(); h !== 0; h = m.lruNext(h)) o.push(m.view.getUint32(m.keyOffset(h), true));
      return o;
    };
    expect(order(map)).toEqual([2, 4, 3, 1]);
    const again = openMap(copyStorage(storage), spec);
    expect(order(again)).toEqual([2, 4, 3, 1]);
    // Simulate a crash between unlinking entry 3 from the list and pushing it at the head.
    const h3 = again.lookupHandle(key8(3));
    (again as unknown as { unlinkLru(h: number): void }).unlinkLru(h3);
    new Int32Array(again.buffer, 0, 32)[H_DIRTY] = 1;
    const repaired = openMap(copyStorage({ buffer: again.buffer, flush() {} }), spec);
    expect(repaired.validate()).toEqual([]);
    expect(order(repaired)).toEqual([3, 2, 4, 1]);
  });

  it('clears', () => {
    const { map } = create('lru_hash', 8, 8, 4);
    for (let i = 1; i <= 4; i++) map.update(key8(i), 0, val(i), 0, BPF_ANY);
    map.clear();
    expect(map.lruFirst()).toBe(0);
    expect(map.count).toBe(0);
    map.update(key8(9), 0, val(9), 0, BPF_ANY);
    expect(map.validate()).toEqual([]);
  });
});

describe('LpmTrieMap', () => {
  const prefixes = ['0.0.0.0/0', '10.0.0.0/8', '10.1.0.0/16', '10.1.2.0/24', '10.1.2.3/32'];
  const build = () => {
    const { map, storage, spec } = create('lpm_trie', 8, 4, 64);
    prefixes.forEach((p, i) => expect(map.update(lpmKey(p), 0, u32(i), 0, BPF_ANY)).toBe(0));
    return { map, storage, spec };
  };
  const match = (m: LpmTrieMap, ip: string): number => {
    const off = m.lookup(lpmKey(ip));
    return off < 0 ? -1 : m.view.getUint32(off, true);
  };

  it('finds the longest matching prefix', () => {
    const { map } = build();
    expect(match(map, '10.1.2.3')).toBe(4);
    expect(match(map, '10.1.2.4')).toBe(3);
    expect(match(map, '10.1.3.1')).toBe(2);
    expect(match(map, '10.2.0.1')).toBe(1);
    expect(match(map, '11.0.0.1')).toBe(0);
    expect(map.count).toBe(5);
  });

  it('limits matches to the lookup key prefix length', () => {
    const { map } = build();
    expect(match(map, '10.1.2.3/24')).toBe(3);
    expect(match(map, '10.1.2.3/20')).toBe(2);
    expect(match(map, '10.1.2.3/7')).toBe(0);
  });

  it('deletes a middle prefix and falls back to the next shorter one', () => {
    const { map } = build();
    expect(map.delete(lpmKey('10.1.0.0/16'))).toBe(0);
    expect(map.delete(lpmKey('10.1.0.0/16'))).toBe(-ENOENT);
    expect(match(map, '10.1.3.1')).toBe(1);
    expect(match(map, '10.1.2.9')).toBe(3);
    expect(map.delete(lpmKey('10.1.2.0/24'))).toBe(0);
    expect(match(map, '10.1.2.9')).toBe(1);
    expect(map.delete(lpmKey('0.0.0.0/0'))).toBe(0);
    expect(match(map, '11.0.0.1')).toBe(-1);
    expect(match(map, '10.1.2.3')).toBe(4);
    expect(map.validate()).toEqual([]);
  });

  it('normalises host bits and validates prefix lengths', () => {
    const { map } = build();
    expect(map.update(lpmKey('10.9.9.9/8'), 0, u32(42), 0, BPF_NOEXIST)).toBe(-EEXIST);
    expect(map.update(lpmKey('10.9.9.9/8'), 0, u32(42), 0, BPF_EXIST)).toBe(0);
    expect(match(map, '10.200.0.1')).toBe(42);
    expect(map.view.getUint32(map.lookupExact(lpmKey('10.0.0.0/8')), true)).toBe(42);
    expect(map.lookupExact(lpmKey('10.0.0.0/9'))).toBe(-1);
    expect(map.update(lpmKey('10.0.0.0/33'), 0, u32(1), 0, BPF_ANY)).toBe(-EINVAL);
    expect(map.delete(lpmKey('10.0.0.0/33'))).toBe(-EINVAL);
    expect(map.update(lpmKey('10.128.0.0/9'), 0, u32(9), 0, BPF_ANY)).toBe(0);
    expect(match(map, '10.200.0.1')).toBe(9);
    expect(match(map, '10.100.0.1')).toBe(42);
    const keys = map.dump().map((e) => `${[...e.key.subarray(4)].join('.')}/${new DataView(e.key.buffer).getUint32(0, true)}`);
    expect(keys.sort()).toEqual(['0.0.0.0/0', '10.0.0.0/8', '10.1.0.0/16', '10.1.2.0/24', '10.1.2.3/32', '10.128.0.0/9'].sort());
  });

  it('supports IPv6-sized keys', () => {
    const { map } = create('lpm_trie', 20, 4, 16);
    const k6 = (hex: string, len: number): Uint8Array => {
      const k = new Uint8Array(20);
      new DataView(k.buffer).setUint32(0, len, true);
      for (let i = 0; i < hex.length / 2; i++) k[4 + i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
      return k;
    };
    map.update(k6('fd00', 16), 0, u32(1), 0, BPF_ANY);
    map.update(k6('fd000000000000010000', 80), 0, u32(2), 0, BPF_ANY);
    map.update(k6('fd000000000000010000000000000005', 128), 0, u32(3), 0, BPF_ANY);
    const m = (hex: string): number => {
      const o = map.lookup(k6(hex, 128));
      return o < 0 ? -1 : map.view.getUint32(o, true);
    };
    expect(m('fd000000000000010000000000000005')).toBe(3);
    expect(m('fd000000000000010000000000000006')).toBe(2);
    expect(m('fd00ffff000000010000000000000006')).toBe(1);
    expect(m('fe000000000000010000000000000006')).toBe(-1);
  });

  it('reopens and repairs its prefix-length index', () => {
    const { map, storage, spec } = build();
    const again = openMap(copyStorage(storage), spec);
    expect(match(again, '10.1.2.3')).toBe(4);
    expect(match(again, '10.1.3.3')).toBe(2);
    // Crash after linking a /12 but before indexing its length: repair must find it.
    const h = again.reserve(lpmKey('10.16.0.0/12'), 0, BPF_ANY);
    again.view.setUint32(h, 12, true);
    const lens = new Int32Array(again.buffer, 128 + 4 * 33, 33);
    const hdr = new Int32Array(again.buffer, 0, 32);
    hdr[16] = 5; // drop the /12 from the distinct-length list
    lens.set([32, 24, 16, 8, 0]);
    hdr[H_DIRTY] = 1;
    const repaired = openMap(copyStorage({ buffer: again.buffer, flush() {} }), spec);
    expect(repaired.validate()).toEqual([]);
    expect(match(repaired, '10.17.0.1')).toBe(12);
    map.clear();
    expect(match(map, '10.1.2.3')).toBe(-1);
    expect(map.validate()).toEqual([]);
  });
});

describe('ArrayMap', () => {
  it('has every index present and respects bounds', () => {
    const { map } = create('array', 4, 8, 10);
    expect(map.count).toBe(10);
    expect(map.pressure()).toBe(1);
    expect(map.lookup(u32(0))).toBeGreaterThan(0);
    expect(map.lookup(u32(9))).toBeGreaterThan(0);
    expect(map.lookup(u32(10))).toBe(-1);
    expect(map.lookupIndex(10)).toBe(-1);
    expect(map.lookupIndex(-1)).toBe(-1);
    expect(map.lookupIndex(1.5)).toBe(-1);
    expect(map.lookupIndex(3)).toBe(map.lookup(u32(3)));
    expect(map.view.getUint32(map.lookupIndex(3), true)).toBe(0);
    expect(map.update(u32(3), 0, val(33), 0, BPF_ANY)).toBe(0);
    expect(map.update(u32(3), 0, val(34), 0, BPF_EXIST)).toBe(0);
    expect(map.update(u32(3), 0, val(35), 0, BPF_NOEXIST)).toBe(-EEXIST);
    expect(map.update(u32(10), 0, val(1), 0, BPF_ANY)).toBe(-E2BIG);
    expect(map.update(u32(1), 0, val(1), 0, 9)).toBe(-EINVAL);
    expect(map.delete(u32(3))).toBe(-EINVAL);
    expect(map.view.getUint32(map.lookupIndex(3), true)).toBe(34);
    // Counters are just arrays: bump in place.
    const c = map.reserve(u32(5), 0, BPF_ANY);
    map.view.setBigUint64(c, map.view.getBigUint64(c, true) + 1n, true);
    expect(map.view.getBigUint64(map.lookupIndex(5), true)).toBe(1n);
  });

  it('iterates, dumps, sweeps (resetting values) and reopens', () => {
    const { map, storage, spec } = create('array', 4, 4, 8);
    for (let i = 0; i < 8; i++) map.update(u32(i), 0, u32(i * 10), 0, BPF_ANY);
    const d = map.dump();
    expect(d.map((e) => new DataView(e.key.buffer).getUint32(0, true))).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(d.map((e) => new DataView(e.value.buffer).getUint32(0, true))).toEqual([0, 10, 20, 30, 40, 50, 60, 70]);
    const again = openMap(copyStorage(storage), spec);
    expect(again.dump()).toEqual(d);
    let cur = map.sweep(0, 5, (_k, v) => map.view.getUint32(v, true) >= 30);
    expect(cur).toBe(6);
    cur = map.sweep(cur, 5, (_k, v) => map.view.getUint32(v, true) >= 30);
    expect(cur).toBe(0);
    expect(map.dump().map((e) => new DataView(e.value.buffer).getUint32(0, true))).toEqual([0, 10, 20, 0, 0, 0, 0, 0]);
    map.clear();
    expect(map.dump().every((e) => e.value.every((b) => b === 0))).toBe(true);
    expect(map.validate()).toEqual([]);
  });
});

describe('storage and registry', () => {
  let dir = '';
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = '';
  });

  /** Stand-in for native mapFile: file-backed, persisted by save() (the real one is a shared mmap). */
  function fakeFiles() {
    const open = new Map<string, ArrayBuffer>();
    const opener = (path: string, size: number): ArrayBuffer => {
      let buf: ArrayBuffer;
      if (existsSync(path)) {
        const data = readFileSync(path);
        if (data.length !== size) throw new Error(`${path} has ${data.length} bytes, expected ${size}`);
        buf = data.buffer.slice(data.byteOffset, data.byteOffset + data.length);
      } else {
        writeFileSync(path, new Uint8Array(size));
        buf = new ArrayBuffer(size);
      }
      open.set(path, buf);
      return buf;
    };
    const save = () => {
      for (const [p, b] of open) writeFileSync(p, new Uint8Array(b));
    };
    return { opener, save };
  }

  it('openPinned goes through the injected opener and flush through sync', () => {
    const spec: MapSpec<'hash'> = { name: 'p', type: 'hash', keySize: 4, valueSize: 4, maxEntries: 4 };
    const calls: Array<[string, number]> = [];
    let synced = 0;
    const m = openPinned('/x/p', spec, (p, s) => (calls.push([p, s]), new ArrayBuffer(s)), { sync: () => synced++ });
    expect(calls).toEqual([['/x/p', mapByteSize(spec)]]);
    expect(m).toBeInstanceOf(HashMap);
    m.flush();
    expect(synced).toBe(1);
  });

  it('creates, lists, looks up and reopens named maps', () => {
    dir = mkdtempSync(join(tmpdir(), 'ciliary-maps-'));
    const f = fakeFiles();
    const reg = new MapRegistry(dir, f.opener);
    const ct = reg.open({ name: 'ct4', type: 'lru_hash', keySize: 16, valueSize: 32, maxEntries: 100 });
    const ipc = reg.open({ name: 'ipcache', type: 'lpm_trie', keySize: 8, valueSize: 8, maxEntries: 50 });
    const metrics = reg.open({ name: 'metrics', type: 'array', keySize: 4, valueSize: 16, maxEntries: 4 });
    expect(ct).toBeInstanceOf(LruHashMap);
    expect(ipc).toBeInstanceOf(LpmTrieMap);
    expect(metrics).toBeInstanceOf(ArrayMap);
    expect(reg.open({ name: 'ct4', type: 'lru_hash', keySize: 16, valueSize: 32, maxEntries: 100 })).toBe(ct);
    expect(() => reg.open({ name: 'ct4', type: 'lru_hash', keySize: 16, valueSize: 32, maxEntries: 200 })).toThrow(/maxEntries/);
    expect(() => reg.open({ name: '../evil', type: 'hash', keySize: 4, valueSize: 4, maxEntries: 1 })).toThrow(/invalid/);
    for (let i = 0; i < 25; i++) ct.update(new Uint8Array(16).fill(i), 0, new Uint8Array(32), 0, BPF_ANY);
    ipc.update(lpmKey('10.0.0.0/8'), 0, new Uint8Array(8), 0, BPF_ANY);
    expect(reg.get('ct4')).toBe(ct);
    expect(reg.get('nope')).toBeUndefined();
    expect(reg.require('ipcache', 'lpm_trie')).toBe(ipc);
    expect(() => reg.require('ipcache', 'hash')).toThrow(/type mismatch/);
    expect(reg.list()).toEqual([
      { name: 'ct4', type: 'lru_hash', keySize: 16, valueSize: 32, maxEntries: 100, count: 25, pressure: 0.25 },
      { name: 'ipcache', type: 'lpm_trie', keySize: 8, valueSize: 8, maxEntries: 50, count: 1, pressure: 0.02 },
      { name: 'metrics', type: 'array', keySize: 4, valueSize: 16, maxEntries: 4, count: 4, pressure: 1 },
    ]);
    f.save();
    // A CLI process: knows no specs, reads them from the headers.
    const cli = new MapRegistry(dir, fakeFiles().opener, { readOnly: true });
    expect(cli.names()).toEqual(['ct4', 'ipcache', 'metrics']);
    expect(cli.specOnDisk('ipcache')).toEqual({ name: 'ipcache', type: 'lpm_trie', keySize: 8, valueSize: 8, maxEntries: 50 });
    expect(cli.openAll()).toHaveLength(3);
    expect(cli.list()).toEqual(reg.list());
    expect(cli.require('ct4', 'lru_hash').dump()).toEqual(ct.dump());
    // An agent restart with a changed spec fails loudly, naming the field.
    const agent2 = new MapRegistry(dir, fakeFiles().opener);
    expect(() => agent2.open({ name: 'ipcache', type: 'lpm_trie', keySize: 20, valueSize: 8, maxEntries: 50 })).toThrow(/bytes|keySize/);
    expect(() => agent2.open({ name: 'metrics', type: 'array', keySize: 4, valueSize: 8, maxEntries: 8 })).toThrow(/bytes|valueSize/);
  });

  it('lists nothing for a missing directory', () => {
    expect(new MapRegistry('/nonexistent/ciliary', () => new ArrayBuffer(0)).names()).toEqual([]);
  });
});
