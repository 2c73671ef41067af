// IPv4 L3 helpers over the packet bytes: TTL decrement with the RFC 1624 checksum fix-up.
import type { PacketContext } from '../context.ts';

/** Decrements the TTL; returns false (and leaves the packet) when it would reach zero. */
export function ipv4DecTtl(ctx: PacketContext): boolean {
  const b = ctx.buf;
  const l3 = ctx.l3;
  const ttl = b[l3 + 8];
  if (ttl <= 1) return false;
  b[l3 + 8] = ttl - 1;
  // The TTL is the high byte of its 16-bit word: the word drops by 0x100, so ~sum grows by it.
  let sum = ((b[l3 + 10] << 8) | b[l3 + 11]) + 0x100;
  sum = (sum & 0xffff) + (sum >>> 16);
  b[l3 + 10] = sum >>> 8;
  b[l3 + 11] = sum & 0xff;
  return true;
}
