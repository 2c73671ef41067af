// Hubble's flow filter flags (hubble/cmd/observe/flows_filter.go) turned into FlowFilters, matched by
// the one engine (filter-match.ts). `--not` sends the next flag to the deny list; `--pod X` is
// "from X OR to X" (two filters), `--from-pod X` one.
import type { Flow } from '../flow.ts';
import { DROP_REASON_ENUM_NAMES } from '../../dataplane/drop-reasons.ts';
import { MESSAGE_TYPE_NAMES, MSG_TRACE } from '../../dataplane/vocab/message-types.ts';
import { RESERVED_IDENTITY_NAMES, reservedIdentityByName } from '../../dataplane/vocab/reserved-identities.ts';
import { TCP_FLAG_NAMES } from '../../dataplane/vocab/tcp-flags.ts';
import { tracePointByName } from '../../dataplane/vocab/trace-points.ts';
import { applyFilters, compileFilterLists, FilterError, type CompiledFilters } from './filter-match.ts';

export { FilterError, parseSelector } from './filter-match.ts';

const VERDICTS = ['VERDICT_UNKNOWN', 'FORWARDED', 'DROPPED', 'ERROR', 'AUDIT', 'REDIRECTED', 'TRACED', 'TRANSLATED'];

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
  const reserved = reservedIdentityByName(v);
  if (reserved !== undefined) return reserved;
  if (/^\d+$/.test(v)) return Number(v);
  throw new FilterError(`invalid security identity, expected one of ${RESERVED_IDENTITY_NAMES.join(' ')} or a numeric value`);
}

function parseType(v: string): EventTypeFilter {
  const [name, sub] = v.split(/:(.*)/s, 2);
  let type = MESSAGE_TYPE_NAMES[name];
  if (type === undefined) {
    if (!/^\d+$/.test(name)) throw new FilterError(`unable to parse type '${name}', not a known type name and unable to parse as numeric value`);
    type = Number(name);
  }
  if (sub === undefined) return { type };
  const point = type === MSG_TRACE ? tracePointByName(sub) : undefined;
  if (point !== undefined) return { type, match_sub_type: true, sub_type: point };
  if (!/^\d+$/.test(sub)) throw new FilterError(`unable to parse event sub-type '${sub}', not a known sub-type name and unable to parse as numeric value`);
  return { type, match_sub_type: true, sub_type: Number(sub) };
}

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
  const filters = { whitelist: white.filters(), blacklist: blackUsed ? black.filters() : [] };
  compileFilterLists(filters.whitelist, filters.blacklist); // bad values (a CIDR, a selector) fail here, not per flow
  return filters;
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
      if (!DROP_REASON_ENUM_NAMES.includes(val)) throw new FilterError(`invalid --drop-reason-desc value: ${val}`);
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
        if (!TCP_FLAG_NAMES.includes(f.toUpperCase())) throw new FilterError(`unknown tcp flag: ${f}`);
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

const compiled = new WeakMap<FlowFilters, CompiledFilters>();

/** The filters compiled once (bad values throw FilterError); keep the object unchanged afterwards. */
export function compileFlowFilters(filters: FlowFilters): CompiledFilters {
  let c = compiled.get(filters);
  if (!c) {
    c = compileFilterLists(filters.whitelist, filters.blacklist);
    compiled.set(filters, c);
  }
  return c;
}

/** The allow list (any filter) and the deny list (none may match). */
export function matchFlow(f: Flow, filters: FlowFilters): boolean {
  return applyFilters(compileFlowFilters(filters), f);
}
