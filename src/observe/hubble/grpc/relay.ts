// Hubble Relay's role (hubble-relay-listen-address, Cilium's :4245): one Observer over every node's.
// GetFlows asks each peer and merges their streams in time order through a bounded sort buffer (as
// hubble-relay: at most 100 responses held, all flushed after 1 s without news; unlike hubble-relay the
// buffer does not shrink to `number`, which would send a small request's flows unsorted); peers that cannot be
// reached are reported as node_status NODE_UNAVAILABLE and, while following, retried with backoff.
// ServerStatus sums the peers' counters; GetNodes lists each peer with its state; GetNamespaces merges.
import * as grpc from '@grpc/grpc-js';
import { observerClient, timestampNanos, timestampOf, type GetFlowsRequest, type GetFlowsResponse, type GetNamespacesResponse, type GetNodesResponse, type NodeMessage, type ObserverClient, type ServerStatusResponse } from './proto.ts';
import { namespaceList } from './convert.ts';
import { serveObserver, versionHeader, type GrpcServer } from './serve.ts';

export interface RelayOptions {
  /** hubble-relay-listen-address: ":4245", "127.0.0.1:0"… */
  address: string;
  /** host:port of every node's Observer (hubble-relay-peers). */
  peers: string[];
  version: string;
  /** The node running the relay (named in its node status notes). */
  nodeName?: string;
  /** Responses held for sorting (hubble-relay's SortBufferMaxLen). */
  sortBufferMaxLen?: number;
  /** Idle time after which the sort buffer is flushed (SortBufferDrainTimeout). */
  sortBufferDrainMs?: number;
  /** Deadline of a peer's ServerStatus/GetNodes. */
  callTimeoutMs?: number;
  /** Reconnection backoff for a peer (doubling from the first to the last). */
  retryMs?: { initial: number; max: number };
}

interface PeerInfo {
  peer: Peer;
  status?: ServerStatusResponse;
  error?: string;
}

/** One node's Observer as the relay sees it; the name comes from the node's GetNodes once reached. */
class Peer {
  readonly client: ObserverClient;
  name: string;

  constructor(readonly address: string, retry: { initial: number; max: number }) {
    this.name = address;
    this.client = observerClient(address, { 'grpc.initial_reconnect_backoff_ms': retry.initial, 'grpc.max_reconnect_backoff_ms': retry.max });
  }

  unary<T>(method: 'ServerStatus' | 'GetNodes' | 'GetNamespaces', timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      (this.client[method] as (req: object, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: T) => void) => void)(
        {}, { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res!)));
    });
  }

  /** ServerStatus, learning the node's name on the way (a peer without GetNodes keeps its address). */
  async probe(timeoutMs: number): Promise<PeerInfo> {
    try {
      const [status, nodes] = await Promise.all([
        this.unary<ServerStatusResponse>('ServerStatus', timeoutMs),
        this.unary<GetNodesResponse>('GetNodes', timeoutMs).catch(() => undefined),
      ]);
      const name = nodes?.nodes?.length === 1 ? nodes.nodes[0].name : undefined;
      if (name) this.name = name;
      return { peer: this, status };
    } catch (e) {
      return { peer: this, error: (e as grpc.ServiceError).details ?? (e as Error).message };
    }
  }
}

/** Responses ordered by time; the oldest leaves first. */
class SortBuffer {
  private readonly items: Array<{ t: bigint; r: GetFlowsResponse }> = [];

  get length(): number {
    return this.items.length;
  }

  push(r: GetFlowsResponse): void {
    const t = timestampNanos(r.time);
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.items[mid].t <= t) lo = mid + 1;
      else hi = mid;
    }
    this.items.splice(lo, 0, { t, r });
  }

  shift(): GetFlowsResponse {
    return this.items.shift()!.r;
  }
}


export interface Relay extends GrpcServer {
  readonly peers: readonly string[];
}

