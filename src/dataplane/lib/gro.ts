// Receive coalescing (the kernel's tcp_gro_receive) for what the tunnel delivers into pods: TCP
// segments of one flow that follow each other in a batch are merged into the first one's slot and
// leave as one super-packet with a virtio-net GSO header, so the pod's TUN takes one write instead
// of one per 1,450 bytes. Only in-order, ACK(/PSH)-only segments with identical headers merge.
import type { PacketContext } from '../context.ts';
import { M_L4_OFF, M_PAYLOAD_LEN, M_PAYLOAD_OFF, M_SLOT, M_TCP_ACK, M_TCP_SEQ, F_GSO, F_NEEDS_CSUM, IPPROTO_TCP, TCP_ACK, TCP_PSH,
  VNET_HDR_LEN, VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4 } from '../../native/meta.ts';
import { native } from '../../native/index.ts';
import type { SlotPool } from '../../native/pool.ts';
import * as ipv4 from '../../wire/ipv4.ts';

const TCP_CSUM_OFFSET = 16;
const IP_MAX_LEN = 65535;

export class TcpCoalescer {
  /** Row of the TUN write descriptor the open run occupies; -1 when none is open. */
  private row = -1;
  private fd = -1;
  private l3 = 0;
  private l4 = 0;
  private end = 0;
  /** Where the run's slot ends: merged payload must stay inside it. */
  private limit = 0;
  private saddr = 0;
  private daddr = 0;
  private ports = 0;
  private nextSeq = 0;
  private ack = 0;
  private mss = 0;
  private lastLen = 0;
  private segs = 0;

  /** tx: rows of [fd, off, len, status] the datapath writes to TUNs. */
  constructor(private readonly pool: SlotPool, private readonly tx: Int32Array) {}

  /** Appends ctx's segment to the run in row `row` when it continues it; false otherwise. */
  merge(ctx: PacketContext, row: number): boolean {
    if (this.row !== row || ctx.outFd !== this.fd || !this.continues(ctx)) return false;
    const m = ctx.m;
    const payload = ctx.meta[m + M_PAYLOAD_OFF];
    const len = ctx.meta[m + M_PAYLOAD_LEN];
    ctx.buf.copyWithin(this.end, payload, payload + len);
    this.end += len;
    this.tx[row * 4 + 2] += len;
    this.nextSeq = (this.nextSeq + len) >>> 0;
    this.lastLen = len;
    this.segs++;
    // PSH ends a run, as in the kernel: the receiver should see the data now.
    if (ctx.tcpFlags & TCP_PSH) {
      ctx.buf[this.l4 + 13] |= TCP_PSH;
      this.close(ctx.buf);
    }
    return true;
  }

  /** Starts a run with ctx's packet, just written into row `row`, when it can take followers. */
  open(ctx: PacketContext, row: number): void {
    this.row = -1;
    if (!this.mergeable(ctx) || ctx.tcpFlags & TCP_PSH) return;
    const m = ctx.m;
    const len = ctx.meta[m + M_PAYLOAD_LEN];
    this.row = row;
    this.fd = ctx.outFd;
    this.l3 = ctx.l3;
    this.l4 = ctx.meta[m + M_L4_OFF];
    this.end = ctx.end;
    this.limit = this.pool.slotStart(ctx.meta[m + M_SLOT]) + this.pool.stride;
    this.saddr = ctx.saddr;
    this.daddr = ctx.daddr;
    this.ports = ((ctx.sport << 16) | ctx.dport) >>> 0;
    this.nextSeq = (ctx.meta[m + M_TCP_SEQ] + len) >>> 0;
    this.ack = ctx.meta[m + M_TCP_ACK];
    this.mss = len;
    this.lastLen = len;
    this.segs = 1;
  }

  /** Ends the open run: a merged one gets its IPv4 length and checksum, a partial TCP checksum and a GSO header. */
  close(b: Uint8Array): void {
    if (this.row < 0) return;
    this.row = -1;
    if (this.segs < 2) return;
    const l3 = this.l3;
    const total = this.end - l3;
    b[l3 + 2] = total >>> 8;
    b[l3 + 3] = total & 0xff;
    ipv4.fillCsum(b, l3);
    native.setPartialChecksum(b, l3, this.end);
    const h = l3 - VNET_HDR_LEN;
    const hdrLen = firstHdrLen(b, l3, this.l4 - l3);
    b[h] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    b[h + 1] = VIRTIO_NET_HDR_GSO_TCPV4;
    setLe16(b, h + 2, hdrLen);
    setLe16(b, h + 4, this.mss);
    setLe16(b, h + 6, this.l4 - l3);
    setLe16(b, h + 8, TCP_CSUM_OFFSET);
  }

  // A plain data segment: TCP, already complete (not a super-packet), only ACK or ACK|PSH.
  private mergeable(ctx: PacketContext): boolean {
    return ctx.proto === IPPROTO_TCP && (ctx.flags & (F_GSO | F_NEEDS_CSUM)) === 0 && (ctx.tcpFlags & ~TCP_PSH) === TCP_ACK &&
      ctx.meta[ctx.m + M_PAYLOAD_LEN] > 0;
  }

  private continues(ctx: PacketContext): boolean {
    const m = ctx.m;
    const len = ctx.meta[m + M_PAYLOAD_LEN];
    if (!this.mergeable(ctx) || this.lastLen !== this.mss || len > this.mss) return false;
    if (ctx.saddr !== this.saddr || ctx.daddr !== this.daddr || ((ctx.sport << 16) | ctx.dport) >>> 0 !== this.ports) return false;
    if (ctx.meta[m + M_TCP_SEQ] !== this.nextSeq || ctx.meta[m + M_TCP_ACK] !== this.ack) return false;
    if (this.end + len > this.limit || this.end + len - this.l3 > IP_MAX_LEN) return false;
    return sameHeaders(ctx.buf, this.l3, ctx.l3, ctx.meta[m + M_PAYLOAD_OFF] - ctx.l3, this.l4 - this.l3);
  }
}

// IP and TCP headers equal but for the fields each segment has its own of (IP length, id, checksum;
// TCP sequence number and checksum), as the kernel's GRO compares them.
function sameHeaders(b: Uint8Array, a: number, c: number, hdrLen: number, ihl: number): boolean {
  if (hdrLen !== firstHdrLen(b, a, ihl)) return false;
  for (let i = 0; i < hdrLen; i++) {
    if (i === 2 || i === 3 || i === 4 || i === 5 || i === 10 || i === 11) continue;
    if (i >= ihl + 4 && i < ihl + 8) continue;
    if (i === ihl + 16 || i === ihl + 17) continue;
    const mask = i === ihl + 13 ? ~TCP_PSH : 0xff;
    if ((b[a + i] & mask) !== (b[c + i] & mask)) return false;
  }
  return true;
}

function firstHdrLen(b: Uint8Array, l3: number, ihl: number): number {
  return ihl + (b[l3 + ihl + 12] >> 4) * 4;
}

function setLe16(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = v >>> 8;
}
