// bpf_host: cilium_host's chain, as Cilium's bpf/bpf_host.c. Its device's hook is cil_from_host
// (what the node's stack routed into cilium_host) → tail_handle_ipv4_from_host in the host
// endpoint's program array → a local pod (bpf_lxc's cil_to_container), or, for a NodePort whose
// backend is on another node, SNATed to the node IP back into the stack (lib/nodeport.ts). Replies
// to masqueraded and NodePort-SNATed flows, steered here from the native device, are translated
// back first. cil_to_host is where packets leave the datapath into the node's stack.
import { CTX_ACT_OK, CTX_ACT_REDIRECT, DIR_INGRESS, type PacketContext } from '../context.ts';
import type { Datapath } from '../datapath.ts';
import { CILIUM_CALL_IPV4_FROM_HOST } from '../calls.ts';
import * as R from '../drop-reasons.ts';
import { TRACE_TO_HOST, TRACE_TO_NETWORK, TRACE_TO_STACK } from '../events.ts';
import { IPCACHE_KEY, IPC_TUNNEL } from '../../maps/cilium/ipcache.ts';
import { F_IPV4, F_IPV6, F_NON_IP } from '../../native/meta.ts';
import { CT_ESTABLISHED, CT_F_NODE_PORT, CT_NEW, TUPLE_F_IN, TUPLE_F_OUT } from '../../maps/cilium/ct.ts';
import { enforcePolicy } from '../lib/policy.ts';
import { HOOK_FROM_HOST, HOOK_TO_HOST, RW_DNAT } from '../../observe/trace/tracer.ts';
import { lb4Local } from '../lib/lb.ts';
import { isNodePortFrontend, nodeport_nat_fwd, nodeport_rev_dnat } from '../lib/nodeport.ts';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP } from '../../wire/proto.ts';
import { NAT_PUNT, NAT_XLATED } from '../lib/nat.ts';
import { cil_to_container, snatToWorld } from './bpf_lxc.ts';
import { encapAndRedirect, tunnelEndpointOf } from '../lib/encap.ts';

/** The reserved:host identity: the node itself. */
export const HOST_ID = 1;

/** Hook of cilium_host: a packet the node's stack routed into it. */
export function cil_from_host(ctx: PacketContext, dp: Datapath): number {
  if (ctx.traced) dp.tracer!.hook(HOOK_FROM_HOST, ctx.srcEp);
  ctx.direction = DIR_INGRESS;
  ctx.ifindex = dp.epIfindex[ctx.srcEp];
  const f = ctx.flags;
  if (f & F_IPV6) return dp.drop(ctx, R.DROP_UNKNOWN_L3);
  if (f & F_NON_IP) return dp.drop(ctx, R.DROP_UNSUPPORTED_L2);
  if (!(f & F_IPV4)) return dp.drop(ctx, R.DROP_INVALID);
  const verdict = dp.tailCall(ctx, CILIUM_CALL_IPV4_FROM_HOST);
  // The host's own packets cannot go back to the stack they came from.
  return verdict === CTX_ACT_OK ? dp.drop(ctx, R.DROP_UNROUTABLE) : verdict;
}

/**
 * CILIUM_CALL_IPV4_FROM_HOST: host traffic to a local pod enters the pod through its
 * cil_to_container hook; the node's own connections to a ClusterIP are translated here, with an
 * egress CT entry that carries the reverse NAT for the replies.
 */
