// Our Flow (protojson names, enum names) ↔ flow.Flow messages, and flow.FlowFilter messages → the flow
// predicate a GetFlows request asks for: the fields filter.ts implements go to its engine, a few more
// are matched here, and the rest are refused (a silently ignored filter would return wrong flows).
import type { Flow, FlowEndpoint } from '../../flow.ts';
import { FilterError, matchFilter, parseSelector, type FlowFilter } from '../filter.ts';
import { timestampOf, type EndpointMessage, type FlowFilterMessage, type FlowMessage, type Timestamp } from './proto.ts';

const CLUSTER_LABEL = 'k8s:io.cilium.k8s.policy.cluster=';

function endpointMessage(e: FlowEndpoint): EndpointMessage {
  const cluster = e.labels.find((l) => l.startsWith(CLUSTER_LABEL))?.slice(CLUSTER_LABEL.length);
  return {
    ID: e.ID, identity: e.identity, cluster_name: cluster, namespace: e.namespace, labels: e.labels, pod_name: e.pod_name, workloads: e.workloads,
  };
}

/** flow.Flow as the wire carries it (unset fields stay unset; is_reply is a BoolValue). */
export function flowMessage(f: Flow): FlowMessage {
  return {
    time: timestampOf(f.time), uuid: f.uuid, verdict: f.verdict, drop_reason: f.drop_reason, drop_reason_desc: f.drop_reason_desc,
    IP: f.IP, l4: f.l4, source: endpointMessage(f.source), destination: endpointMessage(f.destination), Type: f.Type, node_name: f.node_name,
    source_names: f.source_names, destination_names: f.destination_names, l7: f.l7, reply: f.is_reply, event_type: f.event_type,
    destination_service: f.destination_service, traffic_direction: f.traffic_direction, policy_match_type: f.policy_match_type,
    trace_observation_point: f.trace_observation_point, is_reply: f.is_reply === undefined ? undefined : { value: f.is_reply },
    sock_xlate_point: f.sock_xlate_point, Summary: f.Summary,
  };
}

/** GetFlowsRequest.field_mask: only the listed paths ("time", "source.pod_name", "l4") of a flow. */
export function maskFlow(m: FlowMessage, paths: string[]): FlowMessage {
  const out: Record<string, unknown> = {};
  for (const path of paths) {
    const keys = path.split('.');
    let from: unknown = m;
    for (const k of keys) from = from && typeof from === 'object' ? (from as Record<string, unknown>)[k] : undefined;
    if (from === undefined) continue;
    let to = out;
    for (const k of keys.slice(0, -1)) to = (to[k] ??= {}) as Record<string, unknown>;
    to[keys[keys.length - 1]] = from;
  }
  return out as FlowMessage;
}

/** protojson's Timestamp text: RFC 3339 in UTC with 0, 3, 6 or 9 fractional digits. */
export function rfc3339Of(t: Timestamp | undefined): string {
  const nanos = t?.nanos ?? 0;
  const base = new Date(Number(t?.seconds ?? 0) * 1000).toISOString().slice(0, 19);
  if (nanos === 0) return `${base}Z`;
  const digits = nanos % 1e6 === 0 ? 3 : nanos % 1e3 === 0 ? 6 : 9;
  return `${base}.${String(nanos).padStart(9, '0').slice(0, digits)}Z`;
}

function endpointOf(m: EndpointMessage | undefined): FlowEndpoint {
  const e: FlowEndpoint = { identity: m?.identity ?? 0, labels: m?.labels ?? [] };
  if (m?.ID) e.ID = m.ID;
  if (m?.namespace) e.namespace = m.namespace;
  if (m?.pod_name) e.pod_name = m.pod_name;
  if (m?.workloads?.length) e.workloads = m.workloads.map((w) => ({ name: w.name ?? '', kind: w.kind ?? '' }));
  return e;
}

/** A decoded message without the virtual field naming which member of a oneof is set. */
function withoutOneof<T extends object>(m: T, oneof: string): T {
  const copy = { ...m } as Record<string, unknown>;
  delete copy[oneof];
  return copy as T;
}

