// Hubble's flow filters: the CLI flags (hubble/cmd/observe/flows_filter.go) turned into FlowFilters, and
// the server-side matching (pkg/hubble/filters). Within one FlowFilter every set field must match and a
// field matches when any of its values does; a flow passes when any allow-list filter matches (or there
// is none) and no deny-list filter does. `--not` sends the next flag to the deny list; `--pod X` is
// "from X OR to X" (two filters), `--from-pod X` one.
import type { Flow } from '../flow.ts';
import { DROP_REASON_ENUM, MESSAGE_TYPE_NAMES, MSG_ACCESS_LOG, MSG_TRACE, RESERVED_BY_NAME, TRACE_POINTS, VERDICTS } from './names.ts';

export interface EventTypeFilter {
  type: number;
  match_sub_type?: boolean;
  sub_type?: number;
}

/** flow.FlowFilter, the fields ciliary implements (proto JSON names). */
export interface FlowFilter {
  uuid?: string[];
  source_ip?: string[];
  source_pod?: string[];
  source_label?: string[];
  source_identity?: number[];
  source_port?: string[];
  destination_ip?: string[];
  destination_pod?: string[];
  destination_label?: string[];
  destination_identity?: number[];
  destination_port?: string[];
  verdict?: string[];
  drop_reason_desc?: string[];
  event_type?: EventTypeFilter[];
  http_status_code?: string[];
  http_method?: string[];
  http_path?: string[];
  http_url?: string[];
  protocol?: string[];
  reply?: boolean[];
  traffic_direction?: string[];
  node_name?: string[];
  tcp_flags?: Array<Record<string, boolean>>;
}

export interface FlowFilters {
  whitelist: FlowFilter[];
  blacklist: FlowFilter[];
}

export class FilterError extends Error {}

/** Filter flags `hubble observe` takes (without the leading --); `not` negates the next one. */
export const FILTER_FLAGS = [
  'not', 'uuid', 'pod', 'from-pod', 'to-pod', 'namespace', 'from-namespace', 'to-namespace', 'all-namespaces',
  'ip', 'from-ip', 'to-ip', 'label', 'from-label', 'to-label', 'port', 'from-port', 'to-port',
  'identity', 'from-identity', 'to-identity', 'verdict', 'drop-reason-desc', 'type', 'protocol',
  'http-status', 'http-method', 'http-path', 'http-url', 'traffic-direction', 'tcp-flags', 'node-name', 'reply',
] as const;

/** Flags that may not be combined (flows_filter.go's conflict groups, for the flags ciliary has). */
const CONFLICTS = [
  ['from-ip', 'ip', 'from-namespace', 'namespace', 'all-namespaces'],
  ['from-ip', 'ip', 'from-pod', 'pod'],
  ['to-ip', 'ip', 'to-namespace', 'namespace', 'all-namespaces'],
  ['to-ip', 'ip', 'to-pod', 'pod'],
  ['to-pod', 'namespace', 'all-namespaces'],
  ['from-pod', 'namespace', 'all-namespaces'],
  ['label', 'from-label'], ['label', 'to-label'],
  ['port', 'to-port'], ['port', 'from-port'],
  ['identity', 'to-identity'], ['identity', 'from-identity'],
];

type ListKey = { [K in keyof FlowFilter]-?: FlowFilter[K] extends unknown[] | undefined ? K : never }[keyof FlowFilter];

class Tracker {
  left?: FlowFilter;
  right?: FlowFilter;
  ns: string[] = [];
  srcNs: string[] = [];
  dstNs: string[] = [];
  changed: string[] = [];

  private push<K extends ListKey>(f: FlowFilter, key: K, v: NonNullable<FlowFilter[K]>[number]): void {
    ((f[key] ??= [] as never) as unknown[]).push(v);
  }
  both<K extends ListKey>(key: K, v: NonNullable<FlowFilter[K]>[number]): void {
    this.push((this.left ??= {}), key, v);
    this.push((this.right ??= {}), key, v);
  }
  split<K extends ListKey, L extends ListKey>(lkey: K, rkey: L, v: NonNullable<FlowFilter[K]>[number] & NonNullable<FlowFilter[L]>[number]): void {
    this.push((this.left ??= {}), lkey, v);
    this.push((this.right ??= {}), rkey, v);
  }

  filters(): FlowFilter[] {
    if (!this.left && !this.right && !this.ns.length && !this.srcNs.length && !this.dstNs.length) return [];
    const left = (this.left ??= {});
    const right = (this.right ??= {});
    if (this.dstNs.length) { applyNs(this.dstNs, left, 'destination_pod'); applyNs(this.dstNs, right, 'destination_pod'); }
    if (this.srcNs.length) { applyNs(this.srcNs, left, 'source_pod'); applyNs(this.srcNs, right, 'source_pod'); }
    if (this.ns.length) { applyNs(this.ns, left, 'source_pod'); applyNs(this.ns, right, 'destination_pod'); }
    return JSON.stringify(left) === JSON.stringify(right) ? [left] : [left, right];
  }
}

