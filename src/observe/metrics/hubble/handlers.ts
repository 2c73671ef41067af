// Hubble's metric handlers (pkg/hubble/metrics/*): each registers its families and turns flows
// into counter increments, with Hubble's label names, label order and values.
import { Counter, Histogram } from 'prom-client';
import type { AnyRegistry as Registry } from '../exposition.ts';
import type { Flow } from '../../flow.ts';
import { ContextOptions, option, type MetricSpec } from './options.ts';
import { dropReasonName, RCODE_NAMES } from './names.ts';
import { icmpv4TypeCode } from '../../../dataplane/vocab/icmp.ts';
import { tracePointName } from '../../../dataplane/vocab/trace-points.ts';

export interface Handler {
  readonly name: string;
  process(f: Flow): void;
}

// monitor API message types (pkg/monitor/api/types.go)
const MSG_DROP = 1;
const MSG_CAPTURE = 3;
const MSG_TRACE = 4;
const MSG_POLICY_VERDICT = 5;
const MSG_ACCESS_LOG = 129;

/** v1.FlowProtocol: the L7 protocol of an access-log flow, else the L4 protocol. */
export function flowProtocol(f: Flow): string {
  const t = f.event_type?.type;
  if (t === MSG_ACCESS_LOG) {
    if (f.l7?.dns) return 'DNS';
    if (f.l7?.http) return 'HTTP';
    if ((f.l7 as { kafka?: unknown } | undefined)?.kafka) return 'Kafka';
    return 'Unknown L7';
  }
  if (t === MSG_DROP || t === MSG_TRACE || t === MSG_POLICY_VERDICT || t === MSG_CAPTURE) {
    const l4 = f.l4 as Record<string, unknown> | undefined;
    if (l4?.TCP) return 'TCP';
    if (l4?.UDP) return 'UDP';
    if (l4?.ICMPv4) return 'ICMPv4';
    if (l4?.ICMPv6) return 'ICMPv6';
    if (l4?.SCTP) return 'SCTP';
    return 'Unknown L4';
  }
  return 'Unknown flow';
}

type Labels = Record<string, string>;

function counter(registry: Registry, name: string, help: string, labelNames: string[], exemplars = false): Counter<string> {
  return new Counter({ name, help, labelNames, registers: [registry], enableExemplars: exemplars });
}

/**
 * A counter of the per-packet flow handlers: increments add up in a map keyed by the label values
 * and reach prom-client when it is scraped, so a flow costs one key instead of prom-client's label
 * validation and hashing per increment.
 */
class FlowCounter {
  private readonly pending = new Map<string, { labels: Labels; n: number }>();

  constructor(registry: Registry, name: string, help: string, private readonly labelNames: string[]) {
    const pending = this.pending;
    new Counter({
      name, help, labelNames, registers: [registry],
      collect() {
        for (const p of pending.values()) {
          if (p.n === 0) continue;
          this.inc(p.labels, p.n);
          p.n = 0;
        }
      },
    });
  }

  inc(labels: Labels): void {
    let key = '';
    for (const name of this.labelNames) key += `${labels[name]}\0`;
    const p = this.pending.get(key);
    if (p) p.n++;
    else this.pending.set(key, { labels, n: 1 });
  }
}

class FlowHandler implements Handler {
  readonly name = 'flow';
  private readonly flows: FlowCounter;
  constructor(reg: Registry, private readonly ctx: ContextOptions) {
    this.flows = new FlowCounter(reg, 'hubble_flows_processed_total', 'Total number of flows processed', ['protocol', 'type', 'subtype', 'verdict', ...ctx.labelNames()]);
  }
  process(f: Flow): void {
    const t = f.event_type?.type;
    let type: string;
    let subtype = '';
    switch (t) {
      case MSG_ACCESS_LOG:
        type = 'L7';
        subtype = f.l7?.dns ? 'DNS' : f.l7?.http ? 'HTTP' : '';
        break;
      case MSG_DROP: type = 'Drop'; break;
      case MSG_CAPTURE: type = 'Capture'; break;
      case MSG_TRACE:
        type = 'Trace';
        subtype = tracePointName(f.event_type.sub_type ?? 0) ?? '';
        break;
      case MSG_POLICY_VERDICT: type = 'PolicyVerdict'; break;
      default:
        type = 'Unknown';
        subtype = String(t ?? 0);
    }
    this.flows.inc({ protocol: flowProtocol(f), type, subtype, verdict: f.verdict ?? 'VERDICT_UNKNOWN', ...this.ctx.labelValues(f) });
  }
}

