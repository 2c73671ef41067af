// Turns a raw monitor record into the lines `cilium monitor` prints. Runs only for listeners.
import type { EventPacket, MonitorEvent } from '../control/types.ts';
import { dropReasonText } from './drop-reasons.ts';
import { u32ToIp } from './map-defs.ts';

export interface RawEvent {
  type: number;
  sub: number;
  ctState: number;
  direction: number;
  srcEp: number;
  dstEp: number;
  srcIdentity: number;
  dstIdentity: number;
  ifindex: number;
  origLen: number;
  reason: number;
  match: number;
  time: number;
  data: Uint8Array; // IP packet bytes from the start of the IP header
}

const OBS_POINTS = ['to-endpoint', 'to-proxy', 'to-host', 'to-stack', 'to-overlay', 'from-endpoint', 'from-proxy', 'from-host', 'from-stack', 'from-overlay', 'from-network', 'to-network'];
const XLATE_POINTS = ['pre-xlate-fwd', 'post-xlate-fwd', 'pre-xlate-rev', 'post-xlate-rev'];
const MATCH_NAMES = ['none', 'L3-L4', 'L3-Only', 'L4-Only', 'all', 'L3-Proto'];
const CT_STATES = ['new', 'established', 'reply', 'related', 'reopened'];
const RESERVED: Record<number, string> = { 0: 'unknown', 1: 'host', 2: 'world', 3: 'unmanaged', 4: 'health', 5: 'init', 6: 'remote-node', 7: 'kube-apiserver', 8: 'ingress' };

export const identityName = (id: number) => RESERVED[id] ?? String(id);
export const observationPoint = (sub: number) => OBS_POINTS[sub] ?? `unknown-${sub}`;

const TCP_FLAG_NAMES: Array<[number, string]> = [[0x02, 'SYN'], [0x10, 'ACK'], [0x01, 'FIN'], [0x04, 'RST'], [0x08, 'PSH'], [0x20, 'URG'], [0x40, 'ECE'], [0x80, 'CWR']];
const ICMP_TYPES: Record<number, string> = { 0: 'EchoReply', 3: 'DestinationUnreachable', 5: 'Redirect', 8: 'EchoRequest', 11: 'TimeExceeded', 12: 'ParameterProblem' };

/** "10.0.0.1:80 -> 10.0.0.2:5555 tcp SYN, ACK" — the tuple part of a monitor line. */
export function describePacket(d: Uint8Array): string {
  if (d.length < 20 || d[0] >> 4 !== 4) return d.length && d[0] >> 4 === 6 ? 'IPv6 packet' : `unknown packet (${d.length} bytes)`;
  const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
  const ihl = (d[0] & 15) * 4;
  const src = u32ToIp(v.getUint32(12));
  const dst = u32ToIp(v.getUint32(16));
  const proto = d[9];
  if ((proto === 6 || proto === 17) && d.length >= ihl + 4) {
    const sp = v.getUint16(ihl);
    const dp = v.getUint16(ihl + 2);
    if (proto === 17) return `${src}:${sp} -> ${dst}:${dp} udp`;
    const f = d.length >= ihl + 14 ? d[ihl + 13] : 0;
    const names = TCP_FLAG_NAMES.filter(([bit]) => f & bit).map(([, n]) => n);
    return `${src}:${sp} -> ${dst}:${dp} tcp ${names.join(', ')}`;
  }
  if (proto === 1 && d.length > ihl) return `${src} -> ${dst} ${ICMP_TYPES[d[ihl]] ?? `ICMP type ${d[ihl]}`}`;
  return `${src} -> ${dst} proto ${proto}`;
}

/** The packet's addresses, ports and flags, for flows. */
export function decodePacket(d: Uint8Array, origLen: number): EventPacket | undefined {
  if (d.length < 20 || d[0] >> 4 !== 4) return undefined;
  const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
  const ihl = (d[0] & 15) * 4;
  const proto = d[9];
  const p: EventPacket = { src: u32ToIp(v.getUint32(12)), dst: u32ToIp(v.getUint32(16)), proto: proto === 6 ? 'TCP' : proto === 17 ? 'UDP' : proto === 1 ? 'ICMPv4' : 'other', length: origLen };
  if ((proto === 6 || proto === 17) && d.length >= ihl + 4) {
    p.sport = v.getUint16(ihl);
    p.dport = v.getUint16(ihl + 2);
    if (proto === 6 && d.length >= ihl + 14) p.tcpFlags = d[ihl + 13];
  } else if (proto === 1 && d.length >= ihl + 2) {
    p.icmpType = d[ihl];
    p.icmpCode = d[ihl + 1];
  }
  return p;
}

