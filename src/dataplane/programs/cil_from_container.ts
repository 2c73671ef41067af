// Hook: a packet a pod sent (bpf_lxc.c cil_from_container). Validates L3, then tail-calls IPv4.
import type { PacketContext } from '../context.ts';
import { DIR_EGRESS } from '../context.ts';
import type { Datapath } from '../datapath.ts';
import { CILIUM_CALL_IPV4_FROM_LXC } from '../calls.ts';
import { DROP_INVALID, DROP_UNKNOWN_L3, DROP_UNSUPPORTED_L2 } from '../drop-reasons.ts';
import { F_IPV4, F_IPV6, F_NON_IP } from '../../native/meta.ts';
import { HOOK_FROM_CONTAINER } from '../../observe/trace/tracer.ts';

export function cil_from_container(ctx: PacketContext, dp: Datapath): number {
  if (ctx.traced) dp.tracer!.hook(HOOK_FROM_CONTAINER, ctx.srcEp);
  ctx.direction = DIR_EGRESS;
  ctx.ifindex = dp.epIfindex[ctx.srcEp];
  ctx.srcIdentity = dp.epIdentity[ctx.srcEp];
  const f = ctx.flags;
  if (f & F_IPV6) return dp.drop(ctx, DROP_UNKNOWN_L3); // IPv6 is disabled, as in the labs
  if (f & F_NON_IP) return dp.drop(ctx, DROP_UNSUPPORTED_L2);
  if (!(f & F_IPV4)) return dp.drop(ctx, DROP_INVALID);
  return dp.tailCall(ctx, CILIUM_CALL_IPV4_FROM_LXC);
}
