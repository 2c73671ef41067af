// The datapath side of service load balancing (Cilium's lib/lb.h): frontend lookup, backend
// selection (random, Maglev, ClientIP affinity), DNAT to the backend and reverse NAT of replies.
// Findings of a lookup go into the packet's ctx.lb; nothing is allocated per packet.
import type { ArrayMap, HashMap, MapRegistry } from '../maps/index.ts';
import { native } from '../native/index.ts';
import { M_FLAGS, F_NEEDS_CSUM } from '../native/meta.ts';
import type { PacketContext } from '../dataplane/context.ts';
import * as L from '../maps/cilium/lb.ts';
import { IPPROTO_ICMP } from '../wire/proto.ts';
import { RW_DNAT, RW_SNAT, SEL_AFFINITY, SEL_MAGLEV, SEL_NONE, SEL_RANDOM, type PacketTracer } from '../observe/trace/tracer.ts';

export interface LbSizes {
  services: number;
  backends: number;
  maglevTableSize: number;
  maglevServices: number;
}

export class LoadBalancer {
  readonly services: HashMap;
  readonly backends: HashMap;
  readonly revNatMap: HashMap;
  readonly affinity: HashMap;
  readonly maglev: ArrayMap;
  readonly maglevSize: number;
  /** `ciliary trace` (set by Datapath.setTracer); used only for packets with ctx.traced. */
  tracer: PacketTracer | null = null;

  private readonly key = new Uint8Array(L.SVC_KEY_SIZE);
  private readonly kv = new DataView(this.key.buffer);
  private readonly idKey = new Uint8Array(4);
  private readonly idView = new DataView(this.idKey.buffer);
  private readonly affKey = new Uint8Array(L.AFFINITY_KEY_SIZE);
  private readonly affView = new DataView(this.affKey.buffer);
  private readonly affValue = new Uint8Array(L.AFFINITY_VALUE_SIZE);
  private readonly affValueView = new DataView(this.affValue.buffer);

  constructor(registry: MapRegistry, sizes: LbSizes) {
    this.services = registry.open({ name: L.LB_SERVICES_MAP, type: 'hash', keySize: L.SVC_KEY_SIZE, valueSize: L.SVC_VALUE_SIZE, maxEntries: sizes.services });
    this.backends = registry.open({ name: L.LB_BACKENDS_MAP, type: 'hash', keySize: 4, valueSize: L.BACKEND_VALUE_SIZE, maxEntries: sizes.backends });
    this.revNatMap = registry.open({ name: L.LB_REVNAT_MAP, type: 'hash', keySize: 4, valueSize: L.REVNAT_VALUE_SIZE, maxEntries: sizes.services });
    this.affinity = registry.open({ name: L.LB_AFFINITY_MAP, type: 'lru_hash', keySize: L.AFFINITY_KEY_SIZE, valueSize: L.AFFINITY_VALUE_SIZE, maxEntries: sizes.services });
    this.maglevSize = sizes.maglevTableSize;
    this.maglev = registry.open({ name: L.LB_MAGLEV_MAP, type: 'array', keySize: 4, valueSize: 4 * sizes.maglevTableSize, maxEntries: sizes.maglevServices });
  }

  private setSvcKey(addr: number, port: number, slot: number, proto: number): void {
    this.kv.setUint32(L.SK_ADDRESS, addr);
    this.kv.setUint16(L.SK_DPORT, port);
    this.kv.setUint16(L.SK_SLOT, slot, true);
    this.key[L.SK_PROTO] = proto;
  }

  /** lb4_lookup_service: is the packet's (daddr, dport, proto) a frontend? Fills ctx.lb's service fields. */
  lookupService(ctx: PacketContext): boolean {
    this.setSvcKey(ctx.daddr, ctx.dport, 0, ctx.proto);
    const off = this.services.lookup(this.key, 0);
    if (off < 0) return false;
    const v = this.services.view;
    const lb = ctx.lb;
    lb.svcCount = v.getUint16(off + L.SV_COUNT, true);
    lb.revNat = v.getUint16(off + L.SV_REV_NAT, true);
    lb.svcFlags = v.getUint8(off + L.SV_FLAGS) | (v.getUint8(off + L.SV_FLAGS2) << 8);
    lb.affinityTimeout = v.getUint32(off + L.SV_BACKEND_ID, true);
    return true;
  }

  /** A backend for a new connection to the service in ctx.lb; 0 when it has none. */
  selectBackend(ctx: PacketContext, now: number): number {
    const lb = ctx.lb;
    if (lb.svcCount === 0) {
      if (ctx.traced) this.tracer!.lbSelect(0, SEL_NONE, 0);
      return 0;
    }
    const affinity = (lb.svcFlags & L.SVC_FLAG_AFFINITY) !== 0;
    if (affinity) {
      const id = this.affinityBackend(ctx, now);
      if (id !== 0) {
        if (ctx.traced) this.tracer!.lbSelect(id, SEL_AFFINITY, 0);
        return id;
      }
    }
    let id: number;
    let pos: number;
    const maglev = (lb.svcFlags & (L.SVC_FLAG2_MAGLEV << 8)) !== 0;
    if (maglev) {
      const row = this.maglev.lookupIndex(lb.revNat);
      pos = tupleHash(ctx) % this.maglevSize;
      id = row < 0 ? 0 : this.maglev.view.getUint32(row + 4 * pos, true);
    } else {
      pos = 1 + Math.floor(Math.random() * lb.svcCount);
      this.setSvcKey(ctx.daddr, ctx.dport, pos, ctx.proto);
      const off = this.services.lookup(this.key, 0);
      id = off < 0 ? 0 : this.services.view.getUint32(off + L.SV_BACKEND_ID, true);
    }
    if (ctx.traced) this.tracer!.lbSelect(id, maglev ? SEL_MAGLEV : SEL_RANDOM, pos);
    if (affinity && id !== 0) this.rememberAffinity(ctx.saddr, id, now);
    return id;
  }

