// Real devices through the slot pool: a packet held past its batch and written later, a header
// prepended in the headroom and sent over UDP, the UDP reader in a namespace, a pool running dry.
import { describe, it, expect, afterAll, beforeAll } from 'vitest';
import { native, type ReaderHandle, type TunDevice } from '../../src/native/index.ts';
import * as M from '../../src/native/meta.ts';
import { BATCH, SlotPool, UDP_TX_WORDS } from '../../src/native/pool.ts';
import { requireRoot, makeNetns, removeAllNetns, nsPath, sh } from '../helpers/sys.ts';

const root = requireRoot();
const ip4 = (s: string): number => s.split('.').reduce((a, b) => a * 256 + Number(b), 0);
const LO = ip4('127.0.0.1');
const A_IP = '10.203.0.1';
const B_IP = '10.203.0.2';

interface Rec { slot: number; off: number; len: number; l3: number; ipLen: number; proto: number; dport: number;
  saddr: number; peer: number; peerPort: number; dgram: Uint8Array; payload: Uint8Array }

/** Copies every record of every batch out of the pool (tests only) and lets a test await a count. */
class Collector {
  readonly recs: Rec[] = [];
  batches = 0;
  /** Runs inside the batch, before its slots go back (hold, prepend, write). */
  inBatch: (r: Rec) => void = () => {};
  private waiter: { n: number; resolve: () => void } | null = null;
  readonly meta = new Uint32Array(M.META_WORDS * BATCH);

  constructor(readonly pool: SlotPool) {}

  readonly onBatch = (count: number): void => {
    expect(count).toBeGreaterThan(0);
    this.batches++;
    const m = this.meta;
    const a = this.pool.arena;
    for (let i = 0; i < count; i++) {
      const w = i * M.META_WORDS;
      const dgramOff = m[w + M.M_DGRAM_OFF];
      const r: Rec = {
        slot: m[w + M.M_SLOT], off: m[w + M.M_OFF], len: m[w + M.M_LEN], l3: m[w + M.M_L3_OFF], ipLen: m[w + M.M_TOT_LEN],
        proto: m[w + M.M_PROTO], dport: m[w + M.M_DPORT], saddr: m[w + M.M_SADDR],
        peer: m[w + M.M_PEER_ADDR], peerPort: m[w + M.M_PEER_PORT],
        dgram: a.slice(dgramOff, dgramOff + m[w + M.M_DGRAM_LEN]),
        payload: a.slice(m[w + M.M_PAYLOAD_OFF], m[w + M.M_PAYLOAD_OFF] + m[w + M.M_PAYLOAD_LEN]),
      };
      this.recs.push(r);
      this.inBatch(r);
    }
    if (this.waiter && this.recs.length >= this.waiter.n) this.waiter.resolve();
  };

