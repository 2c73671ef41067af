// bpf_lxc: a pod's whole chain, as Cilium's bpf/bpf_lxc.c. Its device's hook is cil_from_container;
// the rest run through the pod's program array (cilium_calls_<id>):
//   cil_from_container → tail_handle_ipv4 (source check, service DNAT) → tail_ipv4_ct_egress
//   (CT, reverse NAT of replies) → handle_ipv4_from_lxc (egress policy, CT create, routing) →
//   tail_ipv4_to_endpoint in the destination pod's array, or the host (bpf_host's cil_to_host),
//   masqueraded to the node IP when it leaves for the world (lib/nat.ts);
//   a rate-limited pod's packets then leave at their EDT departure time (edtSchedDeparture).
// Into a pod from the host: cil_to_container → tail_ipv4_policy. Both ingress paths run
// ipv4Policy (CT, ingress policy, L7 redirect) and end in redirectToEndpoint.
import { CTX_ACT_OK, CTX_ACT_QUEUED, CTX_ACT_REDIRECT, DIR_EGRESS, DIR_INGRESS, type PacketContext } from '../context.ts';
import type { Datapath } from '../datapath.ts';
import * as C from '../calls.ts';
import * as R from '../drop-reasons.ts';
import { F_ICMP_ERROR, F_IPV4, F_IPV6, F_NON_IP } from '../../native/meta.ts';
import { CT_ESTABLISHED, CT_F_LB_LOOPBACK, CT_F_PROXY_REDIRECT, CT_NEW, CT_RELATED, CT_REPLY, TUPLE_F_IN, TUPLE_F_OUT } from '../../maps/cilium/ct.ts';
import { HOOK_FROM_CONTAINER, HOOK_TO_CONTAINER, RW_SNAT, RW_TTL } from '../../observe/trace/tracer.ts';
import { lb4Local, lb4RevNat, lb4RevNatRelated } from '../lib/lb.ts';
import { enforcePolicy } from '../lib/policy.ts';
import { redirectToProxy } from '../lib/proxy.ts';
import { redirectToEndpoint } from '../lib/deliver.ts';
import { ipv4DecTtl } from '../lib/l3.ts';
import { EDT_QUEUED, EDT_SEND } from '../lib/edt.ts';
import { encapAndRedirect, tunnelEndpointOf } from '../lib/encap.ts';
import * as ipv4 from '../../wire/ipv4.ts';
import { cil_to_host, HOST_ID } from './bpf_host.ts';

/** Hook of a pod's device: a packet the pod sent. Validates L3, then tail-calls IPv4. */
export function cil_from_container(ctx: PacketContext, dp: Datapath): number {
  if (ctx.traced) dp.tracer!.hook(HOOK_FROM_CONTAINER, ctx.srcEp);
  ctx.direction = DIR_EGRESS;
  ctx.fromEndpoint = true;
  ctx.ifindex = dp.epIfindex[ctx.srcEp];
  ctx.srcIdentity = dp.epIdentity[ctx.srcEp];
  const f = ctx.flags;
  if (f & F_IPV6) return dp.drop(ctx, R.DROP_UNKNOWN_L3); // IPv6 is disabled, as in the labs
  if (f & F_NON_IP) return dp.drop(ctx, R.DROP_UNSUPPORTED_L2);
  if (!(f & F_IPV4)) return dp.drop(ctx, R.DROP_INVALID);
  const verdict = dp.tailCall(ctx, C.CILIUM_CALL_IPV4_FROM_LXC);
  if (verdict === CTX_ACT_OK) ctx.outFd = dp.hostFd; // for the stack: a pod's packets reach it through cilium_host
  else if (verdict !== CTX_ACT_REDIRECT) return verdict;
  return dp.edt.limited(ctx.srcEp) ? edtSchedDeparture(ctx, dp) : CTX_ACT_REDIRECT;
}

/**
 * Bandwidth manager (kubernetes.io/egress-bandwidth), after policy and routing: the packet leaves
 * now, at its departure time from the endpoint's EDT queue, or drops beyond the horizon.
 */
function edtSchedDeparture(ctx: PacketContext, dp: Datapath): number {
  const verdict = dp.edt.schedule(ctx, performance.now());
  if (verdict === EDT_SEND) return CTX_ACT_REDIRECT;
  if (verdict === EDT_QUEUED) return CTX_ACT_QUEUED;
  ctx.direction = DIR_EGRESS; // the pod's egress, also when its destination pod's ingress already ran
  return dp.drop(ctx, R.DROP_EDT_HORIZON);
}

/**
 * CILIUM_CALL_IPV4_FROM_LXC: the source must be the pod's own address; a packet for a service
 * frontend is translated to a backend (per packet, as Cilium does without its socket hook), then
 * conntrack runs on the translated tuple.
 */