  private affinityBackend(ctx: PacketContext, now: number): number {
    this.affView.setUint32(L.AK_CLIENT, ctx.saddr);
    this.affView.setUint16(L.AK_REV_NAT, ctx.lb.revNat, true);
    const off = this.affinity.lookup(this.affKey, 0);
    if (off < 0) return 0;
    const v = this.affinity.view;
    if (now - v.getFloat64(off + L.AV_LAST_USED, true) > ctx.lb.affinityTimeout) return 0;
    const id = v.getUint32(off + L.AV_BACKEND, true);
    if (!this.lookupBackend(ctx, id)) return 0;
    v.setFloat64(off + L.AV_LAST_USED, now, true);
    return id;
  }

  private rememberAffinity(client: number, id: number, now: number): void {
    const v = this.affValueView;
    v.setFloat64(L.AV_LAST_USED, now, true);
    v.setUint32(L.AV_BACKEND, id, true);
    this.affinity.update(this.affKey, 0, this.affValue, 0, 0);
  }

  /** Fills ctx.lb.backendAddr/backendPort; false when the id is unknown or the backend is not active. */
  lookupBackend(ctx: PacketContext, id: number, allowTerminating = false): boolean {
    this.idView.setUint32(0, id, true);
    const off = this.backends.lookup(this.idKey, 0);
    if (off < 0) return false;
    const v = this.backends.view;
    if (!allowTerminating && v.getUint8(off + L.BE_FLAGS) !== L.BE_STATE_ACTIVE) return false;
    ctx.lb.backendAddr = v.getUint32(off + L.BE_ADDRESS);
    ctx.lb.backendPort = v.getUint16(off + L.BE_PORT);
    return true;
  }

  /** Rewrites the packet's destination to the backend in ctx.lb (checksums follow). */
  dnat(ctx: PacketContext): boolean {
    const partial = (ctx.meta[ctx.m + M_FLAGS] & F_NEEDS_CSUM) !== 0;
    const addr = ctx.lb.backendAddr;
    const port = ctx.lb.backendPort;
    const icmp = ctx.proto === IPPROTO_ICMP;
    if (ctx.traced) this.tracer!.rewrite(RW_DNAT, ctx.daddr, icmp ? -1 : ctx.dport, addr, icmp ? -1 : port || ctx.dport);
    if (!native.rewriteAddr(ctx.buf, ctx.l3, ctx.end, true, addr, partial)) return false;
    if (port !== 0 && ctx.dport !== port && !native.rewritePort(ctx.buf, ctx.l3, ctx.end, true, port, partial)) return false;
    ctx.daddr = addr;
    if (port !== 0) ctx.dport = port;
    return true;
  }

  /** lb4_rev_nat: a reply's source goes back to the frontend it was sent to. */
  revNat(ctx: PacketContext, index: number): boolean {
    this.idView.setUint32(0, index, true);
    const off = this.revNatMap.lookup(this.idKey, 0);
    if (off < 0) {
      if (ctx.traced) this.tracer!.lbRevNat(index, false, 0, 0);
      return false;
    }
    const v = this.revNatMap.view;
    const addr = v.getUint32(off + L.RN_ADDRESS);
    const port = v.getUint16(off + L.RN_PORT);
    const icmp = ctx.proto === IPPROTO_ICMP;
    ctx.lb.revNatPort = port;
    if (ctx.traced) {
      this.tracer!.lbRevNat(index, true, addr, port);
      this.tracer!.rewrite(RW_SNAT, ctx.saddr, icmp ? -1 : ctx.sport, addr, icmp ? -1 : port);
    }
    const partial = (ctx.meta[ctx.m + M_FLAGS] & F_NEEDS_CSUM) !== 0;
    if (!native.rewriteAddr(ctx.buf, ctx.l3, ctx.end, false, addr, partial)) return false;
    if (ctx.sport !== port && !icmp && !native.rewritePort(ctx.buf, ctx.l3, ctx.end, false, port, partial)) return false;
    ctx.saddr = addr;
    if (!icmp) ctx.sport = port;
    return true;
  }
}

/** A 5-tuple hash for Maglev (murmur3-style mixing, no allocation). */
function tupleHash(ctx: PacketContext): number {
  let h = Math.imul(ctx.saddr ^ 0x9e3779b9, 0xcc9e2d51);
  h = Math.imul((h << 15) | (h >>> 17), 0x1b873593) ^ ctx.daddr;
  h = Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64;
  h ^= (ctx.sport << 16) | ctx.dport;
  h ^= ctx.proto;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