/** --namespace: pod filters without a namespace get it; no pod filter becomes "NS/" (any pod there). */
function applyNs(ns: string[], f: FlowFilter, key: 'source_pod' | 'destination_pod'): void {
  const names = f[key]?.length ? f[key] : [''];
  const out: string[] = [];
  for (const n of names) {
    if (n.includes('/')) out.push(n);
    else for (const s of ns) out.push(`${s}/${n}`);
  }
  f[key] = out;
}

function parseIdentity(v: string): number {
  if (RESERVED_BY_NAME[v] !== undefined) return RESERVED_BY_NAME[v];
  if (/^\d+$/.test(v)) return Number(v);
  throw new FilterError(`invalid security identity, expected one of ${Object.keys(RESERVED_BY_NAME).filter((n) => n !== 'unknown').join(' ')} or a numeric value`);
}

function parseType(v: string): EventTypeFilter {
  const [name, sub] = v.split(/:(.*)/s, 2);
  let type = MESSAGE_TYPE_NAMES[name];
  if (type === undefined) {
    if (!/^\d+$/.test(name)) throw new FilterError(`unable to parse type '${name}', not a known type name and unable to parse as numeric value`);
    type = Number(name);
  }
  if (sub === undefined) return { type };
  if (type === MSG_TRACE && TRACE_POINTS.includes(sub)) return { type, match_sub_type: true, sub_type: TRACE_POINTS.indexOf(sub) };
  if (!/^\d+$/.test(sub)) throw new FilterError(`unable to parse event sub-type '${sub}', not a known sub-type name and unable to parse as numeric value`);
  return { type, match_sub_type: true, sub_type: Number(sub) };
}

const TCP_FLAGS = ['SYN', 'FIN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR', 'NS'];

/** Builds the allow and deny lists from filter flags in command-line order ([name, value] pairs). */
export function buildFilters(pairs: Array<[string, string]>): FlowFilters {
  const white = new Tracker();
  const black = new Tracker();
  let negate = false;
  let blackUsed = false;
  for (const [name, val] of pairs) {
    if (name === 'not') {
      if (negate) throw new FilterError('consecutive --not statements');
      negate = true;
      continue;
    }
    const t = negate ? black : white;
    if (negate) blackUsed = true;
    negate = false;
    const first = !t.changed.includes(name);
    if (first) t.changed.push(name);
    for (const group of CONFLICTS) {
      if (!group.includes(name)) continue;
      const other = group.find((g) => g !== name && t.changed.includes(g));
      if (other) throw new FilterError(`filters --${name} and --${other} cannot be combined`);
    }
    setFlag(t, name, val);
  }
  if (negate) throw new FilterError('trailing --not found in the arguments');
  return { whitelist: white.filters(), blacklist: blackUsed ? black.filters() : [] };
}

