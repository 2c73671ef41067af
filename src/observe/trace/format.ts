// Turns a tracer's numeric steps into text (off the hot path): one PacketTraceRecord per packet.
import { CALL_NAMES } from '../../dataplane/calls.ts';
import { CTX_ACT_QUEUED, CTX_ACT_REDIRECT } from '../../dataplane/context.ts';
import { DROP_UNROUTABLE, dropReasonText } from '../../dataplane/drop-reasons.ts';
import { EVENT_DROP, EVENT_POLICY_VERDICT, EVENT_TRACE, EVENT_TRACE_SOCK } from '../../dataplane/events.ts';
import { ctStateName } from '../../dataplane/vocab/ct-states.ts';
import { icmpv4TypeName } from '../../dataplane/vocab/icmp.ts';
import { policyMatchName } from '../../dataplane/vocab/policy-match.ts';
import { identityName } from '../../dataplane/vocab/reserved-identities.ts';
import { tcpFlagsInSummaryOrder } from '../../dataplane/vocab/tcp-flags.ts';
import { tracePointName, xlatePointName } from '../../dataplane/vocab/trace-points.ts';
import { callsMapName } from '../../maps/cilium/calls.ts';
import { ENDPOINTS_MAP } from '../../maps/cilium/lxc.ts';
import { IPCACHE_MAP } from '../../maps/cilium/ipcache.ts';
import { formatIPv4 } from '../../wire/ip-text.ts';
import { PROGRAMS } from '../../dataplane/programs/index.ts';
import { CT_ANY_MAP, CT_TCP_MAP, CT_FLAG_NAMES, TUPLE_F_IN, TUPLE_F_OUT, TUPLE_F_SERVICE } from '../../maps/cilium/ct.ts';
import { LB_BACKENDS_MAP, LB_REVNAT_MAP, LB_SERVICES_MAP } from '../../maps/cilium/lb.ts';
import { policyMapName } from '../../maps/cilium/policy.ts';
import { PROXY_MAP, PROXY_UPSTREAM_MAP } from '../../maps/cilium/proxy.ts';
import * as T from './tracer.ts';
import type { PacketTraceRecord } from './types.ts';

export interface TraceFormatOptions {
  /** "default/client" for an endpoint id; undefined when unknown. */
  describeEndpoint?: (id: number) => string | undefined;
  hostEp?: number;
}


export const protoName = (p: number): string => (p === 6 ? 'TCP' : p === 17 ? 'UDP' : p === 1 ? 'ICMP' : p === 132 ? 'SCTP' : p === 0 ? 'ANY' : `proto ${p}`);
const dirName = (d: number): string => (d === TUPLE_F_OUT ? 'OUT' : d === TUPLE_F_IN ? 'IN' : d === TUPLE_F_SERVICE ? 'SERVICE' : `dir ${d}`);
const ctMap = (proto: number): string => (proto === 6 ? CT_TCP_MAP : CT_ANY_MAP);
const addrPort = (a: number, p: number): string => (p < 0 ? formatIPv4(a) : `${formatIPv4(a)}:${p}`);

/** "TCP OUT 172.20.0.3:40000 -> 172.20.0.5:80" (ICMP: the echo id instead of ports). */
export function ctTuple(proto: number, dir: number, s: number, d: number, sp: number, dp: number): string {
  if (proto === 6 || proto === 17 || proto === 132) return `${protoName(proto)} ${dirName(dir)} ${formatIPv4(s)}:${sp} -> ${formatIPv4(d)}:${dp}`;
  return `${protoName(proto)} ${dirName(dir)} ${formatIPv4(s)} -> ${formatIPv4(d)}${proto === 1 ? ` id=${sp}` : ''}`;
}

function ctFlags(flags: number): string {
  const names = CT_FLAG_NAMES.filter(([bit]) => flags & bit).map(([, n]) => n);
  return names.length ? ` flags=${names.join('|')}` : '';
}

const createResult = (r: number): string => (r === 0 ? 'failed (map full)' : r === 2 ? 'inserted, evicted the least recently used entry' : 'inserted');

function endpointText(id: number, o: TraceFormatOptions): string {
  const name = o.describeEndpoint?.(id);
  if (o.hostEp !== undefined && id === o.hostEp) return `cilium_host (endpoint ${id})`;
  return name ? `endpoint ${id} (${name})` : `endpoint ${id}`;
}

