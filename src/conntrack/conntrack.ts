// Connection tracking over two LRU maps (TCP, everything else), as Cilium's ct_lookup4/ct_create4.
// The hot path writes the tuple into one scratch key; findings (state, rev-NAT index, backend,
// flags) go into the packet's ctx.ct, as Cilium's struct ct_state.
import type { LruHashMap, MapRegistry } from '../maps/index.ts';
import type { CtState, PacketContext } from '../dataplane/context.ts';
import { F_ICMP_ERROR } from '../native/meta.ts';
import * as ipv4 from '../wire/ipv4.ts';
import * as icmp from '../wire/icmp.ts';
import * as l4 from '../wire/l4.ts';
import { ICMP_HLEN, IPPROTO_ICMP, IPPROTO_TCP, IPV4_MIN_HLEN, L4_PORTS_LEN } from '../wire/proto.ts';
import { TCP_FLAG_ACK, TCP_FLAG_FIN, TCP_FLAG_RST, TCP_FLAG_SYN } from '../wire/tcp.ts';
import * as L from '../maps/cilium/ct.ts';
import type { CtTimeouts } from './timeouts.ts';
import { monoSeconds } from './clock.ts';
import type { PacketTracer } from '../observe/trace/tracer.ts';

const BOTH_CLOSING = L.CT_F_RX_CLOSING | L.CT_F_TX_CLOSING;

/** A TCP SYN without ACK: the packet opens a connection. */
export function tcpOpens(ctx: PacketContext): boolean {
  return ctx.proto === IPPROTO_TCP && (ctx.tcpFlags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) === TCP_FLAG_SYN;
}

/** Cilium's ACTION_CREATE on ct_entry_closing(): a SYN on an entry either side began to close. */
const reopens = (ctx: PacketContext, entryFlags: number): boolean => (entryFlags & BOTH_CLOSING) !== 0 && tcpOpens(ctx);

export interface CtSizes {
  tcp: number;
  any: number;
}

export class Conntrack {
  readonly tcp: LruHashMap;
  readonly any: LruHashMap;
  /** Monotonic seconds; the datapath sets it once per batch. */
  now = 0;
  /** `ciliary trace` (set by Datapath.setTracer); used only for packets with ctx.traced. */
  tracer: PacketTracer | null = null;

  private readonly key = new Uint8Array(L.CT_KEY_SIZE);
  private readonly kv = new DataView(this.key.buffer);
  /** The map the operation in progress (or the GC sweep) works on. */
  private map: LruHashMap;
  private tcpCursor = 0;
  private anyCursor = 0;
  private readonly expired = (_k: number, v: number): boolean => this.map.view.getUint32(v + L.V_LIFETIME, true) < this.now;

  constructor(registry: MapRegistry, sizes: CtSizes, readonly timeouts: CtTimeouts) {
    this.tcp = registry.open({ name: L.CT_TCP_MAP, type: 'lru_hash', keySize: L.CT_KEY_SIZE, valueSize: L.CT_VALUE_SIZE, maxEntries: sizes.tcp });
    this.any = registry.open({ name: L.CT_ANY_MAP, type: 'lru_hash', keySize: L.CT_KEY_SIZE, valueSize: L.CT_VALUE_SIZE, maxEntries: sizes.any });
    this.map = this.tcp;
  }

  private setKey(saddr: number, daddr: number, sport: number, dport: number, proto: number, flags: number): void {
    const k = this.kv;
    k.setUint32(L.K_DADDR, daddr);
    k.setUint32(L.K_SADDR, saddr);
    k.setUint16(L.K_DPORT, dport);
    k.setUint16(L.K_SPORT, sport);
    this.key[L.K_NEXTHDR] = proto;
    this.key[L.K_FLAGS] = flags;
  }

  /**
   * The packet's connection from one side (TUPLE_F_OUT on egress, TUPLE_F_IN on ingress):
   * CT_ESTABLISHED for its own direction, CT_REPLY when it answers an entry made by either side
   * of this node (an egress entry first: it carries the rev-NAT index), else CT_NEW. The state and
   * the entry's findings go into ctx.ct; the state is returned too.
   */
  lookup(ctx: PacketContext, dir: number): number {
    const ct = ctx.ct;
    ct.state = ctx.flags & F_ICMP_ERROR ? this.lookupRelated(ctx) : this.lookupTuple(ctx, dir);
    return ct.state;
  }

