// IPv4 prefixes for CIDR peers: parsing, normalising (host bits cleared) and containment.
import { cidrCovers, formatCidr, tryParseCidr } from '../wire/ip-text.ts';

export interface Prefix {
  addr: number; // u32, host bits cleared
  len: number;
}

/** `10.0.0.0/8` or a bare address (= /32); undefined when malformed. */
export function parsePrefix(s: string): Prefix | undefined {
  const c = tryParseCidr(s.trim(), { bareAddress: true });
  return c && { addr: c.base, len: c.bits };
}

export function formatPrefix(p: Prefix): string {
  return formatCidr({ base: p.addr, bits: p.len });
}

/** Canonical text of a CIDR string (host bits cleared, /32 added); undefined when malformed. */
export function normalizeCidr(s: string): string | undefined {
  const p = parsePrefix(s);
  return p && formatPrefix(p);
}

/** inner ⊆ outer. */
export function prefixContains(outer: Prefix, inner: Prefix): boolean {
  return cidrCovers({ base: outer.addr, bits: outer.len }, { base: inner.addr, bits: inner.len });
}