/** A flow.Flow from a server (ours or Cilium's) as our Flow, zero values omitted as protojson does. */
export function flowFromMessage(m: FlowMessage): Flow {
  const f: Flow = {
    time: rfc3339Of(m.time), uuid: m.uuid ?? '', verdict: (m.verdict ?? 'VERDICT_UNKNOWN') as Flow['verdict'], source: endpointOf(m.source),
    destination: endpointOf(m.destination), Type: (m.Type ?? 'L3_L4') as Flow['Type'], node_name: m.node_name ?? '',
    event_type: { type: m.event_type?.type ?? 0 }, Summary: m.Summary ?? '',
  };
  if (m.event_type?.sub_type) f.event_type.sub_type = m.event_type.sub_type;
  if (m.drop_reason) f.drop_reason = m.drop_reason;
  if (m.drop_reason_desc) f.drop_reason_desc = m.drop_reason_desc;
  if (m.IP) f.IP = { source: m.IP.source ?? '', destination: m.IP.destination ?? '', ipVersion: 'IPv4' };
  if (m.l4) f.l4 = withoutOneof(m.l4, 'protocol') as Flow['l4'];
  if (m.l7) f.l7 = withoutOneof(m.l7, 'record') as Flow['l7'];
  if (m.traffic_direction) f.traffic_direction = m.traffic_direction as Flow['traffic_direction'];
  if (m.trace_observation_point) f.trace_observation_point = m.trace_observation_point;
  if (m.is_reply) f.is_reply = m.is_reply.value ?? false;
  if (m.policy_match_type) f.policy_match_type = m.policy_match_type;
  if (m.sock_xlate_point) f.sock_xlate_point = m.sock_xlate_point;
  if (m.destination_service) f.destination_service = { name: m.destination_service.name ?? '', namespace: m.destination_service.namespace ?? '' };
  if (m.source_names?.length) f.source_names = m.source_names;
  if (m.destination_names?.length) f.destination_names = m.destination_names;
  return f;
}

/** GetNamespaces' list: each cluster/namespace once, sorted by cluster, then namespace. */
export function namespaceList(items: Iterable<{ cluster?: string; namespace?: string }>): Array<{ cluster: string; namespace: string }> {
  const seen = new Map<string, { cluster: string; namespace: string }>();
  for (const n of items) if (n.namespace) seen.set(`${n.cluster ?? ''}/${n.namespace}`, { cluster: n.cluster ?? '', namespace: n.namespace });
  return [...seen.values()].sort((a, b) => a.cluster.localeCompare(b.cluster) || a.namespace.localeCompare(b.namespace));
}

/** FlowFilter fields filter.ts matches, copied as they are (same names, enum names, TCPFlags keys). */
const ENGINE_FIELDS = [
  'uuid', 'source_ip', 'source_pod', 'source_label', 'source_identity', 'source_port', 'destination_ip', 'destination_pod',
  'destination_label', 'destination_identity', 'destination_port', 'verdict', 'drop_reason_desc', 'event_type', 'http_status_code',
  'http_method', 'http_path', 'http_url', 'protocol', 'reply', 'traffic_direction', 'node_name', 'tcp_flags',
] as const satisfies ReadonlyArray<keyof FlowFilter>;

/** Fields matched here (not by the shared engine). */
const LOCAL_FIELDS = ['ip_version', 'source_workload', 'destination_workload', 'source_fqdn', 'destination_fqdn', 'dns_query', 'source_cluster_name', 'destination_cluster_name'];

type Workload = { name?: string; kind?: string };
type FlowTest = (f: Flow) => boolean;

const listOf = <T>(msg: FlowFilterMessage, key: string): T[] => (Array.isArray(msg[key]) ? (msg[key] as T[]) : []);

function regexOf(field: string, re: string): RegExp {
  try {
    return new RegExp(re);
  } catch {
    throw new FilterError(`invalid ${field} regular expression: ${re}`);
  }
}

/** Hubble's FQDN patterns: "*" stands for any characters within one DNS label. */
function fqdnRegex(pattern: string): RegExp {
  const body = pattern.toLowerCase().replace(/\.$/, '').split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[-a-z0-9_]*');
  return new RegExp(`^${body}\\.?$`);
}

const workloadMatches = (have: FlowEndpoint['workloads'], want: Workload) =>
  (have ?? []).some((w) => (!want.name || w.name === want.name) && (!want.kind || w.kind === want.kind));

