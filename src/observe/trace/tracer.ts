// The packet tracer (`ciliary trace`, pwru built in): the datapath asks match() once per packet;
// for a matched packet every hook point appends a fixed-width numeric step to one preallocated
// Float64Array. Nothing here allocates, formats or closes over anything per packet: the steps are
// turned into text on a setImmediate, off the hot path (see format.ts).
import type { PacketContext } from '../../dataplane/context.ts';
import { M_ICMP_TYPE } from '../../native/meta.ts';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP } from '../../wire/proto.ts';

/** Words per step: the op code and up to nine numeric arguments. */
export const STEP_WORDS = 10;

// Step op codes (word 0). Arguments are documented at each recording method.
export const OP_BEGIN = 1;
export const OP_HOOK = 2;
export const OP_TAIL_CALL = 3;
export const OP_LXC = 4;
export const OP_IPCACHE = 5;
export const OP_CT_LOOKUP = 6;
export const OP_CT_CREATE = 7;
export const OP_CT_SVC_LOOKUP = 8;
export const OP_CT_SVC_CREATE = 9;
export const OP_CT_RELATED = 10;
export const OP_LB_SERVICE = 11;
export const OP_LB_BACKEND = 12;
export const OP_LB_SELECT = 13;
export const OP_LB_REVNAT = 14;
export const OP_REWRITE = 15;
export const OP_POLICY = 16;
export const OP_EVENT = 17;
export const OP_PROXY = 18;
export const OP_END = 19;

// Hooks (OP_HOOK a).
export const HOOK_FROM_CONTAINER = 1;
export const HOOK_FROM_HOST = 2;
export const HOOK_TO_CONTAINER = 3;
export const HOOK_TO_HOST = 4;

// Rewrites (OP_REWRITE a).
export const RW_DNAT = 1;
export const RW_SNAT = 2;
export const RW_TTL = 3;

// Backend selection methods (OP_LB_SELECT b).
export const SEL_NONE = 0;
export const SEL_RANDOM = 1;
export const SEL_MAGLEV = 2;
export const SEL_AFFINITY = 3;

// Proxy map operations (OP_PROXY a).
export const PX_REDIRECT = 1;
export const PX_RESTORE_ANSWER = 2;
export const PX_RESTORE_CLIENT = 3;
export const PX_TO_UPSTREAM = 4;

/** What a trace selects; -1 = any. All numbers, so match() compares without allocating. */
export interface TraceFilter {
  /** Either address. */
  ip: number;
  srcIp: number;
  dstIp: number;
  /** Either port (TCP/UDP). */
  port: number;
  proto: number;
  /** A pod: its endpoint sent the packet, or its address is either address. */
  podEp: number;
  podIp: number;
  /** Packets to trace. */
  count: number;
}

export const ANY_FILTER: TraceFilter = { ip: -1, srcIp: -1, dstIp: -1, port: -1, proto: -1, podEp: -1, podIp: -1, count: 10 };

/** Steps one packet may leave; a packet that would not fit is not traced until the buffer drains. */
const MAX_PACKET_STEPS = 128;

export class PacketTracer {
  /** The recorded steps of packets not formatted yet. */
  readonly buf: Float64Array;
  /** Words of buf in use. */
  n = 0;
  /** Packets matched so far (at most filter.count). */
  matched = 0;
  /** Steps left out because a packet had too many (never expected). */
  truncated = 0;
  private readonly cap: number;
  private readonly ip: number;
  private readonly srcIp: number;
  private readonly dstIp: number;
  private readonly port: number;
  private readonly proto: number;
  private readonly podEp: number;
  private readonly podIp: number;
  private readonly count: number;
  private packetEnd = 0;
  private scheduled = false;
  private readonly drainBound = (): void => this.drain();

  /** `onPackets` receives the buffer when packets completed; it must consume all of it (n = 0 after). */
  constructor(readonly filter: TraceFilter, private readonly onPackets: (t: PacketTracer) => void, capacityPackets = 64) {
    this.cap = capacityPackets * MAX_PACKET_STEPS * STEP_WORDS;
    this.buf = new Float64Array(this.cap);
    this.ip = filter.ip;
    this.srcIp = filter.srcIp;
    this.dstIp = filter.dstIp;
    this.port = filter.port;
    this.proto = filter.proto;
    this.podEp = filter.podEp;
    this.podIp = filter.podIp;
    this.count = filter.count;
  }

