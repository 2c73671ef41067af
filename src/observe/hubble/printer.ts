// `hubble observe` output formats (hubble/pkg/printer): compact, dict, table, json/jsonpb; and `hubble status`.
import { dropReasonText } from '../../dataplane/drop-reasons.ts';
import type { HubbleStatus } from '../../control/types.ts';
import type { Flow } from '../flow.ts';
import { MSG_DROP, MSG_POLICY_VERDICT, MSG_TRACE, MSG_TRACE_SOCK } from '../../dataplane/vocab/message-types.ts';
import { policyMatchName } from '../../dataplane/vocab/policy-match.ts';
import { reservedIdentityName } from '../../dataplane/vocab/reserved-identities.ts';
import { tracePointName, xlatePointNameOfEnum } from '../../dataplane/vocab/trace-points.ts';

export const OUTPUT_FORMATS = ['compact', 'dict', 'json', 'jsonpb', 'table'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const p2 = (n: number) => String(n).padStart(2, '0');

/** Go's time.StampMilli ("Jan _2 15:04:05.000") in local time. */
export function stampMilli(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return 'N/A';
  return `${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

function ports(f: Flow): [string, string] {
  const l4 = f.l4?.TCP ?? f.l4?.UDP;
  return l4 ? [String(l4.source_port), String(l4.destination_port)] : ['', ''];
}

/** Printer.Hostname: namespace/pod when known, else the IP; ":port" unless the port is 0 or absent. */
function hostname(ip: string, port: string, ns?: string, pod?: string, names?: string[]): string {
  let host = ip;
  if (pod) host = ns ? `${ns}/${pod}` : pod;
  else if (names?.length) host = names.join(',');
  return port !== '' && port !== '0' ? `${host}:${port}` : host;
}

export function hostNames(f: Flow): [string, string] {
  if (!f.IP) return ['', ''];
  const [sp, dp] = ports(f);
  return [
    hostname(f.IP.source, sp, f.source?.namespace, f.source?.pod_name, f.source_names),
    hostname(f.IP.destination, dp, f.destination?.namespace, f.destination?.pod_name, f.destination_names),
  ];
}

/** "(ID:7207)", or "(world)" for a reserved identity. */
export function fmtIdentity(id: number | undefined): string {
  const n = id ?? 0;
  const name = reservedIdentityName(n);
  return name !== undefined ? `(${name})` : `(ID:${n})`;
}

/** GetFlowType: "to-endpoint", "Policy denied", "policy-verdict:L3-L4 INGRESS", "pre-xlate-fwd", "http-request". */
export function flowType(f: Flow): string {
  if (f.l7) {
    const t = f.l7.type.toLowerCase();
    if (f.l7.http) return `http-${t}`;
    if (f.l7.dns) return `dns-${t} ${f.l7.dns.observation_source ?? ''}`;
    return `l7-${t}`;
  }
  const sub = f.event_type?.sub_type ?? 0;
  switch (f.event_type?.type) {
    case MSG_TRACE: return tracePointName(sub) ?? String(sub);
    case MSG_DROP: return dropReasonText(sub);
    case MSG_POLICY_VERDICT: return `policy-verdict:${policyMatchName(f.policy_match_type ?? 0)} ${f.traffic_direction ?? 'TRAFFIC_DIRECTION_UNKNOWN'}`;
    case MSG_TRACE_SOCK: return xlatePointNameOfEnum(f.sock_xlate_point ?? '') ?? f.sock_xlate_point ?? 'SOCK_XLATE_POINT_UNKNOWN';
  }
  return 'UNKNOWN';
}

/** The verdict column: ALLOWED/DENIED/AUDITED for policy verdicts. */
export function verdictText(f: Flow): string {
  if (f.event_type?.type === MSG_POLICY_VERDICT) {
    if (f.verdict === 'FORWARDED' || f.verdict === 'REDIRECTED') return 'ALLOWED';
    if (f.verdict === 'DROPPED' || f.verdict === 'ERROR') return 'DENIED';
    if (f.verdict === 'AUDIT') return 'AUDITED';
  }
  return f.verdict;
}

/** One compact line (without the newline): `TIME: SRC (ID) -> DST (ID) TYPE VERDICT (SUMMARY)`. */
export function compactLine(f: Flow, opts: { nodeName?: boolean } = {}): string {
  let [src, dst] = hostNames(f);
  let srcId = fmtIdentity(f.source?.identity);
  let dstId = fmtIdentity(f.destination?.identity);
  let arrow = '->';
  if (f.is_reply === undefined) arrow = '<>';
  else if (f.is_reply) {
    [src, dst] = [dst, src];
    [srcId, dstId] = [dstId, srcId];
    arrow = '<-';
  }
  const node = opts.nodeName ? ` [${f.node_name}]` : '';
  return `${stampMilli(f.time)}${node}: ${src} ${srcId} ${arrow} ${dst} ${dstId} ${flowType(f)} ${verdictText(f)} (${f.Summary})`;
}

/** Go's encoding/json escapes <, > and & in strings. */
export function goJson(v: unknown): string {
  return JSON.stringify(v).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** observer.GetFlowsResponse as jsonpb prints it. */
export function jsonpbLine(f: Flow): string {
  return goJson({ flow: f, node_name: f.node_name, time: f.time });
}

/** Go's text/tabwriter with minwidth 2, padding 3, no flags: every column but the last padded to its widest cell. */
export function tabwrite(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.slice(0, -1).forEach((c, i) => { widths[i] = Math.max(widths[i] ?? 0, Math.max(2, c.length + 3)); });
  return rows.map((r) => r.map((c, i) => (i < r.length - 1 ? c.padEnd(widths[i]) : c)).join('') + '\n').join('');
}

/** Formats a stream of flows (and lost-event notices) as `hubble observe -o FORMAT` does. */
export class FlowPrinter {
  private line = 0;
  private rows: string[][] = [];

  constructor(readonly format: OutputFormat, private readonly opts: { nodeName?: boolean } = {}) {}

  flow(f: Flow): string {
    const n = this.line++;
    switch (this.format) {
      case 'compact':
        return compactLine(f, this.opts) + '\n';
      case 'json':
      case 'jsonpb':
        return jsonpbLine(f) + '\n';
      case 'dict': {
        const [src, dst] = hostNames(f);
        return (n ? '------------\n' : '')
          + `  TIMESTAMP: ${stampMilli(f.time)}\n`
          + (this.opts.nodeName ? `       NODE: ${f.node_name}\n` : '')
          + `     SOURCE: ${src}\nDESTINATION: ${dst}\n       TYPE: ${flowType(f)}\n    VERDICT: ${verdictText(f)}\n    SUMMARY: ${f.Summary}\n`;
      }
      case 'table': {
        if (!this.rows.length) this.rows.push(['TIMESTAMP', ...(this.opts.nodeName ? ['NODE'] : []), 'SOURCE', 'DESTINATION', 'TYPE', 'VERDICT', 'SUMMARY']);
        const [src, dst] = hostNames(f);
        this.rows.push([stampMilli(f.time), ...(this.opts.nodeName ? [f.node_name] : []), src, dst, flowType(f), verdictText(f), f.Summary]);
        return '';
      }
    }
  }

  /** Flows a slow reader lost (a lost-events response). */
  lost(n: number, time = new Date().toISOString()): string {
    const source = 'OBSERVER_EVENTS_QUEUE';
    const k = this.line++;
    switch (this.format) {
      case 'compact':
        return `EVENTS LOST: ${source} CPU(0) ${n}\n`;
      case 'json':
      case 'jsonpb':
        return goJson({ lost_events: { source, num_events_lost: String(n), cpu: null }, time }) + '\n';
      case 'dict':
        return (k ? '------------\n' : '') + `  TIMESTAMP: \n     SOURCE: ${source}\n       TYPE: EVENTS LOST\n    VERDICT: \n    SUMMARY: CPU(0) - ${n}\n`;
      case 'table':
        if (!this.rows.length) this.rows.push(['TIMESTAMP', 'SOURCE', 'DESTINATION', 'TYPE', 'VERDICT', 'SUMMARY']);
        this.rows.push(['', source, '', 'EVENTS LOST', '', `CPU(0) - ${n}`]);
        return '';
    }
  }

  /** What is left to print at the end (the table, aligned over every row). */
  close(): string {
    const out = this.rows.length ? tabwrite(this.rows) : '';
    this.rows = [];
    return out;
  }
}

/** Go's %v of a uint64 with thousands separators (hubble's uint64Grouping). */
export function grouping(n: number): string {
  return String(Math.trunc(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

export const HEALTHCHECK_SERVER = 'localhost:4245';

/** `hubble status` (compact): healthcheck, flows, rate, nodes. */
export function statusText(s: HubbleStatus, server = HEALTHCHECK_SERVER): string {
  const ratio = s.maxFlows > 0 ? ` (${((s.currentFlows / s.maxFlows) * 100).toFixed(2)}%)` : '';
  let rate = s.flowsPerSecond > 0 ? s.flowsPerSecond.toFixed(2) : 'N/A';
  if (rate === 'N/A' && s.uptimeSeconds > 0) rate = (s.seenFlows / s.uptimeSeconds).toFixed(2);
  return `Healthcheck (via ${server}): Ok\n`
    + `Current/Max Flows: ${grouping(s.currentFlows)}/${grouping(s.maxFlows)}${ratio}\n`
    + `Flows/s: ${rate}\n`
    + `Connected Nodes: ${s.connectedNodes}/${s.totalNodes}\n`
    + (s.unavailableNodes?.length ? `Unavailable Nodes: ${s.unavailableNodes.length}\n${s.unavailableNodes.map((n) => `  - ${n}\n`).join('')}` : '');
}

/** A relay's node status note as hubble prints it on stderr (compact/table): `TIME [RELAY NODE]: 1 nodes are unavailable: k8s-w2`. */
export function nodeStatusText(n: { state: string; nodes: string[]; message?: string; node_name: string; time: string }): string {
  const prefix = `${stampMilli(n.time)} [${n.node_name}]`;
  const names = n.nodes.join(', ');
  switch (n.state) {
    case 'NODE_CONNECTED': return `${prefix}: Receiving flows from ${n.nodes.length} nodes: ${names}\n`;
    case 'NODE_UNAVAILABLE': return `${prefix}: ${n.nodes.length} nodes are unavailable: ${names}\n`;
    case 'NODE_GONE': return `${prefix}: ${n.nodes.length} nodes removed from cluster: ${names}\n`;
    case 'NODE_ERROR': return `${prefix}: Error ${JSON.stringify(n.message ?? '')} on ${n.nodes.length} nodes: ${names}\n`;
    default: return `${prefix}: unknown node status event: ${n.state}\n`;
  }
}