export function tail_handle_ipv4(ctx: PacketContext, dp: Datapath): number {
  if (ctx.saddr !== dp.epIp[ctx.srcEp]) return dp.drop(ctx, R.DROP_INVALID_SIP);
  const reason = lb4Local(ctx, dp);
  if (reason !== 0) return dp.drop(ctx, reason);
  return dp.tailCall(ctx, C.CILIUM_CALL_IPV4_CT_EGRESS);
}

/**
 * CILIUM_CALL_IPV4_CT_EGRESS: conntrack in the pod's egress direction. A reply to a service
 * connection is translated back to the frontend here, before it is routed.
 */
export function tail_ipv4_ct_egress(ctx: PacketContext, dp: Datapath): number {
  const ct = ctx.ct;
  dp.ct.lookup(ctx, TUPLE_F_OUT);
  ctx.report = ct.report;
  if (ct.state === CT_REPLY && ct.entryFlags & CT_F_PROXY_REDIRECT) {
    // A server answering the proxy's upstream leg: back to the proxy's socket on the router IP.
    if (!dp.proxy.toUpstream(ctx)) return dp.drop(ctx, R.DROP_PROXY_LOOKUP_FAILED);
    ctx.revNatDone = true;
  }
  if (ct.state === CT_REPLY && ct.revNat !== 0 && !ctx.revNatDone && !lb4RevNat(ctx, dp)) return dp.drop(ctx, R.DROP_NAT_NO_MAPPING);
  if (ct.state === CT_RELATED && ct.revNat !== 0 && !lb4RevNatRelated(ctx, dp)) return dp.drop(ctx, R.DROP_NAT_NO_MAPPING);
  return dp.tailCall(ctx, C.CILIUM_CALL_IPV4_FROM_LXC_CONT);
}

/**
 * CILIUM_CALL_IPV4_FROM_LXC_CONT: egress policy, records a new connection, then decides where the
 * packet goes: a local pod (tail call into its program array), the host, or the stack.
 */
export function handle_ipv4_from_lxc(ctx: PacketContext, dp: Datapath): number {
  const state = ctx.ct.state;
  dp.lookupDestination(ctx);
  // Egress policy for every packet in the original direction: removing an allow cuts the connection.
  let proxyPort = 0;
  if (state === CT_NEW || state === CT_ESTABLISHED) {
    const verdict = enforcePolicy(ctx, dp, ctx.srcEp, true, ctx.dstIdentity);
    if (verdict !== 0) return dp.drop(ctx, verdict);
    proxyPort = ctx.policy.proxyPort;
  }
  const flags = (ctx.loopback ? CT_F_LB_LOOPBACK : 0) | (proxyPort !== 0 ? CT_F_PROXY_REDIRECT : 0);
  if (state === CT_NEW && !(ctx.flags & F_ICMP_ERROR) && !dp.ct.create(ctx, TUPLE_F_OUT, ctx.lb.revNat, flags)) {
    return dp.drop(ctx, R.DROP_CT_CREATE_FAILED);
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
    if (ctx.traced) dp.tracer!.rewrite(RW_TTL, ipv4.ttl(ctx.buf, ctx.l3), -1, ipv4.ttl(ctx.buf, ctx.l3) - 1, -1);
    if (!ipv4DecTtl(ctx)) return dp.drop(ctx, R.DROP_TTL_EXCEEDED);
    ctx.dstEp = ep;
    ctx.calls = dp.calls[ep] ?? null;
    return dp.tailCall(ctx, C.CILIUM_CALL_IPV4_TO_ENDPOINT);
  }
  // A pod on another node in tunnel mode: VXLAN to the node its ipcache entry names.
  const tunnel = tunnelEndpointOf(ctx, dp);
  if (tunnel !== 0) return encapAndRedirect(ctx, dp, tunnel);
  // An ICMP error about a masqueraded flow's reply is translated too (snatV4 finds its flow).
  const masquerade = (state === CT_NEW || state === CT_ESTABLISHED || (state === CT_RELATED && (ctx.flags & F_ICMP_ERROR) !== 0)) && dp.nat.needsMasquerade(ctx);
  const verdict = cil_to_host(ctx, dp);
  return masquerade && verdict === CTX_ACT_REDIRECT ? snatToWorld(ctx, dp) : verdict;
}

/**
 * BPF masquerade of a pod's packet leaving for the world through the stack and the native device,
 * after its to-stack trace (which shows the pod, as Cilium's): the source becomes the node IP.
 */
