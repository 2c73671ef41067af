// BPF masquerade (Cilium's bpf/lib/nat.h): SNAT of pod traffic leaving the cluster to the node IP,
// with a port (or ICMP echo id) from the masquerade range that no other flow to the same remote
// uses; the reverse translation of replies and of ICMP errors quoting a translated packet. Both
// directions live in cilium_snat_v4_external (an OUT entry per pod tuple, an IN entry per reply
// tuple); entries go when their conntrack entry goes (gc).
import { BPF_NOEXIST, EEXIST, type HashMap, type LpmTrieMap, type LruHashMap, type MapRegistry } from '../../maps/index.ts';
import type { PacketContext } from '../context.ts';
import { native } from '../../native/index.ts';
import { F_ICMP_ERROR, F_NEEDS_CSUM, M_FLAGS, M_ICMP_TYPE } from '../../native/meta.ts';
import { DROP_NAT_NO_MAPPING, DROP_NAT_UNSUPP_PROTO, DROP_WRITE_ERROR } from '../drop-reasons.ts';
import * as N from '../../maps/cilium/nat.ts';
import { K_DADDR, K_DPORT, K_FLAGS, K_NEXTHDR, K_SADDR, K_SPORT, TUPLE_F_IN, TUPLE_F_OUT, V_LIFETIME } from '../../maps/cilium/ct.ts';
import * as ipv4 from '../../wire/ipv4.ts';
import { prefixMask } from '../../wire/ip-text.ts';
import * as icmp from '../../wire/icmp.ts';
import { LOCAL_IDENTITY_BASE, RESERVED_IDENTITIES } from '../vocab/reserved-identities.ts';
import * as l4 from '../../wire/l4.ts';
import { ICMP_HLEN, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPV4_MIN_HLEN, L4_PORTS_LEN } from '../../wire/proto.ts';

/** Ports tried for one new flow before it drops with DROP_NAT_NO_MAPPING (Cilium's SNAT_COLLISION_RETRIES). */
export const SNAT_COLLISION_RETRIES = 32;
/** Default masquerade port range (config masquerade-port-range): above Linux's default ip_local_port_range (32768-60999). */
export const DEFAULT_NAT_PORT_MIN = 61000;
export const DEFAULT_NAT_PORT_MAX = 65534;

/** revSnatV4 results (anything else it returns is a drop reason). */
export const NAT_PUNT = 0; // not a reply to a translated flow: the caller goes on with the packet as it is
export const NAT_XLATED = 1; // translated back: the destination is the pod now

const WORLD_ID = RESERVED_IDENTITIES.world;
const REMOTE_NODE_ID = RESERVED_IDENTITIES['remote-node'];

export interface SnatSettings {
  /** The native device's address, whose steered packets bpf_host sees (0 = no steering). */
  nodeAddr: number;
  /** Node IP masqueraded to (IPV4_MASQUERADE); 0 turns masquerade off. */
  masqAddr: number;
  portMin: number;
  portMax: number;
  /** No SNAT toward this prefix (ipv4-native-routing-cidr or the local pod CIDR); bits -1 = none. */
  excludeBase: number;
  excludeBits: number;
  /** Consult cilium_ipmasq_v4 (enable-ip-masq-agent). */
  ipMasqAgent: boolean;
  /** Tunnel mode: remote nodes are reached through the native device too, so they are masqueraded (as Cilium). */
  tunnel: boolean;
}

