// The datapath engine: device readers feed batches into the hook attached to each device, programs
// tail-call through per-endpoint program arrays, verdicts become batched writes, drops become
// events and metrics. Everything per packet works on preallocated state.
import { native } from '../native/index.ts';
import { VNET_HDR_LEN } from '../native/meta.ts';
import { BATCH, DEFAULT_POOL_SLOTS } from '../native/pool.ts';
import { DeviceIo } from './io.ts';
import type { ArrayMap, HashMap, LpmTrieMap, MapRegistry } from '../maps/index.ts';
import { PacketContext, CTX_ACT_DROP, CTX_ACT_QUEUED, CTX_ACT_REDIRECT, DIR_EGRESS, DIR_INGRESS } from './context.ts';
import { MAX_TAIL_CALLS } from './calls.ts';
import { DROP_MISSED_TAIL_CALL, DROP_UNROUTABLE, DROP_WRITE_ERROR } from './drop-reasons.ts';
import { MonitorRing, EVENT_DROP, EVENT_TRACE } from './events.ts';
import { IPC_SEC_ID, IPC_TUNNEL } from '../maps/cilium/ipcache.ts';
import { LXC_ID } from '../maps/cilium/lxc.ts';
import { METRICS_ENTRIES } from '../maps/cilium/metrics.ts';
import { callsMapName, callsSpec } from '../maps/cilium/calls.ts';
import { mapSpecs } from '../maps/cilium/index.ts';
import { PROGRAMS, type Program } from './programs/index.ts';
import { Conntrack, type CtSizes } from '../conntrack/conntrack.ts';
import { DEFAULT_CT_TIMEOUTS, type CtTimeouts } from '../conntrack/timeouts.ts';
import { monoSeconds } from '../conntrack/clock.ts';
import { LoadBalancer, type LbSizes } from '../nat/lb.ts';
import { PolicyLookup } from './lib/policy.ts';
import { ProxyRedirects } from './lib/proxy.ts';
import { Edt } from './lib/edt.ts';
import { TunnelTx } from './lib/encap.ts';
import { Snat } from './lib/nat.ts';
import * as P from '../maps/cilium/policy.ts';
import type { PacketTracer } from '../observe/trace/tracer.ts';

const MAX_ENDPOINTS = 65536;
const WORLD_ID = 2;
/** DESIGN.md's NAT size: 2/3 of the two CT maps' sum. */
const DEFAULT_NAT_MAX = 524288;

export interface DatapathOptions {
  monitorCapacity: number;
  ct: CtSizes;
  ctTimeouts: CtTimeouts;
  lb: LbSizes;
  /** Entries of cilium_snat_v4_external (bpf-nat-global-max). */
  natMax?: number;
  /** Packet slots shared by all devices (more than one batch, so packets can be held). */
  poolSlots?: number;
}

export const DEFAULT_DATAPATH_OPTIONS: DatapathOptions = {
  monitorCapacity: 4096,
  ct: { tcp: 524288, any: 262144 },
  ctTimeouts: DEFAULT_CT_TIMEOUTS,
  lb: { services: 65536, backends: 65536, maglevTableSize: 16381, maglevServices: 1024 },
};

/** The hook of a device nobody attached: nothing may enter through it. */
function unattached(ctx: PacketContext, dp: Datapath): number {
  return dp.drop(ctx, DROP_UNROUTABLE);
}

/** Bytes of the IP packet (metrics count IP bytes, not the virtio-net header in front). */
function ipLength(ctx: PacketContext): number {
  return ctx.end > ctx.l3 ? ctx.end - ctx.l3 : Math.max(0, ctx.len - VNET_HDR_LEN);
}

