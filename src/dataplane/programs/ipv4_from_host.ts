// Tail call CILIUM_CALL_IPV4_FROM_HOST (tail_handle_ipv4_from_host): host traffic to a local pod
// enters the pod through its cil_to_container hook.
import type { PacketContext } from '../context.ts';
import type { Datapath } from '../datapath.ts';
import { DROP_UNROUTABLE } from '../drop-reasons.ts';
import { cil_to_container } from './cil_to_container.ts';

export function tail_handle_ipv4_from_host(ctx: PacketContext, dp: Datapath): number {
  ctx.srcIdentity = dp.lookupIdentity(ctx.saddr);
  const ep = dp.lookupEndpoint(ctx.daddr);
  if (ep === 0 || ep === dp.hostEp) return dp.drop(ctx, DROP_UNROUTABLE);
  ctx.dstEp = ep;
  ctx.dstIdentity = dp.epIdentity[ep];
  return cil_to_container(ctx, dp);
}
