// IPv4 L3 helpers over the packet bytes: TTL decrement with the RFC 1624 checksum fix-up.
import type { PacketContext } from '../context.ts';
import * as ipv4 from '../../wire/ipv4.ts';

/** Decrements the TTL; returns false (and leaves the packet) when it would reach zero. */
export function ipv4DecTtl(ctx: PacketContext): boolean {
  const b = ctx.buf;
  const l3 = ctx.l3;
  const ttl = ipv4.ttl(b, l3);
  if (ttl <= 1) return false;
  ipv4.setTtl(b, l3, ttl - 1);
  // The TTL is the high byte of its 16-bit word: the word drops by 0x100, so ~sum grows by it.
  const sum = ipv4.csum(b, l3) + 0x100;
  ipv4.setCsum(b, l3, (sum & 0xffff) + (sum >>> 16));
  return true;
}
