// Monitor events: a fixed ring of binary records written on the hot path (a copy of the packet's
// first bytes and a few numbers), decoded into text only when somebody listens.
import type { PacketContext } from './context.ts';
import type { MonitorEvent } from '../control/types.ts';
import { formatEvent, type RawEvent } from './event-format.ts';
import { VNET_HDR_LEN } from '../native/meta.ts';

export const EVENT_DROP = 1;
export const EVENT_TRACE = 4;
export const EVENT_POLICY_VERDICT = 9;
/** Service translation points (Cilium's trace-sock events: pre/post xlate, fwd/rev). */
export const EVENT_TRACE_SOCK = 14;
export const XLATE_PRE_FWD = 0;
export const XLATE_POST_FWD = 1;
export const XLATE_PRE_REV = 2;
export const XLATE_POST_REV = 3;

/** Trace observation points, as Cilium's TRACE_* (pkg/monitor/api/types.go). */
export const TRACE_TO_LXC = 0;
export const TRACE_TO_PROXY = 1;
export const TRACE_TO_HOST = 2;
export const TRACE_TO_STACK = 3;
export const TRACE_TO_OVERLAY = 4;
export const TRACE_FROM_LXC = 5;
export const TRACE_FROM_PROXY = 6;
export const TRACE_FROM_HOST = 7;
export const TRACE_FROM_STACK = 8;
export const TRACE_FROM_OVERLAY = 9;
export const TRACE_FROM_NETWORK = 10;
export const TRACE_TO_NETWORK = 11;

const CAPTURE = 128; // packet bytes kept per event, as Cilium's default trace payload
const REC = 48 + CAPTURE;
// Record layout (little-endian)
const R_TYPE = 0; // u8
const R_SUB = 1; // u8: drop reason or observation point
const R_CT = 2; // u8: ct state
const R_DIR = 3; // u8
const R_SRC_EP = 4; // u32
const R_DST_EP = 8; // u32
const R_SRC_ID = 12; // u32
const R_DST_ID = 16; // u32
const R_IFINDEX = 20; // u32
const R_ORIG_LEN = 24; // u32
const R_CAP_LEN = 28; // u16
const R_REASON = 30; // u8: drop reason of a policy verdict (0 = allowed)
const R_MATCH = 31; // u8: policy match kind
const R_TIME = 32; // f64 ms since epoch
const R_DATA = 48;

export type MonitorListener = (e: MonitorEvent) => void;

export class MonitorRing {
  private readonly bytes: Uint8Array;
  private readonly view: DataView;
  private head = 0; // total records written
  private tail = 0; // next record to decode for listeners
  private readonly listeners = new Set<MonitorListener>();
  private scheduled = false;
  lost = 0;
  private readonly drainBound = () => this.drain();

  constructor(readonly capacity = 4096) {
    this.bytes = new Uint8Array(capacity * REC);
    this.view = new DataView(this.bytes.buffer);
  }

  /** Records an event about the packet in ctx; no allocation. */
  emit(ctx: PacketContext, type: number, sub: number): void {
    if (this.listeners.size === 0) return;
    const slot = (this.head % this.capacity) * REC;
    const v = this.view;
    const b = this.bytes;
    b[slot + R_TYPE] = type;
    b[slot + R_SUB] = sub;
    b[slot + R_CT] = ctx.ct.state;
    b[slot + R_DIR] = ctx.direction;
    v.setUint32(slot + R_SRC_EP, ctx.srcEp, true);
    v.setUint32(slot + R_DST_EP, ctx.dstEp, true);
    v.setUint32(slot + R_SRC_ID, ctx.srcIdentity, true);
    v.setUint32(slot + R_DST_ID, ctx.dstIdentity, true);
    v.setUint32(slot + R_IFINDEX, ctx.ifindex, true);
    const start = ctx.l3 > 0 ? ctx.l3 : ctx.off + VNET_HDR_LEN;
    const frameEnd = ctx.off + ctx.len;
    const cap = Math.min(CAPTURE, Math.max(0, frameEnd - start));
    v.setUint32(slot + R_ORIG_LEN, Math.max(0, frameEnd - start), true);
    v.setUint16(slot + R_CAP_LEN, cap, true);
    b[slot + R_REASON] = 0;
    b[slot + R_MATCH] = 0;
    v.setFloat64(slot + R_TIME, Date.now(), true);
    const src = ctx.buf;
    for (let i = 0; i < cap; i++) b[slot + R_DATA + i] = src[start + i]; // a loop: subarray() would allocate
    this.head++;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.drainBound);
    }
  }

  /** A service translation point of a new connection (or a reported reply). */
  emitXlate(ctx: PacketContext, point: number): void {
    this.emit(ctx, EVENT_TRACE_SOCK, point);
  }

  /** A policy-verdict event: endpoint `ep` decided about `peer` (ingress or egress). */
  emitVerdict(ctx: PacketContext, egress: boolean, match: number, reason: number, ep: number, peer: number): void {
    if (this.listeners.size === 0) return;
    const slot = (this.head % this.capacity) * REC;
    this.emit(ctx, EVENT_POLICY_VERDICT, egress ? 1 : 0);
    const v = this.view;
    v.setUint32(slot + R_SRC_EP, ep, true);
    v.setUint32(slot + R_SRC_ID, peer, true);
    this.bytes[slot + R_REASON] = reason;
    this.bytes[slot + R_MATCH] = match;
  }

  /** An event that is not about a packet (L7 requests and responses): straight to listeners. */
  publish(e: MonitorEvent): void {
    for (const l of this.listeners) l(e);
  }

  subscribe(l: MonitorListener): () => void {
    // Nothing was recorded while nobody listened; with listeners already there, keep their place.
    if (this.listeners.size === 0) this.tail = this.head;
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  private drain(): void {
    this.scheduled = false;
    if (this.head - this.tail > this.capacity) {
      this.lost += this.head - this.tail - this.capacity;
      this.tail = this.head - this.capacity;
    }
    for (; this.tail < this.head; this.tail++) {
      const e = formatEvent(this.decode((this.tail % this.capacity) * REC));
      for (const l of this.listeners) l(e);
    }
  }

  private decode(slot: number): RawEvent {
    const v = this.view;
    const cap = v.getUint16(slot + R_CAP_LEN, true);
    return {
      type: this.bytes[slot + R_TYPE],
      sub: this.bytes[slot + R_SUB],
      ctState: this.bytes[slot + R_CT],
      direction: this.bytes[slot + R_DIR],
      srcEp: v.getUint32(slot + R_SRC_EP, true),
      dstEp: v.getUint32(slot + R_DST_EP, true),
      srcIdentity: v.getUint32(slot + R_SRC_ID, true),
      dstIdentity: v.getUint32(slot + R_DST_ID, true),
      ifindex: v.getUint32(slot + R_IFINDEX, true),
      origLen: v.getUint32(slot + R_ORIG_LEN, true),
      reason: this.bytes[slot + R_REASON],
      match: this.bytes[slot + R_MATCH],
      time: v.getFloat64(slot + R_TIME, true),
      data: this.bytes.slice(slot + R_DATA, slot + R_DATA + cap),
    };
  }
}
