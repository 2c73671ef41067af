// Decoded monitor record + endpoint metadata → Hubble flow, as Hubble's parsers (threefour, sock, seven)
// decode Cilium's drop/trace/policy-verdict/trace-sock notifications and proxy access-log records.
import { randomUUID } from 'node:crypto';
import type { EventPacket } from '../../control/types.ts';
import { dropReasonEnum } from '../../dataplane/drop-reasons.ts';
import { isAccessLog, isDnsRecord, type AccessLogEvent, type PacketEvent, type RawEvent } from '../../dataplane/events.ts';
import { dnsLayer, dnsSummary } from './dns-flow.ts';
import { CT_REPLY } from '../../maps/cilium/ct.ts';
import { ctStateName } from '../../dataplane/vocab/ct-states.ts';
import { icmpv4TypeCode } from '../../dataplane/vocab/icmp.ts';
import { MSG_ACCESS_LOG, MSG_DROP, MSG_POLICY_VERDICT, MSG_TRACE, MSG_TRACE_SOCK } from '../../dataplane/vocab/message-types.ts';
import { tcpFlagsInBitOrder, tcpFlagsInSummaryOrder } from '../../dataplane/vocab/tcp-flags.ts';
import { isPreXlate, tracePointEnum, XLATE_PRE_REV, xlatePointEnum, xlatePointName } from '../../dataplane/vocab/trace-points.ts';
import type { Flow, FlowEndpoint, FlowL4, Verdict } from '../flow.ts';

/** Who an address is: a local pod/endpoint, else the identity the ipcache (or the event) gives it. */
export interface EndpointResolver {
  resolve(ip: string, identityHint?: number): FlowEndpoint;
}

/** What the builder needs to know about a pod to describe it. */
export interface PodInfo {
  name: string;
  namespace: string;
  labels: Record<string, string>;
}

const SAFE = '[bcdfghjklmnpqrstvwxz2456789]';
const DEPLOY_POD = new RegExp(`^(.+)-${SAFE}{6,10}-${SAFE}{5}$`);

/** Workloads as Hubble reports them: a Deployment's replica names its Deployment; a bare pod has none. */
export function workloadsOf(pod: PodInfo): Array<{ name: string; kind: string }> | undefined {
  const hash = pod.labels['pod-template-hash'];
  if (hash) {
    const m = new RegExp(`^(.+)-${hash.replace(/[^a-z0-9]/g, '')}-[a-z0-9]{5}$`).exec(pod.name);
    if (m) return [{ name: m[1], kind: 'Deployment' }];
  }
  const m = DEPLOY_POD.exec(pod.name);
  return m ? [{ name: m[1], kind: 'Deployment' }] : undefined;
}

/** A pod endpoint in flow.Endpoint's field order. */
export function podEndpoint(id: number, identity: number, pod: PodInfo, labels: string[]): FlowEndpoint {
  const ep: FlowEndpoint = { ID: id, identity, namespace: pod.namespace, labels, pod_name: pod.name };
  const w = workloadsOf(pod);
  if (w) ep.workloads = w;
  return ep;
}

let lastMs = NaN;
let lastTime = '';

/** protojson's Timestamp: RFC 3339 in UTC with 0, 3, 6 or 9 fractional digits. A burst of events
 *  shares its millisecond: the last one's text is kept. */
export function protoTime(ms: number): string {
  if (ms === lastMs) return lastTime;
  const iso = new Date(ms).toISOString();
  lastMs = ms;
  lastTime = iso.endsWith('.000Z') ? `${iso.slice(0, -5)}Z` : iso;
  return lastTime;
}

/** The TCP summary of every flags byte, made once. */
const SUMMARY_BY_BYTE = Array.from({ length: 256 }, (_, b) => `TCP Flags: ${tcpFlagsInSummaryOrder(b).join(', ')}`);

/** "TCP Flags: SYN, ACK", "UDP", "ICMPv4 EchoRequest": the last decoded layer, as threefour's summary. */
export function packetSummary(p: EventPacket | undefined): string {
  if (!p) return 'Unknown';
  if (p.proto === 'TCP') {
    if (p.sport === undefined) return 'IPv4';
    return SUMMARY_BY_BYTE[(p.tcpFlags ?? 0) & 0xff];
  }
  if (p.proto === 'UDP') return p.sport === undefined ? 'IPv4' : 'UDP';
  if (p.proto === 'ICMPv4') return p.icmpType === undefined ? 'IPv4' : `ICMPv4 ${icmpv4TypeCode(p.icmpType, p.icmpCode ?? 0)}`;
  return 'IPv4';
}

/** tcpFlagsInBitOrder of every flags byte, made once (a flow's flags are one byte of the header). */
const FLAG_NAMES_BY_BYTE = Array.from({ length: 256 }, (_, b) => tcpFlagsInBitOrder(b));

