// Hubble's flow filter engine (pkg/hubble/filters), used by `observe`/the flows API and by the flow
// exporter's allow/deny lists: a flow.FlowFilter (proto JSON names) is checked once and compiled into
// a predicate. Within a filter every set field must match, within a field any value may match; a
// flow passes when any allow filter matches (or there is none) and no deny filter does.
import type { Flow, FlowEndpoint } from '../flow.ts';
import { MSG_ACCESS_LOG } from '../../dataplane/vocab/message-types.ts';
import { cidrContains, tryParseCidr, tryParseIPv4 } from '../../wire/ip-text.ts';
import { parseLabelSelector, SelectorError, type SelectorRequirement } from '../../identity/label-selector.ts';

export class FilterError extends Error {}

export type FlowPredicate = (f: Flow) => boolean;

/** A filter with proto JSON field names (typed FlowFilter or parsed JSON); every field's type is checked. */
type FlowFilterJson = Record<string, unknown>;

export interface Requirement extends SelectorRequirement {
  source?: string;
}

/** A label selector: "k=v", "k==v", "k!=v", "k", "!k", "k in (a,b)", "k notin (a)"; "src:key" names the label source. */
export function parseSelector(sel: string): Requirement[] {
  let reqs: SelectorRequirement[];
  try {
    reqs = parseLabelSelector(sel);
  } catch (e) {
    if (e instanceof SelectorError) throw new FilterError(`invalid label selector "${sel}"`);
    throw e;
  }
  if (reqs.length === 0) throw new FilterError(`invalid label selector "${sel}"`);
  return reqs.map((r) => {
    const i = r.key.indexOf(':');
    return i < 0 ? r : { ...r, source: r.key.slice(0, i), key: r.key.slice(i + 1) };
  });
}

function labelsMatch(labels: string[] | undefined, reqs: Requirement[]): boolean {
  const parsed = (labels ?? []).map((l) => {
    const i = l.indexOf(':');
    const kv = i < 0 ? l : l.slice(i + 1);
    const eq = kv.indexOf('=');
    return { source: i < 0 ? '' : l.slice(0, i), key: eq < 0 ? kv : kv.slice(0, eq), value: eq < 0 ? '' : kv.slice(eq + 1) };
  });
  return reqs.every((r) => {
    const found = parsed.filter((l) => l.key === r.key && (r.source === undefined || r.source === 'any' || r.source === l.source));
    switch (r.op) {
      case 'exists': return found.length > 0;
      case '!exists': return found.length === 0;
      case '=': return found.some((l) => l.value === r.values[0]);
      case '!=': return !found.some((l) => l.value === r.values[0]);
      case 'in': return found.some((l) => r.values.includes(l.value));
      case 'notin': return !found.some((l) => r.values.includes(l.value));
    }
  });
}

function list<T>(key: string, v: unknown, what: string, ok: (x: unknown) => boolean): T[] {
  if (!Array.isArray(v) || !v.every(ok)) throw new FilterError(`flow filter: ${key} must be a list of ${what}`);
  return v as T[];
}
const strings = (key: string, v: unknown) => list<string>(key, v, 'strings', (x) => typeof x === 'string');
const regexps = (key: string, v: unknown) => strings(key, v).map((p) => {
  try {
    return new RegExp(p);
  } catch {
    throw new FilterError(`flow filter: ${key}: invalid regular expression ${p}`);
  }
});

/** Exact addresses or CIDRs ("10.0.0.0/8"). */
function ipMatcher(key: string, values: string[]): (ip: string | undefined) => boolean {
  const tests = values.map((v) => {
    if (!v.includes('/')) return (ip: string) => ip === v;
    const c = tryParseCidr(v);
    if (!c) throw new FilterError(`flow filter: ${key}: invalid CIDR ${v}`);
    return (ip: string) => {
      const a = tryParseIPv4(ip);
      return a !== undefined && cidrContains(c, a);
    };
  });
  return (ip) => ip !== undefined && tests.some((t) => t(ip));
}

/** k8s.ParseNamespaceName: "ns/prefix", "ns/" (every pod there), "/" (any), "prefix" (namespace default). */
function nameMatcher(key: string, values: string[]): (ns: string | undefined, name: string | undefined) => boolean {
  const pats = values.map((v) => {
    if (v === '') throw new FilterError(`flow filter: ${key}: a name must not be empty`);
    const slash = v.indexOf('/');
    return slash < 0 ? { ns: 'default', prefix: v } : { ns: v.slice(0, slash), prefix: v.slice(slash + 1) };
  });
  return (ns, name) => (!!ns || !!name) && pats.some((p) => (p.ns === '' || p.ns === ns) && (p.prefix === '' || (name ?? '').startsWith(p.prefix)));
}

function globToRegExp(pattern: string): RegExp {
  return new RegExp(`^${pattern.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^.]*')}$`);
}

