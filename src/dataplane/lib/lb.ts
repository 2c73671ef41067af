// lb4_local: translate a packet for a service frontend to one of its backends, remembering the
// choice in a service CT entry so every packet of the connection goes to the same backend.
import type { PacketContext } from '../context.ts';
import type { Datapath } from '../datapath.ts';
import { DROP_CT_CREATE_FAILED, DROP_NO_SERVICE, DROP_WRITE_ERROR } from '../drop-reasons.ts';
import { native } from '../../native/index.ts';
import { M_FLAGS, F_NEEDS_CSUM } from '../../native/meta.ts';
import { CT_F_LB_LOOPBACK } from '../../conntrack/layout.ts';

/** Cilium's IPV4_LOOPBACK: the source a pod sees when it reaches itself through a service. */
export const IPV4_LOOPBACK = 0xa9fe2a01; // 169.254.42.1

/** Returns 0 when the packet is not for a service or was translated, else a drop reason. */
export function lb4Local(ctx: PacketContext, dp: Datapath): number {
  const lb = dp.lb;
  if (!lb.lookupService(ctx.daddr, ctx.dport, ctx.proto)) return 0;
  let id = dp.ct.lookupService(ctx) >= 0 ? dp.ct.backendId : 0;
  // An established connection keeps its backend even while it terminates; new ones pick again.
  if (id === 0 || !lb.lookupBackend(id, true)) {
    id = lb.selectBackend(ctx, dp.ct.now);
    if (id === 0 || !lb.lookupBackend(id)) return DROP_NO_SERVICE;
    if (!dp.ct.createService(ctx, id, lb.svcRevNat)) return DROP_CT_CREATE_FAILED;
  }
  ctx.revNat = lb.svcRevNat;
  if (lb.backendAddr === ctx.saddr) {
    const partial = (ctx.meta[ctx.m + M_FLAGS] & F_NEEDS_CSUM) !== 0;
    if (!native.rewriteAddr(ctx.buf, ctx.l3, ctx.end, false, IPV4_LOOPBACK, partial)) return DROP_WRITE_ERROR;
    ctx.saddr = IPV4_LOOPBACK;
    ctx.loopback = true;
  }
  return lb.dnat(ctx) ? 0 : DROP_WRITE_ERROR;
}

/** lb4_rev_nat for a reply matched in CT: source back to the frontend; a hairpin's destination back to the pod. */
export function lb4RevNat(ctx: PacketContext, dp: Datapath): boolean {
  const backend = ctx.saddr;
  if (!dp.lb.revNat(ctx, dp.ct.revNat)) return false;
  if (dp.ct.entryFlags & CT_F_LB_LOOPBACK) {
    const partial = (ctx.meta[ctx.m + M_FLAGS] & F_NEEDS_CSUM) !== 0;
    if (!native.rewriteAddr(ctx.buf, ctx.l3, ctx.end, true, backend, partial)) return false;
    ctx.daddr = backend;
  }
  ctx.revNatDone = true;
  return true;
}