function packetL4(p: EventPacket | undefined): FlowL4 | undefined {
  if (!p) return undefined;
  if (p.proto === 'TCP' && p.sport !== undefined) {
    const flags: Record<string, boolean> = {};
    for (const name of FLAG_NAMES_BY_BYTE[(p.tcpFlags ?? 0) & 0xff]) flags[name] = true;
    return { TCP: { source_port: p.sport, destination_port: p.dport ?? 0, flags } };
  }
  if (p.proto === 'UDP' && p.sport !== undefined) return { UDP: { source_port: p.sport, destination_port: p.dport ?? 0 } };
  if (p.proto === 'ICMPv4' && p.icmpType !== undefined) return { ICMPv4: { type: p.icmpType, code: p.icmpCode ?? 0 } };
  return undefined;
}

function portsL4(proto: string, sport: number, dport: number): FlowL4 | undefined {
  if (proto === 'TCP') return { TCP: { source_port: sport, destination_port: dport } };
  if (proto === 'UDP') return { UDP: { source_port: sport, destination_port: dport } };
  return undefined;
}

interface Parts {
  verdict: Verdict;
  drop_reason?: number;
  src: string;
  dst: string;
  l4?: FlowL4;
  source: FlowEndpoint;
  destination: FlowEndpoint;
  Type: Flow['Type'];
  l7?: Flow['l7'];
  event_type: Flow['event_type'];
  traffic_direction?: Flow['traffic_direction'];
  policy_match_type?: number;
  trace_observation_point?: string;
  is_reply?: boolean;
  sock_xlate_point?: string;
  Summary: string;
}

/** Assembles the flow in flow.proto's field order (what `hubble observe -o json` prints), zero values left out. */
function assemble(time: string, node: string, p: Parts): Flow {
  const f: Record<string, unknown> = { time, uuid: randomUUID(), verdict: p.verdict };
  if (p.drop_reason) f.drop_reason = p.drop_reason;
  f.IP = { source: p.src, destination: p.dst, ipVersion: 'IPv4' };
  if (p.l4) f.l4 = p.l4;
  f.source = p.source;
  f.destination = p.destination;
  f.Type = p.Type;
  f.node_name = node;
  if (p.l7) f.l7 = p.l7;
  f.event_type = p.event_type;
  if (p.traffic_direction && p.traffic_direction !== 'TRAFFIC_DIRECTION_UNKNOWN') f.traffic_direction = p.traffic_direction;
  if (p.policy_match_type) f.policy_match_type = p.policy_match_type;
  if (p.trace_observation_point) f.trace_observation_point = p.trace_observation_point;
  if (p.drop_reason) f.drop_reason_desc = dropReasonEnum(p.drop_reason) ?? 'DROP_REASON_UNKNOWN';
  if (p.is_reply !== undefined) f.is_reply = p.is_reply;
  if (p.sock_xlate_point) f.sock_xlate_point = p.sock_xlate_point;
  f.Summary = p.Summary;
  return f as unknown as Flow;
}

const eventType = (type: number, sub: number): Flow['event_type'] => (sub ? { type, sub_type: sub } : { type });

type Direction = 'INGRESS' | 'EGRESS' | 'TRAFFIC_DIRECTION_UNKNOWN';
const flip = (d: Direction): Direction => (d === 'INGRESS' ? 'EGRESS' : d === 'EGRESS' ? 'INGRESS' : d);

/**
 * The connection's direction from the observing endpoint: the packet's direction, flipped for replies.
 * Without a packet direction, Hubble's rule: the local endpoint sent it (egress) unless it is a reply.
 */
function trafficDirection(e: PacketEvent, src: FlowEndpoint, isReply: boolean): Direction {
  if (e.direction === 1 || e.direction === 2) {
    const d: Direction = e.direction === 1 ? 'INGRESS' : 'EGRESS';
    return isReply ? flip(d) : d;
  }
  if (!e.srcEp) return 'TRAFFIC_DIRECTION_UNKNOWN';
  return (e.srcEp === src.ID) !== isReply ? 'EGRESS' : 'INGRESS';
}

