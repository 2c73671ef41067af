// IPv4 prefixes for CIDR peers: parsing, normalising (host bits cleared) and containment.

export interface Prefix {
  addr: number; // u32, host bits cleared
  len: number;
}

/** `10.0.0.0/8` or a bare address (= /32); undefined when malformed. */
export function parsePrefix(s: string): Prefix | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/.exec(s.trim());
  if (!m) return undefined;
  const octets = m.slice(1, 5).map(Number);
  if (octets.some((o) => o > 255)) return undefined;
  const len = m[5] === undefined ? 32 : Number(m[5]);
  if (len > 32) return undefined;
  const raw = ((octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]) >>> 0;
  return { addr: (raw & maskOf(len)) >>> 0, len };
}

function maskOf(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

export function formatPrefix(p: Prefix): string {
  const a = p.addr;
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}/${p.len}`;
}

/** Canonical text of a CIDR string (host bits cleared, /32 added); undefined when malformed. */
export function normalizeCidr(s: string): string | undefined {
  const p = parsePrefix(s);
  return p && formatPrefix(p);
}

/** inner ⊆ outer. */
export function prefixContains(outer: Prefix, inner: Prefix): boolean {
  return inner.len >= outer.len && ((inner.addr & maskOf(outer.len)) >>> 0) === outer.addr;
}
