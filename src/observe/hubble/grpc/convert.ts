// Our Flow (protojson names, enum names) ↔ flow.Flow messages, and flow.FlowFilter messages → the flow
// predicate a GetFlows request asks for, through the one filter engine (unknown fields are refused:
// a silently ignored filter would return wrong flows).
import type { Flow, FlowEndpoint } from '../../flow.ts';
import { compileFlowFilter, FilterError } from '../filter-match.ts';
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

type FlowTest = (f: Flow) => boolean;

/** One FlowFilter message as a predicate of the shared engine; FilterError names a field it cannot match. */
export function compileFilter(msg: FlowFilterMessage): FlowTest {
  const ff: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(msg)) {
    if (key === 'experimental') {
      if ((msg.experimental?.cel_expression?.length ?? 0) > 0) throw new FilterError('flow filter field experimental is not supported');
    } else if (Array.isArray(value) ? value.length > 0 : value !== undefined) ff[key] = value;
  }
  // Unset proto3 scalars arrive absent: an event type of 0 ("any") has no `type`.
  const et = ff.event_type as Array<{ type?: number; match_sub_type?: boolean; sub_type?: number }> | undefined;
  if (et) ff.event_type = et.map((t) => ({ type: t.type ?? 0, match_sub_type: t.match_sub_type ?? false, sub_type: t.sub_type ?? 0 }));
  return compileFlowFilter(ff);
}

/** whitelist/blacklist as GetFlows defines them: any allow filter (or none) and no deny filter. */
export function compileFilters(whitelist: FlowFilterMessage[] = [], blacklist: FlowFilterMessage[] = []): FlowTest {
  const allow = whitelist.map(compileFilter);
  const deny = blacklist.map(compileFilter);
  return (f) => (allow.length === 0 || allow.some((t) => t(f))) && !deny.some((t) => t(f));
}
