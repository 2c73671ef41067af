// Policy enforcement in the datapath (Cilium's policy_can_access / policy_can_egress): four
// longest-prefix lookups in the endpoint's cilium_policy_<id> map — L3+L4, L3 with any protocol,
// L4 only, any — deny wins if any of them denies, else the most specific allow decides.
// The map's byte layout is src/maps/cilium/policy.ts's; the decision goes into ctx.policy.
import type { LpmTrieMap } from '../../maps/index.ts';
import type { PacketContext } from '../context.ts';
import type { Datapath } from '../datapath.ts';
import { DROP_POLICY, DROP_POLICY_DENY } from '../drop-reasons.ts';
import { M_ICMP_TYPE } from '../../native/meta.ts';
import { CT_NEW } from '../../maps/cilium/ct.ts';
import * as P from '../../maps/cilium/policy.ts';
import { EVENT_POLICY_VERDICT } from '../events.ts';
import { hasPorts, IPPROTO_ICMP } from '../../wire/proto.ts';
import * as M from '../vocab/policy-match.ts';

const FULL_PREFIX = 8 * (P.POLICY_KEY_SIZE - 4);

/**
 * Cilium's match type of an allow entry: whether it names an identity, a protocol, and a port
 * (a prefix longer than identity + direction + protocol).
 */
function matchType(identity: boolean, proto: boolean, prefix: number): number {
  const port = prefix > P.POLICY_STATIC_PREFIX;
  if (identity) return port ? M.POLICY_MATCH_L3_L4 : proto ? M.POLICY_MATCH_L3_PROTO : M.POLICY_MATCH_L3_ONLY;
  return port ? M.POLICY_MATCH_L4_ONLY : proto ? M.POLICY_MATCH_PROTO_ONLY : M.POLICY_MATCH_ALL;
}

/** A lookup's trace bits: `bit` when it hit, and `bit << 4` too when the entry denies. */
function hitBits(bytes: Uint8Array, off: number, bit: number): number {
  if (off < 0) return 0;
  return bytes[off + P.V_FLAGS] & P.FLAG_DENY ? bit | (bit << 4) : bit;
}

/** The scratch key of enforcement decisions. */
export class PolicyLookup {
  private readonly key = new Uint8Array(P.POLICY_KEY_SIZE);
  private readonly kv = new DataView(this.key.buffer);

  private find(map: LpmTrieMap, identity: number, egress: boolean, proto: number, port: number, prefix: number): number {
    const k = this.kv;
    k.setUint32(0, prefix, true);
    k.setUint32(4, identity);
    this.key[8] = egress ? 1 : 0;
    this.key[9] = proto;
    k.setUint16(10, port);
    return map.lookup(this.key, 0);
  }