class DropHandler implements Handler {
  readonly name = 'drop';
  private readonly drops: FlowCounter;
  constructor(reg: Registry, private readonly ctx: ContextOptions) {
    this.drops = new FlowCounter(reg, 'hubble_drop_total', 'Number of drops', [...ctx.labelNames(), 'reason', 'protocol']);
  }
  process(f: Flow): void {
    if (f.verdict !== 'DROPPED') return;
    this.drops.inc({ ...this.ctx.labelValues(f), reason: dropReasonName(f.drop_reason, f.drop_reason_desc), protocol: flowProtocol(f) });
  }
}

class TcpHandler implements Handler {
  readonly name = 'tcp';
  private readonly flags: FlowCounter;
  constructor(reg: Registry, private readonly ctx: ContextOptions) {
    this.flags = new FlowCounter(reg, 'hubble_tcp_flags_total', 'TCP flag occurrences', ['flag', 'family', ...ctx.labelNames()]);
  }
  process(f: Flow): void {
    const tcp = f.l4?.TCP;
    if (f.verdict !== 'FORWARDED' || !f.IP || !tcp?.flags) return;
    const fl = tcp.flags;
    if (!fl.FIN && !fl.SYN && !fl.RST) return;
    const ctx = this.ctx.labelValues(f);
    const family = f.IP.ipVersion ?? 'IPv4';
    if (fl.FIN) this.flags.inc({ flag: 'FIN', family, ...ctx });
    if (fl.SYN) this.flags.inc({ flag: fl.ACK ? 'SYN-ACK' : 'SYN', family, ...ctx });
    if (fl.RST) this.flags.inc({ flag: 'RST', family, ...ctx });
  }
}

const PORT_PROTOCOLS = ['TCP', 'UDP', 'SCTP'] as const;
const ICMP_PROTOCOLS = ['ICMPv4', 'ICMPv6'] as const;

class PortDistributionHandler implements Handler {
  readonly name = 'port-distribution';
  private readonly ports: FlowCounter;
  constructor(reg: Registry, private readonly ctx: ContextOptions) {
    this.ports = new FlowCounter(reg, 'hubble_port_distribution_total', 'Numbers of packets distributed by destination port', ['protocol', 'port', ...ctx.labelNames()]);
  }
  process(f: Flow): void {
    // Hubble skips replies and flows it cannot tell are not replies.
    if ((f.verdict !== 'FORWARDED' && f.verdict !== 'REDIRECTED') || !f.l4 || f.is_reply !== false) return;
    const ctx = this.ctx.labelValues(f);
    const l4 = f.l4 as Record<string, { destination_port?: number } | undefined>;
    for (const proto of PORT_PROTOCOLS) {
      const p = l4[proto];
      if (p) this.ports.inc({ protocol: proto, port: String(p.destination_port ?? 0), ...ctx });
    }
    for (const proto of ICMP_PROTOCOLS) if (l4[proto]) this.ports.inc({ protocol: proto, port: '0', ...ctx });
  }
}

class IcmpHandler implements Handler {
  readonly name = 'icmp';
  private readonly icmp: FlowCounter;
  constructor(reg: Registry, private readonly ctx: ContextOptions) {
    this.icmp = new FlowCounter(reg, 'hubble_icmp_total', 'Number of ICMP messages', ['family', 'type', ...ctx.labelNames()]);
  }
  process(f: Flow): void {
    const icmp = f.l4?.ICMPv4;
    if (!icmp) return;
    this.icmp.inc({ family: 'IPv4', type: icmpv4TypeCode(icmp.type, icmp.code), ...this.ctx.labelValues(f) });
  }
}

class DnsHandler implements Handler {
  readonly name = 'dns';
  private readonly queries: Counter<string>;
  private readonly responses: Counter<string>;
  private readonly responseTypes: Counter<string>;
  private readonly includeQuery: boolean;
  private readonly ignoreAAAA: boolean;
  constructor(reg: Registry, private readonly ctx: ContextOptions, opts: Map<string, string>) {
    this.includeQuery = option(opts, 'query') !== undefined;
    this.ignoreAAAA = option(opts, 'ignoreAAAA') !== undefined;
    const q = this.includeQuery ? ['query'] : [];
    const common = [...ctx.labelNames(), 'rcode', 'qtypes', 'ips_returned', ...q];
    this.queries = counter(reg, 'hubble_dns_queries_total', 'Number of DNS queries observed', common);
    this.responses = counter(reg, 'hubble_dns_responses_total', 'Number of DNS responses observed', common);
    this.responseTypes = counter(reg, 'hubble_dns_response_types_total', 'Number of DNS response types', [...ctx.labelNames(), 'type', 'qtypes', ...q]);
  }
  process(f: Flow): void {
    const dns = f.l7?.dns;
    if (!dns) return;
    const qtypesList = dns.qtypes ?? [];
    if (this.ignoreAAAA && qtypesList.length === 1 && qtypesList[0] === 'AAAA') return;
    const ctx = this.ctx.labelValues(f);
    const qtypes = qtypesList.join(',');
    const q: Labels = this.includeQuery ? { query: dns.query } : {};
    const ips = String(dns.ips?.length ?? 0);
    if (f.verdict === 'DROPPED') {
      this.queries.inc({ ...ctx, rcode: 'Policy denied', qtypes, ips_returned: ips, ...q });
    } else if (!f.is_reply) {
      this.queries.inc({ ...ctx, rcode: '', qtypes, ips_returned: ips, ...q });
    } else {
      this.responses.inc({ ...ctx, rcode: RCODE_NAMES[dns.rcode ?? 0] ?? '', qtypes, ips_returned: ips, ...q });
      for (const type of (dns as { rrtypes?: string[] }).rrtypes ?? []) this.responseTypes.inc({ ...ctx, type, qtypes, ...q });
    }
  }
}