export class Snat {
  readonly map: HashMap;
  readonly ipMasq: LpmTrieMap;
  /** Packets to this address reached bpf_host through the steering rules (0 = none are steered). */
  nodeAddr = 0;
  masqAddr = 0;
  portMin = DEFAULT_NAT_PORT_MIN;
  portMax = DEFAULT_NAT_PORT_MAX;
  ipMasqAgent = false;
  tunnel = false;
  private excludeBase = 0;
  private excludeMask = 0;
  private excludeOn = false;
  private readonly key = new Uint8Array(N.NAT_KEY_SIZE);
  private readonly kv = new DataView(this.key.buffer);
  private readonly masqKey = new Uint8Array(N.IPMASQ_KEY_SIZE);
  private readonly masqKv = new DataView(this.masqKey.buffer);
  private readonly gcKey = new Uint8Array(N.NAT_KEY_SIZE);
  private readonly gcKv = new DataView(this.gcKey.buffer);
  private cursor = 0;
  private gcNow = 0;
  private gcTcp: LruHashMap | null = null;
  private gcAny: LruHashMap | null = null;
  private readonly stale = (k: number, v: number): boolean => this.isStale(k, v);

  constructor(registry: MapRegistry, maxEntries: number) {
    this.map = registry.open(N.natSpec(maxEntries) as never) as HashMap;
    this.ipMasq = registry.open(N.ipMasqSpec() as never) as LpmTrieMap;
  }

  configure(s: SnatSettings): void {
    this.nodeAddr = s.nodeAddr;
    this.masqAddr = s.masqAddr;
    this.portMin = s.portMin;
    this.portMax = s.portMax;
    this.excludeOn = s.excludeBits >= 0;
    this.excludeMask = prefixMask(Math.max(0, s.excludeBits));
    this.excludeBase = (s.excludeBase & this.excludeMask) >>> 0;
    this.ipMasqAgent = s.ipMasqAgent;
    this.tunnel = s.tunnel;
  }

  /**
   * snat_v4_needs_masquerade for a pod's packet leaving toward ctx.daddr (ctx.dstIdentity looked
   * up): only the world (and CIDR identities), never the exclusion CIDR, an ip-masq-agent
   * non-masquerade CIDR, a pod or (native routing) another node.
   */
  needsMasquerade(ctx: PacketContext): boolean {
    if (this.masqAddr === 0) return false;
    const id = ctx.dstIdentity;
    if (id !== WORLD_ID && id < LOCAL_IDENTITY_BASE && !(this.tunnel && id === REMOTE_NODE_ID)) return false;
    if (this.excludeOn && ((ctx.daddr & this.excludeMask) >>> 0) === this.excludeBase) return false;
    if (this.ipMasqAgent) {
      this.masqKv.setUint32(0, 32, true);
      this.masqKv.setUint32(4, ctx.daddr);
      if (this.ipMasq.lookup(this.masqKey, 0) >= 0) return false;
    }
    return true;
  }

  private setKey(saddr: number, daddr: number, sport: number, dport: number, proto: number, flags: number): void {
    const k = this.kv;
    k.setUint32(K_SADDR, saddr);
    k.setUint32(K_DADDR, daddr);
    k.setUint16(K_SPORT, sport);
    k.setUint16(K_DPORT, dport);
    this.key[K_NEXTHDR] = proto;
    this.key[K_FLAGS] = flags;
  }

  private writeValue(off: number, toAddr: number, toPort: number, now: number): void {
    const v = this.map.view;
    v.setUint32(off + N.NV_CREATED, now, true);
    v.setUint32(off + N.NV_NEEDS_CT, 1, true);
    v.setUint32(off + N.NV_TO_ADDR, toAddr);
    v.setUint16(off + N.NV_TO_PORT, toPort);
  }