  /**
   * 0 when allowed, else DROP_POLICY / DROP_POLICY_DENY; the match type and proxy port go into
   * ctx.policy. Counts the packet on the deciding entry.
   */
  decide(ctx: PacketContext, map: LpmTrieMap, egress: boolean, identity: number): number {
    const proto = ctx.proto;
    const port = hasPorts(proto) ? ctx.dport : proto === IPPROTO_ICMP ? ctx.meta[ctx.m + M_ICMP_TYPE] : 0;
    // A port on protocol ANY means a TCP/UDP/SCTP port: for ICMP only their all-ports entries apply.
    const anyPrefix = proto === IPPROTO_ICMP ? P.POLICY_STATIC_PREFIX : FULL_PREFIX;
    const a = this.find(map, identity, egress, proto, port, FULL_PREFIX);
    const b = this.find(map, identity, egress, 0, port, anyPrefix);
    const c = this.find(map, 0, egress, proto, port, FULL_PREFIX);
    const d = this.find(map, 0, egress, 0, port, anyPrefix);
    const bytes = map.bytes;
    const state = ctx.policy;
    if (ctx.traced) this.traceLookups(ctx, bytes, a, b, c, d, port);
    // Deny wins over allow, whatever the specificity; else the most specific allow. `keyed` says
    // what the deciding lookup's key named (1 identity, 2 protocol) for its match type, which a
    // deny's verdict carries too, as Cilium's (policy-verdict:L3-Only INGRESS DENIED).
    let decided = -1;
    let keyed = 0;
    if (a >= 0 && bytes[a + P.V_FLAGS] & P.FLAG_DENY) { decided = a; keyed = 3; }
    else if (b >= 0 && bytes[b + P.V_FLAGS] & P.FLAG_DENY) { decided = b; keyed = 1; }
    else if (c >= 0 && bytes[c + P.V_FLAGS] & P.FLAG_DENY) { decided = c; keyed = 2; }
    else if (d >= 0 && bytes[d + P.V_FLAGS] & P.FLAG_DENY) { decided = d; keyed = 0; }
    const deny = decided >= 0;
    if (!deny) {
      if (a >= 0) { decided = a; keyed = 3; }
      else if (b >= 0) { decided = b; keyed = 1; }
      else if (c >= 0) { decided = c; keyed = 2; }
      else if (d >= 0) { decided = d; keyed = 0; }
    }
    if (decided < 0) {
      state.match = M.POLICY_MATCH_NONE;
      state.proxyPort = 0;
      return DROP_POLICY;
    }
    state.match = matchType(identity !== 0 && (keyed & 1) !== 0, proto !== 0 && (keyed & 2) !== 0, this.prefixOf(map, decided));
    this.count(map, decided, ctx);
    if (deny) {
      state.proxyPort = 0;
      return DROP_POLICY_DENY;
    }
    state.proxyPort = map.view.getUint16(decided + P.V_PROXY_PORT, true);
    return 0;
  }

  /** Prefix length of the entry whose value is at `valueOff` (its key's first word). */
  private prefixOf(map: LpmTrieMap, valueOff: number): number {
    return map.view.getUint32(valueOff - (map.valueOffset(0) - map.keyOffset(0)), true);
  }

  private traceLookups(ctx: PacketContext, bytes: Uint8Array, a: number, b: number, c: number, d: number, port: number): void {
    ctx.policy.traceHits = hitBits(bytes, a, 1) | hitBits(bytes, b, 2) | hitBits(bytes, c, 4) | hitBits(bytes, d, 8);
    ctx.policy.tracePort = port;
  }

  private count(map: LpmTrieMap, off: number, ctx: PacketContext): void {
    const v = map.view;
    v.setFloat64(off + P.V_PACKETS, v.getFloat64(off + P.V_PACKETS, true) + 1, true);
    v.setFloat64(off + P.V_BYTES, v.getFloat64(off + P.V_BYTES, true) + (ctx.end - ctx.l3), true);
  }
}

export const VERDICT_LOG_INGRESS = 1;
export const VERDICT_LOG_EGRESS = 2;

/**
 * Egress or ingress enforcement for the packet in ctx against endpoint `ep`'s policy; `peer` is the
 * remote identity. Emits a policy-verdict event for new connections in an enforced direction. Returns 0 or a drop reason.
 */
export function enforcePolicy(ctx: PacketContext, dp: Datapath, ep: number, egress: boolean, peer: number): number {
  const map = dp.policy[ep];
  if (map === undefined) return 0; // the host endpoint has no policy here
  const reason = dp.policyLookup.decide(ctx, map, egress, peer);
  const pl = ctx.policy;
  if (ctx.ct.state === CT_NEW && (dp.verdictLogFilter[ep] & (egress ? VERDICT_LOG_EGRESS : VERDICT_LOG_INGRESS)) !== 0) dp.events.emitVerdict(ctx, egress, pl.match, reason, ep, peer);
  if (ctx.traced) {
    dp.tracer!.policy(ep, peer, egress, ctx.proto, pl.tracePort, pl.traceHits, reason, pl.match, pl.proxyPort);
    if (ctx.ct.state === CT_NEW) dp.tracer!.event(EVENT_POLICY_VERDICT, egress ? 1 : 0, true);
  }
  return reason;
}
