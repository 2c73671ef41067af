// Policy enforcement in the datapath (Cilium's policy_can_access / policy_can_egress): four
// longest-prefix lookups in the endpoint's cilium_policy_<id> map — L3+L4, L3 with any protocol,
// L4 only, any — deny wins if any of them denies, else the most specific allow decides.
// The map's byte layout is src/policy/policymap.ts's.
import type { LpmTrieMap } from '../../maps/index.ts';
import type { PacketContext } from '../context.ts';
import type { Datapath } from '../datapath.ts';
import { DROP_POLICY, DROP_POLICY_DENY } from '../drop-reasons.ts';
import { M_ICMP_TYPE } from '../../native/meta.ts';
import { CT_NEW } from '../../conntrack/layout.ts';
import * as P from '../../policy/policymap.ts';
import { EVENT_POLICY_VERDICT } from '../events.ts';

/** Match kinds reported in policy-verdict events (Cilium's POLICY_MATCH_*). */
export const MATCH_NONE = 0;
export const MATCH_L3_L4 = 1;
export const MATCH_L3_ONLY = 2;
export const MATCH_L4_ONLY = 3;
export const MATCH_ALL = 4;
export const MATCH_L3_PROTO = 5;

const FULL_PREFIX = 8 * (P.POLICY_KEY_SIZE - 4);

/** Scratch state of one enforcement decision. */
export class PolicyLookup {
  private readonly key = new Uint8Array(P.POLICY_KEY_SIZE);
  private readonly kv = new DataView(this.key.buffer);
  /** Proxy port of the matched allow (L7 redirect), 0 for none. */
  proxyPort = 0;
  match = MATCH_NONE;
  /** For traces only (set when ctx.traced): the four lookups' hits (bits 0-3) and denies (4-7), the port. */
  traceHits = 0;
  tracePort = 0;

  private find(map: LpmTrieMap, identity: number, egress: boolean, proto: number, port: number, prefix: number): number {
    const k = this.kv;
    k.setUint32(0, prefix, true);
    k.setUint32(4, identity);
    this.key[8] = egress ? 1 : 0;
    this.key[9] = proto;
    k.setUint16(10, port);
    return map.lookup(this.key, 0);
  }

  /** 0 when allowed, else DROP_POLICY / DROP_POLICY_DENY. Counts the packet on the deciding entry. */
  decide(ctx: PacketContext, map: LpmTrieMap, egress: boolean, identity: number): number {
    const proto = ctx.proto;
    const port = proto === 6 || proto === 17 || proto === 132 ? ctx.dport : proto === 1 ? ctx.meta[ctx.m + M_ICMP_TYPE] : 0;
    // A port on protocol ANY means a TCP/UDP/SCTP port: for ICMP only their all-ports entries apply.
    const anyPrefix = proto === 1 ? P.POLICY_STATIC_PREFIX : FULL_PREFIX;
    const a = this.find(map, identity, egress, proto, port, FULL_PREFIX);
    const b = this.find(map, identity, egress, 0, port, anyPrefix);
    const c = this.find(map, 0, egress, proto, port, FULL_PREFIX);
    const d = this.find(map, 0, egress, 0, port, anyPrefix);
    const v = map.view;
    const bytes = map.bytes;
    if (ctx.traced) this.traceLookups(bytes, a, b, c, d, port);
    let decided = -1;
    let match = MATCH_NONE;
    // Deny wins over allow, whatever the specificity.
    if (a >= 0 && bytes[a + P.V_FLAGS] & P.FLAG_DENY) decided = a;
    else if (b >= 0 && bytes[b + P.V_FLAGS] & P.FLAG_DENY) decided = b;
    else if (c >= 0 && bytes[c + P.V_FLAGS] & P.FLAG_DENY) decided = c;
    else if (d >= 0 && bytes[d + P.V_FLAGS] & P.FLAG_DENY) decided = d;
    if (decided >= 0) {
      this.count(map, decided, ctx);
      this.match = MATCH_NONE;
      this.proxyPort = 0;
      return DROP_POLICY_DENY;
    }
    if (a >= 0) {
      decided = a;
      match = MATCH_L3_L4;
    } else if (b >= 0) {
      decided = b;
      match = MATCH_L3_PROTO;
    } else if (c >= 0) {
      decided = c;
      match = MATCH_L4_ONLY;
    } else if (d >= 0) {
      decided = d;
      match = MATCH_ALL;
    }
    this.match = match;
    if (decided < 0) {
      this.proxyPort = 0;
      return DROP_POLICY;
    }
    this.proxyPort = v.getUint16(decided + P.V_PROXY_PORT, true);
    this.count(map, decided, ctx);
    return 0;
  }

  private traceLookups(bytes: Uint8Array, a: number, b: number, c: number, d: number, port: number): void {
    const deny = (off: number, bit: number) => (off < 0 ? 0 : bytes[off + P.V_FLAGS] & P.FLAG_DENY ? bit | (bit << 4) : bit);
    this.traceHits = deny(a, 1) | deny(b, 2) | deny(c, 4) | deny(d, 8);
    this.tracePort = port;
  }

  private count(map: LpmTrieMap, off: number, ctx: PacketContext): void {
    const v = map.view;
    v.setFloat64(off + P.V_PACKETS, v.getFloat64(off + P.V_PACKETS, true) + 1, true);
    v.setFloat64(off + P.V_BYTES, v.getFloat64(off + P.V_BYTES, true) + (ctx.end - ctx.l3), true);
  }
}

/**
 * Egress or ingress enforcement for the packet in ctx against endpoint `ep`'s policy; `peer` is the
 * remote identity. Emits a policy-verdict event for new connections. Returns 0 or a drop reason.
 */
export function enforcePolicy(ctx: PacketContext, dp: Datapath, ep: number, egress: boolean, peer: number): number {
  const map = dp.policy[ep];
  if (map === undefined) return 0; // the host endpoint has no policy here
  const pl = dp.policyLookup;
  const reason = pl.decide(ctx, map, egress, peer);
  if (ctx.ctState === CT_NEW) dp.events.emitVerdict(ctx, egress, pl.match, reason, ep, peer);
  if (ctx.traced) {
    dp.tracer!.policy(ep, peer, egress, ctx.proto, pl.tracePort, pl.traceHits, reason, pl.match, pl.proxyPort);
    if (ctx.ctState === CT_NEW) dp.tracer!.event(EVENT_POLICY_VERDICT, egress ? 1 : 0, true);
  }
  return reason;
}