function setFlag(t: Tracker, name: string, val: string): void {
  switch (name) {
    case 'uuid': return t.both('uuid', val);
    case 'pod': return t.split('source_pod', 'destination_pod', val);
    case 'from-pod': return t.both('source_pod', val);
    case 'to-pod': return t.both('destination_pod', val);
    case 'namespace': t.ns.push(val); return;
    case 'from-namespace': t.srcNs.push(val); return;
    case 'to-namespace': t.dstNs.push(val); return;
    case 'all-namespaces': t.ns.push(''); return;
    case 'ip': return t.split('source_ip', 'destination_ip', val);
    case 'from-ip': return t.both('source_ip', val);
    case 'to-ip': return t.both('destination_ip', val);
    case 'label': return t.split('source_label', 'destination_label', val);
    case 'from-label': return t.both('source_label', val);
    case 'to-label': return t.both('destination_label', val);
    case 'port': return t.split('source_port', 'destination_port', val);
    case 'from-port': return t.both('source_port', val);
    case 'to-port': return t.both('destination_port', val);
    case 'identity': return t.split('source_identity', 'destination_identity', parseIdentity(val));
    case 'from-identity': return t.both('source_identity', parseIdentity(val));
    case 'to-identity': return t.both('destination_identity', parseIdentity(val));
    case 'verdict':
      if (!VERDICTS.includes(val)) throw new FilterError(`invalid --verdict value: ${val}`);
      return t.both('verdict', val);
    case 'drop-reason-desc':
      if (!Object.values(DROP_REASON_ENUM).includes(val)) throw new FilterError(`invalid --drop-reason-desc value: ${val}`);
      return t.both('drop_reason_desc', val);
    case 'type': return t.both('event_type', parseType(val));
    case 'protocol':
      if (!['icmp', 'icmpv4', 'icmpv6', 'tcp', 'udp', 'dns', 'http', 'kafka'].includes(val.toLowerCase())) throw new FilterError(`invalid protocol filter: unknown protocol: "${val}"`);
      return t.both('protocol', val.toLowerCase());
    case 'http-status':
      if (!/^[1-5][0-9]{2}$/.test(val) && !/^[1-5][0-9]?\+$/.test(val)) throw new FilterError(`invalid http status code filter: invalid status code prefix: "${val}"`);
      return t.both('http_status_code', val);
    case 'http-method': return t.both('http_method', val);
    case 'http-path':
    case 'http-url':
      try { new RegExp(val); } catch { throw new FilterError(`invalid --${name} regular expression: ${val}`); }
      return t.both(name === 'http-path' ? 'http_path' : 'http_url', val);
    case 'traffic-direction': {
      const d = val.toLowerCase();
      if (d !== 'ingress' && d !== 'egress') throw new FilterError(`${d}: invalid traffic direction, expected ingress or egress`);
      return t.both('traffic_direction', d.toUpperCase());
    }
    case 'tcp-flags': {
      const flags: Record<string, boolean> = {};
      for (const f of val.split(',')) {
        if (!TCP_FLAGS.includes(f.toUpperCase())) throw new FilterError(`unknown tcp flag: ${f}`);
        flags[f.toUpperCase()] = true;
      }
      return t.both('tcp_flags', flags);
    }
    case 'node-name': return t.both('node_name', val);
    case 'reply': return t.both('reply', val !== 'false');
    default:
      throw new FilterError(`unknown filter --${name}`);
  }
}

// ---- matching ----------------------------------------------------------------------------------

function ipMatches(ip: string | undefined, wanted: string): boolean {
  if (!ip) return false;
  const slash = wanted.indexOf('/');
  if (slash < 0) return ip === wanted;
  const bits = Number(wanted.slice(slash + 1));
  const a = ipU32(ip);
  const b = ipU32(wanted.slice(0, slash));
  if (a === undefined || b === undefined || !(bits >= 0 && bits <= 32)) return false;
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return ((a & mask) >>> 0) === ((b & mask) >>> 0);
}

function ipU32(ip: string): number | undefined {
  const p = ip.split('.');
  if (p.length !== 4 || p.some((x) => !/^\d{1,3}$/.test(x) || Number(x) > 255)) return undefined;
  return ((Number(p[0]) << 24) | (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3])) >>> 0;
}

/** k8s.ParseNamespaceName: "ns/prefix", "prefix" (namespace default), "ns/" (every pod in ns). */
function podMatches(ns: string | undefined, pod: string | undefined, wanted: string): boolean {
  if (!ns && !pod) return false;
  const slash = wanted.indexOf('/');
  const [wns, prefix] = slash < 0 ? ['default', wanted] : [wanted.slice(0, slash), wanted.slice(slash + 1)];
  if (wns === '' && prefix === '') return true; // --all-namespaces: any pod
  return (wns === '' || wns === ns) && (prefix === '' || (pod ?? '').startsWith(prefix));
}

interface Requirement {
  source?: string;
  key: string;
  op: 'exists' | '!exists' | '=' | '!=' | 'in' | 'notin';
  values: string[];
}

/** A label selector: "k=v", "k==v", "k!=v", "k", "!k", "k in (a,b)", "k notin (a)"; "src:key" names the label source. */
export function parseSelector(sel: string): Requirement[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of sel) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) { parts.push(cur); cur = ''; } else cur += ch;
  }
  parts.push(cur);
  const splitKey = (k: string): { source?: string; key: string } => {
    const i = k.indexOf(':');
    return i < 0 ? { key: k } : { source: k.slice(0, i), key: k.slice(i + 1) };
  };
  return parts.map((raw) => {
    const s = raw.trim();
    let m = /^(\S+?)\s+(in|notin)\s*\((.*)\)$/.exec(s);
    if (m) return { ...splitKey(m[1]), op: m[2] as 'in' | 'notin', values: m[3].split(',').map((v) => v.trim()) };
    m = /^([^=!\s]+)\s*(==|=|!=)\s*(.*)$/.exec(s);
    if (m) return { ...splitKey(m[1]), op: m[2] === '!=' ? '!=' : '=', values: [m[3].trim()] };
    if (s.startsWith('!')) return { ...splitKey(s.slice(1).trim()), op: '!exists', values: [] };
    if (!s || /\s/.test(s)) throw new FilterError(`invalid label selector "${sel}"`);
    return { ...splitKey(s), op: 'exists', values: [] };
  });
}

