// Hook: a packet leaving the datapath into the node's stack through cilium_host (bpf_host.c cil_to_host).
import { CTX_ACT_REDIRECT, type PacketContext } from '../context.ts';
import type { Datapath } from '../datapath.ts';
import { DROP_HOST_NOT_READY } from '../drop-reasons.ts';
import { TRACE_TO_HOST, TRACE_TO_STACK } from '../events.ts';
import { HOOK_TO_HOST } from '../../observe/trace/tracer.ts';

export function cil_to_host(ctx: PacketContext, dp: Datapath): number {
  if (ctx.traced) dp.tracer!.hook(HOOK_TO_HOST, dp.hostEp);
  if (dp.hostFd < 0) return dp.drop(ctx, DROP_HOST_NOT_READY);
  if (ctx.dstIdentity === 0) ctx.dstIdentity = dp.lookupIdentity(ctx.daddr);
  ctx.dstEp = ctx.dstIdentity === 1 ? dp.hostEp : 0;
  ctx.ifindex = dp.epIfindex[dp.hostEp];
  // A redirect to the proxy was traced before its rewrite (redirectToProxy).
  if (!ctx.toProxy) dp.trace(ctx, ctx.dstIdentity === 1 ? TRACE_TO_HOST : TRACE_TO_STACK);
  ctx.outFd = dp.hostFd;
  return CTX_ACT_REDIRECT;
}
