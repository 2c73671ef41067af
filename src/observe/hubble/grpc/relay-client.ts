// The relay as the agent that runs it uses it (`ciliary observe`, `hubble status`, `hubble list nodes`
// and the web page in a multi-node lab): a gRPC client of the relay's Observer on this node, giving
// every node's flows merged in time order, the counters summed over nodes, and each node's state.
import * as grpc from '@grpc/grpc-js';
import type { HubbleStatus } from '../../../control/types.ts';
import type { Flow, FlowSource } from '../../flow.ts';
import type { FlowsRequest } from '../query.ts';
import { flowFromMessage, rfc3339Of } from './convert.ts';
import { observerClient, timestampNanos, timestampOf, type FlowFilterMessage, type GetFlowsRequest, type GetFlowsResponse, type NodeMessage, type ObserverClient, type ServerStatusResponse } from './proto.ts';

/** A relay's note about nodes in a flow stream (NODE_CONNECTED, NODE_UNAVAILABLE …). */
export interface NodeStatusNote {
  state: string;
  nodes: string[];
  message?: string;
  /** The relay's node and the note's time (RFC 3339). */
  node_name: string;
  time: string;
}

export interface RelayStreamHandlers {
  flow(f: Flow): void;
  lost(n: number): void;
  nodeStatus(s: NodeStatusNote): void;
  /** The stream is over: the request is answered, or the relay failed (error). */
  end(error?: string): void;
}

export interface RelayStream {
  pause(): void;
  resume(): void;
  cancel(): void;
}

/** The GetFlows request for a /v1/flows query: the same flows as the local ring would answer. */
export function getFlowsRequest(q: FlowsRequest): GetFlowsRequest {
  const ts = (ms: number) => timestampOf(new Date(ms).toISOString());
  // number 0 + follow means "only new flows" on the wire; the local API sends what it holds first: since the epoch.
  const since = q.since ?? (q.follow && q.number === undefined ? 0 : undefined);
  return {
    // Our FlowFilter is flow.FlowFilter with the proto's field names: it goes on the wire as it is.
    number: q.number ?? 0, first: q.first, follow: q.follow,
    whitelist: q.filters.whitelist as FlowFilterMessage[], blacklist: q.filters.blacklist as FlowFilterMessage[],
    ...(since !== undefined ? { since: ts(since) } : {}), ...(q.until !== undefined ? { until: ts(q.until) } : {}),
  };
}

/** ServerStatus summed by the relay, as `hubble status` reads it. */
export function statusOf(s: ServerStatusResponse): HubbleStatus {
  const connected = s.num_connected_nodes?.value ?? 0;
  const unavailable = s.num_unavailable_nodes?.value ?? 0;
  return {
    currentFlows: Number(s.num_flows ?? 0), maxFlows: Number(s.max_flows ?? 0), seenFlows: Number(s.seen_flows ?? 0),
    flowsPerSecond: s.flows_rate ?? 0, connectedNodes: connected, totalNodes: connected + unavailable,
    uptimeSeconds: Math.floor(Number(s.uptime_ns ?? 0) / 1e9), lostEvents: 0, unavailableNodes: [...(s.unavailable_nodes ?? [])].sort(),
  };
}

export class RelayClient {
  private readonly client: ObserverClient;
  private source?: RelayFlowSource;

  constructor(readonly address: string, private readonly timeoutMs = 10_000) {
    this.client = observerClient(address, { 'grpc.initial_reconnect_backoff_ms': 200, 'grpc.max_reconnect_backoff_ms': 2000 });
  }