  until(n: number, ms = 5000): Promise<void> {
    if (this.recs.length >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.recs.length} of ${n} packets arrived`)), ms);
      this.waiter = { n, resolve: () => { clearTimeout(t); this.waiter = null; resolve(); } };
    });
  }
}

const readers: ReaderHandle[] = [];
const fds: number[] = [];

function udpReader(ns: string, addr: number, pool: SlotPool, innerOffset = 0): { c: Collector; port: number } {
  const s = native.udpOpen(nsPath(ns), addr, 0, 1 << 20);
  fds.push(s.fd);
  const c = new Collector(pool);
  readers.push(native.udpReaderStart(s.fd, pool.handle, c.meta, BATCH, innerOffset, 0, c.onBatch));
  return { c, port: s.port };
}

function udpSocket(ns: string, addr: number): { fd: number; port: number } {
  const s = native.udpOpen(nsPath(ns), addr, 0, 0);
  fds.push(s.fd);
  return s;
}

/** Sends `payloads` from socket fd to addr:port in one udpWriteBatch; returns the rows sent. */
function send(fd: number, addr: number, port: number, payloads: Uint8Array[], segSize = 0, gso = false): number {
  const buf = new Uint8Array(payloads.reduce((n, p) => n + p.length, 0));
  const desc = new Int32Array(UDP_TX_WORDS * payloads.length);
  let off = 0;
  payloads.forEach((p, i) => {
    buf.set(p, off);
    desc.set([off, p.length, addr, port, segSize, 0], i * UDP_TX_WORDS);
    off += p.length;
  });
  return native.udpWriteBatch(fd, buf, desc, payloads.length, gso);
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

afterAll(() => {
  for (const r of readers) native.readerStop(r);
  for (const fd of fds) native.closeFd(fd);
  removeAllNetns();
});

describe.skipIf(!root)('the UDP reader and writer in a namespace', () => {
  it('receives a batch of datagrams with the sender address and port', async () => {
    const ns = makeNetns('udp');
    const { c, port } = udpReader(ns, LO, new SlotPool());
    const tx = udpSocket(ns, LO);
    const payloads = Array.from({ length: 40 }, (_, i) => text(`datagram ${i} `.repeat(i + 1)));
    expect(send(tx.fd, LO, port, payloads)).toBe(40);
    await c.until(40);
    expect(c.batches).toBeLessThan(40);
    c.recs.forEach((r, i) => {
      expect(Buffer.from(r.dgram).toString()).toBe(`datagram ${i} `.repeat(i + 1));
      expect([r.peer, r.peerPort]).toEqual([LO, tx.port]);
    });
  });

  it('cuts a row into datagrams of segSize, with kernel GSO when it is there and without', async () => {
    const ns = makeNetns('gso');
    const { c, port } = udpReader(ns, LO, new SlotPool());
    const tx = udpSocket(ns, LO);
    const big = new Uint8Array(3500).map((_, i) => i % 251);
    const gso = native.udpCapabilities().gso;
    const before = native.ioStats().txGso;
    expect(send(tx.fd, LO, port, [big], 1000, gso)).toBe(1);
    expect(send(tx.fd, LO, port, [big], 1000, false)).toBe(1);
    await c.until(8);
    expect(native.ioStats().txGso - before).toBe(gso ? 1 : 0);
    expect(c.recs.map((r) => r.dgram.length)).toEqual([1000, 1000, 1000, 500, 1000, 1000, 1000, 500]);
    expect(Buffer.concat(c.recs.slice(0, 4).map((r) => r.dgram))).toEqual(Buffer.from(big));
  });

  it('stops reading while the pool is empty and resumes when slots return', async () => {
    const ns = makeNetns('dry');
    const pool = new SlotPool(8);
    const { c, port } = udpReader(ns, LO, pool);
    let holding = true;
    c.inBatch = (r) => { if (holding) pool.hold(r.slot); };
    const tx = udpSocket(ns, LO);
    expect(send(tx.fd, LO, port, Array.from({ length: 20 }, (_, i) => text(`n${i}`)))).toBe(20);
    await c.until(8);
    // No event can show that nothing happens: give the loop time to misbehave, then look.
    await new Promise((r) => setTimeout(r, 100));
    expect(c.recs.length).toBe(8);
    expect(pool.stats()).toMatchObject({ free: 0, held: 8, stalls: 1, resumes: 0 });
    holding = false;
    for (const r of c.recs.slice(0, 8)) pool.release(r.slot);
    expect(() => pool.release(c.recs[0].slot)).toThrow(/not held/);
    await c.until(20);
    // until() resolves in the batch callback's microtasks, before that batch's slots go back.
    await new Promise(setImmediate);
    expect(c.recs.map((r) => Buffer.from(r.dgram).toString())).toEqual(Array.from({ length: 20 }, (_, i) => `n${i}`));
    expect(pool.stats()).toMatchObject({ free: 8, held: 0, stalls: 1 });
    expect(pool.stats().resumes).toBeGreaterThanOrEqual(1);
  });
});

describe.skipIf(!root)('TUN packets in pool slots', () => {
  let a: string;
  let b: string;
  let devA: TunDevice;
  let devB: TunDevice;
  let pool: SlotPool;
  let fromA: Collector;

  beforeAll(() => {
    a = makeNetns('a');
    b = makeNetns('b');
    devA = native.tunOpen('eth0', nsPath(a), true, true, false, true);
    devB = native.tunOpen('eth0', nsPath(b), true, true, false, true);
    fds.push(devA.fd, devB.fd);
    for (const [ns, ip, peer] of [[a, A_IP, B_IP], [b, B_IP, A_IP]]) {
      sh('ip', ['-n', ns, 'addr', 'add', `${ip}/32`, 'dev', 'eth0']);
      sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
      sh('ip', ['-n', ns, 'route', 'add', `${peer}/32`, 'dev', 'eth0']);
    }
    pool = new SlotPool();
    fromA = new Collector(pool);
    readers.push(native.readerStart(devA.fd, pool.handle, fromA.meta, BATCH, true, 1, fromA.onBatch));
  });

  /** Waits for the next UDP packet to `dport` read from A's eth0 (other traffic is skipped). */
  async function nextFromA(dport: number): Promise<Rec> {
    for (;;) {
      await fromA.until(fromA.recs.length + 1);
      const r = fromA.recs[fromA.recs.length - 1];
      if (r.proto === M.IPPROTO_UDP && r.dport === dport) return r;
    }
  }

  it('a packet held past its batch is written later and arrives intact', async () => {
    const rx = udpReader(b, ip4(B_IP), new SlotPool());
    const sock = native.udpOpen(nsPath(a), ip4(A_IP), 0, 0);
    fds.push(sock.fd);
    fromA.inBatch = (r) => { if (r.proto === M.IPPROTO_UDP && r.dport === rx.port) pool.hold(r.slot); };
    const first = nextFromA(rx.port);
    expect(send(sock.fd, ip4(B_IP), rx.port, [text('held across batches')])).toBe(1);
    const held = await first;
    const second = nextFromA(rx.port);
    expect(send(sock.fd, ip4(B_IP), rx.port, [text('a later packet')])).toBe(1);
    const later = await second;
    // The later batch did not reuse the held slot, so the held bytes are still there.
    expect(later.slot).not.toBe(held.slot);
    expect(pool.stats().held).toBe(2);
    const desc = new Int32Array([devB.fd, held.off, held.len, 0, devB.fd, later.off, later.len, 0]);
    expect(native.writeBatch(pool.arena, desc, 2)).toBe(2);
    pool.release(held.slot);
    pool.release(later.slot);
    await rx.c.until(2);
    expect(rx.c.recs.map((r) => Buffer.from(r.dgram).toString())).toEqual(['held across batches', 'a later packet']);
    expect([rx.c.recs[0].peer, rx.c.recs[0].peerPort]).toEqual([ip4(A_IP), sock.port]);
    fromA.inBatch = () => {};
  });

  it('a header written into the headroom goes out in front of the packet', async () => {
    const tunnel = makeNetns('tnl');
    const rx = udpReader(tunnel, LO, new SlotPool(), 22);
    const tx = udpSocket(tunnel, LO);
    const sock = udpSocket(a, ip4(A_IP));
    // VXLAN-like: 8 bytes (I flag, VNI 0x123456) and an inner Ethernet header (IPv4) before the IP packet.
    const header = new Uint8Array([0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0, 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00]);
    const desc = new Int32Array(UDP_TX_WORDS);
    let sent: Uint8Array | null = null;
    fromA.inBatch = (r) => {
      if (r.proto !== M.IPPROTO_UDP || r.dport !== 7002) return;
      const start = r.l3 - header.length;
      expect(start).toBeGreaterThanOrEqual(pool.slotStart(r.slot));
      pool.arena.set(header, start);
      sent = pool.arena.slice(start, r.l3 + r.ipLen);
      desc.set([start, header.length + r.ipLen, LO, rx.port, 0, 0]);
      expect(native.udpWriteBatch(tx.fd, pool.arena, desc, 1, false)).toBe(1);
    };
    expect(send(sock.fd, ip4(B_IP), 7002, [text('encapsulated without a copy')])).toBe(1);
    await rx.c.until(1);
    const got = rx.c.recs[0];
    expect(sent).not.toBeNull();
    expect(Buffer.from(got.dgram)).toEqual(Buffer.from(sent!));
    expect(Buffer.from(got.dgram.subarray(0, 22))).toEqual(Buffer.from(header));
    // The record parsed the inner packet behind the 22 header bytes.
    expect([got.saddr, got.dport, Buffer.from(got.payload).toString()]).toEqual([ip4(A_IP), 7002, 'encapsulated without a copy']);
    expect([got.peer, got.peerPort]).toEqual([LO, tx.port]);
    fromA.inBatch = () => {};
  });
});