export async function startRelay(opts: RelayOptions): Promise<Relay> {
  const { sortBufferMaxLen = 100, sortBufferDrainMs = 1000, callTimeoutMs = 5000, retryMs = { initial: 1000, max: 30_000 } } = opts;
  if (!opts.peers.length) throw new Error('hubble relay: no peers');
  const peers = opts.peers.map((a) => new Peer(a, retryMs));
  const calls = new Set<() => void>();
  const probeAll = () => Promise.all(peers.map((p) => p.probe(callTimeoutMs)));
  const nodeStatus = (state: string, names: string[], message?: string): GetFlowsResponse => ({
    node_status: { state_change: state, node_names: names, message }, node_name: opts.nodeName, time: timestampOf(new Date().toISOString()),
  });

  const getFlows = async (call: grpc.ServerWritableStream<GetFlowsRequest, GetFlowsResponse>) => {
    const req = call.request;
    const buffer = new SortBuffer();
    const streams = new Set<grpc.ClientReadableStream<GetFlowsResponse>>();
    const timers = new Set<NodeJS.Timeout>();
    let done = false;
    let paused = false;
    let open = 0;

    const write = (r: GetFlowsResponse) => {
      if (done) return;
      // A slow client holds back the peers (HTTP/2 flow control) instead of growing a queue here.
      if (!call.write(r) && !paused) { paused = true; for (const s of streams) s.pause(); }
    };
    const flush = () => { while (buffer.length) write(buffer.shift()); };
    let drainTimer: NodeJS.Timeout | undefined;
    const finish = () => {
      if (done) return;
      flush();
      done = true;
      stop();
      call.end();
    };
    const stop = () => {
      done = true;
      clearTimeout(drainTimer);
      for (const t of timers) clearTimeout(t);
      for (const s of streams) s.cancel();
      calls.delete(stop);
    };
    calls.add(stop);
    call.on('cancelled', stop);
    call.on('drain', () => { paused = false; for (const s of streams) s.resume(); });

    const follow = (peer: Peer, request: GetFlowsRequest, onEnd: (error?: string) => void, onOpen?: () => void) => {
      const stream = peer.client.GetFlows(request);
      if (onOpen) stream.once('metadata', onOpen);
      streams.add(stream);
      open++;
      if (paused) stream.pause();
      stream.on('data', (r: GetFlowsResponse) => {
        if (buffer.length >= sortBufferMaxLen) write(buffer.shift());
        buffer.push(r);
        clearTimeout(drainTimer);
        drainTimer = setTimeout(flush, sortBufferDrainMs);
      });
      let ended = false;
      const end = (error?: string) => {
        if (ended) return;
        ended = true;
        streams.delete(stream);
        open--;
        onEnd(error);
      };
      stream.on('error', (e: grpc.ServiceError) => end(e.code === grpc.status.CANCELLED ? undefined : e.details || e.message));
      stream.on('end', () => end());
    };

    /** While following: a lost peer is reported and tried again, doubling the wait. */
    const reconnect = (peer: Peer, delay: number) => {
      const t = setTimeout(async () => {
        timers.delete(t);
        const info = await peer.probe(callTimeoutMs);
        if (done) return;
        if (info.error) return reconnect(peer, Math.min(delay * 2, retryMs.max));
        // Back after a gap: only new flows, not the node's history again; connected once its stream is.
        const request = { ...req, number: 0, first: false, since: undefined };
        follow(peer, request, (error) => ended(peer, error), () => write(nodeStatus('NODE_CONNECTED', [peer.name])));
      }, delay);
      timers.add(t);
    };
    /** A peer's stream is over: the end of a request, or a node lost (then retried while following). */
    const ended = (peer: Peer, error?: string) => {
      if (done) return;
      if (error || req.follow) {
        write(nodeStatus('NODE_UNAVAILABLE', [peer.name], error ?? 'the node closed the stream'));
        if (req.follow) return reconnect(peer, retryMs.initial);
      }
      if (open === 0) finish();
    };

    call.sendMetadata(versionHeader('hubble-relay-version', opts.version));
    const infos = await probeAll();
    if (done) return;
    const up = infos.filter((i) => !i.error).map((i) => i.peer);
    const down = infos.filter((i) => i.error);
    if (up.length) write(nodeStatus('NODE_CONNECTED', up.map((p) => p.name)));
    if (down.length) write(nodeStatus('NODE_UNAVAILABLE', down.map((i) => i.peer.name), down[0].error));
    for (const peer of up) follow(peer, req, (error) => ended(peer, error));
    if (req.follow) for (const i of down) reconnect(i.peer, retryMs.initial);
    else if (open === 0) finish();
  };

  const serverStatus = async (_call: unknown, cb: grpc.sendUnaryData<ServerStatusResponse>) => {
    const infos = await probeAll();
    let num = 0n, max = 0n, seen = 0n, uptime = 0n, rate = 0;
    const unavailable: string[] = [];
    for (const { peer, status: s } of infos) {
      if (!s) { unavailable.push(peer.name); continue; }
      num += BigInt(s.num_flows ?? 0);
      max += BigInt(s.max_flows ?? 0);
      seen += BigInt(s.seen_flows ?? 0);
      if (BigInt(s.uptime_ns ?? 0) > uptime) uptime = BigInt(s.uptime_ns ?? 0);
      rate += s.flows_rate ?? 0;
    }
    cb(null, {
      num_flows: String(num), max_flows: String(max), seen_flows: String(seen), uptime_ns: String(uptime), flows_rate: rate,
      num_connected_nodes: { value: infos.length - unavailable.length }, num_unavailable_nodes: { value: unavailable.length },
      unavailable_nodes: unavailable, version: opts.version,
    });
  };

  const getNodes = async (_call: unknown, cb: grpc.sendUnaryData<GetNodesResponse>) => {
    const nodes: NodeMessage[] = (await probeAll()).map(({ peer, status: s }) => s
      ? {
        name: peer.name, version: s.version, address: peer.address, state: 'NODE_CONNECTED', tls: { enabled: false },
        uptime_ns: s.uptime_ns, num_flows: s.num_flows, max_flows: s.max_flows, seen_flows: s.seen_flows,
      }
      : { name: peer.name, address: peer.address, state: 'NODE_UNAVAILABLE', tls: { enabled: false } });
    cb(null, { nodes: nodes.sort((a, b) => a.name!.localeCompare(b.name!)) });
  };

  /** Namespaces with flows on any node (Hubble UI's namespace list), sorted by cluster and name. */
  const getNamespaces = async (_call: unknown, cb: grpc.sendUnaryData<GetNamespacesResponse>) => {
    const lists = await Promise.all(peers.map((p) => p.unary<GetNamespacesResponse>('GetNamespaces', callTimeoutMs).catch(() => ({ namespaces: [] }))));
    cb(null, { namespaces: namespaceList(lists.flatMap((l) => l.namespaces ?? [])) });
  };

  const closePeers = () => { for (const p of peers) p.client.close(); };
  const server = await serveObserver('hubble-relay-listen-address', opts.address, {
    GetFlows: getFlows, ServerStatus: serverStatus, GetNodes: getNodes, GetNamespaces: getNamespaces,
  }, () => {
    for (const stop of [...calls]) stop();
    closePeers();
  }).catch((err: Error) => { closePeers(); throw err; });
  return { ...server, peers: opts.peers };
}
