// EDT scheduling on its own: departure times from the rate, the bounded queue and the horizon, GSO
// super-packets paced by their wire bytes, the timer writing held packets in order and returning
// their slots, and the limit changed or removed live.
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { native } from '../../src/native/index.ts';
import { F_GSO, M_GSO_SIZE, M_PAYLOAD_LEN, M_SLOT, META_WORDS } from '../../src/native/meta.ts';
import type { SlotPool } from '../../src/native/pool.ts';
import { MapRegistry, type HashMap } from '../../src/maps/index.ts';
import { throttleSpec, THROTTLE_MAP } from '../../src/maps/cilium/throttle.ts';
import { dumpEntries } from '../../src/maps/cilium/index.ts';
import { PacketContext } from '../../src/dataplane/context.ts';
import { Edt, EDT_DROP, EDT_QUEUE_PACKETS, EDT_QUEUED, EDT_SEND } from '../../src/dataplane/lib/edt.ts';

const EP = 7;
/** 8 Mbit/s: 1000 bytes per millisecond, so a 1000-byte packet takes 1 ms. */
const RATE = 8e6;

/** The slot pool's contract as Edt uses it, recording holds and releases. */
function fakePool(slots = 1024) {
  const held: number[] = [];
  const released: number[] = [];
  const pool = {
    slots, stride: 65664, arena: new Uint8Array(4096),
    hold: (s: number) => held.push(s), release: (s: number) => released.push(s),
  };
  return { pool: pool as unknown as SlotPool, held, released };
}