function labelsMatch(labels: string[] | undefined, reqs: Requirement[]): boolean {
  const parsed = (labels ?? []).map((l) => {
    const i = l.indexOf(':');
    const src = i < 0 ? '' : l.slice(0, i);
    const kv = i < 0 ? l : l.slice(i + 1);
    const eq = kv.indexOf('=');
    return { source: src, key: eq < 0 ? kv : kv.slice(0, eq), value: eq < 0 ? '' : kv.slice(eq + 1) };
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

function ports(f: Flow): [number | undefined, number | undefined] {
  const l4 = f.l4?.TCP ?? f.l4?.UDP;
  return l4 ? [l4.source_port, l4.destination_port] : [undefined, undefined];
}

function urlPath(url: string): string {
  try {
    return new URL(url, 'http://x').pathname;
  } catch {
    return url;
  }
}

const any = <T>(list: T[] | undefined, pred: (v: T) => boolean): boolean => list === undefined || list.length === 0 || list.some(pred);

/** Whether one FlowFilter matches the flow (every set field). */
export function matchFilter(f: Flow, ff: FlowFilter): boolean {
  const [sport, dport] = ports(f);
  const http = f.l7?.http;
  return any(ff.uuid, (u) => u === f.uuid)
    && any(ff.source_ip, (ip) => ipMatches(f.IP?.source, ip))
    && any(ff.destination_ip, (ip) => ipMatches(f.IP?.destination, ip))
    && any(ff.source_pod, (p) => podMatches(f.source?.namespace, f.source?.pod_name, p))
    && any(ff.destination_pod, (p) => podMatches(f.destination?.namespace, f.destination?.pod_name, p))
    && any(ff.source_label, (s) => labelsMatch(f.source?.labels, parseSelector(s)))
    && any(ff.destination_label, (s) => labelsMatch(f.destination?.labels, parseSelector(s)))
    && any(ff.source_identity, (id) => f.source?.identity === id)
    && any(ff.destination_identity, (id) => f.destination?.identity === id)
    && any(ff.source_port, (p) => sport !== undefined && String(sport) === p)
    && any(ff.destination_port, (p) => dport !== undefined && String(dport) === p)
    && any(ff.verdict, (v) => f.verdict === v)
    && any(ff.drop_reason_desc, (d) => f.drop_reason_desc === d)
    && any(ff.event_type, (t) => (t.type === 0 || t.type === f.event_type.type) && (!t.match_sub_type || (t.sub_type ?? 0) === (f.event_type.sub_type ?? 0)))
    && any(ff.protocol, (p) => protocolMatches(f, p))
    && any(ff.http_status_code, (c) => {
      if (!http?.code) return false;
      const code = String(http.code).padStart(3, '0');
      return c.endsWith('+') ? code.startsWith(c.slice(0, -1)) : code === c;
    })
    && any(ff.http_method, (m) => http !== undefined && http.method.toLowerCase() === m.toLowerCase())
    && any(ff.http_path, (re) => http !== undefined && new RegExp(re).test(urlPath(http.url)))
    && any(ff.http_url, (re) => http !== undefined && new RegExp(re).test(http.url))
    && any(ff.reply, (r) => f.is_reply !== undefined && f.is_reply === r)
    && any(ff.traffic_direction, (d) => f.traffic_direction === d)
    && any(ff.node_name, (n) => globMatch(f.node_name, n))
    && any(ff.tcp_flags, (want) => {
      const have = f.l4?.TCP?.flags ?? {};
      return Object.keys(want).every((k) => !want[k] || have[k]);
    })
    && (!ff.http_status_code?.length || ff.event_type === undefined || ff.event_type.some((t) => t.type === MSG_ACCESS_LOG));
}

function protocolMatches(f: Flow, p: string): boolean {
  switch (p) {
    case 'icmp': case 'icmpv4': return f.l4?.ICMPv4 !== undefined;
    case 'icmpv6': return false;
    case 'tcp': return f.l4?.TCP !== undefined;
    case 'udp': return f.l4?.UDP !== undefined;
    case 'http': return f.l7?.http !== undefined;
    case 'dns': return f.l7?.dns !== undefined;
    default: return false;
  }
}

function globMatch(s: string, pattern: string): boolean {
  const re = new RegExp(`^${pattern.split('*').map((x) => x.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return re.test(s);
}

/** The allow list (any filter) and the deny list (none may match). */
export function matchFlow(f: Flow, filters: FlowFilters): boolean {
  if (filters.whitelist.length && !filters.whitelist.some((ff) => matchFilter(f, ff))) return false;
  return !filters.blacklist.some((ff) => matchFilter(f, ff));
}
