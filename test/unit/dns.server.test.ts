// ClusterDnsServer over real sockets on 127.0.0.1: dig and raw clients, forwarding, TCP, a pod's search list.
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/control/log.ts';
import { buildQuery, ClusterDnsServer, inspectResponse, RCODE, TYPE, type DnsQueryEvent } from '../../src/proxy/dns/index.ts';

const run = promisify(execFile);

const SERVICES: Record<string, string[]> = {
  'web.default.svc.cluster.local': ['10.96.1.2'],
  'db.prod.svc.cluster.local': ['10.96.2.1', '10.96.2.2', '10.96.2.3'],
  'headless.default.svc.cluster.local': [],
  'big.default.svc.cluster.local': Array.from({ length: 60 }, (_, i) => `10.97.0.${i + 1}`),
};

/** dig against a server; +time/+tries keep a dead server from stalling a test. */
async function dig(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('dig', ['@127.0.0.1', '-p', String(port), '+time=4', '+tries=1', ...args]);
  return stdout;
}
const status = (out: string): string | undefined => /status: (\w+)/.exec(out)?.[1];
const answers = (out: string): string[] => out.trim().split('\n').filter(Boolean).sort();

/** One raw UDP exchange. */
function udpQuery(port: number, msg: Uint8Array, timeoutMs = 3000): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    const t = setTimeout(() => { s.close(); reject(new Error('timeout')); }, timeoutMs);
    s.on('message', (m) => { clearTimeout(t); s.close(); resolve(new Uint8Array(m)); });
    s.send(msg, port, '127.0.0.1');
  });
}

/** A closed UDP port: bind, note, release. */
async function closedPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const p = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