describe('EDT scheduling (bandwidth manager)', () => {
  let dir: string;
  let map: HashMap;
  let devNull: number;
  let writeErrors: number[];
  const ctx = new PacketContext();
  const meta = new Uint32Array(META_WORDS);

  /** A packet of `bytes` IP bytes from EP in slot `slot`, to be written to /dev/null. */
  function packet(slot: number, bytes: number): PacketContext {
    ctx.meta = meta;
    ctx.m = 0;
    meta.fill(0);
    meta[M_SLOT] = slot;
    ctx.srcEp = EP;
    ctx.flags = 0;
    ctx.l3 = 10;
    ctx.end = 10 + bytes;
    ctx.off = 0;
    ctx.len = 10 + bytes;
    ctx.outFd = devNull;
    return ctx;
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ciliary-edt-'));
    map = new MapRegistry(dir, native.mapFile).open(throttleSpec()) as HashMap;
    devNull = openSync('/dev/null', 'w');
    writeErrors = [];
  });
  afterEach(() => {
    closeSync(devNull);
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends a packet due now, queues the next at its departure time, drops beyond the horizon', () => {
    const { pool, held } = fakePool();
    const edt = new Edt(map, pool, (n) => writeErrors.push(n));
    edt.setRate(EP, RATE, 5);
    expect(edt.limited(EP)).toBe(true);
    expect(edt.limited(EP + 1)).toBe(false);
    const now = performance.now() + 1000;
    expect(edt.schedule(packet(1, 1000), now)).toBe(EDT_SEND);
    // Each further 1000-byte packet leaves 1 ms after the one before: 4 fit in a 5 ms horizon.
    for (let i = 2; i <= 5; i++) expect(edt.schedule(packet(i, 1000), now), `packet ${i}`).toBe(EDT_QUEUED);
    expect(edt.schedule(packet(6, 1000), now)).toBe(EDT_DROP);
    expect(held).toEqual([2, 3, 4, 5]);
    const [entry] = dumpEntries(map);
    expect(entry).toMatchObject({ key: String(EP), value: '8M', decoded: { value: { bitsPerSec: RATE, horizonMs: 5, tLastMs: now + 4, queued: 4, queueMax: EDT_QUEUE_PACKETS } } });
    expect(edt.stats()).toMatchObject({ endpoints: 1, queuedPackets: 4, queuedBytes: 4 * pool.stride });
    edt.removeEndpoint(EP);
  });

  it('bounds the queue in packets, whatever the horizon', () => {
    const { pool } = fakePool();
    const edt = new Edt(map, pool, () => {});
    edt.setRate(EP, RATE, 60_000);
    const now = performance.now() + 1000;
    expect(edt.schedule(packet(0, 100), now)).toBe(EDT_SEND);
    for (let i = 1; i <= EDT_QUEUE_PACKETS; i++) expect(edt.schedule(packet(i, 100), now)).toBe(EDT_QUEUED);
    expect(edt.schedule(packet(999, 100), now)).toBe(EDT_DROP);
    edt.removeEndpoint(EP);
  });

  it('holds at most half the pool over all endpoints', () => {
    const { pool } = fakePool(64);
    const edt = new Edt(map, pool, () => {});
    for (const ep of [EP, EP + 1]) edt.setRate(ep, RATE, 60_000);
    const now = performance.now() + 1000;
    let queued = 0;
    for (const ep of [EP, EP + 1]) {
      for (let i = 0; i < 40; i++) {
        const c = packet(ep * 100 + i, 100);
        c.srcEp = ep;
        if (edt.schedule(c, now) === EDT_QUEUED) queued++;
      }
    }
    expect(queued).toBe(32);
    expect(edt.stats().capacityPackets).toBe(32);
    edt.clearAll();
    expect(edt.stats()).toMatchObject({ endpoints: 0, queuedPackets: 0 });
  });

  it('paces a GSO super-packet by the bytes of all its segments', () => {
    const { pool } = fakePool();
    const edt = new Edt(map, pool, () => {});
    edt.setRate(EP, RATE, 60_000);
    const now = performance.now() + 1000;
    expect(edt.schedule(packet(1, 100), now)).toBe(EDT_SEND);
    // 10 segments of 1448 bytes behind 52 bytes of IP+TCP header: 10 × 1500 bytes = 15 ms at 8 Mbit/s.
    const gso = packet(2, 52 + 14480);
    gso.flags = F_GSO;
    meta[M_GSO_SIZE] = 1448;
    meta[M_PAYLOAD_LEN] = 14480;
    expect(edt.schedule(gso, now)).toBe(EDT_QUEUED);
    expect(dumpEntries(map)[0].decoded).toMatchObject({ value: { tLastMs: now + 15 } });
    edt.removeEndpoint(EP);
  });

  it('the timer writes held packets when due, in order, and returns their slots', async () => {
    const { pool, released } = fakePool();
    const edt = new Edt(map, pool, (n) => writeErrors.push(n));
    edt.setRate(EP, RATE, 2000);
    const now = performance.now();
    expect(edt.schedule(packet(1, 1000), now)).toBe(EDT_SEND);
    for (let i = 2; i <= 6; i++) expect(edt.schedule(packet(i, 1000), now)).toBe(EDT_QUEUED);
    const t0 = performance.now();
    while (released.length < 5 && performance.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 2));
    expect(released).toEqual([2, 3, 4, 5, 6]);
    // Five packets at 1 ms each: not all of them at once.
    expect(performance.now() - now).toBeGreaterThanOrEqual(4);
    expect(writeErrors).toEqual([]);
    expect(edt.stats().queuedPackets).toBe(0);
  });

  it('a new rate applies to the next packet; without a limit the queue drains and packets go on', async () => {
    const { pool, released } = fakePool();
    const edt = new Edt(map, pool, () => {});
    edt.setRate(EP, RATE, 2000);
    const now = performance.now() + 1000;
    edt.schedule(packet(1, 1000), now);
    edt.schedule(packet(2, 1000), now); // due at now + 1 ms
    edt.setRate(EP, RATE / 10, 2000);
    expect(edt.schedule(packet(3, 1000), now)).toBe(EDT_QUEUED);
    expect(dumpEntries(map)[0].decoded).toMatchObject({ value: { tLastMs: now + 11 } });
    edt.clearRate(EP);
    expect(dumpEntries(map)).toEqual([]);
    expect(edt.limited(EP)).toBe(true); // until its held packets are out
    edt.removeEndpoint(EP);
    expect(released).toEqual([2, 3]);
    expect(edt.limited(EP)).toBe(false);
    expect(map.name).toBe(THROTTLE_MAP);
  });
});
