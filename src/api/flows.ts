// GET /v1/flows: Hubble's GetFlows as NDJSON ({"flow": …, "node_name": …, "time": …} per line), filtered
// with `hubble observe`'s flags as query parameters in their order (?from-pod=x&not=&verdict=DROPPED…).
// follow=true keeps streaming; a reader that falls behind loses its oldest queued flows and is told with
// a {"lost_events": N} line; the agent never waits for it. GET /v1/hubble/status: `hubble status`;
// GET /v1/hubble/nodes: `hubble list nodes`. An agent that runs the relay answers all three through it
// (every node's flows in time order, {"node_status": …} lines for nodes lost or back), others locally.
import type { ServerResponse } from 'node:http';
import type { FastifyPluginAsync } from 'fastify';
import { ApiError, type FlowService, type HubbleApi } from '../control/types.ts';
import type { Flow } from '../observe/flow.ts';
import { FilterError, matchFlow } from '../observe/hubble/filter.ts';
import { parseFlowsQuery, type FlowsRequest } from '../observe/hubble/query.ts';
import { getFlowsRequest, type RelayClient } from '../observe/hubble/grpc/relay-client.ts';
import { nodeOf } from '../observe/hubble/grpc/server.ts';
import type { ApiPluginOptions } from './plugin.ts';

export interface FlowsPluginOptions extends ApiPluginOptions<FlowService> {
  /** Flows queued for a slow follower before the oldest are dropped. */
  maxQueuedFlows?: number;
}

const flowLine = (f: Flow) => JSON.stringify({ flow: f, node_name: f.node_name, time: f.time }) + '\n';
const lostLine = (n: number) => JSON.stringify({ lost_events: n }) + '\n';

/** /v1/flows through the relay: its stream written as NDJSON, paused while the reader lags (no queue here). */
function relayFlows(relay: RelayClient, q: FlowsRequest, res: ServerResponse, streams: Set<ServerResponse>): void {
  res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
  res.flushHeaders();
  const write = (line: string) => { if (!res.write(line)) stream.pause(); };
  const stream = relay.getFlows(getFlowsRequest(q), {
    flow: (f) => write(flowLine(f)),
    lost: (n) => write(lostLine(n)),
    nodeStatus: ({ node_name, time, ...s }) => write(JSON.stringify({ node_status: s, node_name, time }) + '\n'),
    end: (error) => res.end(error ? JSON.stringify({ error }) + '\n' : undefined),
  });
  res.on('drain', () => stream.resume());
  streams.add(res);
  res.on('close', () => {
    stream.cancel();
    streams.delete(res);
  });
}

function hubbleOf(agent: FlowService): HubbleApi {
  if (!agent.hubble) throw new ApiError(503, 'hubble is disabled (enable-hubble=false)');
  return agent.hubble;
}

export const HubbleStatusSchema = {
  type: 'object',
  properties: {
    currentFlows: { type: 'integer' }, maxFlows: { type: 'integer' }, seenFlows: { type: 'integer' }, flowsPerSecond: { type: 'number' },
    connectedNodes: { type: 'integer' }, totalNodes: { type: 'integer' }, uptimeSeconds: { type: 'integer' }, lostEvents: { type: 'integer' },
    unavailableNodes: { type: 'array', items: { type: 'string' } },
  },
} as const;

export const flowsPlugin: FastifyPluginAsync<FlowsPluginOptions> = async (app, { agent, maxQueuedFlows = 1024 }) => {
  const streams = new Set<ServerResponse>();
  app.addHook('preClose', async () => {
    for (const res of streams) res.end();
  });

  app.get('/v1/hubble/status', {
    schema: { summary: 'Hubble status: flows held, seen, per second', tags: ['hubble'], response: { 200: HubbleStatusSchema } },
  }, async () => agent.hubbleRelay?.status() ?? hubbleOf(agent).status());

  app.get('/v1/hubble/nodes', {
    schema: {
      summary: "Hubble's nodes (GetNodes): every node through the relay, else this one", tags: ['hubble'],
      response: { 200: { type: 'object', properties: { nodes: { type: 'array', items: { type: 'object', additionalProperties: true } } } } },
    },
  }, async () => ({
    nodes: await agent.hubbleRelay?.nodes() ?? [nodeOf({ hubble: hubbleOf(agent), nodeName: agent.nodeName, version: agent.status().version }, '')],
  }));

  app.get('/v1/flows', {
    schema: {
      summary: 'Flows (NDJSON), filtered like hubble observe; follow=true streams new ones',
      description: 'Query parameters are hubble observe filter flags in order (pod, from-pod, to-pod, namespace, ip, from-ip, to-ip, label, from-label, to-label, port, from-port, to-port, identity, from-identity, to-identity, verdict, type, protocol, http-method, http-path, http-status, traffic-direction, tcp-flags, not, ...), plus last (or number), first, since, until, follow, allowlist, denylist.',
      tags: ['hubble'],
    },
  }, (req, reply) => {
    const relay = agent.hubbleRelay;
    const hubble = relay ? undefined : hubbleOf(agent);
    let q: FlowsRequest;
    try {
      const url = req.raw.url ?? req.url;
      q = parseFlowsQuery(url.includes('?') ? url.slice(url.indexOf('?') + 1) : '');
    } catch (e) {
      if (e instanceof FilterError) throw new ApiError(400, e.message);
      throw e;
    }
    reply.hijack();
    const res = reply.raw;
    if (!hubble) return relayFlows(relay!, q, res, streams);
    const match = (f: Flow) => matchFlow(f, q.filters);
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    const history = hubble.flows({ number: q.number, first: q.first, since: q.since, until: q.until, match });
    if (!q.follow) {
      res.end(history.map(flowLine).join(''));
      return;
    }
    res.write(history.map(flowLine).join(''));
    res.flushHeaders();
    // Follow: write while the socket takes it; queue (bounded, oldest dropped) while it does not.
    const queue: Flow[] = [];
    let lost = 0;
    const flush = () => {
      if (lost) { res.write(lostLine(lost)); lost = 0; }
      while (queue.length && !res.writableNeedDrain) res.write(flowLine(queue.shift()!));
    };
    const unsubscribe = hubble.onFlow((f) => {
      if (q.until !== undefined && Date.parse(f.time) > q.until) return;
      if (!match(f)) return;
      if (!res.writableNeedDrain && !queue.length && !lost) {
        res.write(flowLine(f));
        return;
      }
      queue.push(f);
      if (queue.length > maxQueuedFlows) { queue.shift(); lost++; }
      if (!res.writableNeedDrain) flush();
    });
    res.on('drain', flush);
    streams.add(res);
    res.on('close', () => {
      unsubscribe();
      streams.delete(res);
    });
  });
};
