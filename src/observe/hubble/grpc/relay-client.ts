// The relay as the agent that runs it uses it (`ciliary observe`, `hubble status`, `hubble list nodes`
// and the web page in a multi-node lab): a gRPC client of the relay's Observer on this node, giving
// every node's flows merged in time order, the counters summed over nodes, and each node's state.
import type * as grpc from '@grpc/grpc-js';
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
    stream.on('error', (e: grpc.ServiceError) => end(e.code === 1 /* CANCELLED */ ? undefined : `hubble relay ${this.address}: ${e.details || e.message}`));
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

/** The newest flows of the relay, held in a bounded window and fanned out to subscribers; re-follows after a break. */
export class RelayFlowSource implements FlowSource {
  private readonly held: Flow[] = [];
  private readonly subscribers = new Set<(f: Flow) => void>();
  private stream?: RelayStream;
  private retry?: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly relay: RelayClient, private readonly capacity = 16_384, private readonly retryMs = 1000) {}

  private follow(): void {
    if (this.stream || this.closed) return;
    // Back after a break: only what came after the newest flow held.
    const newest = this.held.at(-1)?.time;
    const after = newest ? timestampNanos(timestampOf(newest)) : -1n;
    const req: GetFlowsRequest = newest ? { follow: true, since: timestampOf(newest) } : { follow: true, number: this.capacity };
    this.stream = this.relay.getFlows(req, {
      flow: (f) => {
        if (after >= 0n && timestampNanos(timestampOf(f.time)) <= after) return;
        this.held.push(f);
        if (this.held.length > this.capacity) this.held.splice(0, this.held.length - this.capacity);
        for (const cb of this.subscribers) cb(f);
      },
      lost: () => {},
      nodeStatus: () => {},
      end: () => {
        this.stream = undefined;
        if (!this.closed) this.retry = setTimeout(() => this.follow(), this.retryMs).unref();
      },
    });
  }

  recent(n: number): Flow[] {
    this.follow();
    return n <= 0 ? [] : this.held.slice(-n);
  }

  onFlow(cb: (f: Flow) => void): () => void {
    this.follow();
    this.subscribers.add(cb);
    return () => this.subscribers.delete(cb);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retry);
    this.stream?.cancel();
  }
}