export class Datapath {
  readonly ctx = new PacketContext();
  readonly io: DeviceIo;
  readonly arena: Uint8Array;
  readonly arenaView: DataView;
  readonly meta: Uint32Array;
  readonly lxc: HashMap;
  readonly ipcache: LpmTrieMap;
  readonly metrics: ArrayMap;
  readonly events: MonitorRing;
  readonly ct: Conntrack;
  readonly lb: LoadBalancer;
  /** BPF masquerade (cilium_snat_v4_external); off until the agent configures a masquerade address. */
  readonly nat: Snat;
  /** Per-endpoint state the programs need, indexed by endpoint id. */
  readonly calls: Array<ArrayMap | undefined> = [];
  /** cilium_policy_<id> of each pod endpoint. */
  readonly policy: Array<LpmTrieMap | undefined> = [];
  readonly policyLookup = new PolicyLookup();
  readonly proxy: ProxyRedirects;
  /** Bandwidth manager: EDT queues of rate-limited endpoints (cilium_throttle). */
  readonly edt: Edt;
  /** The overlay's transmit queue (routing-mode tunnel; its fd stays -1 otherwise). */
  readonly tunnel = new TunnelTx((bytes) => this.count(DROP_WRITE_ERROR, DIR_EGRESS, bytes));
  readonly epFd = new Int32Array(MAX_ENDPOINTS).fill(-1);
  readonly epIp = new Uint32Array(MAX_ENDPOINTS);
  readonly epIdentity = new Uint32Array(MAX_ENDPOINTS);
  /** Directions whose new connections get policy-verdict events (1 ingress, 2 egress): those with policy enforced, as Cilium's POLICY_VERDICT_LOG_FILTER. */
  readonly verdictLogFilter = new Uint8Array(MAX_ENDPOINTS);
  readonly epIfindex = new Uint32Array(MAX_ENDPOINTS);
  /** Entry hook of each endpoint's device (Datapath.attach); devices without one drop. */
  readonly hooks: Program[] = new Array<Program>(MAX_ENDPOINTS).fill(unattached);
  hostEp = 0;
  hostFd = -1;
  /** `ciliary trace`: null when no trace runs; hook points cost `if (ctx.traced)` otherwise. */
  tracer: PacketTracer | null = null;

  private readonly key = new Uint8Array(16);
  private readonly keyView = new DataView(this.key.buffer);
  private readonly tx = new Int32Array(4 * BATCH);
  private readonly onBatch = (count: number): void => this.processBatch(count);

  constructor(private readonly registry: MapRegistry, opts: DatapathOptions = DEFAULT_DATAPATH_OPTIONS) {
    this.io = new DeviceIo(opts.poolSlots ?? DEFAULT_POOL_SLOTS, this.onBatch);
    this.arena = this.io.pool.arena;
    this.arenaView = this.io.pool.view;
    this.meta = this.io.meta;
    const specs = mapSpecs();
    this.lxc = registry.open(specs[0] as never) as HashMap;
    this.ipcache = registry.open(specs[1] as never) as LpmTrieMap;
    this.metrics = registry.open(specs[2] as never) as ArrayMap;
    this.events = new MonitorRing(opts.monitorCapacity);
    this.ct = new Conntrack(registry, opts.ct, opts.ctTimeouts);
    this.lb = new LoadBalancer(registry, opts.lb);
    this.nat = new Snat(registry, opts.natMax ?? DEFAULT_NAT_MAX);
    this.proxy = new ProxyRedirects(registry, 65536);
    this.edt = new Edt(registry.open(specs[3] as never) as HashMap, this.io.pool, (len) => this.count(DROP_WRITE_ERROR, DIR_EGRESS, len - VNET_HDR_LEN), this.tunnel);
  }

  // ---- device attachment (control plane) -----------------------------------------------------

  /** Starts reading an endpoint's device; its packets enter through `hook` (cil_from_container, cil_from_host …). */
  attach(epId: number, fd: number, hook: Program): void {
    this.detach(epId);
    this.epFd[epId] = fd;
    this.hooks[epId] = hook;
    this.io.attachTun(epId, fd);
  }

  detach(epId: number): void {
    this.io.detach(epId);
    if (this.epFd[epId] >= 0) this.edt.forgetDevice(this.epFd[epId]);
    this.epFd[epId] = -1;
    this.hooks[epId] = unattached;
  }

  detachAll(): void {
    this.io.detachAll();
    this.epFd.fill(-1);
    this.hooks.fill(unattached);
  }

