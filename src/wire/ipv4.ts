// IPv4 header fields over packet bytes at `off` (RFC 791). Plain functions on Uint8Array so V8
// inlines them; multi-byte fields are big-endian on the wire and host numbers here.
const VER_IHL = 0;
const TOT_LEN = 2;
const TTL = 8;
const PROTOCOL = 9;
const CSUM = 10;
const SADDR = 12;
const DADDR = 16;

export function version(b: Uint8Array, off: number): number {
  return b[off + VER_IHL] >> 4;
}

/** Header length in bytes (IHL × 4), as Cilium's ipv4_hdrlen. */
export function hdrlen(b: Uint8Array, off: number): number {
  return (b[off + VER_IHL] & 15) * 4;
}

export function totLen(b: Uint8Array, off: number): number {
  return (b[off + TOT_LEN] << 8) | b[off + TOT_LEN + 1];
}

export function ttl(b: Uint8Array, off: number): number {
  return b[off + TTL];
}

export function setTtl(b: Uint8Array, off: number, v: number): void {
  b[off + TTL] = v;
}

export function protocol(b: Uint8Array, off: number): number {
  return b[off + PROTOCOL];
}

export function csum(b: Uint8Array, off: number): number {
  return (b[off + CSUM] << 8) | b[off + CSUM + 1];
}

export function setCsum(b: Uint8Array, off: number, v: number): void {
  b[off + CSUM] = v >>> 8;
  b[off + CSUM + 1] = v & 0xff;
}

function u32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

function setU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = (v >>> 16) & 0xff;
  b[at + 2] = (v >>> 8) & 0xff;
  b[at + 3] = v & 0xff;
}

export function saddr(b: Uint8Array, off: number): number {
  return u32(b, off + SADDR);
}

export function setSaddr(b: Uint8Array, off: number, v: number): void {
  setU32(b, off + SADDR, v);
}

export function daddr(b: Uint8Array, off: number): number {
  return u32(b, off + DADDR);
}

export function setDaddr(b: Uint8Array, off: number, v: number): void {
  setU32(b, off + DADDR, v);
}

/** Recomputes the header checksum over the header's own bytes (for headers quoted in ICMP errors). */
export function fillCsum(b: Uint8Array, off: number): void {
  const len = hdrlen(b, off);
  setCsum(b, off, 0);
  let sum = 0;
  for (let i = 0; i < len; i += 2) sum += (b[off + i] << 8) | b[off + i + 1];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  setCsum(b, off, ~sum & 0xffff);
}