function header(x: Float64Array, i: number, o: TraceFormatOptions): string {
  const [ep, s, d, sp, dp, proto, len, extra, time] = [x[i + 1], x[i + 2], x[i + 3], x[i + 4], x[i + 5], x[i + 6], x[i + 7], x[i + 8], x[i + 9]];
  let tuple: string;
  if (proto === 6) {
    const f = tcpFlagsInSummaryOrder(extra).join(',');
    tuple = `${formatIPv4(s)}:${sp} -> ${formatIPv4(d)}:${dp} TCP${f ? ` ${f}` : ''}`;
  } else if (proto === 17) {
    tuple = `${formatIPv4(s)}:${sp} -> ${formatIPv4(d)}:${dp} UDP`;
  } else if (proto === 1) {
    const t = extra - 256;
    tuple = `${formatIPv4(s)} -> ${formatIPv4(d)} ICMP ${icmpv4TypeName(t) ?? `type ${t}`}`;
  } else {
    tuple = `${formatIPv4(s)} -> ${formatIPv4(d)} ${protoName(proto)}`;
  }
  return `${new Date(time).toISOString()} from ${endpointText(ep, o)} ${tuple} length ${len}`;
}

const HOOKS: Record<number, string> = {
  [T.HOOK_FROM_CONTAINER]: 'cil_from_container',
  [T.HOOK_FROM_HOST]: 'cil_from_host',
  [T.HOOK_TO_CONTAINER]: 'cil_to_container',
  [T.HOOK_TO_HOST]: 'cil_to_host',
};

function policyLookups(hits: number): string {
  const names = ['L3+L4', 'L3+any-proto', 'L4-only', 'any'];
  return names.map((n, k) => `${n} ${hits & (1 << (4 + k)) ? 'deny' : hits & (1 << k) ? 'hit' : 'miss'}`).join(', ');
}

function step(x: Float64Array, i: number, o: TraceFormatOptions): string {
  const op = x[i];
  const a = x[i + 1];
  const b = x[i + 2];
  const c = x[i + 3];
  const d = x[i + 4];
  const e = x[i + 5];
  const f = x[i + 6];
  const g = x[i + 7];
  const h = x[i + 8];
  const k = x[i + 9];
  switch (op) {
    case T.OP_HOOK:
      return `${HOOKS[a] ?? `hook ${a}`} (${endpointText(b, o)})`;
    case T.OP_TAIL_CALL: {
      const slot = `${CALL_NAMES[a] ?? `slot ${a}`}`;
      const where = `${callsMapName(c)}[${a}]`;
      if (e) return `${slot} → refused: tail call ${d} exceeds MAX_TAIL_CALLS (${where})`;
      if (b === 0 || b > PROGRAMS.length) return `${slot} → empty slot (${where})`;
      return `${slot} ${PROGRAMS[b - 1].name} (${where}, tail call ${d})`;
    }
    case T.OP_LXC:
      return `${ENDPOINTS_MAP} lookup ${formatIPv4(a)} → ${b ? `hit id=${b}` : 'miss'}`;
    case T.OP_IPCACHE:
      return `${IPCACHE_MAP} lookup ${formatIPv4(a)}/32 → ${c ? `hit identity=${identityName(b)}` : `miss (identity ${identityName(b)})`}`;
    case T.OP_CT_LOOKUP: {
      const dir = f & 0xff;
      const entryDir = f >> 8;
      const what = `${ctMap(e)} lookup ${ctTuple(e, dir, a, b, c, d)}`;
      if (g === 0) return `${what} → miss (new)`;
      const via = g === 2 ? ` (${dirName(entryDir)} entry)` : '';
      return `${what} → hit ${ctStateName(g) ?? g}${via} rev_nat=${h}${ctFlags(k)}`;
    }
    case T.OP_CT_CREATE:
      return `${ctMap(e)} insert ${ctTuple(e, f, a, b, c, d)} rev_nat=${h}${ctFlags(k)} → ${createResult(g)}`;
    case T.OP_CT_SVC_LOOKUP:
      return `${ctMap(e)} lookup ${ctTuple(e, TUPLE_F_SERVICE, a, b, c, d)} → ${f ? `hit backend=${g}` : 'miss'}`;
    case T.OP_CT_SVC_CREATE:
      return `${ctMap(e)} insert ${ctTuple(e, TUPLE_F_SERVICE, a, b, c, d)} backend=${g} rev_nat=${h} → ${createResult(f)}`;
    case T.OP_CT_RELATED:
      return `${ctMap(e)} lookup (quoted in ICMP error) ${ctTuple(e, f, a, b, c, d)} → ${g === 3 ? `hit related rev_nat=${h}` : 'miss'}`;
    case T.OP_LB_SERVICE:
      return `${LB_SERVICES_MAP} lookup ${formatIPv4(a)}:${b}/${protoName(c)} → ${d ? `hit rev_nat=${f} backends=${e}` : 'miss'}`;
    case T.OP_LB_BACKEND:
      return `${LB_BACKENDS_MAP} lookup id=${a}${e ? ' (terminating allowed)' : ''} → ${b ? `hit ${formatIPv4(c)}:${d}` : 'miss or not active'}`;
    case T.OP_LB_SELECT: {
      const how = b === T.SEL_MAGLEV ? `maglev index ${c}` : b === T.SEL_AFFINITY ? 'client affinity' : b === T.SEL_RANDOM ? `random slot ${c}` : 'no backends';
      return `select backend: ${how} → ${a ? `id=${a}` : 'none'}`;
    }
    case T.OP_LB_REVNAT:
      return `${LB_REVNAT_MAP} lookup ${a} → ${b ? `hit ${formatIPv4(c)}:${d}` : 'miss'}`;
    case T.OP_REWRITE:
      if (a === T.RW_TTL) return `TTL ${b} → ${d}`;
      return `${a === T.RW_DNAT ? 'DNAT' : 'SNAT'} ${addrPort(b, c)} → ${addrPort(d, e)}`;
    case T.OP_POLICY: {
      const key = `(id=${identityName(b)}, ${c ? 'egress' : 'ingress'}, ${protoName(d)}, ${e})`;
      const verdict = g === 0 ? `allow (match ${policyMatchName(h)}${k ? `, redirect to proxy port ${k}` : ''})` : `${f & 0xf0 ? 'deny' : 'no allow'}: ${dropReasonText(g)}`;
      return `${policyMapName(a)} lookup ${key} → ${(f & 0xff) !== 0 ? 'hit' : 'miss'} ${verdict} [${policyLookups(f)}]`;
    }
    case T.OP_EVENT: {
      let what: string;
      if (a === EVENT_TRACE) what = `trace ${tracePointName(b) ?? `unknown-${b}`}`;
      else if (a === EVENT_DROP) what = `drop (${dropReasonText(b)})`;
      else if (a === EVENT_POLICY_VERDICT) what = `policy-verdict ${b ? 'egress' : 'ingress'}`;
      else if (a === EVENT_TRACE_SOCK) what = `trace-sock ${xlatePointName(b) ?? b}`;
      else what = `type ${a}`;
      return `event ${what}${c ? '' : ' (suppressed: monitor aggregation)'}`;
    }
    case T.OP_PROXY: {
      const client = `${formatIPv4(b)}:${c}`;
      if (a === T.PX_REDIRECT) return `${PROXY_MAP} insert ${client} orig ${formatIPv4(e)}:${f} → ${d ? 'inserted' : 'failed'}`;
      if (a === T.PX_RESTORE_ANSWER) return `${PROXY_MAP} lookup ${client} → ${d ? `hit orig ${formatIPv4(e)}:${f}` : 'miss'}`;
      if (a === T.PX_RESTORE_CLIENT) return `${PROXY_UPSTREAM_MAP} lookup port ${c} → ${d ? `hit client ${formatIPv4(e)}:${f}` : 'miss'}`;
      return `${PROXY_MAP} lookup ${client} → ${d ? `hit upstream port ${f}` : 'miss'}`;
    }
    default:
      return `step ${op}`;
  }
}

