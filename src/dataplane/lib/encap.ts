// The tunnel's transmit side (Cilium's bpf/lib/encap.h): a packet for a pod on another node leaves
// as VXLAN datagrams (RFC 7348) on the overlay UDP socket, VNI = the source security identity; the
// kernel writes the outer IPv4/UDP (node IP → tunnel endpoint, DF). A TCP super-packet goes whole
// into the cilium_vxlan TAP behind prepared outer headers, for the kernel's UDP-tunnel GSO to cut;
// without that device it is cut into MSS segments in native code, each with its own VXLAN,
// Ethernet, IPv4 and TCP headers, and all of them leave in one UDP GSO send.
import { native } from '../../native/index.ts';
import { M_L3_OFF, M_OFF } from '../../native/meta.ts';
import { BATCH, UDP_TX_WORDS } from '../../native/pool.ts';
import { CTX_ACT_QUEUED, type PacketContext } from '../context.ts';
import type { Datapath } from '../datapath.ts';
import { DROP_EDT_HORIZON, DROP_INVALID, DROP_INVALID_IDENTITY } from '../drop-reasons.ts';
import { EDT_DROP, EDT_QUEUED } from './edt.ts';
import { TRACE_TO_OVERLAY } from '../events.ts';
import * as vxlan from '../../wire/vxlan.ts';
import { RESERVED_IDENTITIES } from '../vocab/reserved-identities.ts';

const HOST_ID = RESERVED_IDENTITIES.host;
const REMOTE_NODE_ID = RESERVED_IDENTITIES['remote-node'];
/** Bytes the tunnel adds on the node network: outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14. */
export const TUNNEL_OVERHEAD = 20 + 8 + vxlan.VXLAN_INNER_OFFSET;
/** Inner MACs: Cilium writes node MACs the receiver never checks; fixed locally administered ones. */
const INNER_DST_MAC = [0x02, 0xc1, 0x1a, 0x00, 0x00, 0x02];
const INNER_SRC_MAC = [0x02, 0xc1, 0x1a, 0x00, 0x00, 0x01];
/** Room for a batch of super-packets and the headers their segments gain (a full buffer is sent early). */
const OUT_BYTES = 4 * 1024 * 1024;
/** One UDP GSO send carries at most a maximal UDP payload: a super-packet's datagrams take up to three. */
const MAX_SEND_BYTES = 65507;
const ROWS_PER_PACKET = 3;
const MAX_ROWS = ROWS_PER_PACKET * BATCH;
/** The UDP-tunnel GSO frame's header (native gso::tunnel): virtio-net 24, Ethernet 14, IPv4 20, UDP 8, VXLAN 8, inner Ethernet 14. */
export const TUNNEL_HEAD_LEN = 88;
const HEAD_ETH = 24;
const HEAD_SADDR = HEAD_ETH + 14 + 12;
const HEAD_UDP = HEAD_ETH + 14 + 20;
const HEAD_VXLAN = HEAD_UDP + 8;
const VIRTIO_NET_HDR_GSO_TCPV4 = 1;
const VIRTIO_NET_HDR_GSO_ECN = 0x80;

export class TunnelTx {
  /** The overlay UDP socket; -1 when the node does not run a tunnel (routing-mode native). */
  fd = -1;
  port = 0;
  /** This node's address: a tunnel endpoint equal to it is local. */
  nodeIP = 0;
  /** The kernel cuts datagrams (UDP_SEGMENT); otherwise the writer sends each one itself. */
  gso = false;
  /** The TAP taking UDP-tunnel GSO frames (cilium_vxlan); -1: super-packets are cut here. */
  gsoFd = -1;
  private readonly prefix = new Uint8Array(vxlan.VXLAN_INNER_OFFSET);
  private readonly head = new Uint8Array(TUNNEL_HEAD_LEN);
  private readonly out = new Uint8Array(OUT_BYTES);
  private readonly desc = new Int32Array(UDP_TX_WORDS * MAX_ROWS);
  private readonly result = new Uint32Array(2);
  private rows = 0;
  private used = 0;

  /** onWriteError(bytes) counts a send the kernel refused. */
  constructor(private readonly onWriteError: (bytes: number) => void) {
    vxlan.setInnerEthernet(this.prefix, 0, INNER_DST_MAC, INNER_SRC_MAC, vxlan.ETH_P_IP);
  }

  /** Super-packets leave through `fd`, a tunnelGso TAP whose MAC is `mac`, from this node's address and port. */
  useTunnelGso(fd: number, mac: readonly number[]): void {
    const h = this.head;
    h.fill(0);
    h.set(mac, HEAD_ETH);
    h.set(INNER_SRC_MAC, HEAD_ETH + 6);
    h[HEAD_ETH + 12] = 0x08;
    const ip = this.nodeIP >>> 0;
    h.set([ip >>> 24, (ip >>> 16) & 0xff, (ip >>> 8) & 0xff, ip & 0xff], HEAD_SADDR);
    h.set([this.port >> 8, this.port & 0xff, this.port >> 8, this.port & 0xff], HEAD_UDP);
    h.set(this.prefix, HEAD_VXLAN);
    this.gsoFd = fd;
  }

