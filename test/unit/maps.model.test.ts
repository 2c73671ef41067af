import { describe, expect, it } from 'vitest';
import {
  BPF_ANY,
  BPF_EXIST,
  BPF_NOEXIST,
  E2BIG,
  EEXIST,
  EINVAL,
  ENOENT,
  UPDATED_EVICTED,
  mapByteSize,
  memoryStorage,
  openMap,
  type MapSpec,
  type MapStorage,
  type MapType,
  type MapOf,
} from '../../src/maps/index.ts';
import { H_DIRTY } from '../../src/maps/header.ts';

const OPS = 50_000;

/** Small seeded PRNG so failures reproduce. */
function rng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

const FLAGS = [BPF_ANY, BPF_NOEXIST, BPF_EXIST];

/** Reopen from a byte copy (a restart); with `crash`, mark dirty so open runs the repair path. */
function reopen<T extends MapType>(storage: MapStorage, spec: MapSpec<T>, crash: boolean): { storage: MapStorage; map: MapOf<T> } {
  const copy = { buffer: storage.buffer.slice(0), flush() {} };
  if (crash) new Int32Array(copy.buffer, 0, 32)[H_DIRTY] = 1;
  return { storage: copy, map: openMap(copy, spec) };
}

function setup<T extends MapType>(type: T, keySize: number, valueSize: number, maxEntries: number) {
  const spec: MapSpec<T> = { name: `model-${type}`, type, keySize, valueSize, maxEntries };
  const storage = memoryStorage(mapByteSize(spec));
  return { spec, storage, map: openMap(storage, spec) };
}

