// The parser, checksums, rewrites and segmentation through the JS API.
import { describe, it, expect } from 'vitest';
import { native } from '../../src/native/index.ts';
import * as M from '../../src/native/meta.ts';
import { TUNNEL_HEAD_LEN } from '../../src/dataplane/lib/encap.ts';

/** A 10-byte zero virtio-net header followed by an IPv4/TCP|UDP|ICMP packet with valid checksums. */
function packet(proto: number, payload: number, opts: { src?: number; dst?: number; sport?: number; dport?: number } = {}): Uint8Array {
  const l4len = proto === M.IPPROTO_TCP ? 20 : 8;
  const tot = 20 + l4len + payload;
  const b = new Uint8Array(10 + tot);
  const v = new DataView(b.buffer);
  const l3 = 10;
  b[l3] = 0x45;
  v.setUint16(l3 + 2, tot);
  v.setUint16(l3 + 4, 0x1234);
  b[l3 + 8] = 64;
  b[l3 + 9] = proto;
  v.setUint32(l3 + 12, opts.src ?? 0x0a000001);
  v.setUint32(l3 + 16, opts.dst ?? 0x0a000002);
  const l4 = l3 + 20;
  if (proto === M.IPPROTO_ICMP) {
    b[l4] = 8;
    v.setUint16(l4 + 4, opts.sport ?? 77);
  } else {
    v.setUint16(l4, opts.sport ?? 40000);
    v.setUint16(l4 + 2, opts.dport ?? 80);
    if (proto === M.IPPROTO_TCP) {
      b[l4 + 12] = 5 << 4;
      b[l4 + 13] = M.TCP_SYN;
    } else v.setUint16(l4 + 4, l4len + payload);
  }
  for (let i = 0; i < payload; i++) b[l4 + l4len + i] = i & 0xff;
  expect(native.setChecksums(b, l3, b.length)).toBe(true);
  return b;
}

describe('parse through the JS API', () => {
  it('the JS side lays out what native code reads: metadata words, virtio-net and tunnel GSO header sizes', () => {
    const c = native.constants();
    expect([c.META_WORDS, c.VNET_HDR_LEN, c.TUNNEL_HEAD_LEN]).toEqual([M.META_WORDS, M.VNET_HDR_LEN, TUNNEL_HEAD_LEN]);
  });

  it('fills the metadata record of a TCP packet', () => {
    const b = packet(M.IPPROTO_TCP, 100, { sport: 12345, dport: 8080 });
    const meta = new Uint32Array(M.META_WORDS * 2);
    const flags = native.parse(b, 0, b.length, true, meta, 1);
    const m = M.META_WORDS;
    expect(flags & M.F_IPV4 && flags & M.F_L4).toBeTruthy();
    expect(meta[m + M.M_L3_OFF]).toBe(10);
    expect(meta[m + M.M_PROTO]).toBe(6);
    expect(meta[m + M.M_SADDR]).toBe(0x0a000001);
    expect(meta[m + M.M_DADDR]).toBe(0x0a000002);
    expect(meta[m + M.M_SPORT]).toBe(12345);
    expect(meta[m + M.M_DPORT]).toBe(8080);
    expect(meta[m + M.M_TCP_FLAGS]).toBe(M.TCP_SYN);
    expect(meta[m + M.M_PAYLOAD_LEN]).toBe(100);
    expect(meta[m + M.M_TTL]).toBe(64);
  });

  it('reports offsets relative to the buffer, not the frame', () => {
    const p = packet(M.IPPROTO_UDP, 4);
    const big = new Uint8Array(1000);
    big.set(p, 300);
    const meta = new Uint32Array(M.META_WORDS);
    native.parse(big, 300, p.length, true, meta, 0);
    expect(meta[M.M_OFF]).toBe(300);
    expect(meta[M.M_L3_OFF]).toBe(310);
    expect(meta[M.M_L4_OFF]).toBe(330);
  });

  it('flags IPv6, non-IP, fragments, truncation and bad lengths', () => {
    const meta = new Uint32Array(M.META_WORDS);
    const parse = (b: Uint8Array) => native.parse(b, 0, b.length, true, meta, 0);
    const v6 = new Uint8Array(50);
    v6[10] = 0x60;
    expect(parse(v6) & M.F_IPV6).toBeTruthy();
    const junk = new Uint8Array(30);
    junk[10] = 0x20;
    expect(parse(junk) & M.F_NON_IP).toBeTruthy();
    const frag = packet(M.IPPROTO_UDP, 10);
    frag[16] = 0x20; // MF
    expect(parse(frag) & M.F_FRAGMENT).toBeTruthy();
    const tcp = packet(M.IPPROTO_TCP, 0);
    expect(parse(tcp.subarray(0, 35)) & M.F_BAD_TOT_LEN).toBeTruthy();
    expect(parse(tcp.subarray(0, 5)) & M.F_BAD_VNET).toBeTruthy();
    const badIhl = packet(M.IPPROTO_TCP, 0);
    badIhl[10] = 0x43;
    expect(parse(badIhl) & M.F_BAD_IHL).toBeTruthy();
  });

  it('survives 100,000 random and mutated packets without reading outside the frame', () => {
    let seed = 0x9e3779b9;
    const rnd = () => ((seed ^= seed << 13), (seed ^= seed >>> 17), (seed ^= seed << 5), seed >>> 0);
    const bases = [packet(M.IPPROTO_TCP, 200), packet(M.IPPROTO_UDP, 50), packet(M.IPPROTO_ICMP, 56)];
    const buf = new Uint8Array(4096);
    const meta = new Uint32Array(M.META_WORDS);
    for (let i = 0; i < 100_000; i++) {
      const off = rnd() % 64;
      let len: number;
      if (i % 3 === 0) {
        len = rnd() % 300;
        for (let j = 0; j < len; j++) buf[off + j] = rnd() & 0xff;
      } else {
        const b = bases[rnd() % 3];
        buf.set(b, off);
        len = rnd() % (b.length + 1);
        for (let k = rnd() % 4; k > 0; k--) buf[off + (rnd() % Math.max(1, len))] = rnd() & 0xff;
      }
      const vnet = (i & 1) === 0;
      const flags = native.parse(buf, off, len, vnet, meta, 0);
      const end = off + len;
      if (flags & M.F_IPV4) expect(meta[M.M_L3_OFF] + meta[M.M_IHL]).toBeLessThanOrEqual(end);
      if (flags & M.F_L4) expect(meta[M.M_PAYLOAD_OFF] + meta[M.M_PAYLOAD_LEN]).toBeLessThanOrEqual(end);
      // Checksum helpers and rewrites must cope with the same garbage.
      native.l4ChecksumOk(buf, off + (vnet ? 10 : 0), Math.max(end, off + (vnet ? 10 : 0)));
      if (i % 7 === 0) native.rewriteAddr(buf, off + 10, Math.max(end, off + 10), true, rnd(), (i & 2) === 0);
    }
  });
});

