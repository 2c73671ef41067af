// The per-packet context programs read and write: one instance, reused for every packet
// (the __sk_buff of this datapath). Fields are plain numbers so V8 keeps it monomorphic.
import type { ArrayMap } from '../maps/index.ts';
import * as M from '../native/meta.ts';

/** Verdicts a program returns, named as tc's. */
export const CTX_ACT_OK = 0; // hand to the host stack (through cilium_host)
export const CTX_ACT_DROP = 2;
export const CTX_ACT_REDIRECT = 7; // write to ctx.outFd
export const CTX_ACT_QUEUED = 4; // TC_ACT_STOLEN: a queue took the packet (an EDT queue, the tunnel writer) and writes it later

/** Metric / event directions as Cilium's METRIC_INGRESS / METRIC_EGRESS. */
export const DIR_INGRESS = 1;
export const DIR_EGRESS = 2;

/**
 * Conntrack findings about the packet (Cilium's struct ct_state), written by Conntrack's lookups
 * and read by the programs after them.
 */
export class CtState {
  /** CT_NEW, CT_ESTABLISHED, CT_REPLY or CT_RELATED (layout.ts), as trace events report it. */
  state = 0;
  /** Reverse-NAT index of the matched entry (0 = none). */
  revNat = 0;
  /** Backend of the matched service entry. */
  backendId = 0;
  /** CT_F_* flags of the matched entry. */
  entryFlags = 0;
  /** Where the quoted packet of a CT_RELATED ICMP error starts (-1 otherwise). */
  innerL3 = -1;
  /** The last lookup saw something new (TCP flags, a new entry, 5 s passed): worth a trace event. */
  report = true;

  reset(): void {
    this.state = 0;
    this.revNat = 0;
    this.backendId = 0;
    this.entryFlags = 0;
    this.innerL3 = -1;
    this.report = true;
  }
}

/** Load-balancer findings (Cilium's lb4_service / lb4_backend lookups), written by LoadBalancer. */
export class LbState {
  /** Backends of the frontend found (0 when it has none). */
  svcCount = 0;
  /** Reverse-NAT index of the frontend found: the service the packet was translated for (0 = none). */
  revNat = 0;
  /** SVC_FLAG_* | SVC_FLAG2_* << 8 of the frontend. */
  svcFlags = 0;
  /** ClientIP affinity timeout of the frontend (s). */
  affinityTimeout = 0;
  /** The backend looked up last. */
  backendAddr = 0;
  backendPort = 0;
  /** Frontend port a reply was translated back to. */
  revNatPort = 0;

  reset(): void {
    this.svcCount = 0;
    this.revNat = 0;
    this.svcFlags = 0;
    this.affinityTimeout = 0;
    this.backendAddr = 0;
    this.backendPort = 0;
    this.revNatPort = 0;
  }
}

/** The last policy decision about the packet, written by PolicyLookup.decide. */
export class PolicyState {
  /** Proxy port of the matched allow (L7 redirect), 0 for none. */
  proxyPort = 0;
  /** POLICY_MATCH_* (vocab/policy-match.ts) of the deciding entry. */
  match = 0;
  /** For traces (set when ctx.traced): the four lookups' hits (bits 0-3) and denies (4-7), the port. */
  traceHits = 0;
  tracePort = 0;

  reset(): void {
    this.proxyPort = 0;
    this.match = 0;
    this.traceHits = 0;
    this.tracePort = 0;
  }
}

export class PacketContext {
  buf: Uint8Array = new Uint8Array(0);
  view: DataView = new DataView(this.buf.buffer);
  meta: Uint32Array = new Uint32Array(M.META_WORDS);
  /** Index of this packet's record in `meta`. */
  m = 0;
  off = 0; // frame start (virtio-net header)
  len = 0; // frame length
  l3 = 0;
  end = 0; // end of the IP packet
  flags = 0; // M_FLAGS
  saddr = 0;
  daddr = 0;
  proto = 0;
  sport = 0;
  dport = 0;
  tcpFlags = 0;
  /** Endpoint whose device the packet came from (the host endpoint for cilium_host). */
  srcEp = 0;
  dstEp = 0;
  srcIdentity = 0;
  dstIdentity = 0;
  /** Node to tunnel to, from the destination's ipcache entry (Cilium's info->tunnel_endpoint); 0 = none. */
  tunnelEndpoint = 0;
  ifindex = 0;
  /** Program array of the endpoint whose programs run now (tail calls go through it). */
  calls: ArrayMap | null = null;
  tailCalls = 0;
  outFd = -1;
  dropReason = 0;
  direction = 0;
  /** Whether this packet deserves a trace event: what the CT lookups on its way reported. */
  report = true;
  /** The packet left a pod endpoint: a forward counts at egress (and again where it enters a pod). */
  fromEndpoint = false;
  /** Hairpin: the client is its own backend, so the source was rewritten to the loopback address. */
  loopback = false;
  /** The reply was already translated back on the sender's side. */
  revNatDone = false;
  /** The packet comes from the L7 or DNS proxy: its upstream leg (carrying the client's address) or its answer to the client. */
  fromProxy = false;
  /** The packet was redirected to the L7 proxy. */
  toProxy = false;
  /** `ciliary trace` records this packet (set by the datapath when the tracer matches it). */
  traced = false;
  readonly ct = new CtState();
  readonly lb = new LbState();
  readonly policy = new PolicyState();

  /** Loads the parsed fields of record `i` of a batch. */
  load(buf: Uint8Array, view: DataView, meta: Uint32Array, i: number): void {
    const m = i * M.META_WORDS;
    this.buf = buf;
    this.view = view;
    this.meta = meta;
    this.m = m;
    this.off = meta[m + M.M_OFF];
    this.len = meta[m + M.M_LEN];
    this.l3 = meta[m + M.M_L3_OFF];
    this.end = this.l3 + meta[m + M.M_TOT_LEN];
    this.flags = meta[m + M.M_FLAGS];
    this.saddr = meta[m + M.M_SADDR];
    this.daddr = meta[m + M.M_DADDR];
    this.proto = meta[m + M.M_PROTO];
    this.sport = meta[m + M.M_SPORT];
    this.dport = meta[m + M.M_DPORT];
    this.tcpFlags = meta[m + M.M_TCP_FLAGS];
    this.srcEp = meta[m + M.M_SOURCE];
    this.dstEp = 0;
    this.srcIdentity = 0;
    this.dstIdentity = 0;
    this.tunnelEndpoint = 0;
    this.ifindex = 0;
    this.calls = null;
    this.tailCalls = 0;
    this.outFd = -1;
    this.dropReason = 0;
    this.direction = 0;
    this.report = true;
    this.fromEndpoint = false;
    this.loopback = false;
    this.revNatDone = false;
    this.fromProxy = false;
    this.toProxy = false;
    this.traced = false;
    this.ct.reset();
    this.lb.reset();
    this.policy.reset();
  }
}
