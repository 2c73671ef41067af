// Connection tracking over two LRU maps (TCP, everything else), as Cilium's ct_lookup4/ct_create4.
// The hot path writes the tuple into one scratch key and leaves its findings in fields of this
// object (no result objects): the entry's map and offset, its rev-NAT index and backend.
import type { LruHashMap, MapRegistry } from '../maps/index.ts';
import type { PacketContext } from '../dataplane/context.ts';
import { F_ICMP_ERROR } from '../native/meta.ts';
import * as L from './layout.ts';
import type { CtTimeouts } from './timeouts.ts';
import { monoSeconds } from './clock.ts';
import type { PacketTracer } from '../observe/trace/tracer.ts';

const TCP = 6;
const ICMP = 1;
const SYN = 0x02;
const FIN = 0x01;
const RST = 0x04;
const BOTH_CLOSING = L.CT_F_RX_CLOSING | L.CT_F_TX_CLOSING;

export interface CtSizes {
  tcp: number;
  any: number;
}

export class Conntrack {
  readonly tcp: LruHashMap;
  readonly any: LruHashMap;
  /** Monotonic seconds; the datapath sets it once per batch. */
  now = 0;
  // Findings of the last lookup/create.
  map: LruHashMap;
  off = -1;
  revNat = 0;
  backendId = 0;
  entryFlags = 0;
  /** Whether this packet is worth a trace event (monitor aggregation: new flags or 5 s passed). */
  report = false;
  /** `ciliary trace` (set by Datapath.setTracer); used only for packets with ctx.traced. */
  tracer: PacketTracer | null = null;