/** Hubble's FQDN patterns: "*" stands for any characters within one DNS label; case and a final dot do not matter. */
function fqdnRegExp(pattern: string): RegExp {
  const body = pattern.toLowerCase().replace(/\.$/, '').split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[-a-z0-9_]*');
  return new RegExp(`^${body}\\.?$`);
}

const CLUSTER_LABEL = 'k8s:io.cilium.k8s.policy.cluster=';
const clusterOf = (ep: FlowEndpoint | undefined): string => ep?.labels.find((l) => l.startsWith(CLUSTER_LABEL))?.slice(CLUSTER_LABEL.length) ?? '';

function workloadMatcher(key: string, v: unknown): (ep: FlowEndpoint | undefined) => boolean {
  const ws = list<{ name?: string; kind?: string }>(key, v, '{name, kind}', (x) => typeof x === 'object' && x !== null);
  return (ep) => (ep?.workloads ?? []).some((w) => ws.some((f) => (!f.name || f.name === w.name) && (!f.kind || f.kind === w.kind)));
}

function protocols(f: Flow): string[] {
  const l4 = (f.l4 ?? {}) as Record<string, unknown>;
  const out: string[] = [];
  if (l4.TCP) out.push('tcp');
  if (l4.UDP) out.push('udp');
  if (l4.ICMPv4) out.push('icmp', 'icmpv4');
  if (l4.ICMPv6) out.push('icmp', 'icmpv6');
  if (l4.SCTP) out.push('sctp');
  if (f.l7?.http) out.push('http');
  if (f.l7?.dns) out.push('dns');
  if ((f.l7 as { kafka?: unknown } | undefined)?.kafka) out.push('kafka');
  return out;
}

function port(f: Flow, which: 'source_port' | 'destination_port'): number | undefined {
  const l4 = (f.l4 ?? {}) as Record<string, Record<string, number> | undefined>;
  return (l4.TCP ?? l4.UDP ?? l4.SCTP)?.[which];
}

function urlPath(url: string): string {
  try {
    return new URL(url, 'http://x').pathname;
  } catch {
    return url;
  }
}

type EventTypeFilter = { type?: number; match_sub_type?: boolean; sub_type?: number };