/** http (v1: requests and responses) and httpV2 (one series per response, labels from the request's side). */
class HttpHandler implements Handler {
  readonly name: string;
  private readonly requests: Counter<string>;
  private readonly responses?: Counter<string>;
  private readonly duration: Histogram<string>;
  private readonly exemplars: boolean;
  constructor(reg: Registry, private readonly ctx: ContextOptions, opts: Map<string, string>, private readonly v2: boolean) {
    this.name = v2 ? 'httpV2' : 'http';
    this.exemplars = option(opts, 'exemplars') === 'true';
    const ln = ctx.labelNames();
    if (v2) {
      this.requests = counter(reg, 'hubble_http_requests_total', 'Count of HTTP requests', [...ln, 'method', 'protocol', 'status', 'reporter'], this.exemplars);
    } else {
      this.requests = counter(reg, 'hubble_http_requests_total', 'Count of HTTP requests', [...ln, 'method', 'protocol', 'reporter'], this.exemplars);
      this.responses = counter(reg, 'hubble_http_responses_total', 'Count of HTTP responses', [...ln, 'method', 'protocol', 'status', 'reporter'], this.exemplars);
    }
    this.duration = new Histogram({
      name: 'hubble_http_request_duration_seconds', help: 'Quantiles of HTTP request duration in seconds',
      labelNames: [...ln, 'method', 'reporter'], registers: [reg], enableExemplars: this.exemplars,
    });
  }

  process(f: Flow): void {
    const http = f.l7?.http;
    const type = f.l7?.type;
    if (!http || (type !== 'REQUEST' && type !== 'RESPONSE')) return;
    if (this.v2 && type !== 'RESPONSE') return;
    const reporter = f.traffic_direction === 'EGRESS' ? 'client' : f.traffic_direction === 'INGRESS' ? 'server' : 'unknown';
    const traceID = this.exemplars ? ((f as { trace_context?: { parent?: { trace_id?: string } } }).trace_context?.parent?.trace_id ?? '') : '';
    const ctx = this.ctx.labelValues(f, this.v2);
    const method = http.method ?? '';
    const protocol = http.protocol ?? '';
    const status = String(http.code ?? 0);
    const seconds = Number(f.l7?.latency_ns ?? 0) / 1e9;
    if (type === 'REQUEST') {
      this.inc(this.requests, { ...ctx, method, protocol, reporter }, traceID);
      return;
    }
    if (this.v2) this.inc(this.requests, { ...ctx, method, protocol, status, reporter }, traceID);
    else this.inc(this.responses!, { ...ctx, method, protocol, status, reporter }, traceID);
    const labels = { ...ctx, method, reporter };
    if (this.exemplars) this.duration.observe({ labels, value: seconds, exemplarLabels: traceID ? { traceID } : {} });
    else this.duration.observe(labels, seconds);
  }

  private inc(c: Counter<string>, labels: Labels, traceID: string): void {
    if (this.exemplars) c.inc({ labels, value: 1, exemplarLabels: traceID ? { traceID } : {} });
    else c.inc(labels);
  }
}

/** Builds the handler for one `hubble-metrics` entry; throws for unknown names and bad options. */
export function createHandler(reg: Registry, spec: MetricSpec): Handler {
  const ctx = new ContextOptions(spec.options);
  switch (spec.name) {
    case 'flow': return new FlowHandler(reg, ctx);
    case 'drop': return new DropHandler(reg, ctx);
    case 'tcp': return new TcpHandler(reg, ctx);
    case 'port-distribution': return new PortDistributionHandler(reg, ctx);
    case 'icmp': return new IcmpHandler(reg, ctx);
    case 'dns': return new DnsHandler(reg, ctx, spec.options);
    case 'http': return new HttpHandler(reg, ctx, spec.options, false);
    case 'httpV2': return new HttpHandler(reg, ctx, spec.options, true);
    default: throw new Error(`hubble-metrics: metric '${spec.name}' does not exist`);
  }
}
