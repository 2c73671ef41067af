// Typed wire views over crafted headers: fields read back as written, the IPv4 checksum helpers
// produce headers the kernel's rule accepts, and the TTL decrement's incremental checksum matches.
import { describe, it, expect } from 'vitest';
import { native } from '../../src/native/index.ts';
import * as ipv4 from '../../src/wire/ipv4.ts';
import * as tcp from '../../src/wire/tcp.ts';
import * as icmp from '../../src/wire/icmp.ts';
import { hasPorts, IPPROTO_ICMP, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP } from '../../src/wire/proto.ts';
import { ipv4DecTtl } from '../../src/dataplane/lib/l3.ts';
import { PacketContext } from '../../src/dataplane/context.ts';
import { tcpPacket } from '../helpers/datapath.ts';

const L3 = 10; // after the virtio-net header

describe('wire views', () => {
  it('read the fields of an IPv4/TCP header and write addresses and ports', () => {
    const b = tcpPacket(0x0a000001, 0xc0a80a64, 40000, 80, tcp.TCP_FLAG_SYN | tcp.TCP_FLAG_ACK, 17);
    expect([ipv4.version(b, L3), ipv4.hdrlen(b, L3), ipv4.totLen(b, L3), ipv4.ttl(b, L3), ipv4.protocol(b, L3)]).toEqual([4, 20, 40, 17, IPPROTO_TCP]);
    expect([ipv4.saddr(b, L3), ipv4.daddr(b, L3)]).toEqual([0x0a000001, 0xc0a80a64]);
    const l4 = L3 + ipv4.hdrlen(b, L3);
    expect([tcp.sport(b, l4), tcp.dport(b, l4), tcp.hdrlen(b, l4), tcp.flags(b, l4)]).toEqual([40000, 80, 20, 0x12]);
    ipv4.setDaddr(b, L3, 0xfffffffe);
    tcp.setDport(b, l4, 65535);
    expect([ipv4.daddr(b, L3), tcp.dport(b, l4), tcp.sport(b, l4)]).toEqual([0xfffffffe, 65535, 40000]);
    ipv4.fillCsum(b, L3);
    expect(native.ipv4ChecksumOk(b, L3, b.length)).toBe(true);
  });

  it('ICMP: type, code, echo identifier, the quoted packet after the 8-byte header', () => {
    const b = new Uint8Array(8);
    b.set([3, 1, 0, 0, 0x12, 0x34]);
    expect([icmp.type(b, 0), icmp.code(b, 0), icmp.echoId(b, 0), icmp.quoted(100)]).toEqual([3, 1, 0x1234, 108]);
    expect([IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP, IPPROTO_ICMP].map(hasPorts)).toEqual([true, true, true, false]);
  });

  it('the TTL decrement keeps the checksum valid, down to 1, and refuses to reach 0', () => {
    const ctx = new PacketContext();
    for (const ttl of [255, 64, 2]) {
      const b = tcpPacket(0x0a000001, 0x0a000002, 1, 2, 0x02, ttl);
      ctx.buf = b;
      ctx.l3 = L3;
      expect(ipv4DecTtl(ctx)).toBe(true);
      expect(ipv4.ttl(b, L3)).toBe(ttl - 1);
      expect(native.ipv4ChecksumOk(b, L3, b.length)).toBe(true);
    }
    const last = tcpPacket(0x0a000001, 0x0a000002, 1, 2, 0x02, 1);
    ctx.buf = last;
    expect(ipv4DecTtl(ctx)).toBe(false);
    expect(ipv4.ttl(last, L3)).toBe(1);
  });
});