  get done(): boolean {
    return this.matched >= this.count;
  }

  /** Once per packet: whether to trace it. Records the packet's header step when it does. */
  match(ctx: PacketContext): boolean {
    if (this.matched >= this.count) return false;
    const s = ctx.saddr;
    const d = ctx.daddr;
    if (this.srcIp !== -1 && s !== this.srcIp) return false;
    if (this.dstIp !== -1 && d !== this.dstIp) return false;
    if (this.ip !== -1 && s !== this.ip && d !== this.ip) return false;
    if (this.proto !== -1 && ctx.proto !== this.proto) return false;
    if (this.port !== -1 && ((ctx.proto !== IPPROTO_TCP && ctx.proto !== IPPROTO_UDP) || (ctx.sport !== this.port && ctx.dport !== this.port))) return false;
    if (this.podEp !== -1 && ctx.srcEp !== this.podEp && s !== this.podIp && d !== this.podIp) return false;
    if (this.n + MAX_PACKET_STEPS * STEP_WORDS > this.cap) return false; // wait for the formatter
    this.matched++;
    this.packetEnd = this.n + (MAX_PACKET_STEPS - 1) * STEP_WORDS; // one step kept for OP_END
    const ihl = ctx.end - ctx.l3;
    const extra = ctx.proto === IPPROTO_TCP ? ctx.tcpFlags : ctx.proto === IPPROTO_ICMP ? 256 + ctx.meta[ctx.m + M_ICMP_TYPE] : 0;
    this.put(OP_BEGIN, ctx.srcEp, s, d, ctx.sport, ctx.dport, ctx.proto, ihl, extra, Date.now());
    return true;
  }

  private put(op: number, a: number, b: number, c: number, d: number, e: number, f: number, g: number, h: number, i: number): void {
    let n = this.n;
    if (n >= this.packetEnd && op !== OP_END) {
      this.truncated++;
      return;
    }
    const x = this.buf;
    x[n++] = op;
    x[n++] = a;
    x[n++] = b;
    x[n++] = c;
    x[n++] = d;
    x[n++] = e;
    x[n++] = f;
    x[n++] = g;
    x[n++] = h;
    x[n++] = i;
    this.n = n;
  }

  /** A hook program entered (HOOK_*), for endpoint `ep`. */
  hook(hook: number, ep: number): void {
    this.put(OP_HOOK, hook, ep, 0, 0, 0, 0, 0, 0, 0);
  }

  /** A tail call into `slot` of endpoint `owner`'s program array: program id (0 = empty slot), chain length, over the limit. */
  tailCall(slot: number, prog: number, owner: number, depth: number, overLimit: boolean): void {
    this.put(OP_TAIL_CALL, slot, prog, owner, depth, overLimit ? 1 : 0, 0, 0, 0, 0);
  }

  /** cilium_lxc lookup of `addr`: endpoint id or 0. */
  lxc(addr: number, id: number): void {
    this.put(OP_LXC, addr, id, 0, 0, 0, 0, 0, 0, 0);
  }

  /** cilium_ipcache lookup of `addr`: identity, and whether a prefix matched. */
  ipcache(addr: number, identity: number, hit: boolean): void {
    this.put(OP_IPCACHE, addr, identity, hit ? 1 : 0, 0, 0, 0, 0, 0, 0);
  }

  /** CT lookup of the tuple from direction `dir`: state (CT_*), the matched entry's direction, rev-NAT index, flags. */
  ctLookup(s: number, d: number, sp: number, dp: number, proto: number, dir: number, state: number, entryDir: number, revNat: number, flags: number): void {
    this.put(OP_CT_LOOKUP, s, d, sp, dp, proto, dir | (entryDir << 8), state, revNat, flags);
  }

  /** CT entry creation: result 0 failed, 1 inserted, 2 inserted evicting the oldest entry. */
  ctCreate(s: number, d: number, sp: number, dp: number, proto: number, dir: number, result: number, revNat: number, flags: number): void {
    this.put(OP_CT_CREATE, s, d, sp, dp, proto, dir, result, revNat, flags);
  }