describe('randomised comparison against a JS Map model', () => {
  it(`hash: ${OPS} operations`, () => {
    const r = rng(1);
    const MAX = 250;
    const init = setup('hash', 12, 8, MAX);
    const spec = init.spec;
    let { storage, map } = init;
    const model = new Map<number, number>();
    const key = new Uint8Array(12);
    const kv = new DataView(key.buffer);
    const value = new Uint8Array(8);
    const vv = new DataView(value.buffer);
    const setKey = (k: number): void => {
      kv.setUint32(0, k, true);
      kv.setUint32(4, Math.imul(k, 0x9e3779b1), true);
      kv.setUint32(8, 7, true);
    };
    let e2big = 0;
    for (let i = 0; i < OPS; i++) {
      const k = r(600);
      setKey(k);
      const op = r(100);
      if (op < 35) {
        const flags = FLAGS[r(3)];
        const v = r(1 << 30);
        vv.setUint32(0, v, true);
        const has = model.has(k);
        let want = 0;
        if (flags === BPF_NOEXIST && has) want = -EEXIST;
        else if (flags === BPF_EXIST && !has) want = -ENOENT;
        else if (!has && model.size >= MAX) want = -E2BIG;
        const got = op < 25 ? map.update(key, 0, value, 0, flags) : map.reserve(key, 0, flags);
        if (want < 0) expect(got).toBe(want);
        else {
          expect(got).toBeGreaterThanOrEqual(0);
          if (op >= 25) {
            if (!has) expect(map.view.getUint32(got, true)).toBe(0);
            map.view.setUint32(got, v, true);
          }
          model.set(k, v);
        }
        if (want === -E2BIG) e2big++;
      } else if (op < 60) {
        const got = map.delete(key);
        expect(got).toBe(model.has(k) ? 0 : -ENOENT);
        model.delete(k);
      } else if (op < 97) {
        const off = map.lookup(key);
        if (model.has(k)) expect(map.view.getUint32(off, true)).toBe(model.get(k));
        else expect(off).toBe(-1);
      } else if (op < 98) {
        let cur = 0;
        do {
          cur = map.sweep(cur, 50, (_ko, vo) => map.view.getUint32(vo, true) % 5 === 0);
        } while (cur !== 0);
        for (const [mk, mv] of model) if (mv % 5 === 0) model.delete(mk);
      } else if (op < 99) {
        ({ storage, map } = reopen(storage, spec, r(2) === 0));
      } else if (r(20) === 0) {
        map.clear();
        model.clear();
      }
      expect(map.count).toBe(model.size);
      if (i % 5000 === 0) expect(map.validate()).toEqual([]);
    }
    expect(map.validate()).toEqual([]);
    const dumped = new Map(map.dump().map((e) => [new DataView(e.key.buffer).getUint32(0, true), new DataView(e.value.buffer).getUint32(0, true)]));
    expect(dumped).toEqual(model);
    expect(e2big).toBeGreaterThan(0);
  });

  it(`lru_hash: ${OPS} operations, including recency order`, () => {
    const r = rng(2);
    const MAX = 200;
    const init = setup('lru_hash', 4, 4, MAX);
    const spec = init.spec;
    let { storage, map } = init;
    // Insertion order of a JS Map = recency order, oldest first.
    const model = new Map<number, number>();
    const touch = (k: number, v: number): void => {
      model.delete(k);
      model.set(k, v);
    };
    const key = new Uint8Array(4);
    const kv = new DataView(key.buffer);
    const value = new Uint8Array(4);
    const vv = new DataView(value.buffer);
    let evictions = 0;
    const order = (): number[] => {
      const o: number[] = [];
      for (let h = map.lruFirst(); h !== 0; h = map.lruNext(h)) o.push(map.view.getUint32(map.keyOffset(h), true));
      return o;
    };
    for (let i = 0; i < OPS; i++) {
      const k = r(500);
      kv.setUint32(0, k, true);
      const op = r(100);
      if (op < 40) {
        const flags = FLAGS[r(3)];
        const v = r(1 << 30);
        vv.setUint32(0, v, true);
        const has = model.has(k);
        if (flags === BPF_NOEXIST && has) expect(map.update(key, 0, value, 0, flags)).toBe(-EEXIST);
        else if (flags === BPF_EXIST && !has) expect(map.update(key, 0, value, 0, flags)).toBe(-ENOENT);
        else {
          const evict = !has && model.size >= MAX;
          if (evict) {
            model.delete(model.keys().next().value as number);
            evictions++;
          }
          touch(k, v);
          expect(map.update(key, 0, value, 0, flags)).toBe(evict ? UPDATED_EVICTED : 0);
        }
      } else if (op < 55) {
        expect(map.delete(key)).toBe(model.has(k) ? 0 : -ENOENT);
        model.delete(k);
      } else if (op < 85) {
        const off = map.lookup(key);
        if (model.has(k)) {
          expect(map.view.getUint32(off, true)).toBe(model.get(k));
          touch(k, model.get(k)!);
        } else expect(off).toBe(-1);
      } else if (op < 97) {
        const off = map.lookupNoTouch(key);
        expect(off === -1 ? undefined : map.view.getUint32(off, true)).toBe(model.get(k));
      } else if (op < 98) {
        const cur = map.sweep(r(MAX), 100, (_ko, vo) => map.view.getUint32(vo, true) % 3 === 0);
        expect(cur === 0 || cur > 100).toBe(true);
        // The sweep's window is slot-based; re-derive which model entries it removed.
        for (const mk of [...model.keys()]) {
          kv.setUint32(0, mk, true);
          if (map.lookupNoTouch(key) === -1) model.delete(mk);
        }
      } else if (op < 99) {
        ({ storage, map } = reopen(storage, spec, r(2) === 0));
      } else if (r(20) === 0) {
        map.clear();
        model.clear();
      }
      expect(map.count).toBe(model.size);
      if (i % 2500 === 0) {
        expect(map.validate()).toEqual([]);
        expect(order()).toEqual([...model.keys()].reverse());
      }
    }
    expect(map.validate()).toEqual([]);
    expect(order()).toEqual([...model.keys()].reverse());
    expect(evictions).toBeGreaterThan(100);
  });

  it(`lpm_trie: ${OPS} operations`, () => {
    const r = rng(3);
    const MAX = 500;
    const init = setup('lpm_trie', 8, 4, MAX);
    const spec = init.spec;
    let { storage, map } = init;
    const model = new Map<string, number>(); // "plen/maskedAddr" -> value
    const lens = [0, 4, 8, 12, 16, 20, 24, 28, 30, 31, 32];
    const maskOf = (L: number): number => (L === 0 ? 0 : (0xffffffff << (32 - L)) >>> 0);
    const key = new Uint8Array(8);
    const kv = new DataView(key.buffer);
    const value = new Uint8Array(4);
    const setKey = (L: number, addr: number): void => {
      kv.setUint32(0, L, true);
      kv.setUint32(4, addr, false); // data is network order
    };
    // Addresses from a small space so prefixes overlap a lot.
    const addr = (): number => ((10 << 24) | (r(4) << 20) | (r(4) << 12) | r(8)) >>> 0;
    const expectLpm = (a: number, plen: number): number | undefined => {
      for (let L = plen; L >= 0; L--) {
        const v = model.get(`${L}/${(a & maskOf(L)) >>> 0}`);
        if (v !== undefined) return v;
      }
      return undefined;
    };
    for (let i = 0; i < OPS; i++) {
      const op = r(100);
      const a = addr();
      if (op < 30) {
        const L = lens[r(lens.length)];
        setKey(L, a);
        const mk = `${L}/${(a & maskOf(L)) >>> 0}`;
        const flags = FLAGS[r(3)];
        const v = r(1 << 30);
        new DataView(value.buffer).setUint32(0, v, true);
        const has = model.has(mk);
        let want = 0;
        if (flags === BPF_NOEXIST && has) want = -EEXIST;
        else if (flags === BPF_EXIST && !has) want = -ENOENT;
        else if (!has && model.size >= MAX) want = -E2BIG;
        expect(map.update(key, 0, value, 0, flags)).toBe(want);
        if (want === 0) model.set(mk, v);
      } else if (op < 50) {
        const L = lens[r(lens.length)];
        setKey(L, a);
        const mk = `${L}/${(a & maskOf(L)) >>> 0}`;
        expect(map.delete(key)).toBe(model.has(mk) ? 0 : -ENOENT);
        model.delete(mk);
      } else if (op < 98) {
        const plen = r(5) === 0 ? r(33) : 32;
        setKey(plen, a);
        const off = map.lookup(key);
        expect(off === -1 ? undefined : map.view.getUint32(off, true)).toBe(expectLpm(a, plen));
      } else if (op < 99) {
        ({ storage, map } = reopen(storage, spec, r(2) === 0));
      } else {
        setKey(33 + r(100), a);
        expect(map.update(key, 0, value, 0, BPF_ANY)).toBe(-EINVAL);
      }
      expect(map.count).toBe(model.size);
      if (i % 5000 === 0) expect(map.validate()).toEqual([]);
    }
    expect(map.validate()).toEqual([]);
    const dumped = new Map(
      map.dump().map((e) => {
        const dv = new DataView(e.key.buffer);
        return [`${dv.getUint32(0, true)}/${dv.getUint32(4, false)}`, new DataView(e.value.buffer).getUint32(0, true)];
      }),
    );
    expect(dumped).toEqual(model);
  });

  it(`array: ${OPS} operations`, () => {
    const r = rng(4);
    const MAX = 100;
    const init = setup('array', 4, 8, MAX);
    const spec = init.spec;
    let { storage, map } = init;
    const model = new Map<number, number>();
    for (let i = 0; i < MAX; i++) model.set(i, 0);
    const key = new Uint8Array(4);
    const kv = new DataView(key.buffer);
    const value = new Uint8Array(8);
    for (let i = 0; i < OPS; i++) {
      const k = r(130);
      kv.setUint32(0, k, true);
      const op = r(100);
      if (op < 40) {
        const flags = FLAGS[r(3)];
        const v = r(1 << 30);
        new DataView(value.buffer).setUint32(4, v, true);
        const want = k >= MAX ? -E2BIG : flags === BPF_NOEXIST ? -EEXIST : 0;
        expect(map.update(key, 0, value, 0, flags)).toBe(want);
        if (want === 0) model.set(k, v);
      } else if (op < 50) {
        const off = map.reserve(key, 0, BPF_ANY);
        if (k >= MAX) expect(off).toBe(-E2BIG);
        else {
          map.view.setUint32(off + 4, map.view.getUint32(off + 4, true) + 1, true);
          model.set(k, model.get(k)! + 1);
        }
      } else if (op < 97) {
        const off = r(2) ? map.lookup(key) : map.lookupIndex(k);
        expect(off === -1 ? undefined : map.view.getUint32(off + 4, true)).toBe(model.get(k));
      } else if (op < 98) {
        let cur = 0;
        do cur = map.sweep(cur, 30, (_ko, vo) => map.view.getUint32(vo + 4, true) % 4 === 0);
        while (cur !== 0);
        for (const [mk, mv] of model) if (mv % 4 === 0) model.set(mk, 0);
      } else if (op < 99) {
        ({ storage, map } = reopen(storage, spec, r(2) === 0));
      } else {
        expect(map.delete(key)).toBe(-EINVAL);
      }
      expect(map.count).toBe(MAX);
    }
    expect(map.validate()).toEqual([]);
    expect(new Map(map.dump().map((e) => [new DataView(e.key.buffer).getUint32(0, true), new DataView(e.value.buffer).getUint32(4, true)]))).toEqual(model);
  });
});
