// Monitor records as listeners get them, decoded off the hot path: a packet record's numbers and bytes
// (drop, trace, policy verdict, trace-sock) or an L7 proxy access-log record.
import type { EventPacket } from '../control/types.ts';
import type { L7Event } from '../proxy/http/listener.ts';
import type { DnsL7Event } from '../proxy/dns/proxy.ts';
import { formatIPv4 } from '../wire/ip-text.ts';
import { MSG_ACCESS_LOG } from './vocab/message-types.ts';

/** A packet record decoded: the numbers the datapath wrote, the packet's first bytes and what they say. */
export interface PacketEvent {
  /** Message type (MSG_DROP, MSG_TRACE, MSG_POLICY_VERDICT, MSG_TRACE_SOCK). */
  type: number;
  /** Drop reason, trace observation point, translation point; for a policy verdict 1 = egress. */
  sub: number;
  ctState: number;
  /** 1 ingress, 2 egress, 0 unknown. */
  direction: number;
  srcEp: number;
  dstEp: number;
  /** For a policy verdict: the remote peer's identity. */
  srcIdentity: number;
  dstIdentity: number;
  ifindex: number;
  origLen: number;
  /** Policy verdict: the drop reason (0 = allowed). */
  reason: number;
  /** Policy verdict: POLICY_MATCH_*. */
  match: number;
  /** ms since the epoch. */
  time: number;
  /** IP packet bytes from the start of the IP header (at most the capture length): a view of the
   *  monitor ring, valid during the listener call only (copy it to keep it). */
  data: Uint8Array;
  /** The IPv4 packet's addresses, ports and flags; undefined for other packets. */
  packet?: EventPacket;
}

/** A peer of an L7 connection as the agent knows it. */
export interface L7Peer {
  id: number;
  identity: number;
  labels: string[];
}

/** An L7 proxy access-log record (not a packet). */
export interface AccessLogEvent {
  type: typeof MSG_ACCESS_LOG;
  time: number;
  record: L7Event | DnsL7Event;
  client: L7Peer;
  server: L7Peer;
}

export type RawEvent = PacketEvent | AccessLogEvent;

export const isAccessLog = (e: RawEvent): e is AccessLogEvent => e.type === MSG_ACCESS_LOG;

/** A DNS proxy record (else an HTTP one). */
export const isDnsRecord = (r: L7Event | DnsL7Event): r is DnsL7Event => 'dns' in r;

/** The big-endian u32 at `at` (no DataView per record). */
const be32 = (d: Uint8Array, at: number): number => ((d[at] << 24) | (d[at + 1] << 16) | (d[at + 2] << 8) | d[at + 3]) >>> 0;

const ADDR_TEXT_MAX = 4096;
/** Text of recently seen addresses: a node's events name the same few pods again and again. */
const addrText = new Map<number, string>();

function addressText(v: number): string {
  let t = addrText.get(v);
  if (t === undefined) {
    if (addrText.size >= ADDR_TEXT_MAX) addrText.clear();
    t = formatIPv4(v);
    addrText.set(v, t);
  }
  return t;
}

/** The IPv4 packet's addresses, ports, TCP flags or ICMP type; undefined for other packets. */
export function decodePacket(d: Uint8Array, origLen: number): EventPacket | undefined {
  if (d.length < 20 || d[0] >> 4 !== 4) return undefined;
  const ihl = (d[0] & 15) * 4;
  const proto = d[9];
  const p: EventPacket = { src: addressText(be32(d, 12)), dst: addressText(be32(d, 16)), proto: proto === 6 ? 'TCP' : proto === 17 ? 'UDP' : proto === 1 ? 'ICMPv4' : 'other', length: origLen };
  if ((proto === 6 || proto === 17) && d.length >= ihl + 4) {
    p.sport = (d[ihl] << 8) | d[ihl + 1];
    p.dport = (d[ihl + 2] << 8) | d[ihl + 3];
    if (proto === 6 && d.length >= ihl + 14) p.tcpFlags = d[ihl + 13];
  } else if (proto === 1 && d.length >= ihl + 2) {
    p.icmpType = d[ihl];
    p.icmpCode = d[ihl + 1];
  }
  return p;
}