/** One monitor record as a flow; undefined for records Hubble does not turn into flows. */
export function buildFlow(e: RawEvent, r: EndpointResolver, node: string): Flow | undefined {
  if (isAccessLog(e)) return l7Flow(e, r, node);
  const time = protoTime(e.time);
  const p = e.packet;
  if (!p) return undefined;
  switch (e.type) {
    case MSG_TRACE: {
      const source = r.resolve(p.src, e.srcIdentity);
      const destination = r.resolve(p.dst, e.dstIdentity);
      const isReply = e.ctState === CT_REPLY;
      return assemble(time, node, {
        verdict: 'FORWARDED', src: p.src, dst: p.dst, l4: packetL4(p), source, destination, Type: 'L3_L4',
        event_type: eventType(MSG_TRACE, e.sub), traffic_direction: trafficDirection(e, source, isReply),
        trace_observation_point: tracePointEnum(e.sub), is_reply: ctStateName(e.ctState) === undefined ? undefined : isReply, Summary: packetSummary(p),
      });
    }
    case MSG_DROP: {
      const source = r.resolve(p.src, e.srcIdentity);
      const destination = r.resolve(p.dst, e.dstIdentity);
      return assemble(time, node, {
        verdict: 'DROPPED', drop_reason: e.sub, src: p.src, dst: p.dst, l4: packetL4(p), source, destination, Type: 'L3_L4',
        event_type: eventType(MSG_DROP, e.sub), traffic_direction: trafficDirection(e, source, false), Summary: packetSummary(p),
      });
    }
    case MSG_POLICY_VERDICT: {
      const ingress = e.sub === 0;
      // The event's identity is the remote peer's: the source on ingress, the destination on egress.
      const source = r.resolve(p.src, ingress ? e.srcIdentity : undefined);
      const destination = r.resolve(p.dst, ingress ? undefined : e.srcIdentity);
      const denied = e.reason !== 0;
      return assemble(time, node, {
        verdict: denied ? 'DROPPED' : 'FORWARDED', drop_reason: denied ? e.reason : undefined, src: p.src, dst: p.dst, l4: packetL4(p), source, destination,
        Type: 'L3_L4', event_type: eventType(MSG_POLICY_VERDICT, 0), traffic_direction: ingress ? 'INGRESS' : 'EGRESS',
        policy_match_type: e.match, is_reply: denied ? undefined : false, Summary: packetSummary(p),
      });
    }
    case MSG_TRACE_SOCK: {
      if (xlatePointName(e.sub) === undefined) return undefined;
      const rev = e.sub >= XLATE_PRE_REV;
      // The socket's own port is not known at a translation point: the pod side prints without one.
      const sport = rev ? p.sport ?? 0 : 0;
      const dport = rev ? 0 : p.dport ?? 0;
      return assemble(time, node, {
        verdict: isPreXlate(e.sub) ? 'TRACED' : 'TRANSLATED', src: p.src, dst: p.dst, l4: portsL4(p.proto, sport, dport),
        source: r.resolve(p.src), destination: r.resolve(p.dst), Type: 'SOCK', event_type: eventType(MSG_TRACE_SOCK, e.sub),
        sock_xlate_point: xlatePointEnum(e.sub), Summary: p.proto === 'TCP' || p.proto === 'UDP' ? p.proto : 'Unknown',
      });
    }
    default:
      return undefined;
  }
}

function l7Flow(e: AccessLogEvent, r: EndpointResolver, node: string): Flow | undefined {
  const l = e.record;
  const time = protoTime(e.time);
  const response = l.type === 'response';
  const client = r.resolve(l.client.ip, e.client.identity);
  const server = r.resolve(l.server.ip, e.server.identity);
  const [src, dst, source, destination] = response ? [l.server, l.client, server, client] : [l.client, l.server, client, server];
  const latencyNs = Math.max(0, Math.round((l.latencyMs ?? 0) * 1e6));
  let layer: Pick<NonNullable<Flow['l7']>, 'http' | 'dns'>;
  let summary: string;
  if (isDnsRecord(l)) {
    layer = { dns: dnsLayer(l) };
    summary = dnsSummary(l);
  } else {
    const headers = l.headers?.length ? { headers: l.headers } : {};
    layer = { http: response ? { code: l.status ?? 0, method: l.method, url: l.url, protocol: l.protocol, ...headers } : { method: l.method, url: l.url, protocol: l.protocol, ...headers } };
    summary = response
      ? `${l.protocol} ${l.status ?? 0} ${Math.floor(latencyNs / 1e6)}ms (${l.method} ${l.url})`
      : `${l.protocol} ${l.method} ${l.url}`;
  }
  // The proxy ran for the endpoint whose policy redirected: the server's (ingress) or the client's (egress).
  const direction = l.endpoint !== undefined && l.endpoint !== 0 && l.endpoint === server.ID ? 'INGRESS' : l.endpoint !== undefined && l.endpoint !== 0 ? 'EGRESS' : undefined;
  const verdict: Verdict = l.verdict === 'Denied' ? 'DROPPED' : l.verdict === 'Error' ? 'ERROR' : 'FORWARDED';
  return assemble(time, node, {
    verdict, src: src.ip, dst: dst.ip, l4: portsL4(isDnsRecord(l) ? l.transport : 'TCP', src.port, dst.port), source, destination, Type: 'L7',
    l7: { type: response ? 'RESPONSE' : 'REQUEST', ...(latencyNs ? { latency_ns: String(latencyNs) } : {}), ...layer },
    event_type: { type: MSG_ACCESS_LOG }, traffic_direction: direction, is_reply: response, Summary: summary,
  });
}