describe('checksums and rewrites', () => {
  it('verifies and detects corruption', () => {
    for (const proto of [M.IPPROTO_TCP, M.IPPROTO_UDP, M.IPPROTO_ICMP]) {
      const b = packet(proto, 33);
      expect(native.ipv4ChecksumOk(b, 10, b.length)).toBe(true);
      expect(native.l4ChecksumOk(b, 10, b.length)).toBe(true);
      b[b.length - 1] ^= 0x40;
      expect(native.l4ChecksumOk(b, 10, b.length)).toBe(false);
      b[18] ^= 1; // TTL
      expect(native.ipv4ChecksumOk(b, 10, b.length)).toBe(false);
    }
  });

  it('rewrites addresses and ports incrementally (RFC 1624), full and partial checksums', () => {
    for (const proto of [M.IPPROTO_TCP, M.IPPROTO_UDP]) {
      const b = packet(proto, 64);
      expect(native.rewriteAddr(b, 10, b.length, true, 0x0a600001, false)).toBe(true);
      expect(native.rewritePort(b, 10, b.length, true, 8080, false)).toBe(true);
      expect(native.rewriteAddr(b, 10, b.length, false, 0xac140005, false)).toBe(true);
      expect(native.ipv4ChecksumOk(b, 10, b.length)).toBe(true);
      expect(native.l4ChecksumOk(b, 10, b.length)).toBe(true);
      const meta = new Uint32Array(M.META_WORDS);
      native.parse(b, 0, b.length, true, meta, 0);
      expect([meta[M.M_SADDR], meta[M.M_DADDR], meta[M.M_DPORT]]).toEqual([0xac140005, 0x0a600001, 8080]);

      // CHECKSUM_PARTIAL: the field holds the pseudo-header sum; after the rewrite, completing it must verify.
      const p = packet(proto, 64);
      expect(native.setPartialChecksum(p, 10, p.length)).toBe(true);
      expect(native.rewriteAddr(p, 10, p.length, true, 0x0a600009, true)).toBe(true);
      expect(native.rewritePort(p, 10, p.length, false, 1234, true)).toBe(true);
      const csumOffset = proto === M.IPPROTO_TCP ? 16 : 6;
      expect(native.completePartialChecksum(p.subarray(10), 20, p.length - 10, csumOffset)).toBe(true);
      expect(native.l4ChecksumOk(p, 10, p.length)).toBe(true);
    }
  });

  it('segments a TCP super-packet into MSS-sized packets with valid checksums', () => {
    const payload = 60_000;
    const b = packet(M.IPPROTO_TCP, payload);
    b[0] = M.VIRTIO_NET_HDR_F_NEEDS_CSUM;
    b[1] = M.VIRTIO_NET_HDR_GSO_TCPV4;
    new DataView(b.buffer).setUint16(8, 0, true);
    new DataView(b.buffer).setUint16(4, 1448, true); // gso_size
    b[10 + 20 + 13] = M.TCP_ACK | M.TCP_PSH;
    const out = new Uint8Array(80_000);
    const offs = new Uint32Array(64);
    const lens = new Uint32Array(64);
    const n = native.gsoSegment(b, 0, b.length, true, 0, out, true, offs, lens);
    expect(n).toBe(Math.ceil(payload / 1448));
    const meta = new Uint32Array(M.META_WORDS);
    let seq = -1;
    let total = 0;
    for (let i = 0; i < n; i++) {
      native.parse(out, offs[i], lens[i], true, meta, 0);
      expect(native.ipv4ChecksumOk(out, offs[i] + 10, offs[i] + lens[i])).toBe(true);
      expect(native.l4ChecksumOk(out, offs[i] + 10, offs[i] + lens[i])).toBe(true);
      if (seq >= 0) expect(meta[M.M_TCP_SEQ]).toBe(seq);
      seq = meta[M.M_TCP_SEQ] + meta[M.M_PAYLOAD_LEN];
      expect(meta[M.M_IP_ID]).toBe(0x1234 + i);
      expect(!!(meta[M.M_TCP_FLAGS] & M.TCP_PSH)).toBe(i === n - 1);
      total += meta[M.M_PAYLOAD_LEN];
    }
    expect(total).toBe(payload);
    expect(() => native.gsoSegment(b, 0, b.length, true, 0, new Uint8Array(100), true, offs, lens)).toThrow(/gsoSegment/);
  });
});
