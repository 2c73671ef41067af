// Tail call CILIUM_CALL_IPV4_FROM_HOST (tail_handle_ipv4_from_host): host traffic to a local pod
// enters the pod through its cil_to_container hook; the node's own connections to a ClusterIP are
// translated here, with an egress CT entry that carries the reverse NAT for the replies.
import type { PacketContext } from '../context.ts';
import type { Datapath } from '../datapath.ts';
import { DROP_CT_CREATE_FAILED, DROP_PROXY_LOOKUP_FAILED, DROP_UNROUTABLE } from '../drop-reasons.ts';
import { CT_NEW, TUPLE_F_OUT } from '../../conntrack/layout.ts';
import { lb4Local } from '../lib/lb.ts';
import { cil_to_container } from './cil_to_container.ts';

export function tail_handle_ipv4_from_host(ctx: PacketContext, dp: Datapath): number {
  if (ctx.saddr === dp.proxy.routerIP && ctx.proto === 6) {
    // The L7 proxy answering a client, or speaking to a server for one.
    if (dp.proxy.active[ctx.sport] === 1) {
      if (!dp.proxy.restoreAnswer(ctx)) return dp.drop(ctx, DROP_PROXY_LOOKUP_FAILED);
    } else if (dp.proxy.restoreClient(ctx)) {
      ctx.fromProxy = true;
    }
  }
  ctx.srcIdentity = dp.lookupIdentity(ctx.saddr);
  const reason = lb4Local(ctx, dp);
  if (reason !== 0) return dp.drop(ctx, reason);
  if (ctx.revNat !== 0 && dp.ct.lookup(ctx, TUPLE_F_OUT) === CT_NEW && !dp.ct.create(ctx, TUPLE_F_OUT, ctx.revNat, 0)) {
    return dp.drop(ctx, DROP_CT_CREATE_FAILED);
  }
  const ep = dp.lookupEndpoint(ctx.daddr);
  if (ep === 0 || ep === dp.hostEp) return dp.drop(ctx, DROP_UNROUTABLE);
  ctx.dstEp = ep;
  ctx.dstIdentity = dp.epIdentity[ep];
  return cil_to_container(ctx, dp);
}
