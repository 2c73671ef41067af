// Monitor events: a fixed ring of binary records written on the hot path (a copy of the packet's
// first bytes and a few numbers), decoded for listeners off the hot path. Raw listeners (Hubble,
// metrics) get the decoded numbers; cilium-monitor text is made only while a text listener is there.
import type { PacketContext } from './context.ts';
import type { MonitorEvent } from '../control/types.ts';
import type { L7Event } from '../proxy/http/listener.ts';
import type { DnsL7Event } from '../proxy/dns/proxy.ts';
import { formatEvent } from './event-format.ts';
import { VNET_HDR_LEN } from '../native/meta.ts';
import { decodePacket, type AccessLogEvent, type L7Peer, type PacketEvent, type RawEvent } from './monitor-record.ts';
import {
  MSG_ACCESS_LOG, MSG_DROP as EVENT_DROP, MSG_POLICY_VERDICT as EVENT_POLICY_VERDICT, MSG_TRACE as EVENT_TRACE, MSG_TRACE_SOCK as EVENT_TRACE_SOCK,
} from './vocab/message-types.ts';

/** Record types: Cilium's message types (the names the datapath has always imported from here). */
export { EVENT_DROP, EVENT_TRACE, EVENT_POLICY_VERDICT, EVENT_TRACE_SOCK };
export {
  TRACE_TO_LXC, TRACE_TO_PROXY, TRACE_TO_HOST, TRACE_TO_STACK, TRACE_TO_OVERLAY, TRACE_FROM_LXC, TRACE_FROM_PROXY, TRACE_FROM_HOST,
  TRACE_FROM_STACK, TRACE_FROM_OVERLAY, TRACE_FROM_NETWORK, TRACE_TO_NETWORK, XLATE_PRE_FWD, XLATE_POST_FWD, XLATE_PRE_REV, XLATE_POST_REV,
} from './vocab/trace-points.ts';

export { decodePacket, isAccessLog, isDnsRecord, type AccessLogEvent, type L7Peer, type PacketEvent, type RawEvent } from './monitor-record.ts';

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

export type RawListener = (e: RawEvent) => void;
export type MonitorListener = (e: MonitorEvent) => void;

export class MonitorRing {
  private readonly bytes: Uint8Array;
  private readonly view: DataView;
  private head = 0; // total records written
  private tail = 0; // next record to decode for listeners
  /** Raw listeners (emit() records only while there is one); text listeners are served by toText. */
  private readonly listeners = new Set<RawListener>();
  private readonly textListeners = new Set<MonitorListener>();
  private readonly toText: RawListener = (e) => {
    const text = formatEvent(e);
    for (const l of this.textListeners) l(text);
  };
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

  /** An L7 access-log record: straight to listeners (it is not a packet, nothing to copy). */
  publishAccessLog(record: L7Event | DnsL7Event, client: L7Peer, server: L7Peer): void {
    if (this.listeners.size === 0) return;
    const e: AccessLogEvent = { type: MSG_ACCESS_LOG, time: Date.now(), record, client, server };
    for (const l of this.listeners) l(e);
  }

  /** Decoded records (Hubble, metrics): no text is made for them. */
  subscribeRaw(l: RawListener): () => void {
    // Nothing was recorded while nobody listened; with listeners already there, keep their place.
    if (this.listeners.size === 0) this.tail = this.head;
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** cilium-monitor text (summary, verbose, hex) for `monitor` readers. */
  subscribe(l: MonitorListener): () => void {
    if (this.textListeners.size === 0) this.subscribeRaw(this.toText);
    this.textListeners.add(l);
    return () => {
      this.textListeners.delete(l);
      if (this.textListeners.size === 0) this.listeners.delete(this.toText);
    };
  }

  private drain(): void {
    this.scheduled = false;
    if (this.head - this.tail > this.capacity) {
      this.lost += this.head - this.tail - this.capacity;
      this.tail = this.head - this.capacity;
    }
    for (; this.tail < this.head; this.tail++) {
      const e = this.decode((this.tail % this.capacity) * REC);
      for (const l of this.listeners) l(e);
    }
  }

  private decode(slot: number): PacketEvent {
    const v = this.view;
    const cap = v.getUint16(slot + R_CAP_LEN, true);
    // A view of the ring, not a copy: listeners run right here, before the slot can be written again.
    const data = this.bytes.subarray(slot + R_DATA, slot + R_DATA + cap);
    const origLen = v.getUint32(slot + R_ORIG_LEN, true);
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
      origLen,
      reason: this.bytes[slot + R_REASON],
      match: this.bytes[slot + R_MATCH],
      time: v.getFloat64(slot + R_TIME, true),
      data,
      packet: decodePacket(data, origLen),
    };
  }
}
