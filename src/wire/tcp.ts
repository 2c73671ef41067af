// TCP header fields over packet bytes at `off` (RFC 9293); flag bits as in the header's byte 13.
export { sport, dport, setSport, setDport } from './l4.ts';

const DATA_OFF = 12;
const FLAGS = 13;

export const TCP_FLAG_FIN = 0x01;
export const TCP_FLAG_SYN = 0x02;
export const TCP_FLAG_RST = 0x04;
export const TCP_FLAG_PSH = 0x08;
export const TCP_FLAG_ACK = 0x10;
export const TCP_FLAG_URG = 0x20;

/** Header length in bytes (data offset × 4). */
export function hdrlen(b: Uint8Array, off: number): number {
  return (b[off + DATA_OFF] >> 4) * 4;
}

export function flags(b: Uint8Array, off: number): number {
  return b[off + FLAGS];
}