/** A stable 32-bit flow id from the packet tuple (FNV-1a), printed as Cilium prints its skb hash. */
function flowHash(d: Uint8Array): string {
  let h = 0x811c9dc5;
  for (let i = 12; i < Math.min(d.length, 24); i++) h = Math.imul(h ^ d[i], 16777619);
  return `0x${(h >>> 0).toString(16)}`;
}

function hexDump(d: Uint8Array): string {
  const lines: string[] = [];
  for (let i = 0; i < d.length; i += 16) {
    const row = Array.from(d.subarray(i, i + 16), (x) => x.toString(16).padStart(2, '0'));
    lines.push(`${i.toString(16).padStart(8, '0')}  ${row.join(' ')}`);
  }
  return lines.join('\n');
}

export function formatEvent(r: RawEvent): MonitorEvent {
  const tuple = describePacket(r.data);
  const ids = `identity ${identityName(r.srcIdentity)}->${identityName(r.dstIdentity)}`;
  const base = {
    time: new Date(r.time).toISOString(),
    packet: decodePacket(r.data, r.origLen),
    ctState: CT_STATES[r.ctState],
    direction: r.direction === 1 ? ('ingress' as const) : r.direction === 2 ? ('egress' as const) : undefined,
    dstEndpoint: r.dstEp,
    source: r.srcEp,
    srcIdentity: r.srcIdentity,
    dstIdentity: r.dstIdentity,
    ifindex: r.ifindex,
    hex: hexDump(r.data),
  };
  if (r.type === 1) {
    const reason = dropReasonText(r.sub);
    const summary = `xx drop (${reason}) flow ${flowHash(r.data)} to endpoint ${r.dstEp}, ifindex ${r.ifindex}, file ${r.direction === 1 ? 'bpf_lxc.c' : 'bpf_lxc.c'}, , ${ids}: ${tuple}`;
    return { ...base, type: 'drop', summary, reason: r.sub, reasonDesc: reason, verbose: `${summary}\n  reason ${r.sub} orig-len ${r.origLen}` };
  }
  if (r.type === 9) {
    const action = r.reason === 0 ? 'allow' : 'deny';
    const summary = `Policy verdict log: flow ${flowHash(r.data)} local EP ID ${r.srcEp}, remote ID ${identityName(r.srcIdentity)}, proto ${r.data[9] ?? 0}, ${r.sub ? 'egress' : 'ingress'}, action ${action}, auth: disabled, match ${MATCH_NAMES[r.match] ?? 'none'}, ${tuple}`;
    return {
      ...base, type: 'policy-verdict', summary, reason: r.reason || undefined, reasonDesc: r.reason ? dropReasonText(r.reason) : undefined, verbose: summary,
      direction: r.sub ? 'egress' : 'ingress', policyMatch: MATCH_NAMES[r.match] ?? 'none', action,
    };
  }
  if (r.type === 14) {
    const point = XLATE_POINTS[r.sub] ?? 'unknown';
    const summary = `${point} ${ids}: ${tuple}`;
    return { ...base, type: 'trace-sock', summary, xlatePoint: point, verbose: summary };
  }
  const point = observationPoint(r.sub);
  const target = r.sub === 0 ? `endpoint ${r.dstEp}` : point.replace(/^to-/, '');
  const summary = `-> ${target} flow ${flowHash(r.data)} , ${ids} state ${CT_STATES[r.ctState] ?? 'unknown'} ifindex ${r.ifindex} orig-ip 0.0.0.0: ${tuple}`;
  return { ...base, type: 'trace', summary, observationPoint: point, verbose: `${summary}\n  observation ${point} orig-len ${r.origLen}` };
}
