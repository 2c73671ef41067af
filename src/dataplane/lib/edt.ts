// Earliest Departure Time pacing of a rate-limited endpoint's egress (Cilium's bpf/lib/edt.h plus
// the fq qdisc's per-flow timer). Each packet gets a departure time from the endpoint's rate in
// cilium_throttle; one due now goes on, a later one is held (its pool slot kept) in the endpoint's
// bounded ring until a timer writes it, and one due beyond the horizon drops with 162.
import { native } from '../../native/index.ts';
import { F_GSO, M_GSO_SIZE, M_PAYLOAD_LEN, M_SLOT, NO_SLOT } from '../../native/meta.ts';
import type { SlotPool } from '../../native/pool.ts';
import type { HashMap } from '../../maps/index.ts';
import { TH_BPS, TH_HORIZON, TH_QUEUE_MAX, TH_QUEUED, TH_T_LAST, THROTTLE_KEY, THROTTLE_VALUE } from '../../maps/cilium/throttle.ts';
import type { PacketContext } from '../context.ts';
import { hasVnetHeader, type TunnelTx } from './encap.ts';

/** Packets one endpoint may hold: bounds the pool slots (and memory) a limited pod can take from others. */
export const EDT_QUEUE_PACKETS = 48;
/** Share of the slot pool all queues together may hold: the readers of unlimited pods always find slots. */
const POOL_SHARE = 0.5;
/** A queued packet this close to its departure leaves with the timer's batch (Node timers have 1 ms steps). */
const TIMER_SLACK_MS = 1;
/** Verdict of schedule(): the packet leaves with the batch. */
export const EDT_SEND = 0;
/** Verdict of schedule(): the queue holds the packet; the caller must not write it. */
export const EDT_QUEUED = -1;
/** Verdict of schedule(): beyond the horizon, or the queue is full; the caller drops with DROP_EDT_HORIZON. */
export const EDT_DROP = -2;

/** One endpoint's held packets: a ring of preallocated descriptors in departure order. */
class EdtQueue {
  readonly fd = new Int32Array(EDT_QUEUE_PACKETS);
  readonly off = new Int32Array(EDT_QUEUE_PACKETS);
  readonly len = new Int32Array(EDT_QUEUE_PACKETS);
  readonly slot = new Uint32Array(EDT_QUEUE_PACKETS);
  readonly due = new Float64Array(EDT_QUEUE_PACKETS);
  /** Tunnel mode: the node the packet is encapsulated to on departure (0 = written to fd as it is), its VNI and virtio-net header. */
  readonly tunnelEndpoint = new Uint32Array(EDT_QUEUE_PACKETS);
  readonly vni = new Uint32Array(EDT_QUEUE_PACKETS);
  readonly vnet = new Uint8Array(EDT_QUEUE_PACKETS);
  head = 0;
  count = 0;
  timer: NodeJS.Timeout | null = null;
  readonly fire: () => void;

  constructor(readonly ep: number, edt: Edt) {
    this.fire = () => edt.serve(this);
  }
}

export interface EdtStats {
  /** Endpoints with a rate. */
  endpoints: number;
  /** Packets held now, and the pool bytes their slots pin. */
  queuedPackets: number;
  queuedBytes: number;
  /** The most packets all queues together can hold. */
  capacityPackets: number;
}

export class Edt {
  /** Queue of each limited endpoint; undefined = not limited (its packets never enter a queue). */
  readonly queues: Array<EdtQueue | undefined> = [];
  private readonly key = new Uint8Array(THROTTLE_KEY);
  private readonly keyView = new DataView(this.key.buffer);
  private readonly value = new Uint8Array(THROTTLE_VALUE);
  private readonly valueView = new DataView(this.value.buffer);
  private readonly tx = new Int32Array(4 * EDT_QUEUE_PACKETS);
  private queued = 0;
  private queuedBytes = 0;
  private readonly maxHeld: number;

  /** The overlay's transmit queue: paced packets for other nodes are encapsulated when they leave. */
  constructor(private readonly map: HashMap, private readonly pool: SlotPool, private readonly onWriteError: (bytes: number) => void, private readonly tunnel?: TunnelTx) {
    this.maxHeld = Math.floor(pool.slots * POOL_SHARE);
    // Limits outlive an agent restart; departure times of the previous agent are on another clock.
    this.map.forEach((k, v) => {
      const view = this.map.view;
      view.setFloat64(v + TH_T_LAST, 0, true);
      view.setUint32(v + TH_QUEUED, 0, true);
      const ep = view.getUint32(k, true);
      this.queues[ep] = new EdtQueue(ep, this);
    });
  }

