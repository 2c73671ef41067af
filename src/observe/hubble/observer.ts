// Hubble's observer: decoded monitor records become flows kept in a fixed ring (hubble-event-buffer-capacity),
// with seen/lost counters and the flow rate over the last minute; listeners get every new flow.
import type { HubbleApi, HubbleFlowsQuery, HubbleStatus } from '../../control/types.ts';
import { isAccessLog, type RawEvent } from '../../dataplane/events.ts';
import { MSG_DROP, MSG_TRACE, MSG_TRACE_SOCK } from '../../dataplane/vocab/message-types.ts';
import { XLATE_PRE_REV } from '../../dataplane/vocab/trace-points.ts';
import type { Flow } from '../flow.ts';
import { buildFlow, type EndpointResolver } from './builder.ts';

export interface ObserverOptions {
  /** Flows kept (hubble-event-buffer-capacity). */
  capacity: number;
  nodeName: string;
  resolver: EndpointResolver;
  /** Events the monitor ring lost so far (counted as lost flows). */
  monitorLost?: () => number;
  now?: () => number;
}

const RATE_WINDOW_S = 60;
/** Reply tuples remembered for orig-ip (a bounded map; the newest win). */
const REV_NAT_MEMORY = 4096;

/** A fixed ring of flows: the oldest is overwritten when full. */
export class FlowRing {
  private readonly slots: Array<Flow | undefined>;
  private next = 0;
  private size = 0;

  constructor(readonly capacity: number) {
    this.slots = new Array<Flow | undefined>(capacity);
  }

  get length(): number {
    return this.size;
  }

  push(f: Flow): void {
    this.slots[this.next] = f;
    this.next = (this.next + 1) % this.capacity;
    if (this.size < this.capacity) this.size++;
  }

  /** Oldest first. */
  toArray(): Flow[] {
    const out: Flow[] = [];
    const start = (this.next - this.size + this.capacity) % this.capacity;
    for (let i = 0; i < this.size; i++) out.push(this.slots[(start + i) % this.capacity]!);
    return out;
  }
}

export class Hubble implements HubbleApi {
  readonly ring: FlowRing;
  private readonly listeners = new Set<(f: Flow) => void>();
  private readonly now: () => number;
  private readonly started: number;
  private seen = 0;
  private lostFlows = 0;
  /** Flows per second for the last RATE_WINDOW_S seconds: [second, count]. */
  private readonly buckets: Array<[number, number]> = [];

  constructor(private readonly opts: ObserverOptions) {
    if (!(opts.capacity >= 1)) throw new Error(`hubble-event-buffer-capacity must be at least 1, not ${opts.capacity}`);
    this.ring = new FlowRing(opts.capacity);
    this.now = opts.now ?? Date.now;
    this.started = this.now();
  }

  /**
   * Replies translated back to a service frontend: client ip:port → the backend they came from. Cilium's
   * trace carries the original source (orig-ip) and Hubble prints it: the backend pod, not the ClusterIP.
   */
  private readonly revNat = new Map<string, { ip: string; port: number }>();

  private origSource(e: RawEvent): RawEvent {
    if (isAccessLog(e)) return e;
    const p = e.packet;
    if (!p || p.dport === undefined) return e;
    // Only replies of service connections are rewritten: without a remembered one, nothing to look up.
    if (this.revNat.size === 0 && !(e.type === MSG_TRACE_SOCK && e.sub === XLATE_PRE_REV)) return e;
    const key = `${p.proto}:${p.dst}:${p.dport}`;
    if (e.type === MSG_TRACE_SOCK && e.sub === XLATE_PRE_REV) {
      this.revNat.delete(key);
      this.revNat.set(key, { ip: p.src, port: p.sport ?? 0 });
      if (this.revNat.size > REV_NAT_MEMORY) this.revNat.delete(this.revNat.keys().next().value!);
      return e;
    }
    if (e.type !== MSG_TRACE && e.type !== MSG_DROP) return e;
    const orig = this.revNat.get(key);
    if (!orig || orig.ip === p.src || orig.port !== p.sport) return e;
    return { ...e, packet: { ...p, src: orig.ip } };
  }

  /** A monitor record: turned into a flow when Hubble has one for it. */
  ingest(ev: RawEvent): Flow | undefined {
    let f: Flow | undefined;
    try {
      const e = this.origSource(ev);
      f = buildFlow(e, this.opts.resolver, this.opts.nodeName);
    } catch {
      this.lostFlows++;
      return undefined;
    }
    if (f) this.add(f);
    return f;
  }

  add(f: Flow): void {
    this.ring.push(f);
    this.seen++;
    const sec = Math.floor(this.now() / 1000);
    const last = this.buckets[this.buckets.length - 1];
    if (last && last[0] === sec) last[1]++;
    else this.buckets.push([sec, 1]);
    while (this.buckets.length && this.buckets[0][0] <= sec - RATE_WINDOW_S) this.buckets.shift();
    for (const l of this.listeners) {
      try {
        l(f);
      } catch {
        /* a consumer's bug must not stop the others */
      }
    }
  }

  recent(n: number): Flow[] {
    const all = this.ring.toArray();
    return n >= all.length ? all : all.slice(all.length - n);
  }

  onFlow(cb: (f: Flow) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  flows(q: HubbleFlowsQuery = {}): Flow[] {
    const out: Flow[] = [];
    for (const f of this.ring.toArray()) {
      if (q.since !== undefined || q.until !== undefined) {
        const t = Date.parse(f.time);
        if (q.since !== undefined && t < q.since) continue;
        if (q.until !== undefined && t > q.until) continue;
      }
      if (q.match && !q.match(f)) continue;
      out.push(f);
    }
    if (q.number === undefined || q.number >= out.length) return out;
    return q.first ? out.slice(0, q.number) : out.slice(out.length - q.number);
  }

  /** Flows per second over the last minute (since start when younger than that). */
  rate(): number {
    const now = this.now();
    const sec = Math.floor(now / 1000);
    let n = 0;
    for (const [s, c] of this.buckets) if (s > sec - RATE_WINDOW_S) n += c;
    const window = Math.min(RATE_WINDOW_S, Math.max(1, (now - this.started) / 1000));
    return n / window;
  }

  status(): HubbleStatus {
    return {
      currentFlows: this.ring.length,
      maxFlows: this.ring.capacity,
      seenFlows: this.seen,
      flowsPerSecond: Math.round(this.rate() * 100) / 100,
      connectedNodes: 1,
      totalNodes: 1,
      uptimeSeconds: Math.round((this.now() - this.started) / 1000),
      lostEvents: this.lostFlows + (this.opts.monitorLost?.() ?? 0),
    };
  }
}
