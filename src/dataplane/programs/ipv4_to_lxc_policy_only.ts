// Tail call CILIUM_CALL_IPV4_TO_LXC_POLICY_ONLY (tail_ipv4_policy): ingress for traffic that came
// through the host (the node itself, the world, replies of connections a pod made outward).
import type { PacketContext } from '../context.ts';
import type { Datapath } from '../datapath.ts';
import { redirectToEndpoint } from '../lib/deliver.ts';
import { ipv4IngressCt, TO_PROXY } from '../lib/ingress.ts';
import { cil_to_host } from './cil_to_host.ts';

export function tail_ipv4_policy(ctx: PacketContext, dp: Datapath): number {
  const reason = ipv4IngressCt(ctx, dp);
  if (reason === TO_PROXY) return cil_to_host(ctx, dp);
  if (reason !== 0) return dp.drop(ctx, reason);
  return redirectToEndpoint(ctx, dp);
}