  // ---- control plane ---------------------------------------------------------------------------

  /** Limits `ep`'s egress to `bitsPerSec` (a new rate applies from the next packet; held ones keep their times). */
  setRate(ep: number, bitsPerSec: number, horizonMs: number): void {
    const off = this.entry(ep);
    const v = this.map.view;
    if (off >= 0) {
      v.setFloat64(off + TH_BPS, bitsPerSec, true);
      v.setFloat64(off + TH_HORIZON, horizonMs, true);
    } else {
      const x = this.valueView;
      this.value.fill(0);
      x.setFloat64(TH_BPS, bitsPerSec, true);
      x.setFloat64(TH_HORIZON, horizonMs, true);
      x.setUint32(TH_QUEUE_MAX, EDT_QUEUE_PACKETS, true);
      if (this.map.update(this.key, 0, this.value) < 0) throw new Error(`cilium_throttle is full: cannot limit endpoint ${ep}`);
    }
    this.queues[ep] ??= new EdtQueue(ep, this);
  }

  /** Removes `ep`'s limit; its held packets still leave at their departure times. */
  clearRate(ep: number): void {
    this.keyOf(ep);
    this.map.delete(this.key, 0);
    const q = this.queues[ep];
    if (q && q.count === 0) this.dispose(q);
  }

  /** The endpoint is gone (its device closed): held packets are dropped, not written. */
  removeEndpoint(ep: number): void {
    this.keyOf(ep);
    this.map.delete(this.key, 0);
    const q = this.queues[ep];
    if (!q) return;
    while (q.count > 0) this.pop(q);
    this.dispose(q);
  }

  /** A device is going away: packets held for it are dropped when due instead of written. */
  forgetDevice(fd: number): void {
    for (const q of this.queues) {
      if (!q) continue;
      for (let i = 0, at = q.head; i < q.count; i++, at = (at + 1) % EDT_QUEUE_PACKETS) if (q.fd[at] === fd) q.fd[at] = -1;
    }
  }

  /** Removes every limit and drops every held packet (the bandwidth manager is off). */
  clearAll(): void {
    for (const q of this.queues) if (q) this.removeEndpoint(q.ep);
    this.map.clear();
  }

  /** `ep`'s rate in bits/s, 0 when it has none. */
  rateOf(ep: number): number {
    const off = this.entry(ep);
    return off < 0 ? 0 : this.map.view.getFloat64(off + TH_BPS, true);
  }

  stats(): EdtStats {
    let endpoints = 0;
    for (const q of this.queues) if (q) endpoints++;
    return { endpoints, queuedPackets: this.queued, queuedBytes: this.queuedBytes, capacityPackets: Math.min(endpoints * EDT_QUEUE_PACKETS, this.maxHeld) };
  }

  // ---- the hot path ----------------------------------------------------------------------------

  /** Whether `ep`'s packets are paced. */
  limited(ep: number): boolean {
    return this.queues[ep] !== undefined;
  }

  /**
   * edt_sched_departure for a packet of a limited endpoint that is to be written to ctx.outFd, or
   * encapsulated to `tunnelEndpoint` with `vni` (tunnel mode): EDT_SEND, EDT_QUEUED (slot held) or EDT_DROP.
   */
  schedule(ctx: PacketContext, now: number, tunnelEndpoint = 0, vni = 0): number {
    const q = this.queues[ctx.srcEp]!;
    const off = this.entry(ctx.srcEp);
    if (off < 0) return q.count === 0 ? EDT_SEND : this.push(q, ctx, now, tunnelEndpoint, vni); // limit removed: drain in order
    const v = this.map.view;
    const delay = (wireBytes(ctx) * 8000) / v.getFloat64(off + TH_BPS, true);
    const tNext = v.getFloat64(off + TH_T_LAST, true) + delay;
    if (q.count === 0 && tNext <= now) {
      v.setFloat64(off + TH_T_LAST, now, true);
      return EDT_SEND;
    }
    if (tNext - now >= v.getFloat64(off + TH_HORIZON, true) || q.count === EDT_QUEUE_PACKETS || this.queued >= this.maxHeld) return EDT_DROP;
    const verdict = this.push(q, ctx, tNext, tunnelEndpoint, vni);
    if (verdict === EDT_QUEUED) {
      v.setFloat64(off + TH_T_LAST, tNext, true);
      v.setUint32(off + TH_QUEUED, q.count, true);
    }
    return verdict;
  }

