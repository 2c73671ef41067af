// Tail call CILIUM_CALL_IPV4_TO_ENDPOINT (tail_ipv4_to_endpoint), run from the destination
// endpoint's program array: ingress side of pod-to-pod traffic on this node.
import { DIR_INGRESS, type PacketContext } from '../context.ts';
import type { Datapath } from '../datapath.ts';
import { redirectToEndpoint } from '../lib/deliver.ts';
import { ipv4IngressCt, TO_PROXY } from '../lib/ingress.ts';
import { cil_to_host } from './cil_to_host.ts';

export function tail_ipv4_to_endpoint(ctx: PacketContext, dp: Datapath): number {
  ctx.direction = DIR_INGRESS;
  const reason = ipv4IngressCt(ctx, dp);
  if (reason === TO_PROXY) return cil_to_host(ctx, dp);
  if (reason !== 0) return dp.drop(ctx, reason);
  return redirectToEndpoint(ctx, dp);
}
