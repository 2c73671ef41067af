// Tail call CILIUM_CALL_IPV4_FROM_LXC_CONT (handle_ipv4_from_lxc): records a new connection, then
// decides where the packet goes: a local pod (tail call into its program array), the host, or the
// stack for everything else.
import type { PacketContext } from '../context.ts';
import type { Datapath } from '../datapath.ts';
import { CILIUM_CALL_IPV4_TO_ENDPOINT } from '../calls.ts';
import { DROP_CT_CREATE_FAILED, DROP_TTL_EXCEEDED } from '../drop-reasons.ts';
import { redirectToProxy } from '../lib/proxy.ts';
import { ipv4DecTtl } from '../lib/l3.ts';
import { CT_ESTABLISHED, CT_F_LB_LOOPBACK, CT_F_PROXY_REDIRECT, CT_NEW, TUPLE_F_OUT } from '../../conntrack/layout.ts';
import { enforcePolicy } from '../lib/policy.ts';
import { cil_to_host } from './cil_to_host.ts';
import { F_ICMP_ERROR } from '../../native/meta.ts';
import { RW_TTL } from '../../observe/trace/tracer.ts';

export function handle_ipv4_from_lxc(ctx: PacketContext, dp: Datapath): number {
  ctx.dstIdentity = dp.lookupIdentity(ctx.daddr);
  // Egress policy for every packet in the original direction: removing an allow cuts the connection.
  let proxyPort = 0;
  if (ctx.ctState === CT_NEW || ctx.ctState === CT_ESTABLISHED) {
    const verdict = enforcePolicy(ctx, dp, ctx.srcEp, true, ctx.dstIdentity);
    if (verdict !== 0) return dp.drop(ctx, verdict);
    proxyPort = dp.policyLookup.proxyPort;
  }
  const flags = (ctx.loopback ? CT_F_LB_LOOPBACK : 0) | (proxyPort !== 0 ? CT_F_PROXY_REDIRECT : 0);
  if (ctx.ctState === CT_NEW && !(ctx.flags & F_ICMP_ERROR) && !dp.ct.create(ctx, TUPLE_F_OUT, ctx.revNat, flags)) {
    return dp.drop(ctx, DROP_CT_CREATE_FAILED);
  }
  // An egress L7 rule: the connection goes to the proxy, which opens its own to the destination.
  if (proxyPort !== 0) {
    const reason = redirectToProxy(ctx, dp, proxyPort, ctx.srcEp);
    return reason !== 0 ? dp.drop(ctx, reason) : cil_to_host(ctx, dp);
  }
  const ep = dp.lookupEndpoint(ctx.daddr);
  if (ep !== 0 && ep === dp.hostEp) return cil_to_host(ctx, dp);
  if (ep !== 0) {
    // ipv4_local_delivery: route between two pods, as a router would.
    if (ctx.traced) dp.tracer!.rewrite(RW_TTL, ctx.buf[ctx.l3 + 8], -1, ctx.buf[ctx.l3 + 8] - 1, -1);
    if (!ipv4DecTtl(ctx)) return dp.drop(ctx, DROP_TTL_EXCEEDED);
    ctx.dstEp = ep;
    ctx.calls = dp.calls[ep] ?? null;
    return dp.tailCall(ctx, CILIUM_CALL_IPV4_TO_ENDPOINT);
  }
  return cil_to_host(ctx, dp);
}
