// Hubble metrics configuration: the `hubble-metrics` list ("dns drop httpV2:exemplars=true;
// labelsContext=source_ip,destination_ip") and the context options that add source/destination labels.
import type { Flow, FlowEndpoint } from '../../flow.ts';

export const HANDLER_NAMES = ['dns', 'drop', 'tcp', 'flow', 'port-distribution', 'icmp', 'http', 'httpV2'] as const;
export type HandlerName = (typeof HANDLER_NAMES)[number];

export interface MetricSpec {
  name: string;
  /** Option keys as written (lookups are case-insensitive); flag options ("query") have ''. */
  options: Map<string, string>;
}

/**
 * Parses the handler list. Entries are separated by whitespace (Cilium's config map) or commas
 * (a flag); a comma inside an option value (labelsContext=a,b) stays with its option, since the
 * text after it does not name a handler.
 */
export function parseMetricList(s: string): MetricSpec[] {
  const entries: string[] = [];
  for (const token of s.split(/\s+/).filter(Boolean)) {
    for (const part of token.split(',')) {
      const name = part.split(':')[0];
      const startsHandler = entries.length === 0 || (HANDLER_NAMES as readonly string[]).includes(name) || part.includes(':') || !lastHasOptions(entries);
      if (startsHandler || part === '') entries.push(part);
      else entries[entries.length - 1] += `,${part}`;
    }
  }
  const out: MetricSpec[] = [];
  for (const e of entries.filter(Boolean)) {
    const colon = e.indexOf(':');
    const name = colon < 0 ? e : e.slice(0, colon);
    const options = new Map<string, string>();
    if (colon >= 0) {
      for (const opt of e.slice(colon + 1).split(';').filter(Boolean)) {
        const eq = opt.indexOf('=');
        if (eq < 0) options.set(opt, '');
        else options.set(opt.slice(0, eq), opt.slice(eq + 1));
      }
    }
    const existing = out.find((m) => m.name === name);
    if (existing) throw new Error(`hubble-metrics: metric "${name}" is configured twice`);
    out.push({ name, options });
  }
  return out;
}

function lastHasOptions(entries: string[]): boolean {
  const last = entries[entries.length - 1];
  return last !== undefined && last.includes('=');
}

export function option(opts: Map<string, string>, key: string): string | undefined {
  for (const [k, v] of opts) if (k.toLowerCase() === key.toLowerCase()) return v;
  return undefined;
}

// ---- context options (pkg/hubble/metrics/api/context.go) ----------------------------------------

/** labelsContext labels, in the order they appear on a metric. */
export const CONTEXT_LABELS = [
  'source_ip', 'source_pod', 'source_namespace', 'source_workload', 'source_app',
  'destination_ip', 'destination_pod', 'destination_namespace', 'destination_workload', 'destination_app',
  'traffic_direction',
] as const;

const IDENTIFIERS = ['identity', 'namespace', 'pod', 'pod-short', 'pod-name', 'dns', 'ip', 'reserved-identity', 'workload-name', 'app'] as const;
type Identifier = (typeof IDENTIFIERS)[number];

const APP_LABELS = ['k8s:app.kubernetes.io/name', 'k8s:k8s-app', 'k8s:app'];
const SHORT_POD = /^(.+?)(-[a-z0-9]+){1,2}$/;

function parseIdentifiers(key: string, v: string): Identifier[] {
  return v.split('|').map((s) => {
    const id = s.toLowerCase();
    if (!(IDENTIFIERS as readonly string[]).includes(id)) throw new Error(`hubble-metrics: ${key}: unknown context '${s}'`);
    return id as Identifier;
  });
}

function appOf(labels: string[] | undefined): string {
  for (const l of labels ?? []) {
    for (const app of APP_LABELS) {
      if (l.startsWith(`${app}=`) && l.length > app.length + 1) return l.slice(app.length + 1);
    }
  }
  return '';
}

function reservedOf(labels: string[] | undefined): string {
  const ls = labels ?? [];
  if (ls.includes('reserved:kube-apiserver')) return 'reserved:kube-apiserver';
  return ls.find((l) => l.startsWith('reserved:')) ?? '';
}

function directionValue(f: Flow): string {
  const d = f.traffic_direction;
  return d === 'INGRESS' ? 'ingress' : d === 'EGRESS' ? 'egress' : 'unknown';
}