function verdict(x: Float64Array, i: number, o: TraceFormatOptions): string {
  const act = x[i + 1];
  const fd = x[i + 2];
  const reason = x[i + 3];
  const dstEp = x[i + 4];
  const toHost = x[i + 6];
  if (act === CTX_ACT_REDIRECT && fd >= 0) {
    const where = toHost ? 'to-host via cilium_host' : `to-endpoint ${dstEp}${o.describeEndpoint?.(dstEp) ? ` ${o.describeEndpoint(dstEp)}` : ''}`;
    return `→ redirect fd=${fd} (${where})`;
  }
  if (act === CTX_ACT_QUEUED) return '→ queued (to-overlay: VXLAN to the tunnel endpoint)';
  const r = reason || DROP_UNROUTABLE;
  return `✗ drop ${r} ${dropReasonText(r)}`;
}

/** Every complete packet in buf[0, n). */
export function formatTraces(buf: Float64Array, n: number, o: TraceFormatOptions = {}): PacketTraceRecord[] {
  const out: PacketTraceRecord[] = [];
  let cur: PacketTraceRecord | undefined;
  for (let i = 0; i < n; i += T.STEP_WORDS) {
    const op = buf[i];
    if (op === T.OP_BEGIN) {
      cur = { header: header(buf, i, o), steps: [], verdict: '' };
    } else if (op === T.OP_END) {
      if (cur) {
        cur.verdict = verdict(buf, i, o);
        out.push(cur);
      }
      cur = undefined;
    } else if (cur) {
      cur.steps.push(step(buf, i, o));
    }
  }
  return out;
}