export function snatToWorld(ctx: PacketContext, dp: Datapath): number {
  const saddr = ctx.saddr;
  const sport = ctx.sport;
  const reason = dp.nat.snatV4(ctx, dp.nat.masqAddr, dp.ct.now);
  if (reason !== 0) return dp.drop(ctx, reason);
  if (ctx.traced) dp.tracer!.rewrite(RW_SNAT, saddr, sport, ctx.saddr, ctx.sport);
  return CTX_ACT_REDIRECT;
}

/** Returned by ipv4Policy instead of a drop reason when the packet goes to the L7 proxy. */
const TO_PROXY = -1;

/**
 * Conntrack and policy on the pod's ingress side (Cilium's ipv4_policy): new connections get an IN
 * entry, an L7 rule sends the connection to the proxy, replies to service connections are
 * translated back unless the sender's side already did it. 0, TO_PROXY or a drop reason.
 */
function ipv4Policy(ctx: PacketContext, dp: Datapath): number {
  if (ctx.revNatDone) return 0;
  const ct = ctx.ct;
  dp.ct.lookup(ctx, TUPLE_F_IN);
  // Monitor aggregation: a pod's packet reports if either CT lookup saw news; one from the host or the tunnel had no egress CT, so only this one decides.
  ctx.report = (ctx.fromEndpoint && ctx.report) || ct.report;
  const icmpError = (ctx.flags & F_ICMP_ERROR) !== 0;
  // A server on another node or beyond the stack answering the proxy's upstream leg (it spoke as
  // this pod): to the proxy's socket; toUpstream finds it only for a redirected client connection.
  if (ct.state === CT_REPLY && ct.entryFlags & CT_F_PROXY_REDIRECT && !ctx.fromProxy && dp.proxy.toUpstream(ctx)) return TO_PROXY;
  // Ingress policy, except for the local host (Cilium's allow-localhost) and replies.
  let proxyPort = 0;
  if ((ct.state === CT_NEW || ct.state === CT_ESTABLISHED) && ctx.srcIdentity !== HOST_ID && !icmpError) {
    const verdict = enforcePolicy(ctx, dp, ctx.dstEp, false, ctx.srcIdentity);
    if (verdict !== 0) return verdict;
    // The proxy's own upstream leg was already inspected: it goes to the pod.
    if (!ctx.fromProxy) proxyPort = ctx.policy.proxyPort;
  }
  // ICMP errors are never new connections: untracked ones pass untracked, as replies would.
  if (ct.state === CT_NEW && !icmpError && !dp.ct.create(ctx, TUPLE_F_IN, 0, proxyPort !== 0 ? CT_F_PROXY_REDIRECT : 0)) return R.DROP_CT_CREATE_FAILED;
  if (proxyPort !== 0) {
    const reason = redirectToProxy(ctx, dp, proxyPort, ctx.dstEp);
    return reason !== 0 ? reason : TO_PROXY;
  }
  if (ct.state === CT_REPLY && ct.revNat !== 0 && !lb4RevNat(ctx, dp)) return R.DROP_NAT_NO_MAPPING;
  if (ct.state === CT_RELATED && ct.revNat !== 0 && !lb4RevNatRelated(ctx, dp)) return R.DROP_NAT_NO_MAPPING;
  return 0;
}

/** The end of both ingress paths: the pod's own device, or the proxy through the host. */
function ingressVerdict(ctx: PacketContext, dp: Datapath, reason: number): number {
  if (reason === TO_PROXY) return cil_to_host(ctx, dp);
  if (reason !== 0) return dp.drop(ctx, reason);
  return redirectToEndpoint(ctx, dp);
}

/**
 * CILIUM_CALL_IPV4_TO_ENDPOINT, run from the destination pod's program array: the ingress side of
 * pod-to-pod traffic on this node.
 */
export function tail_ipv4_to_endpoint(ctx: PacketContext, dp: Datapath): number {
  ctx.direction = DIR_INGRESS;
  return ingressVerdict(ctx, dp, ipv4Policy(ctx, dp));
}

/**
 * Into the pod from the host (the node itself, the world, replies of connections the pod made
 * outward): runs the pod's ingress policy program from its own program array.
 */
export function cil_to_container(ctx: PacketContext, dp: Datapath): number {
  if (ctx.traced) dp.tracer!.hook(HOOK_TO_CONTAINER, ctx.dstEp);
  ctx.calls = dp.calls[ctx.dstEp] ?? null;
  return dp.tailCall(ctx, C.CILIUM_CALL_IPV4_TO_LXC_POLICY_ONLY);
}

/** CILIUM_CALL_IPV4_TO_LXC_POLICY_ONLY: ingress for traffic that came through the host. */
export function tail_ipv4_policy(ctx: PacketContext, dp: Datapath): number {
  return ingressVerdict(ctx, dp, ipv4Policy(ctx, dp));
}
