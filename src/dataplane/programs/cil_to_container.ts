// Hook: traffic from the host entering a pod (bpf_lxc.c cil_to_container): runs the pod's
// ingress policy program from its own program array.
import type { PacketContext } from '../context.ts';
import type { Datapath } from '../datapath.ts';
import { CILIUM_CALL_IPV4_TO_LXC_POLICY_ONLY } from '../calls.ts';
import { HOOK_TO_CONTAINER } from '../../observe/trace/tracer.ts';

export function cil_to_container(ctx: PacketContext, dp: Datapath): number {
  if (ctx.traced) dp.tracer!.hook(HOOK_TO_CONTAINER, ctx.dstEp);
  ctx.calls = dp.calls[ctx.dstEp] ?? null;
  return dp.tailCall(ctx, CILIUM_CALL_IPV4_TO_LXC_POLICY_ONLY);
}
