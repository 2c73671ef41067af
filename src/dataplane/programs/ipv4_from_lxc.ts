// Tail call CILIUM_CALL_IPV4_FROM_LXC (tail_handle_ipv4): the source must be the pod's own address.
import type { PacketContext } from '../context.ts';
import type { Datapath } from '../datapath.ts';
import { CILIUM_CALL_IPV4_FROM_LXC_CONT } from '../calls.ts';
import { DROP_INVALID_SIP } from '../drop-reasons.ts';

export function tail_handle_ipv4(ctx: PacketContext, dp: Datapath): number {
  if (ctx.saddr !== dp.epIp[ctx.srcEp]) return dp.drop(ctx, DROP_INVALID_SIP);
  return dp.tailCall(ctx, CILIUM_CALL_IPV4_FROM_LXC_CONT);
}