function identifierValue(id: Identifier, f: Flow, source: boolean): string {
  const ep: FlowEndpoint | undefined = source ? f.source : f.destination;
  switch (id) {
    case 'namespace': return ep?.namespace ?? '';
    case 'identity': return (ep?.labels ?? []).join(',');
    case 'pod': return ep?.namespace ? `${ep.namespace}/${ep.pod_name ?? ''}` : (ep?.pod_name ?? '');
    case 'pod-short': {
      const short = (ep?.pod_name ?? '').replace(SHORT_POD, '$1');
      return ep?.namespace ? `${ep.namespace}/${short}` : short;
    }
    case 'pod-name': return ep?.pod_name ?? '';
    case 'dns': return ((source ? f.source_names : f.destination_names) ?? []).join(',');
    case 'ip': return (source ? f.IP?.source : f.IP?.destination) ?? '';
    case 'reserved-identity': return reservedOf(ep?.labels);
    case 'workload-name': return ep?.workloads?.[0]?.name ?? '';
    case 'app': return appOf(ep?.labels);
  }
}

/** The extra labels of a handler without context options (shared: callers only spread it). */
const NO_LABELS: Readonly<Record<string, string>> = Object.freeze({});

/** The identifiers for the flow's direction: its ingress or egress list when configured, else the common one. */
function pickContext(dir: Flow['traffic_direction'], all?: Identifier[], ing?: Identifier[], eg?: Identifier[]): Identifier[] {
  return (ing && dir === 'INGRESS' ? ing : eg && dir === 'EGRESS' ? eg : all) ?? [];
}

export class ContextOptions {
  private readonly labels = new Set<string>();
  private source?: Identifier[];
  private sourceIngress?: Identifier[];
  private sourceEgress?: Identifier[];
  private destination?: Identifier[];
  private destinationIngress?: Identifier[];
  private destinationEgress?: Identifier[];
  /** No context option: every flow gets the same (empty) extra labels. */
  private readonly none: boolean;

  constructor(opts: Map<string, string>) {
    for (const [k, v] of opts) {
      switch (k.toLowerCase()) {
        case 'labelscontext':
          for (const l of v.split(',')) {
            if (!(CONTEXT_LABELS as readonly string[]).includes(l)) throw new Error(`hubble-metrics: invalid labelsContext value: ${l}`);
            this.labels.add(l);
          }
          break;
        case 'sourcecontext': this.source = parseIdentifiers(k, v); break;
        case 'sourceingresscontext': this.sourceIngress = parseIdentifiers(k, v); break;
        case 'sourceegresscontext': this.sourceEgress = parseIdentifiers(k, v); break;
        case 'destinationcontext': this.destination = parseIdentifiers(k, v); break;
        case 'destinationingresscontext': this.destinationIngress = parseIdentifiers(k, v); break;
        case 'destinationegresscontext': this.destinationEgress = parseIdentifiers(k, v); break;
      }
    }
    this.none = !this.labels.size && !this.source && !this.destination;
  }

  /** Extra label names, in Hubble's order: labelsContext ones, then source, then destination. */
  labelNames(): string[] {
    const out: string[] = CONTEXT_LABELS.filter((l) => this.labels.has(l));
    if (this.source) out.push('source');
    if (this.destination) out.push('destination');
    return out;
  }

  /** Values for labelNames(); invert swaps source and destination (response flows, httpV2). */
  labelValues(f: Flow, invert = false): Record<string, string> {
    if (this.none) return NO_LABELS;
    const out: Record<string, string> = {};
    if (this.labels.size) {
      const src = invert ? f.destination : f.source;
      const dst = invert ? f.source : f.destination;
      const srcIP = (invert ? f.IP?.destination : f.IP?.source) ?? '';
      const dstIP = (invert ? f.IP?.source : f.IP?.destination) ?? '';
      for (const l of CONTEXT_LABELS) {
        if (!this.labels.has(l)) continue;
        let v = '';
        switch (l) {
          case 'source_ip': v = srcIP; break;
          case 'source_pod': v = src?.pod_name ?? ''; break;
          case 'source_namespace': v = src?.namespace ?? ''; break;
          case 'source_workload': v = src?.workloads?.[0]?.name ?? ''; break;
          case 'source_app': v = appOf(src?.labels); break;
          case 'destination_ip': v = dstIP; break;
          case 'destination_pod': v = dst?.pod_name ?? ''; break;
          case 'destination_namespace': v = dst?.namespace ?? ''; break;
          case 'destination_workload': v = dst?.workloads?.[0]?.name ?? ''; break;
          case 'destination_app': v = appOf(dst?.labels); break;
          case 'traffic_direction': v = directionValue(f); break;
        }
        out[l] = v;
      }
    }
    const dir = f.traffic_direction;
    let s = '';
    for (const id of pickContext(dir, this.source, this.sourceIngress, this.sourceEgress)) if ((s = identifierValue(id, f, true))) break;
    let d = '';
    for (const id of pickContext(dir, this.destination, this.destinationIngress, this.destinationEgress)) if ((d = identifierValue(id, f, false))) break;
    if (invert) [s, d] = [d, s];
    if (this.source) out.source = s;
    if (this.destination) out.destination = d;
    return out;
  }
}