  /**
   * The translated port of flow (saddr:sport → daddr:dport, proto) leaving as toAddr: its OUT entry's,
   * or a new one from the range whose reply tuple no other flow holds (the IN entry is claimed first,
   * BPF_NOEXIST, so two flows never share it). -1 when every port tried collides or the map is full.
   * For ICMP, sport is the echo id and dport 0.
   */
  lookupOrAllocate(saddr: number, sport: number, daddr: number, dport: number, proto: number, toAddr: number, now: number): number {
    this.setKey(saddr, daddr, sport, dport, proto, TUPLE_F_OUT);
    const map = this.map;
    const found = map.lookup(this.key, 0);
    if (found >= 0 && map.view.getUint32(found + N.NV_TO_ADDR) === toAddr) return map.view.getUint16(found + N.NV_TO_PORT);
    const size = this.portMax - this.portMin + 1;
    // Keep the pod's own port when it is free and in range (as Cilium), else start from a hash of the tuple.
    let port = sport >= this.portMin && sport <= this.portMax ? sport : this.portMin + (((Math.imul(sport ^ daddr, 0x9e3779b1) ^ dport) >>> 0) % size);
    const echo = proto === IPPROTO_ICMP;
    const tries = size < SNAT_COLLISION_RETRIES ? size : SNAT_COLLISION_RETRIES;
    for (let i = 0; i < tries; i++) {
      this.setKey(daddr, toAddr, echo ? port : dport, echo ? 0 : port, proto, TUPLE_F_IN);
      const rev = map.reserve(this.key, 0, BPF_NOEXIST);
      if (rev >= 0) {
        this.writeValue(rev, saddr, sport, now);
        this.setKey(saddr, daddr, sport, dport, proto, TUPLE_F_OUT);
        const out = map.reserve(this.key, 0);
        if (out < 0) {
          // Full between the two inserts: give the reply tuple back.
          this.setKey(daddr, toAddr, echo ? port : dport, echo ? 0 : port, proto, TUPLE_F_IN);
          map.delete(this.key, 0);
          return -1;
        }
        this.writeValue(out, toAddr, port, now);
        return port;
      }
      if (rev !== -EEXIST) return -1;
      port = port === this.portMax ? this.portMin : port + 1;
    }
    return -1;
  }

  /**
   * snat_v4 for the packet in ctx (its tuple in ctx.saddr/sport/daddr/dport/proto): source becomes
   * toAddr and a port from the allocator; ctx carries the translated tuple after. 0 or a drop reason.
   * The NodePort SNAT mode calls this too, with the node IP as toAddr.
   */
  snatV4(ctx: PacketContext, toAddr: number, now: number): number {
    const proto = ctx.proto;
    if (proto === IPPROTO_ICMP) {
      if (ctx.flags & F_ICMP_ERROR) return this.snatIcmpError(ctx, toAddr);
      if (ctx.meta[ctx.m + M_ICMP_TYPE] !== icmp.ICMP_ECHO_REQUEST) return DROP_NAT_UNSUPP_PROTO;
    } else if (proto !== IPPROTO_TCP && proto !== IPPROTO_UDP) {
      return DROP_NAT_UNSUPP_PROTO;
    }
    const port = this.lookupOrAllocate(ctx.saddr, ctx.sport, ctx.daddr, proto === IPPROTO_ICMP ? 0 : ctx.dport, proto, toAddr, now);
    if (port < 0) return DROP_NAT_NO_MAPPING;
    const partial = (ctx.meta[ctx.m + M_FLAGS] & F_NEEDS_CSUM) !== 0;
    if (!native.rewriteAddr(ctx.buf, ctx.l3, ctx.end, false, toAddr, partial)) return DROP_WRITE_ERROR;
    if (port !== ctx.sport && !native.rewritePort(ctx.buf, ctx.l3, ctx.end, false, port, partial)) return DROP_WRITE_ERROR;
    ctx.saddr = toAddr;
    ctx.sport = port;
    return 0;
  }

