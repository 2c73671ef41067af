// Port ranges as prefix-aligned blocks, the form an LPM key over the 16-bit port can hold.

export interface PortBlock {
  port: number;
  /** 16 = one port, 0 = every port. */
  prefixLen: number;
}

/** Split start..end into the fewest aligned blocks (8080-8090 → 8080/13, 8088/15, 8090/16). */
export function portBlocks(start: number, end: number): PortBlock[] {
  const out: PortBlock[] = [];
  let p = start;
  while (p <= end) {
    let size = p === 0 ? 65536 : p & -p;
    while (p + size - 1 > end) size >>= 1;
    out.push({ port: p, prefixLen: 16 - Math.log2(size) });
    p += size;
  }
  return out;
}

/** Last port of a block. */
export function blockEnd(b: PortBlock): number {
  return b.port + (1 << (16 - b.prefixLen)) - 1;
}

/** inner ⊆ outer. */
export function blockContains(outer: PortBlock, inner: PortBlock): boolean {
  if (inner.prefixLen < outer.prefixLen) return false;
  const shift = 16 - outer.prefixLen;
  return inner.port >>> shift === outer.port >>> shift;
}
