// Hook: a packet the node's stack routed into cilium_host (bpf_host.c cil_from_host).
import type { PacketContext } from '../context.ts';
import { DIR_INGRESS } from '../context.ts';
import type { Datapath } from '../datapath.ts';
import { CILIUM_CALL_IPV4_FROM_HOST } from '../calls.ts';
import { DROP_INVALID, DROP_UNKNOWN_L3, DROP_UNSUPPORTED_L2 } from '../drop-reasons.ts';
import { F_IPV4, F_IPV6, F_NON_IP } from '../../native/meta.ts';
import { HOOK_FROM_HOST } from '../../observe/trace/tracer.ts';

export function cil_from_host(ctx: PacketContext, dp: Datapath): number {
  if (ctx.traced) dp.tracer!.hook(HOOK_FROM_HOST, dp.hostEp);
  ctx.direction = DIR_INGRESS;
  ctx.ifindex = dp.epIfindex[dp.hostEp];
  const f = ctx.flags;
  if (f & F_IPV6) return dp.drop(ctx, DROP_UNKNOWN_L3);
  if (f & F_NON_IP) return dp.drop(ctx, DROP_UNSUPPORTED_L2);
  if (!(f & F_IPV4)) return dp.drop(ctx, DROP_INVALID);
  return dp.tailCall(ctx, CILIUM_CALL_IPV4_FROM_HOST);
}
