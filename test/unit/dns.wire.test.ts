// DNS wire format: name reading (compression, limits), query parsing, response building, upstream config.
import { describe, expect, it } from 'vitest';
import {
  answerLocal, buildQuery, buildResponse, canonical, encodeName, inspectResponse, parseQuery, parseUpstream, RCODE, readName,
  TYPE, truncatedCopy, upstreamsFromResolvConf, type Query,
} from '../../src/proxy/dns/index.ts';

const bytes = (...xs: (number | string)[]): Uint8Array =>
  Uint8Array.from(xs.flatMap((x) => (typeof x === 'string' ? [...x].map((c) => c.charCodeAt(0)) : [x])));
const header = (qd = 1, an = 0, ns = 0, ar = 0, flags = 0x0100): number[] => [0x12, 0x34, flags >> 8, flags & 0xff, 0, qd, 0, an, 0, ns, 0, ar];

describe('readName', () => {
  it('reads plain and compressed names, ending after the first pointer', () => {
    // 12: "web.default" 0 ; 25: "x" -> ptr 16 ("default")
    const b = bytes(...header(), 3, 'web', 7, 'default', 0, 1, 'x', 0xc0, 16);
    expect(readName(b, 12)).toMatchObject({ name: 'web.default', end: 25 });
    const n = readName(b, 25)!;
    expect(n).toMatchObject({ name: 'x.default', end: 29 });
    expect(Array.from(n.wire)).toEqual([1, 120, 7, ...[...'default'].map((c) => c.charCodeAt(0)), 0]);
  });

  it('refuses pointer loops, forward pointers, truncation, label types 0x40/0x80', () => {
    expect(readName(bytes(...header(), 0xc0, 12), 12)).toBeUndefined(); // points at itself
    expect(readName(bytes(...header(), 1, 'a', 0xc0, 12), 12)).toBeUndefined(); // back to its own start
    expect(readName(bytes(...header(), 0xc0, 14, 1, 'a', 0), 12)).toBeUndefined(); // forward
    expect(readName(bytes(...header(), 3, 'ab'), 12)).toBeUndefined();
    expect(readName(bytes(...header(), 3, 'abc'), 12)).toBeUndefined(); // no root label
    expect(readName(bytes(...header(), 0xc0), 12)).toBeUndefined();
    expect(readName(bytes(...header(), 0x41, 'a', 0), 12)).toBeUndefined();
    expect(readName(bytes(...header(), 0x80, 0), 12)).toBeUndefined();
  });

  it('enforces 255 octets per name, compressed or not', () => {
    const l63 = [63, ...'a'.repeat(63)];
    const ok = bytes(...header(), ...l63, ...l63, ...l63, 61, ...'a'.repeat(61), 0); // 64*3 + 62 + 1 = 255
    expect(readName(ok, 12)?.wire.length).toBe(255);
    const long = bytes(...header(), ...l63, ...l63, ...l63, 62, ...'a'.repeat(62), 0);
    expect(readName(long, 12)).toBeUndefined();
    // Pointer chains that only get long by reuse are caught too.
    const base = [...l63, ...l63, 0]; // at 12, 129 bytes
    const chained = bytes(...header(), ...base, ...l63, 0xc0, 12, ...l63, 0xc0, 141);
    expect(readName(chained, 141)).toBeDefined(); // 64 + 129 = 193
    expect(readName(chained, 141 + 66)).toBeUndefined(); // 64 + 64 + 129 = 257
  });

  it('escapes odd bytes and canonicalises', () => {
    expect(readName(bytes(...header(), 3, 'a.b', 1, 0, 0), 12)?.name).toBe('a\\046b.\\000');
    expect(canonical('WeB.Default.SVC.cluster.local.')).toBe('web.default.svc.cluster.local');
    expect(() => encodeName('a'.repeat(64) + '.x')).toThrow();
  });
});

describe('parseQuery', () => {
  it('parses a query with EDNS', () => {
    const q = parseQuery(buildQuery('Web.default.svc.cluster.local', TYPE.AAAA, { id: 7, edns: 4096 }));
    expect(q).toMatchObject({ ok: true, id: 7, rd: true, qname: 'Web.default.svc.cluster.local', qtype: TYPE.AAAA, qclass: 1, edns: { udpSize: 4096, version: 0 } });
  });

  it('drops what cannot be answered, FORMERRs the rest, NOTIMPs other opcodes', () => {
    expect(parseQuery(new Uint8Array(11))).toEqual({ ok: false, action: 'drop' });
    expect(parseQuery(bytes(...header(1, 0, 0, 0, 0x8100), 0, 0, 1, 0, 1))).toEqual({ ok: false, action: 'drop' }); // a response
    expect(parseQuery(bytes(...header(0)))).toMatchObject({ action: 'formerr', id: 0x1234, rd: true });
    expect(parseQuery(bytes(...header(2), 0, 0, 1, 0, 1, 0, 0, 1, 0, 1))).toMatchObject({ action: 'formerr' });
    expect(parseQuery(bytes(...header(), 0, 0, 1, 0))).toMatchObject({ action: 'formerr' }); // short question
    expect(parseQuery(bytes(...header(1, 0, 0, 1), 0, 0, 1, 0, 1, 0, 0, 41))).toMatchObject({ action: 'formerr' }); // cut OPT
    expect(parseQuery(bytes(...header(1, 0, 0, 2), 0, 0, 1, 0, 1, 0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0))).toMatchObject({ action: 'formerr' }); // two OPTs
    expect(parseQuery(bytes(...header(1, 0, 0, 0, 0x2900), 0, 0, 6, 0, 1))).toMatchObject({ action: 'notimp', opcode: 5 });
  });
});

