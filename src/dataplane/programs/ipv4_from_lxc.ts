// Tail call CILIUM_CALL_IPV4_FROM_LXC (tail_handle_ipv4): the source must be the pod's own
// address; a packet for a service frontend is translated to a backend (per packet, as Cilium does
// without its socket hook), then conntrack runs on the translated tuple.
import type { PacketContext } from '../context.ts';
import type { Datapath } from '../datapath.ts';
import { CILIUM_CALL_IPV4_CT_EGRESS } from '../calls.ts';
import { DROP_INVALID_SIP } from '../drop-reasons.ts';
import { lb4Local } from '../lib/lb.ts';

export function tail_handle_ipv4(ctx: PacketContext, dp: Datapath): number {
  if (ctx.saddr !== dp.epIp[ctx.srcEp]) return dp.drop(ctx, DROP_INVALID_SIP);
  const reason = lb4Local(ctx, dp);
  if (reason !== 0) return dp.drop(ctx, reason);
  return dp.tailCall(ctx, CILIUM_CALL_IPV4_CT_EGRESS);
}
