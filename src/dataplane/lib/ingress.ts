// Conntrack and policy on a pod's ingress side (ipv4_policy): new connections get an IN entry,
// an L7 rule sends the connection to the proxy, replies to service connections are translated
// back unless the sender's side already did it.
import type { PacketContext } from '../context.ts';
import type { Datapath } from '../datapath.ts';
import { DROP_CT_CREATE_FAILED, DROP_NAT_NO_MAPPING } from '../drop-reasons.ts';
import { redirectToProxy } from './proxy.ts';
import { CT_ESTABLISHED, CT_F_PROXY_REDIRECT, CT_NEW, CT_RELATED, CT_REPLY, TUPLE_F_IN } from '../../conntrack/layout.ts';
import { F_ICMP_ERROR } from '../../native/meta.ts';
import { enforcePolicy } from './policy.ts';
import { lb4RevNat, lb4RevNatRelated } from './lb.ts';

const HOST_ID = 1;

/** Returned instead of a drop reason when the packet goes to the L7 proxy rather than the pod. */
export const TO_PROXY = -1;

export function ipv4IngressCt(ctx: PacketContext, dp: Datapath): number {
  if (ctx.revNatDone) return 0;
  ctx.ctState = dp.ct.lookup(ctx, TUPLE_F_IN);
  ctx.report = ctx.report || dp.ct.report;
  const icmpError = (ctx.flags & F_ICMP_ERROR) !== 0;
  // Ingress policy, except for the local host (Cilium's allow-localhost) and replies.
  let proxyPort = 0;
  if ((ctx.ctState === CT_NEW || ctx.ctState === CT_ESTABLISHED) && ctx.srcIdentity !== HOST_ID && !icmpError) {
    const verdict = enforcePolicy(ctx, dp, ctx.dstEp, false, ctx.srcIdentity);
    if (verdict !== 0) return verdict;
    // The proxy's own upstream leg was already inspected: it goes to the pod.
    if (!ctx.fromProxy) proxyPort = dp.policyLookup.proxyPort;
  }
  // ICMP errors are never new connections: untracked ones pass untracked, as replies would.
  if (ctx.ctState === CT_NEW && !icmpError && !dp.ct.create(ctx, TUPLE_F_IN, 0, proxyPort !== 0 ? CT_F_PROXY_REDIRECT : 0)) return DROP_CT_CREATE_FAILED;
  if (proxyPort !== 0) {
    const reason = redirectToProxy(ctx, dp, proxyPort, ctx.dstEp);
    return reason !== 0 ? reason : TO_PROXY;
  }
  if (ctx.ctState === CT_REPLY && dp.ct.revNat !== 0 && !lb4RevNat(ctx, dp)) return DROP_NAT_NO_MAPPING;
  if (ctx.ctState === CT_RELATED && dp.ct.revNat !== 0 && !lb4RevNatRelated(ctx, dp)) return DROP_NAT_NO_MAPPING;
  return 0;
}