  private push(q: EdtQueue, ctx: PacketContext, due: number, tunnelEndpoint: number, vni: number): number {
    const slot = ctx.meta[ctx.m + M_SLOT];
    if (slot === NO_SLOT) return EDT_SEND; // a packet built in a caller's buffer cannot outlive its batch
    this.pool.hold(slot);
    const i = (q.head + q.count) % EDT_QUEUE_PACKETS;
    q.fd[i] = ctx.outFd;
    q.off[i] = ctx.off;
    q.len[i] = ctx.len;
    q.slot[i] = slot;
    q.due[i] = due;
    q.tunnelEndpoint[i] = tunnelEndpoint;
    q.vni[i] = vni;
    q.vnet[i] = tunnelEndpoint !== 0 && hasVnetHeader(ctx) ? 1 : 0;
    q.count++;
    this.queued++;
    this.queuedBytes += this.pool.stride;
    if (q.timer === null) q.timer = setTimeout(q.fire, Math.max(0, due - performance.now()));
    return EDT_QUEUED;
  }

  /** The queue's timer: writes every packet due now (or within the slack), then waits for the next. */
  serve(q: EdtQueue): void {
    q.timer = null;
    const limit = performance.now() + TIMER_SLACK_MS;
    let n = 0;
    const first = q.head;
    let due = 0;
    let tunnelled = 0;
    while (q.count > 0 && q.due[q.head] <= limit) {
      const h = q.head;
      if (q.tunnelEndpoint[h] !== 0) {
        if (!this.tunnel!.queueFrame(this.pool.arena, q.off[h], q.len[h], q.vnet[h] === 1, q.tunnelEndpoint[h], q.vni[h])) this.onWriteError(q.len[h]);
        tunnelled++;
      } else if (q.fd[h] >= 0) {
        const t = n * 4;
        this.tx[t] = q.fd[h];
        this.tx[t + 1] = q.off[h];
        this.tx[t + 2] = q.len[h];
        this.tx[t + 3] = 0;
        n++;
      }
      q.head = (h + 1) % EDT_QUEUE_PACKETS;
      q.count--;
      due++;
    }
    if (n > 0 && native.writeBatch(this.pool.arena, this.tx, n) !== n) {
      for (let i = 0; i < n; i++) if (this.tx[i * 4 + 3] < 0) this.onWriteError(this.tx[i * 4 + 2]);
    }
    if (tunnelled > 0) this.tunnel!.flush();
    // The written slots go back to the pool (a paused reader resumes).
    for (let i = 0, at = first; i < due; i++, at = (at + 1) % EDT_QUEUE_PACKETS) this.pool.release(q.slot[at]);
    this.queued -= due;
    this.queuedBytes -= due * this.pool.stride;
    const off = this.entry(q.ep);
    if (off >= 0) this.map.view.setUint32(off + TH_QUEUED, q.count, true);
    if (q.count > 0) q.timer = setTimeout(q.fire, Math.max(0, q.due[q.head] - performance.now()));
    else if (off < 0) this.dispose(q);
  }

  private pop(q: EdtQueue): void {
    this.pool.release(q.slot[q.head]);
    q.head = (q.head + 1) % EDT_QUEUE_PACKETS;
    q.count--;
    this.queued--;
    this.queuedBytes -= this.pool.stride;
  }

  private dispose(q: EdtQueue): void {
    if (q.timer !== null) clearTimeout(q.timer);
    q.timer = null;
    if (this.queues[q.ep] === q) this.queues[q.ep] = undefined;
  }

  private keyOf(ep: number): void {
    this.keyView.setUint32(0, ep, true);
    this.keyView.setUint32(4, 0, true);
  }

  /** Offset of `ep`'s cilium_throttle value in map.view, or -1. */
  private entry(ep: number): number {
    this.keyOf(ep);
    return this.map.lookup(this.key, 0);
  }
}

/**
 * Bytes the packet puts on the wire: a GSO super-packet counts every segment's headers, as the
 * frames it is cut into would (so a 64 KiB super-packet is not paced as one MTU-sized packet).
 */
function wireBytes(ctx: PacketContext): number {
  const ipLen = ctx.end - ctx.l3;
  if (!(ctx.flags & F_GSO)) return ipLen;
  const gsoSize = ctx.meta[ctx.m + M_GSO_SIZE];
  const payload = ctx.meta[ctx.m + M_PAYLOAD_LEN];
  if (gsoSize === 0 || payload <= gsoSize) return ipLen;
  return ipLen + (Math.ceil(payload / gsoSize) - 1) * (ipLen - payload);
}