  private lookupTuple(ctx: PacketContext, dir: number): number {
    const ct = ctx.ct;
    const map = ctx.proto === IPPROTO_TCP ? this.tcp : this.any;
    this.map = map;
    this.setKey(ctx.saddr, ctx.daddr, ctx.sport, ctx.dport, ctx.proto, dir);
    let off = map.lookup(this.key, 0);
    if (off >= 0 && !this.stale(off, ctx, dir)) {
      this.touch(off, ctx, true);
      if (ctx.traced) this.tracer!.ctLookup(ctx.saddr, ctx.daddr, ctx.sport, ctx.dport, ctx.proto, dir, L.CT_ESTABLISHED, dir, ct.revNat, ct.entryFlags);
      return L.CT_ESTABLISHED;
    }
    if (off >= 0) {
      // The caller's create() reuses the entry for the new connection, with its own rev-NAT and flags.
      this.noEntry(ct);
      if (ctx.traced) this.tracer!.ctLookup(ctx.saddr, ctx.daddr, ctx.sport, ctx.dport, ctx.proto, dir, L.CT_NEW, dir, 0, 0);
      return L.CT_NEW;
    }
    // ICMP echo ids stand in both port slots the same way in both directions: no swap.
    const echo = ctx.proto === IPPROTO_ICMP;
    this.setKey(ctx.daddr, ctx.saddr, echo ? ctx.sport : ctx.dport, echo ? ctx.dport : ctx.sport, ctx.proto, L.TUPLE_F_IN);
    const inOff = map.lookup(this.key, 0);
    // On egress an ingress entry marked for the proxy owns its replies (they go back to the
    // proxy); otherwise an egress entry answers first, as it carries the reverse NAT of a service.
    off = dir === L.TUPLE_F_OUT && inOff >= 0 && map.view.getUint16(inOff + L.V_FLAGS, true) & L.CT_F_PROXY_REDIRECT ? inOff : -1;
    if (off < 0) {
      this.key[L.K_FLAGS] = L.TUPLE_F_OUT;
      off = map.lookup(this.key, 0);
      if (off < 0) {
        off = inOff;
        this.key[L.K_FLAGS] = L.TUPLE_F_IN;
      } else if (dir === L.TUPLE_F_OUT && inOff >= 0) {
        // Both ends are local: the replying pod's own ingress entry sees the reply too, so it
        // closes with its connection instead of living out the established lifetime.
        this.touch(inOff, ctx, false);
      }
    } else {
      this.key[L.K_FLAGS] = L.TUPLE_F_IN;
    }
    if (off >= 0) {
      this.touch(off, ctx, false);
      if (ctx.traced) this.tracer!.ctLookup(ctx.saddr, ctx.daddr, ctx.sport, ctx.dport, ctx.proto, dir, L.CT_REPLY, this.key[L.K_FLAGS], ct.revNat, ct.entryFlags);
      return L.CT_REPLY;
    }
    this.noEntry(ct);
    if (ctx.traced) this.tracer!.ctLookup(ctx.saddr, ctx.daddr, ctx.sport, ctx.dport, ctx.proto, dir, L.CT_NEW, dir, 0, 0);
    return L.CT_NEW;
  }

  /**
   * An entry in the packet's own direction that belongs to an earlier connection: a SYN after that
   * one closed, or (egress) a rev-NAT index other than the one lb4_local found for this packet —
   * Cilium's "stale non-service entry" in bpf_lxc, e.g. a source port reused for a service after
   * direct connections to its backend, or the other way round.
   */
  private stale(off: number, ctx: PacketContext, dir: number): boolean {
    const v = this.map.view;
    if (reopens(ctx, v.getUint16(off + L.V_FLAGS, true))) return true;
    return dir === L.TUPLE_F_OUT && v.getUint16(off + L.V_REV_NAT, true) !== ctx.lb.revNat;
  }

  /** A miss: nothing found, a new connection worth reporting. */
  private noEntry(ct: CtState): void {
    ct.revNat = 0;
    ct.backendId = 0;
    ct.entryFlags = 0;
    ct.innerL3 = -1;
    ct.report = true;
  }

