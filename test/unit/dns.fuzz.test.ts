// Hostile input: malformed datagrams and TCP frames must never throw, hang or stop the server answering.
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { buildQuery, ClusterDnsServer, inspectResponse, parseQuery, readName, TYPE } from '../../src/proxy/dns/index.ts';

/** Deterministic PRNG (mulberry32) so a failure can be replayed. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const GOOD = buildQuery('web.default.svc.cluster.local', TYPE.A, { id: 0x4141, edns: 1232 });
const hdr = (qd: number, ar = 0): number[] => [0xab, 0xcd, 0x01, 0x00, 0, qd, 0, 0, 0, 0, 0, ar];

/** One malformed message per index: a mix of structured attacks and noise. */
function malformed(i: number, r: () => number): Uint8Array {
  const rand = (n: number): number => Math.floor(r() * n);
  switch (i % 8) {
    case 0: return GOOD.slice(0, rand(GOOD.length)); // truncation
    case 1: return Uint8Array.from([...hdr(1), 0xc0, 12, 0, 1, 0, 1]); // pointer to itself
    case 2: return Uint8Array.from([...hdr(1), 1, 97, 0xc0, 12, 0, 1, 0, 1]); // pointer back to its own start
    case 3: return Uint8Array.from([...hdr(1), 0xc0 | rand(64), rand(256), 0, 1, 0, 1]); // pointer anywhere
    case 4: { // over-long labels and names
      const len = 60 + rand(10), n = 1 + rand(6);
      return Uint8Array.from([...hdr(1), ...Array.from({ length: n }, () => [len, ...new Array<number>(len).fill(97)]).flat(), 0, 0, 1, 0, 1]);
    }
    case 5: { // bit flips of a good query
      const b = GOOD.slice();
      for (let k = 0; k < 1 + rand(4); k++) b[rand(b.length)] ^= 1 << rand(8);
      return b;
    }
    case 6: return Uint8Array.from([...hdr(rand(4), rand(3)), ...Array.from({ length: rand(40) }, () => rand(256))]); // plausible header, junk body
    default: return Uint8Array.from({ length: rand(600) }, () => rand(256)); // noise
  }
}

describe('DNS robustness', () => {
  it('parses 50,000 mutated messages without throwing', () => {
    const r = rng(1);
    const thrown: number[] = [];
    for (let i = 0; i < 50_000; i++) {
      const m = malformed(i, r);
      try { parseQuery(m); inspectResponse(m); readName(m, Math.floor(r() * (m.length + 2))); } catch { thrown.push(i); }
    }
    expect(thrown).toEqual([]);
  });

  it('survives 2,000 malformed datagrams and still answers a good query', async () => {
    const dns = new ClusterDnsServer({ resolve: (n) => (n === 'web.default.svc.cluster.local' ? ['10.96.1.2'] : undefined), upstreams: [] });
    await dns.listen('127.0.0.1', 0);
    const client = createSocket('udp4');
    const replies: Uint8Array[] = [];
    client.on('message', (m) => replies.push(new Uint8Array(m)));
    await new Promise<void>((res) => client.bind(0, '127.0.0.1', () => res()));
    try {
      const r = rng(2);
      for (let i = 0; i < 2000; i++) {
        client.send(malformed(i, r), dns.port, '127.0.0.1');
        if (i % 50 === 49) await new Promise((res) => setTimeout(res, 10)); // do not overrun the socket buffer
      }
      await new Promise((res) => setTimeout(res, 200));
      expect(dns.stats.queries).toBeGreaterThan(1000); // loopback may still drop a few under load
      // Every reply is a response (QR set, full header); queries that were responses got none.
      expect(replies.filter((x) => x.length < 12 || (x[2] & 0x80) === 0)).toEqual([]);
      expect(dns.stats.responses.FORMERR).toBeGreaterThan(100);
      replies.length = 0;
      client.send(GOOD, dns.port, '127.0.0.1');
      await expect.poll(() => replies.find((x) => inspectResponse(x)?.id === 0x4141), { timeout: 2000 }).toBeDefined();
      expect(inspectResponse(replies.find((x) => inspectResponse(x)?.id === 0x4141)!)?.answers).toEqual(['10.96.1.2']);
    } finally {
      client.close();
      await dns.close();
    }
  });

  it('survives junk TCP frames, an empty frame and a half frame', async () => {
    const dns = new ClusterDnsServer({ resolve: () => ['10.0.0.1'], upstreams: [] });
    await dns.listen('127.0.0.1', 0);
    try {
      const r = rng(3);
      for (const payload of [Buffer.from([0, 0]), Buffer.from([0xff, 0xff, 1, 2, 3]), Buffer.concat(Array.from({ length: 50 }, (_, i) => {
        const m = malformed(i, r);
        return Buffer.concat([Buffer.from([m.length >> 8, m.length & 0xff]), m]);
      }))]) {
        await new Promise<void>((res) => {
          const c = connect(dns.port, '127.0.0.1', () => { c.write(payload); setTimeout(() => { c.destroy(); res(); }, 50); });
          c.on('error', () => res());
        });
      }
      const ok = await new Promise<Uint8Array>((res) => {
        const s = createSocket('udp4');
        s.on('message', (m) => { s.close(); res(new Uint8Array(m)); });
        s.send(buildQuery('a.cluster.local', TYPE.A, { id: 9 }), dns.port, '127.0.0.1');
      });
      expect(inspectResponse(ok)).toMatchObject({ id: 9, answers: ['10.0.0.1'] });
    } finally {
      await dns.close();
    }
  });
});