const clusterOf = (e: FlowEndpoint) => e.labels.find((l) => l.startsWith(CLUSTER_LABEL))?.slice(CLUSTER_LABEL.length) ?? '';

function localTests(msg: FlowFilterMessage): FlowTest[] {
  const tests: FlowTest[] = [];
  const add = <T>(key: string, test: (f: Flow, v: T) => boolean, prepare: (v: T) => T = (v) => v) => {
    const values = listOf<T>(msg, key).map(prepare);
    if (values.length) tests.push((f) => values.some((v) => test(f, v)));
  };
  add<string>('ip_version', (f, v) => (f.IP?.ipVersion ?? 'IP_NOT_USED') === v);
  add<Workload>('source_workload', (f, w) => workloadMatches(f.source.workloads, w));
  add<Workload>('destination_workload', (f, w) => workloadMatches(f.destination.workloads, w));
  const fqdn = (key: 'source_fqdn' | 'destination_fqdn', names: (f: Flow) => string[] | undefined) => {
    const res = listOf<string>(msg, key).map(fqdnRegex);
    if (res.length) tests.push((f) => res.some((re) => (names(f) ?? []).some((n) => re.test(n.toLowerCase()))));
  };
  fqdn('source_fqdn', (f) => f.source_names);
  fqdn('destination_fqdn', (f) => f.destination_names);
  const dns = listOf<string>(msg, 'dns_query').map((q) => regexOf('dns_query', q));
  if (dns.length) tests.push((f) => f.l7?.dns !== undefined && dns.some((re) => re.test(f.l7!.dns!.query)));
  add<string>('source_cluster_name', (f, c) => clusterOf(f.source) === c);
  add<string>('destination_cluster_name', (f, c) => clusterOf(f.destination) === c);
  return tests;
}

/** Checks what the engine would only find out per flow (bad regexes, selectors, status codes). */
function validate(ff: FlowFilter): void {
  for (const re of ff.http_path ?? []) regexOf('http_path', re);
  for (const re of ff.http_url ?? []) regexOf('http_url', re);
  for (const sel of [...(ff.source_label ?? []), ...(ff.destination_label ?? [])]) parseSelector(sel);
  for (const c of ff.http_status_code ?? []) {
    if (!/^[1-5][0-9]{2}$/.test(c) && !/^[1-5][0-9]?\+$/.test(c)) throw new FilterError(`invalid http status code filter: invalid status code prefix: "${c}"`);
  }
}

/** One FlowFilter message as a predicate; FilterError names a field ciliary cannot match. */
export function compileFilter(msg: FlowFilterMessage): FlowTest {
  for (const [key, value] of Object.entries(msg)) {
    const set = Array.isArray(value) ? value.length > 0 : key === 'experimental' ? (msg.experimental?.cel_expression?.length ?? 0) > 0 : value !== undefined;
    if (set && !(ENGINE_FIELDS as readonly string[]).includes(key) && !LOCAL_FIELDS.includes(key)) throw new FilterError(`flow filter field ${key} is not supported`);
  }
  const ff: FlowFilter = {};
  for (const key of ENGINE_FIELDS) {
    const values = listOf<never>(msg, key);
    if (values.length) (ff as Record<string, unknown>)[key] = values;
  }
  // Unset proto3 scalars arrive absent: an event type of 0 ("any") has no `type`.
  if (ff.event_type) ff.event_type = ff.event_type.map((t) => ({ type: t.type ?? 0, match_sub_type: t.match_sub_type ?? false, sub_type: t.sub_type ?? 0 }));
  validate(ff);
  const local = localTests(msg);
  return (f) => matchFilter(f, ff) && local.every((t) => t(f));
}

/** whitelist/blacklist as GetFlows defines them: any allow filter (or none) and no deny filter. */
export function compileFilters(whitelist: FlowFilterMessage[] = [], blacklist: FlowFilterMessage[] = []): FlowTest {
  const allow = whitelist.map(compileFilter);
  const deny = blacklist.map(compileFilter);
  return (f) => (allow.length === 0 || allow.some((t) => t(f))) && !deny.some((t) => t(f));
}