  /** Service CT entry lookup: backend id, hit. */
  ctServiceLookup(s: number, d: number, sp: number, dp: number, proto: number, hit: boolean, backend: number): void {
    this.put(OP_CT_SVC_LOOKUP, s, d, sp, dp, proto, hit ? 1 : 0, backend, 0, 0);
  }

  /** Service CT entry creation: result as ctCreate, backend id, rev-NAT index. */
  ctServiceCreate(s: number, d: number, sp: number, dp: number, proto: number, result: number, backend: number, revNat: number): void {
    this.put(OP_CT_SVC_CREATE, s, d, sp, dp, proto, result, backend, revNat, 0);
  }

  /** CT lookup of the quoted packet of an ICMP error: the last key tried, state, rev-NAT index. */
  ctRelated(s: number, d: number, sp: number, dp: number, proto: number, dir: number, state: number, revNat: number): void {
    this.put(OP_CT_RELATED, s, d, sp, dp, proto, dir, state, revNat, 0);
  }

  /** cilium_lb4_services_v2 frontend lookup: hit, backend count, rev-NAT index, flags. */
  lbService(addr: number, port: number, proto: number, hit: boolean, count: number, revNat: number, flags: number): void {
    this.put(OP_LB_SERVICE, addr, port, proto, hit ? 1 : 0, count, revNat, flags, 0, 0);
  }

  /** cilium_lb4_backends_v3 lookup of backend `id`: found (and usable), its address and port. */
  lbBackend(id: number, ok: boolean, addr: number, port: number, allowTerminating: boolean): void {
    this.put(OP_LB_BACKEND, id, ok ? 1 : 0, addr, port, allowTerminating ? 1 : 0, 0, 0, 0, 0);
  }

  /** Backend selection for a new connection: id (0 = none), method (SEL_*), the slot or table index. */
  lbSelect(id: number, method: number, slot: number): void {
    this.put(OP_LB_SELECT, id, method, slot, 0, 0, 0, 0, 0, 0);
  }

  /** cilium_lb4_reverse_nat lookup of `index`: hit, frontend address and port. */
  lbRevNat(index: number, hit: boolean, addr: number, port: number): void {
    this.put(OP_LB_REVNAT, index, hit ? 1 : 0, addr, port, 0, 0, 0, 0, 0);
  }

  /** A packet rewrite (RW_*): address and port before and after (TTL: old and new in the address slots). */
  rewrite(kind: number, addr0: number, port0: number, addr1: number, port1: number): void {
    this.put(OP_REWRITE, kind, addr0, port0, addr1, port1, 0, 0, 0, 0);
  }

  /**
   * Policy decision in endpoint `ep`'s map for `identity`: the four lookups' hits (bits 0-3) and
   * denies (bits 4-7), the drop reason (0 allowed), match kind and proxy port.
   */
  policy(ep: number, identity: number, egress: boolean, proto: number, port: number, hits: number, reason: number, match: number, proxyPort: number): void {
    this.put(OP_POLICY, ep, identity, egress ? 1 : 0, proto, port, hits, reason, match, proxyPort);
  }

  /** A monitor event (EVENT_*) with its sub-type; `reported` false when aggregation suppressed it. */
  event(type: number, sub: number, reported: boolean): void {
    this.put(OP_EVENT, type, sub, reported ? 1 : 0, 0, 0, 0, 0, 0, 0);
  }

  /** cilium_proxy4 operation (PX_*): the client tuple, hit, and the address/port involved. */
  proxy(kind: number, client: number, clientPort: number, ok: boolean, addr: number, port: number): void {
    this.put(OP_PROXY, kind, client, clientPort, ok ? 1 : 0, addr, port, 0, 0, 0);
  }

  /** The packet's verdict (CTX_ACT_*), the fd written to, drop reason, destination endpoint and identity. */
  end(ctx: PacketContext, verdict: number, toHost: boolean): void {
    this.put(OP_END, verdict, ctx.outFd, ctx.dropReason, ctx.dstEp, ctx.dstIdentity, toHost ? 1 : 0, ctx.srcIdentity, 0, 0);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.drainBound);
    }
  }

  /** Hands the recorded packets to the formatter now (also used when the session stops). */
  drain(): void {
    this.scheduled = false;
    if (this.n > 0) this.onPackets(this);
    this.n = 0;
  }
}