  /** Queues ctx's frame as datagrams for `endpoint` (VNI `vni`); false when it cannot be encapsulated. */
  queue(ctx: PacketContext, endpoint: number, vni: number): boolean {
    return this.queueFrame(ctx.buf, ctx.off, ctx.len, hasVnetHeader(ctx), endpoint, vni);
  }

  /** queue() for a frame held outside a context (a paced packet leaving its EDT queue). */
  queueFrame(buf: Uint8Array, off: number, len: number, vnet: boolean, endpoint: number, vni: number): boolean {
    if (vnet && this.gsoFd >= 0 && (buf[off + 1] & ~VIRTIO_NET_HDR_GSO_ECN) === VIRTIO_NET_HDR_GSO_TCPV4 && this.writeWhole(buf, off, len, endpoint, vni)) return true;
    if (this.rows + ROWS_PER_PACKET > MAX_ROWS) this.flush();
    vxlan.setHeader(this.prefix, 0, vni);
    let n = native.encapDatagrams(buf, off, len, vnet, this.prefix, this.out, this.used, this.result);
    if (n === 0 && this.used > 0) {
      // No room left behind what is queued: send that, then encapsulate at the buffer's start.
      this.flush();
      n = native.encapDatagrams(buf, off, len, vnet, this.prefix, this.out, 0, this.result);
    }
    if (n === 0) return false;
    const bytes = this.result[0];
    const seg = this.result[1];
    const perSend = seg === 0 ? bytes : Math.floor(MAX_SEND_BYTES / seg) * seg;
    for (let at = 0; at < bytes; at += perSend) this.row(this.used + at, Math.min(perSend, bytes - at), endpoint, seg);
    this.used += bytes;
    return true;
  }

  /** A super-packet into the TAP, whole (the kernel segments it); false when the kernel could not (cut it here). */
  private writeWhole(buf: Uint8Array, off: number, len: number, endpoint: number, vni: number): boolean {
    // What is queued leaves first: the TAP write goes out now, and a flow's packets keep their order.
    this.flush();
    vxlan.setHeader(this.head, HEAD_VXLAN, vni);
    const r = native.tunnelGsoWrite(this.gsoFd, buf, off, len, this.head, endpoint >>> 0);
    if (r < 0) this.onWriteError(len);
    return r !== 0;
  }

  private row(off: number, len: number, endpoint: number, seg: number): void {
    const d = this.rows * UDP_TX_WORDS;
    this.desc[d] = off;
    this.desc[d + 1] = len;
    this.desc[d + 2] = endpoint | 0;
    this.desc[d + 3] = this.port;
    this.desc[d + 4] = len > seg ? seg : 0;
    this.rows++;
  }

  /** Sends everything queued (the end of a batch, or a full buffer). */
  flush(): void {
    const rows = this.rows;
    if (rows === 0) return;
    this.rows = 0;
    this.used = 0;
    if (native.udpWriteBatch(this.fd, this.out, this.desc, rows, this.gso) === rows) return;
    for (let i = 0; i < rows; i++) if (this.desc[i * UDP_TX_WORDS + 5] < 0) this.onWriteError(this.desc[i * UDP_TX_WORDS + 1]);
  }
}

/**
 * Cilium's encap_and_redirect_lxc: the packet goes into the tunnel to the node at `endpoint`, with
 * the source identity as VNI (the receiver's policy reads it from there). The node's own traffic
 * is remote-node to the receiver, as Cilium's __encap_with_nodeid presents it.
 */
export function encapAndRedirect(ctx: PacketContext, dp: Datapath, endpoint: number): number {
  const vni = ctx.srcIdentity === HOST_ID ? REMOTE_NODE_ID : ctx.srcIdentity;
  if (vni === 0 || vni > vxlan.VNI_MAX) return dp.drop(ctx, DROP_INVALID_IDENTITY);
  // A rate-limited pod's packet is paced before it is encapsulated (its queue encapsulates it on departure).
  if (ctx.fromEndpoint && dp.edt.limited(ctx.srcEp)) {
    const verdict = dp.edt.schedule(ctx, performance.now(), endpoint, vni);
    if (verdict === EDT_DROP) return dp.drop(ctx, DROP_EDT_HORIZON);
    if (verdict === EDT_QUEUED) {
      dp.trace(ctx, TRACE_TO_OVERLAY);
      return CTX_ACT_QUEUED;
    }
  }
  if (!dp.tunnel.queue(ctx, endpoint, vni)) return dp.drop(ctx, DROP_INVALID);
  dp.trace(ctx, TRACE_TO_OVERLAY);
  return CTX_ACT_QUEUED;
}

/** The frame starts with a virtio-net header (the TUN device's offloads): the encapsulation skips it. */
export function hasVnetHeader(ctx: PacketContext): boolean {
  return ctx.meta[ctx.m + M_L3_OFF] !== ctx.meta[ctx.m + M_OFF];
}

/** A destination in another node's pod CIDR, in tunnel mode: the node its ipcache entry names (0 = not tunnelled). */
export function tunnelEndpointOf(ctx: PacketContext, dp: Datapath): number {
  const endpoint = ctx.tunnelEndpoint;
  return endpoint !== 0 && dp.tunnel.fd >= 0 && endpoint !== dp.tunnel.nodeIP ? endpoint : 0;
}
