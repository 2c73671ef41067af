// A decoded monitor record as the lines `cilium monitor` prints (summary, -v, hex). Runs only for
// text listeners (the monitor API); Hubble and metrics read the records' numbers.
import type { MonitorEvent } from '../control/types.ts';
import { dropReasonText } from './drop-reasons.ts';
import { isAccessLog, isDnsRecord, type AccessLogEvent, type L7Peer, type PacketEvent, type RawEvent } from './monitor-record.ts';
import type { DnsL7Event } from '../proxy/dns/proxy.ts';
import { ctStateName } from './vocab/ct-states.ts';
import { icmpv4TypeName } from './vocab/icmp.ts';
import { MSG_DROP, MSG_POLICY_VERDICT, MSG_TRACE_SOCK } from './vocab/message-types.ts';
import { policyMatchName } from './vocab/policy-match.ts';
import { identityName } from './vocab/reserved-identities.ts';
import { TRACE_TO_LXC, tracePointName, xlatePointName } from './vocab/trace-points.ts';
import { tcpFlagsInSummaryOrder } from './vocab/tcp-flags.ts';

/** "10.0.0.1:80 -> 10.0.0.2:5555 tcp SYN, ACK" — the tuple part of a monitor line. */
function describePacket(e: PacketEvent): string {
  const p = e.packet;
  const d = e.data;
  if (!p) return d.length && d[0] >> 4 === 6 ? 'IPv6 packet' : `unknown packet (${d.length} bytes)`;
  if (p.sport !== undefined && p.proto === 'UDP') return `${p.src}:${p.sport} -> ${p.dst}:${p.dport} udp`;
  if (p.sport !== undefined) return `${p.src}:${p.sport} -> ${p.dst}:${p.dport} tcp ${tcpFlagsInSummaryOrder(p.tcpFlags ?? 0).join(', ')}`;
  if (p.icmpType !== undefined) return `${p.src} -> ${p.dst} ${icmpv4TypeName(p.icmpType) ?? `ICMP type ${p.icmpType}`}`;
  return `${p.src} -> ${p.dst} proto ${d[9]}`;
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

export function formatEvent(e: RawEvent): MonitorEvent {
  return isAccessLog(e) ? formatAccessLog(e) : formatPacketEvent(e);
}

function formatPacketEvent(r: PacketEvent): MonitorEvent {
  const tuple = describePacket(r);
  const ids = `identity ${identityName(r.srcIdentity)}->${identityName(r.dstIdentity)}`;
  const base = {
    time: new Date(r.time).toISOString(),
    packet: r.packet,
    ctState: ctStateName(r.ctState),
    direction: r.direction === 1 ? ('ingress' as const) : r.direction === 2 ? ('egress' as const) : undefined,
    dstEndpoint: r.dstEp,
    source: r.srcEp,
    srcIdentity: r.srcIdentity,
    dstIdentity: r.dstIdentity,
    ifindex: r.ifindex,
    hex: hexDump(r.data),
  };
  if (r.type === MSG_DROP) {
    const reason = dropReasonText(r.sub);
    const summary = `xx drop (${reason}) flow ${flowHash(r.data)} to endpoint ${r.dstEp}, ifindex ${r.ifindex}, file bpf_lxc.c, , ${ids}: ${tuple}`;
    return { ...base, type: 'drop', summary, reason: r.sub, reasonDesc: reason, verbose: `${summary}\n  reason ${r.sub} orig-len ${r.origLen}` };
  }
  if (r.type === MSG_POLICY_VERDICT) {
    const action = r.reason === 0 ? 'allow' : 'deny';
    const match = policyMatchName(r.match);
    const summary = `Policy verdict log: flow ${flowHash(r.data)} local EP ID ${r.srcEp}, remote ID ${identityName(r.srcIdentity)}, proto ${r.data[9] ?? 0}, ${r.sub ? 'egress' : 'ingress'}, action ${action}, auth: disabled, match ${match}, ${tuple}`;
    return {
      ...base, type: 'policy-verdict', summary, reason: r.reason || undefined, reasonDesc: r.reason ? dropReasonText(r.reason) : undefined, verbose: summary,
      direction: r.sub ? 'egress' : 'ingress', policyMatch: match, action,
    };
  }
  if (r.type === MSG_TRACE_SOCK) {
    const point = xlatePointName(r.sub) ?? 'unknown';
    const summary = `${point} ${ids}: ${tuple}`;
    return { ...base, type: 'trace-sock', summary, xlatePoint: point, verbose: summary };
  }
  const point = tracePointName(r.sub) ?? `unknown-${r.sub}`;
  const target = r.sub === TRACE_TO_LXC ? `endpoint ${r.dstEp}` : point.replace(/^to-/, '');
  const summary = `-> ${target} flow ${flowHash(r.data)} , ${ids} state ${ctStateName(r.ctState) ?? 'unknown'} ifindex ${r.ifindex} orig-ip 0.0.0.0: ${tuple}`;
  return { ...base, type: 'trace', summary, observationPoint: point, verbose: `${summary}\n  observation ${point} orig-len ${r.origLen}` };
}

const labelList = (p: L7Peer) => `[${p.labels.join(' ')}]`;

/** `cilium monitor -v --type l7`: "<- Request http from 0 ([…]) to 1972 ([…]), identity 42720->21144, verdict Denied PUT … => 403". */
function formatAccessLog(e: AccessLogEvent): MonitorEvent {
  const { record: r, client, server } = e;
  const dns = isDnsRecord(r);
  const what = dns ? dnsText(r) : `${r.method} ${r.url}${r.status !== undefined ? ` => ${r.status}` : ''}`;
  const proto = dns ? 'dns' : 'http';
  // Cilium prints the observation point: the DNS proxy works on the asking pod's egress.
  const [reqArrow, respArrow] = dns ? ['->', '->'] : ['<-', '->'];
  const summary = r.type === 'request'
    ? `${reqArrow} Request ${proto} from ${client.id} (${labelList(client)}) to ${server.id} (${labelList(server)}), identity ${identityName(client.identity)}->${identityName(server.identity)}, verdict ${r.verdict} ${what}`
    : `${respArrow} Response ${proto} to ${client.id} (${labelList(client)}) from ${server.id} (${labelList(server)}), identity ${identityName(server.identity)}->${identityName(client.identity)}, verdict ${r.verdict} ${what}`;
  return {
    type: 'l7',
    time: new Date(e.time).toISOString(),
    summary,
    verbose: summary,
    source: r.endpoint,
    srcIdentity: client.identity,
    dstIdentity: server.identity,
    l7: { ...r },
  };
}

/** LogRecordNotify's DNS part: "DNS proxy: <query> <qtypes>", answers with TTL and addresses. */
function dnsText(r: DnsL7Event): string {
  const q = `DNS proxy: ${r.dns.query} ${r.dns.qtypes.join(',')}`;
  if (r.type === 'request') return q;
  const cnames = r.dns.cnames?.length ? ` CNAMEs: ${r.dns.cnames.join(',')}` : '';
  return `${q} TTL: ${r.dns.ttl ?? 0} Answer: '${(r.dns.ips ?? []).join(',')}'${cnames}`;
}
