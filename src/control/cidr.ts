// IPv4 subnets for IPAM and routes (CIDR text is src/wire/ip-text.ts).
import { formatCidr, type Cidr } from '../wire/ip-text.ts';

/** The i-th subnet of `bits` inside `c` (cluster-pool: one /24 per node). */
export function subnet(c: Cidr, bits: number, i: number): Cidr {
  const size = 2 ** (32 - bits);
  if (bits < c.bits || (i + 1) * size > c.size) throw new Error(`no subnet #${i} of /${bits} in ${formatCidr(c)}`);
  const base = (c.base + i * size) >>> 0;
  return { base, bits, size, ip: base };
}
