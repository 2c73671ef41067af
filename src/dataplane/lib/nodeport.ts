// NodePort, externalIPs and LoadBalancer frontends reached through the node's stack (Cilium's
// bpf/lib/nodeport.h, SNAT mode): bpf_host translated the packet to a backend (lb4Local); a backend
// on another node gets it with the node IP as source (nodeport_nat_fwd, on the masquerade library's
// cilium_snat_v4_external), so its reply comes back here, where the SNAT is undone by bpf_host's
// rev-SNAT step and the DNAT by nodeport_rev_dnat before the reply goes out to the client.
import { CTX_ACT_REDIRECT, type PacketContext } from '../context.ts';
import type { Datapath } from '../datapath.ts';
import { DROP_NAT_NO_MAPPING } from '../drop-reasons.ts';
import { CT_RELATED, CT_REPLY, TUPLE_F_OUT } from '../../maps/cilium/ct.ts';
import { SVC_FLAG_EXTERNAL_IP, SVC_FLAG_LOADBALANCER, SVC_FLAG_NODEPORT } from '../../maps/cilium/lb.ts';
import { RW_SNAT } from '../../observe/trace/tracer.ts';
import { lb4RevNat, lb4RevNatRelated } from './lb.ts';
import { cil_to_host } from '../programs/bpf_host.ts';

/** Frontends a client outside the node reaches through the node's stack. */
const EXTERNAL_FRONTEND = SVC_FLAG_NODEPORT | SVC_FLAG_EXTERNAL_IP | SVC_FLAG_LOADBALANCER;

/** Whether the frontend lb4Local translated the packet for is a NodePort, external or LoadBalancer one. */
export const isNodePortFrontend = (ctx: PacketContext) => ctx.lb.revNat !== 0 && (ctx.lb.svcFlags & EXTERNAL_FRONTEND) !== 0;

/**
 * nodeport_nat_fwd: the backend is on another node. The source becomes this node's IP with a port
 * from the NAT range, so the backend answers this node; out through the stack (native routing).
 */
export function nodeport_nat_fwd(ctx: PacketContext, dp: Datapath): number {
  const saddr = ctx.saddr;
  const sport = ctx.sport;
  const verdict = cil_to_host(ctx, dp);
  if (verdict !== CTX_ACT_REDIRECT) return verdict;
  const reason = dp.nat.snatV4(ctx, dp.nat.nodeAddr, dp.ct.now);
  if (reason !== 0) return dp.drop(ctx, reason);
  if (ctx.traced) dp.tracer!.rewrite(RW_SNAT, saddr, sport, ctx.saddr, ctx.sport);
  return CTX_ACT_REDIRECT;
}

/**
 * nodeport_rev_dnat: a remote backend's reply, its SNAT undone (destination: the client again). The
 * connection's CT entry gives the frontend back as the source; out through the stack to the client.
 */
export function nodeport_rev_dnat(ctx: PacketContext, dp: Datapath): number {
  const state = dp.ct.lookup(ctx, TUPLE_F_OUT);
  if (ctx.ct.revNat === 0) return dp.drop(ctx, DROP_NAT_NO_MAPPING);
  // An ICMP error from the backend (revSnatV4 gave its quote the client back): the quote's frontend too.
  const undone = state === CT_REPLY ? lb4RevNat(ctx, dp) : state === CT_RELATED && lb4RevNatRelated(ctx, dp);
  return undone ? cil_to_host(ctx, dp) : dp.drop(ctx, DROP_NAT_NO_MAPPING);
}
