// bpf_overlay: the tunnel device's chain, as Cilium's bpf/bpf_overlay.c. Its hook cil_from_overlay
// takes a VXLAN datagram the overlay UDP socket received, takes the source identity from its VNI,
// and hands the inner IPv4 packet to the local pod it is for through that pod's ingress policy
// (tail_ipv4_to_endpoint in the pod's program array), or drops it.
import { DIR_INGRESS, type PacketContext } from '../context.ts';
import type { Datapath } from '../datapath.ts';
import { CILIUM_CALL_IPV4_TO_ENDPOINT } from '../calls.ts';
import * as R from '../drop-reasons.ts';
import { EVENT_TRACE, TRACE_FROM_OVERLAY } from '../events.ts';
import * as M from '../../native/meta.ts';
import { ipv4DecTtl } from '../lib/l3.ts';
import { cil_to_host } from './bpf_host.ts';
import * as vxlan from '../../wire/vxlan.ts';
import { IDENTITY_UNKNOWN, RESERVED_IDENTITIES } from '../vocab/reserved-identities.ts';

/** Device id of the overlay socket in the datapath: no endpoint takes it (endpoint ids end at 4095). */
export const OVERLAY_DEVICE = 0xffff;

/** Hook of the overlay socket: one VXLAN datagram from another node. */
export function cil_from_overlay(ctx: PacketContext, dp: Datapath): number {
  ctx.direction = DIR_INGRESS;
  const b = ctx.buf;
  const dgram = ctx.meta[ctx.m + M.M_DGRAM_OFF];
  if (ctx.meta[ctx.m + M.M_DGRAM_LEN] < vxlan.VXLAN_INNER_OFFSET) return dp.drop(ctx, R.DROP_INVALID);
  // RFC 7348: the I flag must be set for the VNI to mean anything; the VNI is the source identity.
  if ((vxlan.flags(b, dgram) & vxlan.VXLAN_FLAG_I) === 0) return dp.drop(ctx, R.DROP_INVALID_VNI);
  // A sender presents its own node as remote-node: host (or unknown) from the wire is forged.
  const identity = vxlan.vni(b, dgram);
  if (identity === IDENTITY_UNKNOWN || identity === RESERVED_IDENTITIES.host) return dp.drop(ctx, R.DROP_INVALID_IDENTITY);
  ctx.srcIdentity = identity;
  const type = vxlan.innerEthertype(b, dgram);
  if (type === vxlan.ETH_P_IPV6) return dp.drop(ctx, R.DROP_UNKNOWN_L3);
  if (type !== vxlan.ETH_P_IP) return dp.drop(ctx, R.DROP_UNSUPPORTED_L2);
  if (!(ctx.flags & M.F_IPV4)) return dp.drop(ctx, R.DROP_INVALID);
  // Cilium's default monitor aggregation hides from-* traces; `ciliary trace` still records this one.
  if (ctx.traced) dp.tracer!.event(EVENT_TRACE, TRACE_FROM_OVERLAY, false);
  // Pods' TUNs take a virtio-net header: it goes over the tail of the inner Ethernet header, for
  // segments the reader coalesced a TCPv4 GSO one, otherwise zero (complete checksums).
  ctx.off = ctx.l3 - M.VNET_HDR_LEN;
  writeVnetHeader(b, ctx.off, ctx.meta, ctx.m);
  ctx.len = ctx.end - ctx.off;
  const ep = dp.lookupEndpoint(ctx.daddr);
  // For the node itself (replies to its own connections, the L7 proxy): into its stack.
  if (ep !== 0 && ep === dp.hostEp) return cil_to_host(ctx, dp);
  if (ep === 0) return dp.drop(ctx, R.DROP_UNROUTABLE);
  // ipv4_local_delivery: the node routes the packet on into the pod.
  if (!ipv4DecTtl(ctx)) return dp.drop(ctx, R.DROP_TTL_EXCEEDED);
  ctx.dstEp = ep;
  ctx.dstIdentity = dp.epIdentity[ep];
  ctx.calls = dp.calls[ep] ?? null;
  return dp.tailCall(ctx, CILIUM_CALL_IPV4_TO_ENDPOINT);
}

/** virtio_net_hdr from a record's M_VNET_FLAGS..M_CSUM_OFFSET (little-endian 16-bit fields). */
function writeVnetHeader(b: Uint8Array, at: number, meta: Uint32Array, m: number): void {
  b[at] = meta[m + M.M_VNET_FLAGS];
  b[at + 1] = meta[m + M.M_GSO_TYPE];
  setLe16(b, at + 2, meta[m + M.M_HDR_LEN]);
  setLe16(b, at + 4, meta[m + M.M_GSO_SIZE]);
  setLe16(b, at + 6, meta[m + M.M_CSUM_START]);
  setLe16(b, at + 8, meta[m + M.M_CSUM_OFFSET]);
}

function setLe16(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = v >>> 8;
}
