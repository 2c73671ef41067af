// ICMP header fields over packet bytes at `off` (RFC 792): type and code, the echo identifier,
// and where an error's quoted packet starts.
import { ICMP_HLEN } from './proto.ts';

const TYPE = 0;
const CODE = 1;
const ECHO_ID = 4;

export const ICMP_ECHO_REPLY = 0;
export const ICMP_ECHO_REQUEST = 8;

export function type(b: Uint8Array, off: number): number {
  return b[off + TYPE];
}

export function code(b: Uint8Array, off: number): number {
  return b[off + CODE];
}

/** The identifier of an echo request or reply (the "port" conntrack tracks it by). */
export function echoId(b: Uint8Array, off: number): number {
  return (b[off + ECHO_ID] << 8) | b[off + ECHO_ID + 1];
}

export function setEchoId(b: Uint8Array, off: number, id: number): void {
  b[off + ECHO_ID] = id >>> 8;
  b[off + ECHO_ID + 1] = id & 0xff;
}

/** Where an error's quoted IP header starts. */
export function quoted(off: number): number {
  return off + ICMP_HLEN;
}