/** One field's predicate; unknown fields are an error (as Hubble's JSON decoding). */
function fieldPredicate(key: string, v: unknown, ff: FlowFilterJson): FlowPredicate {
  switch (key) {
    case 'uuid': { const s = new Set(strings(key, v)); return (f) => s.has(f.uuid); }
    case 'source_ip': { const m = ipMatcher(key, strings(key, v)); return (f) => m(f.IP?.source); }
    case 'destination_ip': { const m = ipMatcher(key, strings(key, v)); return (f) => m(f.IP?.destination); }
    case 'source_pod': { const m = nameMatcher(key, strings(key, v)); return (f) => m(f.source?.namespace, f.source?.pod_name); }
    case 'destination_pod': { const m = nameMatcher(key, strings(key, v)); return (f) => m(f.destination?.namespace, f.destination?.pod_name); }
    case 'source_service': { const m = nameMatcher(key, strings(key, v)); return (f) => { const s = (f as { source_service?: { name: string; namespace: string } }).source_service; return m(s?.namespace, s?.name); }; }
    case 'destination_service': { const m = nameMatcher(key, strings(key, v)); return (f) => m(f.destination_service?.namespace, f.destination_service?.name); }
    case 'source_label': { const sels = strings(key, v).map(parseSelector); return (f) => sels.some((r) => labelsMatch(f.source?.labels, r)); }
    case 'destination_label': { const sels = strings(key, v).map(parseSelector); return (f) => sels.some((r) => labelsMatch(f.destination?.labels, r)); }
    case 'source_fqdn': { const rs = strings(key, v).map(fqdnRegExp); return (f) => (f.source_names ?? []).some((n) => rs.some((r) => r.test(n.toLowerCase()))); }
    case 'destination_fqdn': { const rs = strings(key, v).map(fqdnRegExp); return (f) => (f.destination_names ?? []).some((n) => rs.some((r) => r.test(n.toLowerCase()))); }
    case 'source_cluster_name': { const s = new Set(strings(key, v)); return (f) => s.has(clusterOf(f.source)); }
    case 'destination_cluster_name': { const s = new Set(strings(key, v)); return (f) => s.has(clusterOf(f.destination)); }
    case 'source_workload': { const m = workloadMatcher(key, v); return (f) => m(f.source); }
    case 'destination_workload': { const m = workloadMatcher(key, v); return (f) => m(f.destination); }
    case 'source_identity': { const s = new Set(list<unknown>(key, v, 'numbers', (x) => Number.isInteger(Number(x))).map(Number)); return (f) => s.has(f.source?.identity); }
    case 'destination_identity': { const s = new Set(list<unknown>(key, v, 'numbers', (x) => Number.isInteger(Number(x))).map(Number)); return (f) => s.has(f.destination?.identity); }
    case 'source_port': { const s = new Set(strings(key, v).map(Number)); return (f) => s.has(port(f, 'source_port') ?? -1); }
    case 'destination_port': { const s = new Set(strings(key, v).map(Number)); return (f) => s.has(port(f, 'destination_port') ?? -1); }
    case 'traffic_direction': { const s = new Set(strings(key, v).map((x) => x.toUpperCase())); return (f) => s.has(f.traffic_direction ?? 'TRAFFIC_DIRECTION_UNKNOWN'); }
    case 'verdict': { const s = new Set(strings(key, v).map((x) => x.toUpperCase())); return (f) => s.has(f.verdict); }
    case 'drop_reason_desc': { const s = new Set(strings(key, v)); return (f) => f.drop_reason_desc !== undefined && s.has(f.drop_reason_desc); }
    case 'event_type': {
      const ets = list<EventTypeFilter>(key, v, '{type, match_sub_type, sub_type}', (x) => typeof x === 'object' && x !== null);
      return (f) => ets.some((t) => (!t.type || t.type === f.event_type?.type) && (!t.match_sub_type || (t.sub_type ?? 0) === (f.event_type?.sub_type ?? 0)));
    }
    case 'http_status_code': {
      const ps = strings(key, v);
      // With an event type filter, status codes only apply when it lets L7 events through.
      const l7Types = ff.event_type === undefined || (ff.event_type as EventTypeFilter[]).some((t) => t.type === MSG_ACCESS_LOG);
      return (f) => {
        const code = f.l7?.http?.code;
        return l7Types && !!code && ps.some((p) => (p.endsWith('+') ? String(code).startsWith(p.slice(0, -1)) : String(code) === p));
      };
    }
    case 'http_method': { const s = new Set(strings(key, v).map((x) => x.toUpperCase())); return (f) => !!f.l7?.http && s.has(f.l7.http.method.toUpperCase()); }
    case 'http_path': { const rs = regexps(key, v); return (f) => f.l7?.http?.url !== undefined && rs.some((r) => r.test(urlPath(f.l7!.http!.url))); }
    case 'http_url': { const rs = regexps(key, v); return (f) => f.l7?.http?.url !== undefined && rs.some((r) => r.test(f.l7!.http!.url)); }
    case 'protocol': { const s = new Set(strings(key, v).map((x) => x.toLowerCase())); return (f) => protocols(f).some((p) => s.has(p)); }
    case 'reply': { const s = list<unknown>(key, v, 'booleans', () => true).map(Boolean); return (f) => f.is_reply !== undefined && s.includes(f.is_reply); }
    case 'dns_query': { const rs = regexps(key, v); return (f) => !!f.l7?.dns && rs.some((r) => r.test(f.l7!.dns!.query)); }
    case 'tcp_flags': {
      const sets = list<Record<string, boolean>>(key, v, 'flag sets such as {"SYN":true}', (x) => typeof x === 'object' && x !== null);
      return (f) => {
        const fl = f.l4?.TCP?.flags;
        return !!fl && sets.some((set) => Object.entries(set).every(([k, want]) => !want || fl[k] === true));
      };
    }
    case 'node_name': {
      // "cluster/node": ciliary has one cluster, so only the node part is matched.
      const rs = strings(key, v).map((p) => globToRegExp(p.includes('/') ? p.slice(p.indexOf('/') + 1) || '*' : p));
      return (f) => rs.some((r) => r.test(f.node_name));
    }
    case 'ip_version': { const s = new Set(strings(key, v).map((x) => x.toLowerCase())); return (f) => !!f.IP && s.has(f.IP.ipVersion.toLowerCase()); }
    default:
      throw new FilterError(`flow filter: unknown field "${key}"`);
  }
}

/** One FlowFilter: every set field must match. */
export function compileFlowFilter(filter: object): FlowPredicate {
  const ff = filter as FlowFilterJson;
  const checks = Object.entries(ff)
    .filter(([, v]) => v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0))
    .map(([key, v]) => fieldPredicate(key, v, ff));
  return (f) => checks.every((c) => c(f));
}

export interface CompiledFilters {
  allow: FlowPredicate[];
  deny: FlowPredicate[];
}

/** Allow and deny lists (Hubble's whitelist and blacklist). */
export function compileFilterLists(allow: readonly object[], deny: readonly object[]): CompiledFilters {
  return { allow: allow.map(compileFlowFilter), deny: deny.map(compileFlowFilter) };
}

/** filters.Apply: allowed by the allow list (if any) and not denied. */
export function applyFilters(fs: CompiledFilters, f: Flow): boolean {
  if (fs.allow.length && !fs.allow.some((p) => p(f))) return false;
  return !fs.deny.some((p) => p(f));
}