  /**
   * An ICMP error the pod sends about a reply of a translated flow (remote → node IP:port, delivered
   * as remote → pod:port): the outer source and the quoted destination become the node's again, so
   * the remote recognises its packet. An error about anything else leaves as it is. 0 or a drop reason.
   */
  private snatIcmpError(ctx: PacketContext, toAddr: number): number {
    const b = ctx.buf;
    const inner = icmp.quoted(ctx.l3 + ipv4.hdrlen(b, ctx.l3));
    if (inner + IPV4_MIN_HLEN > ctx.end || ipv4.version(b, inner) !== 4) return 0;
    const proto = ipv4.protocol(b, inner);
    const at = inner + ipv4.hdrlen(b, inner);
    if ((proto !== IPPROTO_TCP && proto !== IPPROTO_UDP) || at + L4_PORTS_LEN > ctx.end || ipv4.daddr(b, inner) !== ctx.saddr) return 0;
    // The quoted reply's flow left as pod:port → remote: its OUT entry holds the translation.
    this.setKey(ctx.saddr, ipv4.saddr(b, inner), l4.dport(b, at), l4.sport(b, at), proto, TUPLE_F_OUT);
    const off = this.map.lookup(this.key, 0);
    if (off < 0 || this.map.view.getUint32(off + N.NV_TO_ADDR) !== toAddr) return 0;
    ipv4.setSaddr(b, ctx.l3, toAddr);
    ipv4.fillCsum(b, ctx.l3);
    ipv4.setDaddr(b, inner, toAddr);
    ipv4.fillCsum(b, inner);
    l4.setDport(b, at, this.map.view.getUint16(off + N.NV_TO_PORT));
    // The ICMP checksum covers the quote: recompute it (errors are rare, this is not the fast path).
    if (!native.setChecksums(b, ctx.l3, ctx.end)) return DROP_WRITE_ERROR;
    ctx.saddr = toAddr;
    return 0;
  }

  /**
   * snat_v4_rev_nat for a packet to the node IP from the native device: a reply (TCP/UDP to a port of
   * the range, ICMP echo reply) or an ICMP error quoting a translated packet gets the pod's address
   * and port back. NAT_XLATED, NAT_PUNT (not ours: the caller goes on) or a drop reason.
   */
  revSnatV4(ctx: PacketContext): number {
    const proto = ctx.proto;
    if (proto === IPPROTO_ICMP) {
      if (ctx.flags & F_ICMP_ERROR) return this.revSnatIcmpError(ctx);
      if (ctx.meta[ctx.m + M_ICMP_TYPE] !== icmp.ICMP_ECHO_REPLY) return NAT_PUNT;
      this.setKey(ctx.saddr, ctx.daddr, ctx.sport, 0, proto, TUPLE_F_IN);
    } else if (proto === IPPROTO_TCP || proto === IPPROTO_UDP) {
      if (ctx.dport < this.portMin || ctx.dport > this.portMax) return NAT_PUNT;
      this.setKey(ctx.saddr, ctx.daddr, ctx.sport, ctx.dport, proto, TUPLE_F_IN);
    } else {
      return NAT_PUNT;
    }
    const off = this.map.lookup(this.key, 0);
    if (off < 0) return NAT_PUNT;
    const v = this.map.view;
    const addr = v.getUint32(off + N.NV_TO_ADDR);
    const port = v.getUint16(off + N.NV_TO_PORT);
    const partial = (ctx.meta[ctx.m + M_FLAGS] & F_NEEDS_CSUM) !== 0;
    if (!native.rewriteAddr(ctx.buf, ctx.l3, ctx.end, true, addr, partial)) return DROP_WRITE_ERROR;
    if (proto === IPPROTO_ICMP) {
      if (port !== ctx.sport && !native.rewritePort(ctx.buf, ctx.l3, ctx.end, false, port, partial)) return DROP_WRITE_ERROR;
      ctx.sport = port;
    } else {
      if (port !== ctx.dport && !native.rewritePort(ctx.buf, ctx.l3, ctx.end, true, port, partial)) return DROP_WRITE_ERROR;
      ctx.dport = port;
    }
    ctx.daddr = addr;
    return NAT_XLATED;
  }