describe('responses', () => {
  const zone = { domain: 'cluster.local', ttl: 30, negativeTtl: 5, serial: 1, resolve: (n: string) => ({ 'a.b.svc.cluster.local': ['10.0.0.1', '10.0.0.2', 'fd00::1'], 'e.b.svc.cluster.local': [] } as Record<string, string[]>)[n] };
  const q = (name: string, t: number, edns?: number): Query => parseQuery(buildQuery(name, t, { id: 99, edns })) as Query;
  const build = (name: string, t: number, edns?: number): Uint8Array => buildResponse(answerLocal(q(name, t, edns), canonical(name), zone));

  it('answers A with several records, AA and RA set, question echoed', () => {
    const r = build('A.b.svc.cluster.local', TYPE.A);
    expect(r[2] & 0x85).toBe(0x85); // QR, AA, RD
    expect(r[3]).toBe(0x80); // RA, NOERROR
    expect(inspectResponse(r)).toMatchObject({ id: 99, rcode: 0, qname: 'A.b.svc.cluster.local', answers: ['10.0.0.1', '10.0.0.2'] });
  });

  it('gives NXDOMAIN and NODATA with the zone SOA in authority', () => {
    const nx = build('x.b.svc.cluster.local', TYPE.A);
    expect(inspectResponse(nx)).toMatchObject({ rcode: RCODE.NXDOMAIN, answers: [] });
    expect([nx[6], nx[7], nx[8], nx[9]]).toEqual([0, 0, 0, 1]);
    const nodata = build('a.b.svc.cluster.local', TYPE.AAAA, 1232);
    expect(inspectResponse(nodata)).toMatchObject({ rcode: 0, answers: [] });
    expect([nodata[8], nodata[9], nodata[10], nodata[11]]).toEqual([0, 1, 0, 1]); // SOA + OPT
    expect(inspectResponse(build('e.b.svc.cluster.local', TYPE.A))?.rcode).toBe(0);
    const apex = build('cluster.local', TYPE.SOA);
    expect([apex[6], apex[7], apex[8], apex[9]]).toEqual([0, 1, 0, 0]);
    expect(answerLocal(q('a.b.svc.cluster.local', TYPE.A), 'a.b.svc.cluster.local', zone)).toMatchObject({ rcode: 0 });
    const chaos = parseQuery(buildQuery('a.cluster.local', TYPE.TXT, { qclass: 3 })) as Query;
    expect(answerLocal(chaos, 'a.cluster.local', zone).rcode).toBe(RCODE.REFUSED);
  });

  it('truncates to header and question with TC', () => {
    const r = build('a.b.svc.cluster.local', TYPE.A);
    const t = truncatedCopy(r, (q('a.b.svc.cluster.local', TYPE.A)).questionEnd);
    expect(t[2] & 0x02).toBe(2);
    expect(inspectResponse(t)).toMatchObject({ tc: true, answers: [], qname: 'a.b.svc.cluster.local' });
  });

  it('reads AAAA and CNAME answers of upstream replies', () => {
    const head = [0, 1, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0];
    const b = bytes(...head, 1, 'x', 0, 0, 28, 0, 1,
      0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 9, 0, 4, 1, 'y', 0xc0, 12,
      0xc0, 12, 0, 28, 0, 1, 0, 0, 0, 9, 0, 16, 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1);
    expect(inspectResponse(b)?.answers).toEqual(['y.x.', '2001:db8::1']);
  });
});

describe('upstreams', () => {
  it('parses addresses and reads resolv.conf without loopback or ourselves', () => {
    expect(parseUpstream('10.0.0.2')).toEqual({ host: '10.0.0.2', port: 53, family: 4 });
    expect(parseUpstream('10.0.0.2:5353')).toEqual({ host: '10.0.0.2', port: 5353, family: 4 });
    expect(parseUpstream('[fd00::1]:54')).toEqual({ host: 'fd00::1', port: 54, family: 6 });
    expect(parseUpstream('fd00::1')).toEqual({ host: 'fd00::1', port: 53, family: 6 });
    expect(parseUpstream('dns.google')).toBeUndefined();
    expect(parseUpstream('1.2.3.4:70000')).toBeUndefined();
    const conf = '# x\nsearch a.b\nnameserver 127.0.0.53\nnameserver 10.0.0.10\nnameserver 192.168.1.1\nnameserver ::1\nnameserver fe80::1%eth0\noptions ndots:5\n';
    expect(upstreamsFromResolvConf(conf, ['10.0.0.10']).map((u) => u.host)).toEqual(['192.168.1.1', 'fe80::1']);
  });
});
