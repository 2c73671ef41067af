// Hubble's Observer gRPC service over this node's flow ring (hubble-listen-address, default :4244, no
// TLS): GetFlows with number/first/since/until/follow, whitelist/blacklist FlowFilters and a field
// mask, ServerStatus, GetNodes (this node) and GetNamespaces, for the hubble CLI, Hubble UI and relay.
import * as grpc from '@grpc/grpc-js';
import type { HubbleApi } from '../../../control/types.ts';
import type { Flow } from '../../flow.ts';
import { FilterError } from '../filter.ts';
import { compileFilters, flowMessage, maskFlow, namespaceList } from './convert.ts';
import type { GetFlowsRequest, GetFlowsResponse, GetNamespacesResponse, GetNodesResponse, NodeMessage, ServerStatusResponse } from './proto.ts';
import { timestampMillis, timestampOf } from './proto.ts';
import { grpcError, serveObserver, versionHeader, type GrpcServer } from './serve.ts';

export interface ObserverServerOptions {
  /** hubble-listen-address: ":4244", "127.0.0.1:0"… */
  address: string;
  hubble: HubbleApi;
  nodeName: string;
  version: string;
  /** Flows queued for a slow follower before the oldest are dropped (and reported as a LostEvent). */
  maxQueuedFlows?: number;
  /** How often a follower is told about events lost before they became flows. */
  lostCheckMs?: number;
}

const NAMESPACE_WINDOW_MS = 3_600_000;


function lostResponse(source: string, n: number, nodeName: string): GetFlowsResponse {
  const now = timestampOf(new Date().toISOString());
  return { lost_events: { source, num_events_lost: n }, node_name: nodeName, time: now };
}

/** This node as GetNodes lists it (also what a relay reports for it). */
export function nodeOf(opts: Pick<ObserverServerOptions, 'hubble' | 'nodeName' | 'version'>, address: string): NodeMessage {
  const s = opts.hubble.status();
  return {
    name: opts.nodeName, version: opts.version, address, state: 'NODE_CONNECTED', tls: { enabled: false },
    uptime_ns: String(BigInt(s.uptimeSeconds) * 1_000_000_000n), num_flows: s.currentFlows, max_flows: s.maxFlows, seen_flows: s.seenFlows,
  };
}

export async function startObserverServer(opts: ObserverServerOptions): Promise<GrpcServer> {
  const { hubble, nodeName, maxQueuedFlows = 1024, lostCheckMs = 1000 } = opts;
  const followers = new Set<() => void>();
  let address = opts.address;

  const getFlows = (call: grpc.ServerWritableStream<GetFlowsRequest, GetFlowsResponse>) => {
    const req = call.request;
    let match: (f: Flow) => boolean;
    try {
      match = compileFilters(req.whitelist, req.blacklist);
    } catch (e) {
      const bad = e instanceof FilterError;
      call.emit('error', grpcError(bad ? grpc.status.INVALID_ARGUMENT : grpc.status.INTERNAL, (e as Error).message));
      return;
    }
    // Headers first: a client (the relay) knows the stream is established before any flow comes.
    call.sendMetadata(versionHeader('hubble-server-version', opts.version));
    const mask = req.field_mask?.paths?.length ? req.field_mask.paths : undefined;
    const flowResponse = (f: Flow): GetFlowsResponse => {
      const m = flowMessage(f);
      return { flow: mask ? maskFlow(m, mask) : m, node_name: f.node_name, time: timestampOf(f.time) };
    };
    const number = Number(req.number ?? 0);
    const since = timestampMillis(req.since);
    const until = timestampMillis(req.until);
    // number 0 without follow: every flow held (Hubble reads the whole ring); with follow: only new ones.
    const history = req.follow && number === 0 && since === undefined ? [] : hubble.flows({ number: number || undefined, first: req.first, since, until, match });
    for (const f of history) call.write(flowResponse(f));
    if (!req.follow) {
      call.end();
      return;
    }
    // Follow: write while the client takes it; queue (bounded, oldest dropped) while it does not.
    const queue: Flow[] = [];
    let lost = 0;
    let draining = false;
    const flush = () => {
      draining = false;
      if (lost) { draining = !call.write(lostResponse('HUBBLE_RING_BUFFER', lost, nodeName)); lost = 0; }
      while (!draining && queue.length) draining = !call.write(flowResponse(queue.shift()!));
    };
    const unsubscribe = hubble.onFlow((f) => {
      if (!match(f)) return;
      if (!draining && !queue.length) {
        draining = !call.write(flowResponse(f));
        return;
      }
      queue.push(f);
      if (queue.length > maxQueuedFlows) { queue.shift(); lost++; }
    });
    call.on('drain', flush);
    // Events the monitor lost before they became flows: told to the follower as Hubble does.
    let monitorLost = hubble.status().lostEvents;
    const lostTimer = setInterval(() => {
      const now = hubble.status().lostEvents;
      if (now > monitorLost) call.write(lostResponse('PERF_EVENT_RING_BUFFER', now - monitorLost, nodeName));
      monitorLost = now;
    }, lostCheckMs);
    lostTimer.unref();
    const stop = () => {
      unsubscribe();
      clearInterval(lostTimer);
      followers.delete(stop);
      call.end();
    };
    followers.add(stop);
    call.on('cancelled', stop);
    call.on('error', stop);
  };

  const serverStatus = (_call: unknown, cb: grpc.sendUnaryData<ServerStatusResponse>) => {
    const s = hubble.status();
    cb(null, {
      num_flows: s.currentFlows, max_flows: s.maxFlows, seen_flows: s.seenFlows, uptime_ns: String(BigInt(s.uptimeSeconds) * 1_000_000_000n),
      version: opts.version, flows_rate: s.flowsPerSecond,
    });
  };

  const getNodes = (_call: unknown, cb: grpc.sendUnaryData<GetNodesResponse>) => cb(null, { nodes: [nodeOf(opts, address)] });

  const getNamespaces = (_call: unknown, cb: grpc.sendUnaryData<GetNamespacesResponse>) => {
    const endpoints = hubble.flows({ since: Date.now() - NAMESPACE_WINDOW_MS }).flatMap((f) => {
      const m = flowMessage(f);
      return [m.source, m.destination].map((ep) => ({ cluster: ep?.cluster_name, namespace: ep?.namespace }));
    });
    cb(null, { namespaces: namespaceList(endpoints) });
  };

  const server = await serveObserver('hubble-listen-address', opts.address, {
    GetFlows: getFlows, ServerStatus: serverStatus, GetNodes: getNodes, GetNamespaces: getNamespaces,
  }, () => { for (const stop of [...followers]) stop(); });
  address = server.address;
  return server;
}
