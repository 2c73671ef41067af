// Conntrack on a pod's ingress side (ipv4_policy): new connections get an IN entry, replies to
// service connections are translated back unless the sender's side already did it.
import type { PacketContext } from '../context.ts';
import type { Datapath } from '../datapath.ts';
import { DROP_CT_CREATE_FAILED, DROP_NAT_NO_MAPPING } from '../drop-reasons.ts';
import { CT_ESTABLISHED, CT_NEW, CT_RELATED, CT_REPLY, TUPLE_F_IN } from '../../conntrack/layout.ts';
import { enforcePolicy } from './policy.ts';

const HOST_ID = 1;
import { lb4RevNat, lb4RevNatRelated } from './lb.ts';
import { F_ICMP_ERROR } from '../../native/meta.ts';

export function ipv4IngressCt(ctx: PacketContext, dp: Datapath): number {
  if (ctx.revNatDone) return 0;
  ctx.ctState = dp.ct.lookup(ctx, TUPLE_F_IN);
  ctx.report = ctx.report || dp.ct.report;
  // Ingress policy, except for the local host (Cilium's allow-localhost) and replies.
  if ((ctx.ctState === CT_NEW || ctx.ctState === CT_ESTABLISHED) && ctx.srcIdentity !== HOST_ID && !(ctx.flags & F_ICMP_ERROR)) {
    const verdict = enforcePolicy(ctx, dp, ctx.dstEp, false, ctx.srcIdentity);
    if (verdict !== 0) return verdict;
  }
  // ICMP errors are never new connections: untracked ones pass untracked, as replies would.
  if (ctx.ctState === CT_NEW && !(ctx.flags & F_ICMP_ERROR) && !dp.ct.create(ctx, TUPLE_F_IN, 0, 0)) return DROP_CT_CREATE_FAILED;
  if (ctx.ctState === CT_REPLY && dp.ct.revNat !== 0 && !lb4RevNat(ctx, dp)) return DROP_NAT_NO_MAPPING;
  if (ctx.ctState === CT_RELATED && dp.ct.revNat !== 0 && !lb4RevNatRelated(ctx, dp)) return DROP_NAT_NO_MAPPING;
  return 0;
}
