// UDP header fields over packet bytes at `off` (RFC 768).
export { sport, dport, setSport, setDport } from './l4.ts';

const LEN = 4;

export function len(b: Uint8Array, off: number): number {
  return (b[off + LEN] << 8) | b[off + LEN + 1];
}