  private unary<T>(method: 'ServerStatus' | 'GetNodes'): Promise<T> {
    return new Promise((resolve, reject) => {
      (this.client[method] as (req: object, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: T) => void) => void)(
        {}, { deadline: Date.now() + this.timeoutMs }, (err, res) => (err ? reject(new Error(`hubble relay ${this.address}: ${err.details || err.message}`)) : resolve(res!)));
    });
  }

  async status(): Promise<HubbleStatus> {
    return statusOf(await this.unary<ServerStatusResponse>('ServerStatus'));
  }

  async nodes(): Promise<NodeMessage[]> {
    return (await this.unary<{ nodes?: NodeMessage[] }>('GetNodes')).nodes ?? [];
  }

  getFlows(req: GetFlowsRequest, on: RelayStreamHandlers): RelayStream {
    const stream = this.client.GetFlows(req);
    let ended = false;
    const end = (error?: string) => {
      if (ended) return;
      ended = true;
      on.end(error);
    };
    stream.on('data', (r: GetFlowsResponse) => {
      if (r.flow) on.flow(flowFromMessage(r.flow));
      else if (r.lost_events) on.lost(Number(r.lost_events.num_events_lost ?? 0));
      else if (r.node_status) {
        const s = r.node_status;
        on.nodeStatus({ state: s.state_change ?? 'UNKNOWN_NODE_STATE', nodes: s.node_names ?? [], message: s.message || undefined, node_name: r.node_name ?? '', time: rfc3339Of(r.time) });
      }
    });
    stream.on('error', (e: grpc.ServiceError) => end(e.code === grpc.status.CANCELLED ? undefined : `hubble relay ${this.address}: ${e.details || e.message}`));
    stream.on('end', () => end());
    return { pause: () => stream.pause(), resume: () => stream.resume(), cancel: () => { ended = true; stream.cancel(); } };
  }

  /** Every node's flows as a FlowSource (the web page): one follow stream, started on first use. */
  get flows(): FlowSource {
    return (this.source ??= new RelayFlowSource(this));
  }

  close(): void {
    this.source?.close();
    this.client.close();
  }
}

/**
 * The newest flows of the relay in a bounded ring, fanned out to subscribers. It follows the relay only
 * while used (a subscriber, or recent() within idleMs): every node's flows cost each node an encoding.
 * After a break it asks only for what came after the newest flow it holds.
 */
export class RelayFlowSource implements FlowSource {
  private readonly ring: Array<Flow | undefined>;
  private next = 0;
  private count = 0;
  private readonly subscribers = new Set<(f: Flow) => void>();
  private stream?: RelayStream;
  private retry?: NodeJS.Timeout;
  private idle?: NodeJS.Timeout;
  private lastAsked = 0;
  private closed = false;

  constructor(private readonly relay: RelayClient, capacity = 16_384, private readonly retryMs = 1000, private readonly idleMs = 60_000) {
    this.ring = new Array<Flow | undefined>(capacity);
  }

  private newest(): Flow | undefined {
    return this.count ? this.ring[(this.next - 1 + this.ring.length) % this.ring.length] : undefined;
  }

  private follow(): void {
    if (this.stream || this.closed) return;
    clearTimeout(this.retry);
    const newest = this.newest()?.time;
    const after = newest ? timestampNanos(timestampOf(newest)) : -1n;
    const req: GetFlowsRequest = newest ? { follow: true, since: timestampOf(newest) } : { follow: true, number: this.ring.length };
    this.stream = this.relay.getFlows(req, {
      flow: (f) => {
        if (after >= 0n && timestampNanos(timestampOf(f.time)) <= after) return;
        this.ring[this.next] = f;
        this.next = (this.next + 1) % this.ring.length;
        this.count = Math.min(this.count + 1, this.ring.length);
        for (const cb of this.subscribers) cb(f);
      },
      lost: () => {},
      nodeStatus: () => {},
      end: () => {
        this.stream = undefined;
        if (!this.closed && this.inUse()) this.retry = setTimeout(() => this.follow(), this.retryMs).unref();
      },
    });
    this.idle ??= setInterval(() => {
      if (this.inUse()) return;
      this.stream?.cancel();
      this.stream = undefined;
      clearInterval(this.idle);
      this.idle = undefined;
    }, this.idleMs).unref();
  }

  private inUse(): boolean {
    return this.subscribers.size > 0 || Date.now() - this.lastAsked < this.idleMs;
  }

  recent(n: number): Flow[] {
    this.lastAsked = Date.now();
    this.follow();
    const k = Math.min(Math.max(n, 0), this.count);
    const out: Flow[] = [];
    for (let i = k; i > 0; i--) out.push(this.ring[(this.next - i + this.ring.length) % this.ring.length]!);
    return out;
  }

  onFlow(cb: (f: Flow) => void): () => void {
    this.subscribers.add(cb);
    this.follow();
    return () => {
      this.subscribers.delete(cb);
      this.lastAsked = Date.now();
    };
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retry);
    clearInterval(this.idle);
    this.stream?.cancel();
  }
}
