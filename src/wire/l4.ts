// The ports TCP, UDP and SCTP share: the first two 16-bit words of their headers at `off`.
export function sport(b: Uint8Array, off: number): number {
  return (b[off] << 8) | b[off + 1];
}

export function dport(b: Uint8Array, off: number): number {
  return (b[off + 2] << 8) | b[off + 3];
}

export function setSport(b: Uint8Array, off: number, v: number): void {
  b[off] = v >>> 8;
  b[off + 1] = v & 0xff;
}

export function setDport(b: Uint8Array, off: number, v: number): void {
  b[off + 2] = v >>> 8;
  b[off + 3] = v & 0xff;
}
