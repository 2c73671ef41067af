// Tail call CILIUM_CALL_IPV4_TO_LXC_POLICY_ONLY (tail_ipv4_policy): ingress for host-originated
// traffic into a pod, then delivery.
import type { PacketContext } from '../context.ts';
import type { Datapath } from '../datapath.ts';
import { redirectToEndpoint } from '../lib/deliver.ts';

export function tail_ipv4_policy(ctx: PacketContext, dp: Datapath): number {
  return redirectToEndpoint(ctx, dp);
}