  private readonly key = new Uint8Array(L.CT_KEY_SIZE);
  private readonly kv = new DataView(this.key.buffer);
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
   * of this node (an egress entry first: it carries the rev-NAT index), else CT_NEW.
   */
  lookup(ctx: PacketContext, dir: number): number {
    if (ctx.flags & F_ICMP_ERROR) return this.lookupRelated(ctx);
    const map = ctx.proto === TCP ? this.tcp : this.any;
    this.map = map;
    this.setKey(ctx.saddr, ctx.daddr, ctx.sport, ctx.dport, ctx.proto, dir);
    let off = map.lookup(this.key, 0);
    if (off >= 0) {
      this.touch(off, ctx, true);
      if (ctx.traced) this.tracer!.ctLookup(ctx.saddr, ctx.daddr, ctx.sport, ctx.dport, ctx.proto, dir, L.CT_ESTABLISHED, dir, this.revNat, this.entryFlags);
      return L.CT_ESTABLISHED;
    }
    // ICMP echo ids stand in both port slots the same way in both directions: no swap.
    const icmp = ctx.proto === ICMP;
    this.setKey(ctx.daddr, ctx.saddr, icmp ? ctx.sport : ctx.dport, icmp ? ctx.dport : ctx.sport, ctx.proto, L.TUPLE_F_IN);
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
      }
    } else {
      this.key[L.K_FLAGS] = L.TUPLE_F_IN;
    }
    if (off >= 0) {
      this.touch(off, ctx, false);
      if (ctx.traced) this.tracer!.ctLookup(ctx.saddr, ctx.daddr, ctx.sport, ctx.dport, ctx.proto, dir, L.CT_REPLY, this.key[L.K_FLAGS], this.revNat, this.entryFlags);
      return L.CT_REPLY;
    }
    this.off = -1;
    this.revNat = 0;
    this.backendId = 0;
    this.entryFlags = 0;
    this.report = true;
    if (ctx.traced) this.tracer!.ctLookup(ctx.saddr, ctx.daddr, ctx.sport, ctx.dport, ctx.proto, dir, L.CT_NEW, dir, 0, 0);
    return L.CT_NEW;
  }

  /**
   * An ICMP error (unreachable, time exceeded) quotes the packet that caused it: if that packet's
   * connection is tracked here the error is CT_RELATED, and `innerL3` points at the quote.
   */
  private lookupRelated(ctx: PacketContext): number {
    const b = ctx.buf;
    const inner = ctx.l3 + (b[ctx.l3] & 15) * 4 + 8;
    this.innerL3 = -1;
    if (inner + 20 > ctx.end || b[inner] >> 4 !== 4) return L.CT_NEW;
    const ihl = (b[inner] & 15) * 4;
    const proto = b[inner + 9];
    const v = ctx.view;
    const l4 = inner + ihl;
    const ports = proto !== ICMP && l4 + 4 <= ctx.end;
    const sport = ports ? v.getUint16(l4) : proto === ICMP && l4 + 8 <= ctx.end ? v.getUint16(l4 + 4) : 0;
    const dport = ports ? v.getUint16(l4 + 2) : 0;
    const map = proto === TCP ? this.tcp : this.any;
    this.map = map;
    // The quoted packet went the other way: it is the tracked connection's own direction.
    this.setKey(v.getUint32(inner + 12), v.getUint32(inner + 16), sport, dport, proto, L.TUPLE_F_OUT);
    let off = map.lookup(this.key, 0);
    if (off < 0) {
      this.key[L.K_FLAGS] = L.TUPLE_F_IN;
      off = map.lookup(this.key, 0);
    }
    if (off < 0) {
      if (ctx.traced) this.traceKey(L.CT_NEW, 0);
      return L.CT_NEW;
    }
    this.off = off;
    this.revNat = map.view.getUint16(off + L.V_REV_NAT, true);
    this.entryFlags = map.view.getUint16(off + L.V_FLAGS, true);
    this.innerL3 = inner;
    this.report = true;
    if (ctx.traced) this.traceKey(L.CT_RELATED, this.revNat);
    return L.CT_RELATED;
  }

  /** Traces the related lookup of the key in the scratch buffer. */
  private traceKey(state: number, revNat: number): void {
    const k = this.kv;
    this.tracer!.ctRelated(k.getUint32(L.K_SADDR), k.getUint32(L.K_DADDR), k.getUint16(L.K_SPORT), k.getUint16(L.K_DPORT), this.key[L.K_NEXTHDR], this.key[L.K_FLAGS], state, revNat);
  }

  /** Where the quoted packet of the last CT_RELATED ICMP error starts (-1 otherwise). */
  innerL3 = -1;

  /** Creates the entry for a new connection; false when the map refuses (DROP_CT_CREATE_FAILED). */
  create(ctx: PacketContext, dir: number, revNat: number, extraFlags: number): boolean {
    const map = ctx.proto === TCP ? this.tcp : this.any;
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
    this.off = off;
    this.revNat = revNat;
    this.backendId = 0;
    this.touch(off, ctx, true);
    return true;
  }

  /** The service entry (client → frontend) of a connection, holding its chosen backend; -1 if none. */
  lookupService(ctx: PacketContext): number {
    const map = ctx.proto === TCP ? this.tcp : this.any;
    this.map = map;
    this.setKey(ctx.saddr, ctx.daddr, ctx.sport, ctx.dport, ctx.proto, L.TUPLE_F_SERVICE);
    const off = map.lookup(this.key, 0);
    if (off >= 0) {
      this.backendId = map.view.getUint32(off + L.V_BACKEND, true);
      this.touch(off, ctx, true);
    }
    if (ctx.traced) this.tracer!.ctServiceLookup(ctx.saddr, ctx.daddr, ctx.sport, ctx.dport, ctx.proto, off >= 0, off >= 0 ? this.backendId : 0);
    this.off = off;
    return off;
  }

  createService(ctx: PacketContext, backendId: number, revNat: number): boolean {
    const map = ctx.proto === TCP ? this.tcp : this.any;
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
    const tcpFlags = ctx.proto === TCP ? ctx.tcpFlags : 0;
    const seen = map.bytes[seenAt];
    const reportAt = off + (forward ? L.V_LAST_TX_REPORT : L.V_LAST_RX_REPORT);
    const last = v.getUint32(reportAt, true);
    this.report = (seen | tcpFlags) !== seen || last === 0 || this.now - last >= L.CT_REPORT_INTERVAL;
    if (this.report) v.setUint32(reportAt, this.now, true);
    map.bytes[seenAt] = seen | tcpFlags;
    let flags = v.getUint16(off + L.V_FLAGS, true);
    const service = this.key[L.K_FLAGS] === L.TUPLE_F_SERVICE;
    let lifetime: number;
    if (ctx.proto === TCP) {
      if (tcpFlags & RST) flags |= BOTH_CLOSING;
      else if (tcpFlags & FIN) flags |= forward ? L.CT_F_TX_CLOSING : L.CT_F_RX_CLOSING;
      if (!(tcpFlags & SYN)) flags |= L.CT_F_SEEN_NON_SYN;
      const t = this.timeouts;
      lifetime = (flags & BOTH_CLOSING) === BOTH_CLOSING ? t.tcpFin : flags & L.CT_F_SEEN_NON_SYN ? (service ? t.serviceTcp : t.tcp) : t.tcpSyn;
      v.setUint16(off + L.V_FLAGS, flags, true);
    } else {
      lifetime = service ? this.timeouts.serviceAny : this.timeouts.any;
    }
    v.setUint32(off + L.V_LIFETIME, this.now + lifetime, true);
    this.off = off;
    this.entryFlags = flags;
    this.revNat = v.getUint16(off + L.V_REV_NAT, true);
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