  /** An ICMP error about a translated packet: the outer destination and the quoted source go back to the pod. */
  private revSnatIcmpError(ctx: PacketContext): number {
    const b = ctx.buf;
    const inner = icmp.quoted(ctx.l3 + ipv4.hdrlen(b, ctx.l3));
    if (inner + IPV4_MIN_HLEN > ctx.end || ipv4.version(b, inner) !== 4) return NAT_PUNT;
    const proto = ipv4.protocol(b, inner);
    const at = inner + ipv4.hdrlen(b, inner);
    const echo = proto === IPPROTO_ICMP;
    if (echo ? at + ICMP_HLEN > ctx.end : (proto !== IPPROTO_TCP && proto !== IPPROTO_UDP) || at + L4_PORTS_LEN > ctx.end) return NAT_PUNT;
    // The quoted packet left translated: node IP:port → remote. Its reply tuple is the IN key.
    const qsrc = ipv4.saddr(b, inner);
    if (qsrc !== ctx.daddr) return NAT_PUNT;
    const qport = echo ? icmp.echoId(b, at) : l4.sport(b, at);
    this.setKey(ipv4.daddr(b, inner), qsrc, echo ? qport : l4.dport(b, at), echo ? 0 : qport, proto, TUPLE_F_IN);
    const off = this.map.lookup(this.key, 0);
    if (off < 0) return NAT_PUNT;
    const v = this.map.view;
    const addr = v.getUint32(off + N.NV_TO_ADDR);
    const port = v.getUint16(off + N.NV_TO_PORT);
    ipv4.setDaddr(b, ctx.l3, addr);
    ipv4.fillCsum(b, ctx.l3);
    ipv4.setSaddr(b, inner, addr);
    ipv4.fillCsum(b, inner);
    if (echo) {
      icmp.setEchoId(b, at, port);
    } else {
      l4.setSport(b, at, port);
    }
    // The ICMP checksum covers the quote: recompute it (errors are rare, this is not the fast path).
    if (!native.setChecksums(b, ctx.l3, ctx.end)) return DROP_WRITE_ERROR;
    ctx.daddr = addr;
    return NAT_XLATED;
  }

  /**
   * Removes translations whose connection is gone, at most `budget` slots per call: an OUT entry
   * without a live conntrack entry for its tuple, an IN entry whose OUT twin is gone.
   */
  gc(budget: number, ctTcp: LruHashMap, ctAny: LruHashMap, now: number): number {
    this.gcNow = now;
    this.gcTcp = ctTcp;
    this.gcAny = ctAny;
    this.cursor = this.map.sweep(this.cursor, budget, this.stale);
    return this.map.lastSweepDeleted;
  }

  private isStale(k: number, v: number): boolean {
    const b = this.map.bytes;
    const g = this.gcKey;
    const proto = b[k + K_NEXTHDR];
    if (b[k + K_FLAGS] === TUPLE_F_OUT) {
      g.set(b.subarray(k, k + N.NAT_KEY_SIZE));
      const ct = proto === IPPROTO_TCP ? this.gcTcp! : this.gcAny!;
      const off = ct.lookupNoTouch(g, 0);
      return off < 0 || ct.view.getUint32(off + V_LIFETIME, true) < this.gcNow;
    }
    // IN key (remote → node IP:port): its twin is (pod:port → remote) OUT.
    const mv = this.map.view;
    const gv = this.gcKv;
    const echo = proto === IPPROTO_ICMP;
    gv.setUint32(K_SADDR, mv.getUint32(v + N.NV_TO_ADDR));
    gv.setUint32(K_DADDR, mv.getUint32(k + K_SADDR));
    gv.setUint16(K_SPORT, mv.getUint16(v + N.NV_TO_PORT));
    gv.setUint16(K_DPORT, echo ? 0 : mv.getUint16(k + K_SPORT));
    g[K_NEXTHDR] = proto;
    g[K_FLAGS] = TUPLE_F_OUT;
    const out = this.map.lookup(g, 0);
    if (out < 0) return true;
    // The twin must point back at this entry's port (a newer flow may have reused the tuple).
    const inPort = echo ? mv.getUint16(k + K_SPORT) : mv.getUint16(k + K_DPORT);
    return mv.getUint16(out + N.NV_TO_PORT) !== inPort || mv.getUint32(out + N.NV_TO_ADDR) !== mv.getUint32(k + K_DADDR);
  }

  flush(): number {
    const n = this.map.count;
    this.map.clear();
    return n;
  }
}