describe('ClusterDnsServer', () => {
  let upstream: ClusterDnsServer;
  let dns: ClusterDnsServer;
  const events: DnsQueryEvent[] = [];

  beforeAll(async () => {
    // The "internet": a second instance that owns `org`.
    upstream = new ClusterDnsServer({ clusterDomain: 'org', upstreams: [], resolve: (n) => (n === 'example.org' ? ['93.184.216.34'] : undefined) });
    await upstream.listen('127.0.0.1', 0);
    dns = new ClusterDnsServer({ resolve: (n) => SERVICES[n], upstreams: [`127.0.0.1:${upstream.port}`], onQuery: (e) => events.push(e) });
    await dns.listen('127.0.0.1', 0);
    expect(dns.port).toBeGreaterThan(1024);
  });
  afterAll(async () => { await dns.close(); await upstream.close(); });

  it('answers a service A record with AA set (dig)', async () => {
    const out = await dig(dns.port, 'web.default.svc.cluster.local', 'A', '+noall', '+answer', '+comments');
    expect(status(out)).toBe('NOERROR');
    expect(out).toMatch(/flags: qr aa rd ra;/);
    expect(out).toMatch(/web\.default\.svc\.cluster\.local\.\s+30\s+IN\s+A\s+10\.96\.1\.2/);
  });

  it('answers several A records, case-insensitively, with or without the trailing dot', async () => {
    expect(answers(await dig(dns.port, 'DB.Prod.SVC.Cluster.Local.', '+short'))).toEqual(['10.96.2.1', '10.96.2.2', '10.96.2.3']);
    const r = inspectResponse(await udpQuery(dns.port, buildQuery('dB.pRoD.svc.CLUSTER.local', TYPE.A, { id: 4242 })))!;
    expect(r).toMatchObject({ id: 4242, rcode: RCODE.NOERROR, qname: 'dB.pRoD.svc.CLUSTER.local' });
    expect(r.answers.sort()).toEqual(['10.96.2.1', '10.96.2.2', '10.96.2.3']);
  });

  it('gives NXDOMAIN with the cluster SOA for an unknown cluster name', async () => {
    const out = await dig(dns.port, 'nope.default.svc.cluster.local', '+noall', '+authority', '+comments');
    expect(status(out)).toBe('NXDOMAIN');
    expect(out).toMatch(/cluster\.local\.\s+5\s+IN\s+SOA\s+ns\.dns\.cluster\.local\. hostmaster\.cluster\.local\. \d+ 7200 1800 86400 5/);
  });

  it('gives NODATA (NOERROR, no answer, SOA) for AAAA of a service and A of a headless one', async () => {
    for (const [name, type] of [['web.default.svc.cluster.local', 'AAAA'], ['headless.default.svc.cluster.local', 'A'], ['web.default.svc.cluster.local', 'SRV']]) {
      const out = await dig(dns.port, name, type, '+noall', '+answer', '+authority', '+comments');
      expect(status(out)).toBe('NOERROR');
      expect(out).toMatch(/ANSWER: 0, AUTHORITY: 1/);
      expect(out).toMatch(/IN\s+SOA\s+ns\.dns\.cluster\.local\./);
    }
  });

  it('forwards other names to the upstream and relays its answer with the client id', async () => {
    const out = await dig(dns.port, 'example.org', '+noall', '+answer', '+comments');
    expect(status(out)).toBe('NOERROR');
    expect(out).toMatch(/example\.org\.\s+30\s+IN\s+A\s+93\.184\.216\.34/);
    const r = inspectResponse(await udpQuery(dns.port, buildQuery('example.org', TYPE.A, { id: 31337 })))!;
    expect(r).toMatchObject({ id: 31337, rcode: 0, answers: ['93.184.216.34'] });
    expect(status(await dig(dns.port, 'missing.org'))).toBe('NXDOMAIN'); // the upstream's NXDOMAIN, relayed
    expect(events.find((e) => e.name === 'example.org')).toMatchObject({ type: 'A', rcode: 'NOERROR', answers: ['93.184.216.34'], client: '127.0.0.1', forwarded: true });
  });

  it('answers SERVFAIL quickly when the upstream port is closed, and within the timeout when it is silent', async () => {
    const silent = createSocket('udp4'); // swallows queries
    await new Promise<void>((r) => silent.bind(0, '127.0.0.1', () => r()));
    const dead = new ClusterDnsServer({ resolve: () => undefined, upstreams: [`127.0.0.1:${await closedPort()}`] });
    const mute = new ClusterDnsServer({ resolve: () => undefined, upstreams: [`127.0.0.1:${silent.address().port}`] });
    const none = new ClusterDnsServer({ resolve: () => undefined, upstreams: [] });
    try {
      await Promise.all([dead.listen('127.0.0.1', 0), mute.listen('127.0.0.1', 0), none.listen('127.0.0.1', 0)]);
      let t = Date.now();
      expect(status(await dig(dead.port, 'example.org'))).toBe('SERVFAIL');
      expect(Date.now() - t).toBeLessThan(1500);
      t = Date.now();
      expect(status(await dig(mute.port, 'example.org'))).toBe('SERVFAIL');
      expect(Date.now() - t).toBeLessThan(4000);
      expect(status(await dig(none.port, 'example.org'))).toBe('SERVFAIL');
      expect(dead.stats).toMatchObject({ upstreamFailures: 1, responses: { SERVFAIL: 1 } });
    } finally {
      await Promise.all([dead.close(), mute.close(), none.close()]);
      silent.close();
    }
  }, 5000);

  it('serves TCP (dig +tcp) and several framed queries on one connection', async () => {
    expect(answers(await dig(dns.port, '+tcp', '+short', 'db.prod.svc.cluster.local'))).toHaveLength(3);
    expect(answers(await dig(dns.port, '+tcp', '+short', 'example.org'))).toEqual(['93.184.216.34']);
    const replies = await new Promise<Uint8Array[]>((resolve, reject) => {
      const c = connect(dns.port, '127.0.0.1');
      const got: Uint8Array[] = [];
      let buf = Buffer.alloc(0);
      c.on('error', reject);
      c.on('connect', () => {
        const frames = [buildQuery('web.default.svc.cluster.local', TYPE.A, { id: 1 }), buildQuery('nope.cluster.local', TYPE.A, { id: 2 }), buildQuery('example.org', TYPE.A, { id: 3 })]
          .map((q) => Buffer.concat([Buffer.from([q.length >> 8, q.length & 0xff]), q]));
        const all = Buffer.concat(frames);
        c.write(all.subarray(0, 7)); // split mid-frame: the server must reassemble
        setTimeout(() => c.write(all.subarray(7)), 20);
      });
      c.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          got.push(new Uint8Array(buf.subarray(2, 2 + buf.readUInt16BE(0))));
          buf = buf.subarray(2 + buf.readUInt16BE(0));
        }
        if (got.length === 3) { c.end(); resolve(got); }
      });
    });
    const byId = new Map(replies.map((r) => [inspectResponse(r)!.id, inspectResponse(r)!]));
    expect(byId.get(1)).toMatchObject({ rcode: 0, answers: ['10.96.1.2'] });
    expect(byId.get(2)).toMatchObject({ rcode: RCODE.NXDOMAIN });
    expect(byId.get(3)).toMatchObject({ rcode: 0, answers: ['93.184.216.34'] });
  });

  it('sets TC on a UDP answer over 512 bytes without EDNS; dig then gets everything over TCP', async () => {
    const r = await udpQuery(dns.port, buildQuery('big.default.svc.cluster.local', TYPE.A));
    expect(r.length).toBeLessThanOrEqual(512);
    expect(inspectResponse(r)).toMatchObject({ tc: true });
    const withEdns = await udpQuery(dns.port, buildQuery('big.default.svc.cluster.local', TYPE.A, { edns: 1232 }));
    expect(inspectResponse(withEdns)).toMatchObject({ tc: false });
    expect(inspectResponse(withEdns)!.answers).toHaveLength(60);
    expect(answers(await dig(dns.port, '+noedns', '+short', 'big.default.svc.cluster.local'))).toHaveLength(60);
  });

  it('resolves a short name through a pod search list (ndots:5)', async () => {
    const pod = ['+search', '+ndots=5', '+domain=default.svc.cluster.local'];
    expect(answers(await dig(dns.port, ...pod, '+short', 'web'))).toEqual(['10.96.1.2']);
    // A namespace-qualified name completes with the svc.cluster.local search domain.
    expect(answers(await dig(dns.port, '+search', '+ndots=5', '+domain=svc.cluster.local', '+short', 'db.prod'))).toHaveLength(3);
    // An external name walks the search list (NXDOMAIN) and then resolves as given, via the upstream.
    const before = events.length;
    expect(answers(await dig(dns.port, ...pod, '+short', 'example.org'))).toEqual(['93.184.216.34']);
    expect(events.slice(before).map((e) => [e.name, e.rcode])).toEqual([['example.org.default.svc.cluster.local', 'NXDOMAIN'], ['example.org', 'NOERROR']]);
  });

  it('answers SERVFAIL when resolve throws, and logs it through the agent logger', async () => {
    const lines: string[] = [];
    const sink = new PassThrough();
    sink.on('data', (d: Buffer) => lines.push(d.toString()));
    const broken = new ClusterDnsServer({ resolve: () => { throw new Error('store down'); }, upstreams: [], logger: createLogger({ format: 'json', destination: sink }), onQuery: () => { throw new Error('observer bug'); } });
    await broken.listen('127.0.0.1', 0);
    try {
      expect(status(await dig(broken.port, 'web.default.svc.cluster.local'))).toBe('SERVFAIL');
      expect(status(await dig(broken.port, 'web.default.svc.cluster.local'))).toBe('SERVFAIL');
      await expect.poll(() => lines.join('')).toMatch(/store down/);
    } finally {
      await broken.close();
    }
  });

  it('counts queries and responses by rcode', () => {
    expect(dns.stats.queries).toBeGreaterThan(10);
    expect(dns.stats.responses.NOERROR).toBeGreaterThan(5);
    expect(dns.stats.responses.NXDOMAIN).toBeGreaterThan(1);
    expect(dns.stats.forwarded).toBeGreaterThan(2);
    expect(dns.stats.truncated).toBeGreaterThan(0);
  });
});
