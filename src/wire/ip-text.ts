// IPv4 addresses and CIDRs as text: the one parser and formatter (addresses are host-order u32).

const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/; // no leading zeros, as Go's net.ParseIP

/** The address of "a.b.c.d", or undefined when it is not one. */
export function tryParseIPv4(s: string): number | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0;
  for (const p of parts) {
    if (!OCTET.test(p)) return undefined;
    v = v * 256 + Number(p);
  }
  return v;
}

/** The address of "a.b.c.d"; throws `invalid IPv4 address "…"` otherwise. */
export function parseIPv4(s: string): number {
  const v = tryParseIPv4(s);
  if (v === undefined) throw new Error(`invalid IPv4 address "${s}"`);
  return v;
}

export const isIPv4 = (s: string): boolean => tryParseIPv4(s) !== undefined;

export function formatIPv4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/** The network mask of a prefix length (0 → 0, 32 → 0xffffffff). */
export function prefixMask(bits: number): number {
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

export interface Cidr {
  /** Network address: host bits cleared. */
  base: number;
  bits: number;
  /** Number of addresses. */
  size: number;
  /** The address as written (differs from base when host bits are set). */
  ip: number;
}

/** "a.b.c.d/n" (or a bare address as /32 when `bareAddress`); undefined when malformed. */
export function tryParseCidr(s: string, opts: { bareAddress?: boolean } = {}): Cidr | undefined {
  const slash = s.indexOf('/');
  if (slash < 0 && !opts.bareAddress) return undefined;
  const ip = tryParseIPv4(slash < 0 ? s : s.slice(0, slash));
  const len = slash < 0 ? '32' : s.slice(slash + 1);
  if (ip === undefined || !/^\d{1,2}$/.test(len) || Number(len) > 32) return undefined;
  const bits = Number(len);
  return { base: (ip & prefixMask(bits)) >>> 0, bits, size: 2 ** (32 - bits), ip };
}

/** "a.b.c.d/n"; throws `invalid CIDR "…"` otherwise. */
export function parseCidr(s: string): Cidr {
  const c = tryParseCidr(s);
  if (!c) throw new Error(`invalid CIDR "${s}"`);
  return c;
}

/** "10.0.0.0/8": the network, host bits cleared. */
export const formatCidr = (c: Pick<Cidr, 'base' | 'bits'>): string => `${formatIPv4(c.base)}/${c.bits}`;

export const cidrContains = (c: Pick<Cidr, 'base' | 'bits'>, ip: number): boolean => ((ip & prefixMask(c.bits)) >>> 0) === c.base;

/** inner ⊆ outer. */
export const cidrCovers = (outer: Pick<Cidr, 'base' | 'bits'>, inner: Pick<Cidr, 'base' | 'bits'>): boolean => inner.bits >= outer.bits && cidrContains(outer, inner.base);