export function tail_handle_ipv4_from_host(ctx: PacketContext, dp: Datapath): number {
  // Steered from the native device (control/north-south-routing.ts): replies to masqueraded flows
  // go back to their pod before policy and delivery, a remote NodePort backend's back to its client;
  // the rest is for a NodePort frontend (below) or the node's own, on into its stack.
  let steered = false;
  if (ctx.daddr === dp.nat.nodeAddr && dp.nat.nodeAddr !== 0) {
    const daddr = ctx.daddr;
    const port = ctx.proto === IPPROTO_ICMP ? ctx.sport : ctx.dport;
    const r = dp.nat.revSnatV4(ctx);
    if (r === NAT_PUNT) steered = true;
    else if (r !== NAT_XLATED) return dp.drop(ctx, r);
    else {
      if (ctx.traced) dp.tracer!.rewrite(RW_DNAT, daddr, port, ctx.daddr, ctx.proto === IPPROTO_ICMP ? ctx.sport : ctx.dport);
      // Not a pod's: a NodePort client outside, or the node itself (its own IP:nodePort, from cilium_host's address).
      const ep = dp.lookupEndpoint(ctx.daddr);
      if (ep === 0 || ep === dp.hostEp) return nodeport_rev_dnat(ctx, dp);
    }
  }
  if (ctx.saddr === dp.proxy.routerIP && (ctx.proto === IPPROTO_TCP || ctx.proto === IPPROTO_UDP)) {
    // The L7 or DNS proxy answering a client, or speaking to a server for one.
    if (dp.proxy.active[ctx.sport] === 1) {
      if (!dp.proxy.restoreAnswer(ctx)) return dp.drop(ctx, R.DROP_PROXY_LOOKUP_FAILED);
      ctx.fromProxy = true;
    } else if (dp.proxy.restoreClient(ctx)) {
      ctx.fromProxy = true;
    }
  }
  if (!steered) ctx.srcIdentity = dp.lookupIdentity(ctx.saddr);
  const reason = lb4Local(ctx, dp);
  if (reason !== 0) return dp.drop(ctx, reason);
  const revNat = ctx.lb.revNat;
  if (steered) {
    // No frontend's: for the node itself. TCP/UDP from outside to its ports meets the host firewall;
    // the rest (ICMP, which carries its own echo replies) goes in without a source identity, so
    // cil_to_host leaves it alone; a frontend's comes from outside.
    if (revNat === 0) return dp.policy[dp.hostEp] !== undefined && ctx.proto !== IPPROTO_ICMP ? hostFirewallFromNetwork(ctx, dp) : cil_to_host(ctx, dp);
    ctx.srcIdentity = dp.lookupIdentity(ctx.saddr);
  }
  const nodePort = isNodePortFrontend(ctx);
  if (revNat !== 0 && dp.ct.lookup(ctx, TUPLE_F_OUT) === CT_NEW && !dp.ct.create(ctx, TUPLE_F_OUT, revNat, nodePort ? CT_F_NODE_PORT : 0)) {
    return dp.drop(ctx, R.DROP_CT_CREATE_FAILED);
  }
  const ep = dp.lookupEndpoint(ctx.daddr);
  // SNAT mode: a backend on another node answers this node, which undoes both translations.
  if (ep === 0 && nodePort && dp.nat.nodeAddr !== 0) return nodeport_nat_fwd(ctx, dp);
  if (ep === 0) {
    // The node (or the L7 proxy for a pod) speaking to a pod on another node in tunnel mode.
    dp.lookupDestination(ctx);
    const tunnel = tunnelEndpointOf(ctx, dp);
    if (tunnel !== 0) return encapAndRedirect(ctx, dp, tunnel);
  }
  // The proxy's upstream leg, now as its client pod: through the stack as the pod's own packet would go.
  if (ctx.fromProxy && (ep === 0 || ep === dp.hostEp)) return proxyUpstreamToStack(ctx, dp);
  if (ep === 0 || ep === dp.hostEp) return dp.drop(ctx, R.DROP_UNROUTABLE);
  ctx.dstEp = ep;
  ctx.dstIdentity = dp.epIdentity[ep];
  if (ctx.srcIdentity === HOST_ID && dp.policy[dp.hostEp] !== undefined && revNat === 0) {
    // Host firewall, egress of the node: its new connections to the pod (replies to the pod's pass).
    dp.ct.lookup(ctx, TUPLE_F_IN);
    const state = ctx.ct.state;
    if (state === CT_NEW || state === CT_ESTABLISHED) {
      const verdict = enforcePolicy(ctx, dp, dp.hostEp, true, ctx.dstIdentity);
      if (verdict !== 0) return dp.drop(ctx, verdict);
    }
  }
  return cil_to_container(ctx, dp);
}