  /**
   * An ICMP error (unreachable, time exceeded) quotes the packet that caused it: if that packet's
   * connection is tracked here the error is CT_RELATED, and ctx.ct.innerL3 points at the quote.
   */
  private lookupRelated(ctx: PacketContext): number {
    const b = ctx.buf;
    const ct = ctx.ct;
    const inner = icmp.quoted(ctx.l3 + ipv4.hdrlen(b, ctx.l3));
    this.noEntry(ct);
    if (inner + IPV4_MIN_HLEN > ctx.end || ipv4.version(b, inner) !== 4) return L.CT_NEW;
    const proto = ipv4.protocol(b, inner);
    const at = inner + ipv4.hdrlen(b, inner);
    // A quoted echo request is keyed by its identifier.
    const ports = proto !== IPPROTO_ICMP && at + L4_PORTS_LEN <= ctx.end;
    const sport = ports ? l4.sport(b, at) : proto === IPPROTO_ICMP && at + ICMP_HLEN <= ctx.end ? icmp.echoId(b, at) : 0;
    const dport = ports ? l4.dport(b, at) : 0;
    const map = proto === IPPROTO_TCP ? this.tcp : this.any;
    this.map = map;
    // The quoted packet went the other way: it is the tracked connection's own direction.
    this.setKey(ipv4.saddr(b, inner), ipv4.daddr(b, inner), sport, dport, proto, L.TUPLE_F_OUT);
    let off = map.lookup(this.key, 0);
    if (off < 0) {
      this.key[L.K_FLAGS] = L.TUPLE_F_IN;
      off = map.lookup(this.key, 0);
    }
    if (off < 0) {
      if (ctx.traced) this.traceKey(L.CT_NEW, 0);
      return L.CT_NEW;
    }
    ct.revNat = map.view.getUint16(off + L.V_REV_NAT, true);
    ct.entryFlags = map.view.getUint16(off + L.V_FLAGS, true);
    ct.innerL3 = inner;
    if (ctx.traced) this.traceKey(L.CT_RELATED, ct.revNat);
    return L.CT_RELATED;
  }

  /** Traces the related lookup of the key in the scratch buffer. */
  private traceKey(state: number, revNat: number): void {
    const k = this.kv;
    this.tracer!.ctRelated(k.getUint32(L.K_SADDR), k.getUint32(L.K_DADDR), k.getUint16(L.K_SPORT), k.getUint16(L.K_DPORT), this.key[L.K_NEXTHDR], this.key[L.K_FLAGS], state, revNat);
  }

  /** Creates the entry for a new connection; false when the map refuses (DROP_CT_CREATE_FAILED). */
  create(ctx: PacketContext, dir: number, revNat: number, extraFlags: number): boolean {
    const map = ctx.proto === IPPROTO_TCP ? this.tcp : this.any;
    this.map = map;
    this.setKey(ctx.saddr, ctx.daddr, ctx.sport, ctx.dport, ctx.proto, dir);
    const evictions = ctx.traced ? map.evictions : 0;
    const off = map.reserve(this.key, 0, 0);
    if (ctx.traced) this.tracer!.ctCreate(ctx.saddr, ctx.daddr, ctx.sport, ctx.dport, ctx.proto, dir, off < 0 ? 0 : map.evictions !== evictions ? 2 : 1, revNat, extraFlags);
    if (off < 0) return false;
    const v = map.view;
    map.bytes.fill(0, off, off + L.CT_VALUE_SIZE);
    v.setUint16(off + L.V_FLAGS, extraFlags, true);
    v.setUint16(off + L.V_REV_NAT, revNat, true);
    v.setUint32(off + L.V_SRC_SEC_ID, ctx.srcIdentity, true);
    v.setUint16(off + L.V_IFINDEX, ctx.ifindex, true);
    ctx.ct.backendId = 0;
    this.touch(off, ctx, true);
    return true;
  }

  /** The backend of a connection's service entry (client → frontend), also in ctx.ct.backendId; 0 if none. */
  lookupService(ctx: PacketContext): number {
    const map = ctx.proto === IPPROTO_TCP ? this.tcp : this.any;
    this.map = map;
    this.setKey(ctx.saddr, ctx.daddr, ctx.sport, ctx.dport, ctx.proto, L.TUPLE_F_SERVICE);
    let off = map.lookup(this.key, 0);
    // A SYN on a closed service entry is a new connection: lb4_local selects again (affinity first).
    if (off >= 0 && reopens(ctx, map.view.getUint16(off + L.V_FLAGS, true))) off = -1;
    const ct = ctx.ct;
    ct.backendId = 0;
    if (off >= 0) {
      ct.backendId = map.view.getUint32(off + L.V_BACKEND, true);
      this.touch(off, ctx, true);
    }
    if (ctx.traced) this.tracer!.ctServiceLookup(ctx.saddr, ctx.daddr, ctx.sport, ctx.dport, ctx.proto, off >= 0, ct.backendId);
    return ct.backendId;
  }

