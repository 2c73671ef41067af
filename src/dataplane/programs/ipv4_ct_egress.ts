// Tail call CILIUM_CALL_IPV4_CT_EGRESS: conntrack in the pod's egress direction. A reply to a
// service connection is translated back to the frontend here, before it is routed.
import type { PacketContext } from '../context.ts';
import type { Datapath } from '../datapath.ts';
import { CILIUM_CALL_IPV4_FROM_LXC_CONT } from '../calls.ts';
import { DROP_NAT_NO_MAPPING, DROP_PROXY_LOOKUP_FAILED } from '../drop-reasons.ts';
import { CT_F_PROXY_REDIRECT, CT_RELATED, CT_REPLY, TUPLE_F_OUT } from '../../conntrack/layout.ts';
import { lb4RevNat, lb4RevNatRelated } from '../lib/lb.ts';

export function tail_ipv4_ct_egress(ctx: PacketContext, dp: Datapath): number {
  ctx.ctState = dp.ct.lookup(ctx, TUPLE_F_OUT);
  ctx.report = dp.ct.report;
  if (ctx.ctState === CT_REPLY && dp.ct.entryFlags & CT_F_PROXY_REDIRECT) {
    // A server answering the proxy's upstream leg: back to the proxy's socket on the router IP.
    if (!dp.proxy.toUpstream(ctx)) return dp.drop(ctx, DROP_PROXY_LOOKUP_FAILED);
    ctx.revNatDone = true;
  }
  if (ctx.ctState === CT_REPLY && dp.ct.revNat !== 0 && !ctx.revNatDone && !lb4RevNat(ctx, dp)) return dp.drop(ctx, DROP_NAT_NO_MAPPING);
  if (ctx.ctState === CT_RELATED && dp.ct.revNat !== 0 && !lb4RevNatRelated(ctx, dp)) return dp.drop(ctx, DROP_NAT_NO_MAPPING);
  return dp.tailCall(ctx, CILIUM_CALL_IPV4_FROM_LXC_CONT);
}