/**
 * A connection from the network to the node's own port (control/host-firewall-routing.ts steers
 * them): cil_to_host enforces the host's ingress policy; what passes is tracked (its later packets
 * are ESTABLISHED; the node's replies leave through the kernel).
 */
function hostFirewallFromNetwork(ctx: PacketContext, dp: Datapath): number {
  ctx.srcIdentity = dp.lookupIdentity(ctx.saddr);
  const isNew = dp.ct.lookup(ctx, TUPLE_F_IN) === CT_NEW;
  const verdict = cil_to_host(ctx, dp);
  if (verdict === CTX_ACT_REDIRECT && isNew && !dp.ct.create(ctx, TUPLE_F_IN, 0, 0)) return dp.drop(ctx, R.DROP_CT_CREATE_FAILED);
  return verdict;
}

/** To another node (native routing), the node or the world (masqueraded as a pod's packet would be). */
function proxyUpstreamToStack(ctx: PacketContext, dp: Datapath): number {
  dp.lookupDestination(ctx);
  const masquerade = dp.nat.needsMasquerade(ctx);
  const verdict = cil_to_host(ctx, dp);
  return masquerade && verdict === CTX_ACT_REDIRECT ? snatToWorld(ctx, dp) : verdict;
}

const remoteKey = new Uint8Array(IPCACHE_KEY);
const remoteKeyView = new DataView(remoteKey.buffer);

/** The node IP `addr` lives behind (its ipcache tunnel endpoint); 0 when it is not on another node. */
function remoteNodeOf(dp: Datapath, addr: number): number {
  remoteKeyView.setUint32(0, 32, true);
  remoteKeyView.setUint32(4, addr);
  const off = dp.ipcache.lookup(remoteKey, 0);
  return off < 0 ? 0 : dp.ipcache.view.getUint32(off + IPC_TUNNEL);
}

/**
 * A packet leaving the datapath into the node's stack through cilium_host. In native routing the
 * stack's routes carry a packet for another node's pod to that node: traced to-network, as Cilium's.
 */
export function cil_to_host(ctx: PacketContext, dp: Datapath): number {
  if (ctx.traced) dp.tracer!.hook(HOOK_TO_HOST, dp.hostEp);
  if (ctx.dstIdentity === 0) ctx.dstIdentity = dp.lookupIdentity(ctx.daddr);
  ctx.dstEp = ctx.dstIdentity === HOST_ID ? dp.hostEp : 0;
  ctx.ifindex = dp.epIfindex[dp.hostEp];
  // Host firewall, ingress of the node: a pod's connection to the node itself (CT from the pod's
  // egress). Steered outside traffic (no source identity yet) is the node's own: not filtered.
  if (ctx.dstEp !== 0 && ctx.srcIdentity !== 0 && !ctx.toProxy && dp.policy[dp.hostEp] !== undefined && (ctx.ct.state === CT_NEW || ctx.ct.state === CT_ESTABLISHED)) {
    ctx.direction = DIR_INGRESS;
    const verdict = enforcePolicy(ctx, dp, dp.hostEp, false, ctx.srcIdentity);
    if (verdict !== 0) return dp.drop(ctx, verdict);
  }
  if (dp.hostFd < 0) return dp.drop(ctx, R.DROP_HOST_NOT_READY);
  // A redirect to the proxy was traced before its rewrite (redirectToProxy); the remote-node
  // lookup runs only for packets that are reported (most of a bulk transfer is not).
  if (!ctx.toProxy && (ctx.report || ctx.traced)) {
    dp.trace(ctx, ctx.dstIdentity === HOST_ID ? TRACE_TO_HOST : remoteNodeOf(dp, ctx.daddr) !== 0 ? TRACE_TO_NETWORK : TRACE_TO_STACK);
  }
  ctx.outFd = dp.hostFd;
  return CTX_ACT_REDIRECT;
}
