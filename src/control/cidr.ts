// IPv4 CIDR arithmetic for IPAM and routes.
import { ipToU32, u32ToIp } from '../dataplane/map-defs.ts';

export interface Cidr {
  base: number; // network address, host order
  bits: number;
  size: number; // number of addresses
}

export function parseCidr(s: string): Cidr {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(s);
  if (!m || Number(m[2]) > 32) throw new Error(`invalid CIDR "${s}"`);
  const bits = Number(m[2]);
  const size = 2 ** (32 - bits);
  const base = bits === 0 ? 0 : (ipToU32(m[1]) & ~(size - 1)) >>> 0;
  return { base, bits, size };
}

export const cidrString = (c: Cidr) => `${u32ToIp(c.base)}/${c.bits}`;
export const contains = (c: Cidr, ip: number) => ip >>> 0 >= c.base && ip >>> 0 < c.base + c.size;

/** The i-th subnet of `bits` inside `c` (cluster-pool: one /24 per node). */
export function subnet(c: Cidr, bits: number, i: number): Cidr {
  const size = 2 ** (32 - bits);
  if (bits < c.bits || (i + 1) * size > c.size) throw new Error(`no subnet #${i} of /${bits} in ${cidrString(c)}`);
  return { base: (c.base + i * size) >>> 0, bits, size };
}