  createService(ctx: PacketContext, backendId: number, revNat: number): boolean {
    const map = ctx.proto === IPPROTO_TCP ? this.tcp : this.any;
    this.map = map;
    this.setKey(ctx.saddr, ctx.daddr, ctx.sport, ctx.dport, ctx.proto, L.TUPLE_F_SERVICE);
    const evictions = ctx.traced ? map.evictions : 0;
    const off = map.reserve(this.key, 0, 0);
    if (ctx.traced) this.tracer!.ctServiceCreate(ctx.saddr, ctx.daddr, ctx.sport, ctx.dport, ctx.proto, off < 0 ? 0 : map.evictions !== evictions ? 2 : 1, backendId, revNat);
    if (off < 0) return false;
    map.bytes.fill(0, off, off + L.CT_VALUE_SIZE);
    const v = map.view;
    v.setUint32(off + L.V_BACKEND, backendId, true);
    v.setUint16(off + L.V_REV_NAT, revNat, true);
    v.setUint32(off + L.V_SRC_SEC_ID, ctx.srcIdentity, true);
    this.touch(off, ctx, true);
    return true;
  }

  /** Counters, TCP state and lifetime of an entry hit by a packet going `forward` or replying. */
  private touch(off: number, ctx: PacketContext, forward: boolean): void {
    const map = this.map;
    const v = map.view;
    const bytes = ctx.end - ctx.l3;
    const pk = forward ? L.V_TX_PACKETS : L.V_RX_PACKETS;
    v.setFloat64(off + pk, v.getFloat64(off + pk, true) + 1, true);
    v.setFloat64(off + pk + 8, v.getFloat64(off + pk + 8, true) + bytes, true);
    const seenAt = off + (forward ? L.V_TX_FLAGS_SEEN : L.V_RX_FLAGS_SEEN);
    const tcpFlags = ctx.proto === IPPROTO_TCP ? ctx.tcpFlags : 0;
    const seen = map.bytes[seenAt];
    const reportAt = off + (forward ? L.V_LAST_TX_REPORT : L.V_LAST_RX_REPORT);
    const last = v.getUint32(reportAt, true);
    const ct = ctx.ct;
    ct.report = (seen | tcpFlags) !== seen || last === 0 || this.now - last >= L.CT_REPORT_INTERVAL;
    if (ct.report) v.setUint32(reportAt, this.now, true);
    map.bytes[seenAt] = seen | tcpFlags;
    let flags = v.getUint16(off + L.V_FLAGS, true);
    const service = this.key[L.K_FLAGS] === L.TUPLE_F_SERVICE;
    let lifetime: number;
    if (ctx.proto === IPPROTO_TCP) {
      if (tcpFlags & TCP_FLAG_RST) flags |= BOTH_CLOSING;
      else if (tcpFlags & TCP_FLAG_FIN) flags |= forward ? L.CT_F_TX_CLOSING : L.CT_F_RX_CLOSING;
      if (!(tcpFlags & TCP_FLAG_SYN)) flags |= L.CT_F_SEEN_NON_SYN;
      const t = this.timeouts;
      lifetime = (flags & BOTH_CLOSING) === BOTH_CLOSING ? t.tcpFin : flags & L.CT_F_SEEN_NON_SYN ? (service ? t.serviceTcp : t.tcp) : t.tcpSyn;
      v.setUint16(off + L.V_FLAGS, flags, true);
    } else {
      lifetime = service ? this.timeouts.serviceAny : this.timeouts.any;
    }
    v.setUint32(off + L.V_LIFETIME, this.now + lifetime, true);
    ct.entryFlags = flags;
    ct.revNat = v.getUint16(off + L.V_REV_NAT, true);
  }

  /** Removes expired entries, at most `budget` visits per map per call, so the datapath never stalls. */
  gc(budget: number): number {
    this.now = monoSeconds();
    let removed = 0;
    this.map = this.tcp;
    this.tcpCursor = this.tcp.sweep(this.tcpCursor, budget, this.expired);
    removed += this.tcp.lastSweepDeleted;
    this.map = this.any;
    this.anyCursor = this.any.sweep(this.anyCursor, budget, this.expired);
    removed += this.any.lastSweepDeleted;
    return removed;
  }

  flush(): number {
    const n = this.tcp.count + this.any.count;
    this.tcp.clear();
    this.any.clear();
    return n;
  }
}