  /** Opens (or re-opens) an endpoint's program array and fills it with `slots` → program. */
  installPrograms(epId: number, slots: Array<[number, Program]>): ArrayMap {
    const calls = this.registry.open(callsSpec(epId) as never) as ArrayMap;
    calls.clear();
    for (const [slot, prog] of slots) {
      const off = calls.lookupIndex(slot);
      calls.view.setUint32(off, PROGRAMS.indexOf(prog) + 1, true);
    }
    this.calls[epId] = calls;
    return calls;
  }

  /** Opens an endpoint's policy map; a new one allows everything until policy is computed. */
  installPolicyMap(epId: number, maxEntries: number): LpmTrieMap {
    const map = this.registry.open({ name: P.policyMapName(epId), type: 'lpm_trie', keySize: P.POLICY_KEY_SIZE, valueSize: P.POLICY_VALUE_SIZE, maxEntries }) as LpmTrieMap;
    this.policy[epId] = map;
    return map;
  }

  removePolicyMap(epId: number): void {
    this.policy[epId] = undefined;
    this.registry.remove(P.policyMapName(epId));
  }

  removePrograms(epId: number): void {
    this.calls[epId] = undefined;
    this.registry.remove(callsMapName(epId));
  }

  /** Installs (or, with null, removes) the packet tracer everywhere the datapath has hook points. */
  setTracer(t: PacketTracer | null): void {
    this.tracer = t;
    this.ct.tracer = t;
    this.lb.tracer = t;
    this.proxy.tracer = t;
  }

  // ---- the hot path ----------------------------------------------------------------------------

  processBatch(count: number): void {
    if (count < 0) return; // a device went away; the endpoint manager notices on its own
    const ctx = this.ctx;
    this.ct.now = monoSeconds();
    let n = 0;
    for (let i = 0; i < count; i++) {
      ctx.load(this.arena, this.arenaView, this.meta, i);
      if (this.tracer !== null && this.tracer.match(ctx)) ctx.traced = true;
      ctx.calls = this.calls[ctx.srcEp] ?? null;
      const verdict = this.hooks[ctx.srcEp](ctx, this);
      if ((verdict === CTX_ACT_REDIRECT && ctx.outFd >= 0) || verdict === CTX_ACT_QUEUED) {
        if (verdict === CTX_ACT_REDIRECT) {
          const t = n * 4;
          this.tx[t] = ctx.outFd;
          this.tx[t + 1] = ctx.off;
          this.tx[t + 2] = ctx.len;
          n++;
        }
        // A forward counts where the packet left an endpoint (egress) and where it entered one (ingress).
        const bytes = ipLength(ctx);
        if (ctx.fromEndpoint) this.count(0, DIR_EGRESS, bytes);
        if (ctx.direction === DIR_INGRESS && ctx.dstEp !== 0) this.count(0, DIR_INGRESS, bytes);
      } else {
        this.recordDrop(ctx);
      }
      if (ctx.traced) {
        this.tracer!.end(ctx, verdict, ctx.outFd === this.hostFd);
        ctx.traced = false;
      }
    }
    if (n > 0) this.flush(n);
    this.tunnel.flush();
  }

  private flush(n: number): void {
    const ok = native.writeBatch(this.arena, this.tx, n);
    if (ok === n) return;
    for (let i = 0; i < n; i++) if (this.tx[i * 4 + 3] < 0) this.count(DROP_WRITE_ERROR, DIR_EGRESS, this.tx[i * 4 + 2] - VNET_HDR_LEN);
  }

  /** Chains to slot `slot` of ctx.calls, as bpf_tail_call; a missing slot or too long a chain drops. */
  tailCall(ctx: PacketContext, slot: number): number {
    const calls = ctx.calls;
    if (calls === null || ++ctx.tailCalls > MAX_TAIL_CALLS) {
      if (ctx.traced) this.tracer!.tailCall(slot, 0, this.callsOwner(ctx), ctx.tailCalls, calls !== null);
      return this.drop(ctx, DROP_MISSED_TAIL_CALL);
    }
    const off = calls.lookupIndex(slot);
    const id = off < 0 ? 0 : calls.view.getUint32(off, true);
    if (ctx.traced) this.tracer!.tailCall(slot, id, this.callsOwner(ctx), ctx.tailCalls, false);
    if (id === 0 || id > PROGRAMS.length) return this.drop(ctx, DROP_MISSED_TAIL_CALL);
    return PROGRAMS[id - 1](ctx, this);
  }

