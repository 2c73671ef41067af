// Local delivery: the last step of every path into a pod (Cilium's redirect_ep).
import { CTX_ACT_REDIRECT, type PacketContext } from '../context.ts';
import type { Datapath } from '../datapath.ts';
import { DROP_EP_NOT_READY } from '../drop-reasons.ts';
import { TRACE_TO_LXC } from '../events.ts';

export function redirectToEndpoint(ctx: PacketContext, dp: Datapath): number {
  const fd = dp.epFd[ctx.dstEp];
  if (fd < 0) return dp.drop(ctx, DROP_EP_NOT_READY);
  ctx.ifindex = dp.epIfindex[ctx.dstEp];
  dp.trace(ctx, TRACE_TO_LXC);
  ctx.outFd = fd;
  return CTX_ACT_REDIRECT;
}
