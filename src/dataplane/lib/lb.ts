// lb4_local: translate a packet for a service frontend to one of its backends, remembering the
// choice in a service CT entry so every packet of the connection goes to the same backend.
import type { PacketContext } from '../context.ts';
import type { Datapath } from '../datapath.ts';
import { DROP_CT_CREATE_FAILED, DROP_NO_SERVICE, DROP_WRITE_ERROR } from '../drop-reasons.ts';
import { native } from '../../native/index.ts';
import { M_FLAGS, F_NEEDS_CSUM } from '../../native/meta.ts';
import { CT_F_LB_LOOPBACK } from '../../maps/cilium/ct.ts';
import { tcpOpens } from '../../conntrack/conntrack.ts';
import { EVENT_TRACE_SOCK, XLATE_POST_FWD, XLATE_PRE_FWD, XLATE_PRE_REV } from '../events.ts';
import { RW_DNAT, RW_SNAT } from '../../observe/trace/tracer.ts';
import * as ipv4 from '../../wire/ipv4.ts';
import * as l4 from '../../wire/l4.ts';
import { IPPROTO_ICMP, L4_PORTS_LEN } from '../../wire/proto.ts';

/** Cilium's IPV4_LOOPBACK: the source a pod sees when it reaches itself through a service. */
export const IPV4_LOOPBACK = 0xa9fe2a01; // 169.254.42.1

/** Returns 0 when the packet is not for a service or was translated, else a drop reason. */
export function lb4Local(ctx: PacketContext, dp: Datapath): number {
  const lb = ctx.lb;
  if (!dp.lb.lookupService(ctx)) {
    if (ctx.traced) dp.tracer!.lbService(ctx.daddr, ctx.dport, ctx.proto, false, 0, 0, 0);
    return 0;
  }
  if (ctx.traced) dp.tracer!.lbService(ctx.daddr, ctx.dport, ctx.proto, true, lb.svcCount, lb.revNat, lb.svcFlags);
  let id = dp.ct.lookupService(ctx);
  let fresh = false;
  // An established connection keeps its backend even while it terminates; a SYN picks again.
  let ok = id !== 0 && dp.lb.lookupBackend(ctx, id, !tcpOpens(ctx));
  if (ctx.traced && id !== 0) dp.tracer!.lbBackend(id, ok, lb.backendAddr, lb.backendPort, true);
  if (!ok) {
    id = dp.lb.selectBackend(ctx, dp.ct.now);
    ok = id !== 0 && dp.lb.lookupBackend(ctx, id);
    if (ctx.traced && id !== 0) dp.tracer!.lbBackend(id, ok, lb.backendAddr, lb.backendPort, false);
    if (!ok) return DROP_NO_SERVICE;
    if (!dp.ct.createService(ctx, id, lb.revNat)) return DROP_CT_CREATE_FAILED;
    fresh = true;
  }
  if (fresh) {
    dp.events.emitXlate(ctx, XLATE_PRE_FWD);
    if (ctx.traced) dp.tracer!.event(EVENT_TRACE_SOCK, XLATE_PRE_FWD, true);
  }
  if (lb.backendAddr === ctx.saddr) {
    if (ctx.traced) dp.tracer!.rewrite(RW_SNAT, ctx.saddr, -1, IPV4_LOOPBACK, -1);
    const partial = (ctx.meta[ctx.m + M_FLAGS] & F_NEEDS_CSUM) !== 0;
    if (!native.rewriteAddr(ctx.buf, ctx.l3, ctx.end, false, IPV4_LOOPBACK, partial)) return DROP_WRITE_ERROR;
    ctx.saddr = IPV4_LOOPBACK;
    ctx.loopback = true;
  }
  if (!dp.lb.dnat(ctx)) return DROP_WRITE_ERROR;
  if (fresh) {
    dp.events.emitXlate(ctx, XLATE_POST_FWD);
    if (ctx.traced) dp.tracer!.event(EVENT_TRACE_SOCK, XLATE_POST_FWD, true);
  }
  return 0;
}

/**
 * An ICMP error about a service connection, from the backend: the error's source and the quoted
 * packet's destination go back to the frontend, so the client's socket recognises its own packet.
 */
export function lb4RevNatRelated(ctx: PacketContext, dp: Datapath): boolean {
  const inner = ctx.ct.innerL3;
  if (inner < 0 || !dp.lb.revNat(ctx, ctx.ct.revNat)) return false;
  const b = ctx.buf;
  ipv4.setDaddr(b, inner, ctx.saddr); // lb.revNat left the frontend address in ctx.saddr
  ipv4.fillCsum(b, inner);
  const at = inner + ipv4.hdrlen(b, inner);
  if (ipv4.protocol(b, inner) !== IPPROTO_ICMP && at + L4_PORTS_LEN <= ctx.end) l4.setDport(b, at, ctx.lb.revNatPort);
  // The ICMP checksum covers the quote: recompute it (errors are rare, this is not the fast path).
  native.setChecksums(b, ctx.l3, ctx.end);
  ctx.revNatDone = true;
  return true;
}

/** lb4_rev_nat for a reply matched in CT: source back to the frontend; a hairpin's destination back to the pod. */
export function lb4RevNat(ctx: PacketContext, dp: Datapath): boolean {
  const backend = ctx.saddr;
  if (ctx.report) dp.events.emitXlate(ctx, XLATE_PRE_REV);
  if (ctx.traced) dp.tracer!.event(EVENT_TRACE_SOCK, XLATE_PRE_REV, ctx.report);
  if (!dp.lb.revNat(ctx, ctx.ct.revNat)) return false;
  if (ctx.ct.entryFlags & CT_F_LB_LOOPBACK) {
    const partial = (ctx.meta[ctx.m + M_FLAGS] & F_NEEDS_CSUM) !== 0;
    if (ctx.traced) dp.tracer!.rewrite(RW_DNAT, ctx.daddr, -1, backend, -1);
    if (!native.rewriteAddr(ctx.buf, ctx.l3, ctx.end, true, backend, partial)) return false;
    ctx.daddr = backend;
  }
  ctx.revNatDone = true;
  return true;
}