  /** The endpoint whose program array ctx.calls is (for traces). */
  private callsOwner(ctx: PacketContext): number {
    return ctx.dstEp !== 0 && ctx.calls === this.calls[ctx.dstEp] ? ctx.dstEp : ctx.srcEp;
  }

  drop(ctx: PacketContext, reason: number): number {
    ctx.dropReason = reason;
    return CTX_ACT_DROP;
  }

  private recordDrop(ctx: PacketContext): void {
    const reason = ctx.dropReason || DROP_UNROUTABLE;
    this.count(reason, ctx.direction || DIR_EGRESS, ipLength(ctx));
    this.events.emit(ctx, EVENT_DROP, reason);
    if (ctx.traced) this.tracer!.event(EVENT_DROP, reason, true);
  }

  /** A trace event, when monitor aggregation says this packet shows something new. */
  trace(ctx: PacketContext, point: number): void {
    if (ctx.report) this.events.emit(ctx, EVENT_TRACE, point);
    if (ctx.traced) this.tracer!.event(EVENT_TRACE, point, ctx.report);
  }

  /** cilium_metrics: f64 packet and byte counters per (reason, direction). */
  private count(reason: number, dir: number, bytes: number): void {
    const off = this.metrics.lookupIndex(((reason & 0xff) << 2) | (dir & 3));
    if (off < 0) return;
    const v = this.metrics.view;
    v.setFloat64(off, v.getFloat64(off, true) + 1, true);
    v.setFloat64(off + 8, v.getFloat64(off + 8, true) + bytes, true);
  }

  // ---- map lookups programs use ----------------------------------------------------------------

  /** cilium_lxc: endpoint id owning `addr`, or 0. */
  lookupEndpoint(addr: number): number {
    this.keyView.setUint32(0, addr);
    const off = this.lxc.lookup(this.key, 0);
    const id = off < 0 ? 0 : this.lxc.view.getUint16(off + LXC_ID, true);
    if (this.ctx.traced) this.tracer!.lxc(addr, id);
    return id;
  }

  /** cilium_ipcache: security identity of `addr` by longest prefix; world when nothing matches. */
  lookupIdentity(addr: number): number {
    return this.ipcacheIdentity(addr, this.lookupIpcache(addr));
  }

  /** cilium_ipcache for ctx's destination (lookup_ip4_remote_endpoint): its identity and tunnel endpoint into ctx. */
  lookupDestination(ctx: PacketContext): void {
    const off = this.lookupIpcache(ctx.daddr);
    ctx.dstIdentity = this.ipcacheIdentity(ctx.daddr, off);
    ctx.tunnelEndpoint = off < 0 ? 0 : this.ipcache.view.getUint32(off + IPC_TUNNEL);
  }

  private lookupIpcache(addr: number): number {
    this.keyView.setUint32(0, 32, true);
    this.keyView.setUint32(4, addr);
    return this.ipcache.lookup(this.key, 0);
  }

  private ipcacheIdentity(addr: number, off: number): number {
    const id = off < 0 ? WORLD_ID : this.ipcache.view.getUint32(off + IPC_SEC_ID, true);
    if (this.ctx.traced) this.tracer!.ipcache(addr, id, off >= 0);
    return id;
  }

  /** Packets forwarded (counted at egress and at ingress) and dropped, summed from cilium_metrics. */
  totals(): { forwards: number; drops: number } {
    let forwards = 0;
    let drops = 0;
    for (const m of this.metricsSnapshot()) {
      if (m.reason === 0) forwards += m.packets;
      else drops += m.packets;
    }
    return { forwards, drops };
  }

  /** Reads the (reason, direction) counters back: for metrics and status. */
  metricsSnapshot(): Array<{ reason: number; direction: number; packets: number; bytes: number }> {
    const out = [];
    const v = this.metrics.view;
    for (let i = 0; i < METRICS_ENTRIES; i++) {
      const off = this.metrics.lookupIndex(i);
      const packets = v.getFloat64(off, true);
      if (packets > 0) out.push({ reason: i >> 2, direction: i & 3, packets, bytes: v.getFloat64(off + 8, true) });
    }
    return out;
  }
}
