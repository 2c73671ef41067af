// GET /v1/flows: Hubble's GetFlows as NDJSON ({"flow": …, "node_name": …, "time": …} per line), filtered
// with `hubble observe`'s flags as query parameters in their order (?from-pod=x&not=&verdict=DROPPED…).
// follow=true keeps streaming; a reader that falls behind loses its oldest queued flows and is told with
// a {"lost_events": N} line; the agent never waits for it. GET /v1/hubble/status: `hubble status`.
import type { ServerResponse } from 'node:http';
import type { FastifyPluginAsync } from 'fastify';
import { ApiError, type FlowService, type HubbleApi } from '../control/types.ts';
import type { Flow } from '../observe/flow.ts';
import { FilterError, matchFlow } from '../observe/hubble/filter.ts';
import { parseFlowsQuery, type FlowsRequest } from '../observe/hubble/query.ts';
import type { ApiPluginOptions } from './plugin.ts';

export interface FlowsPluginOptions extends ApiPluginOptions<FlowService> {
  /** Flows queued for a slow follower before the oldest are dropped. */
  maxQueuedFlows?: number;
}

const flowLine = (f: Flow) => JSON.stringify({ flow: f, node_name: f.node_name, time: f.time }) + '\n';
const lostLine = (n: number) => JSON.stringify({ lost_events: n }) + '\n';

function hubbleOf(agent: FlowService): HubbleApi {
  if (!agent.hubble) throw new ApiError(503, 'hubble is disabled (enable-hubble=false)');
  return agent.hubble;
}

export const HubbleStatusSchema = {
  type: 'object',
  properties: {
    currentFlows: { type: 'integer' }, maxFlows: { type: 'integer' }, seenFlows: { type: 'integer' }, flowsPerSecond: { type: 'number' },
    connectedNodes: { type: 'integer' }, totalNodes: { type: 'integer' }, uptimeSeconds: { type: 'integer' }, lostEvents: { type: 'integer' },
  },
} as const;

export const flowsPlugin: FastifyPluginAsync<FlowsPluginOptions> = async (app, { agent, maxQueuedFlows = 1024 }) => {
  const streams = new Set<ServerResponse>();
  app.addHook('preClose', async () => {
    for (const res of streams) res.end();
  });

  app.get('/v1/hubble/status', {
    schema: { summary: 'Hubble status: flows held, seen, per second', tags: ['hubble'], response: { 200: HubbleStatusSchema } },
  }, async () => hubbleOf(agent).status());

  app.get('/v1/flows', {
    schema: {
      summary: 'Flows (NDJSON), filtered like hubble observe; follow=true streams new ones',
      description: 'Query parameters are hubble observe filter flags in order (pod, from-pod, to-pod, namespace, ip, from-ip, to-ip, label, from-label, to-label, port, from-port, to-port, identity, from-identity, to-identity, verdict, type, protocol, http-method, http-path, http-status, traffic-direction, tcp-flags, not, ...), plus last (or number), first, since, until, follow, allowlist, denylist.',
      tags: ['hubble'],
    },
  }, (req, reply) => {
    const hubble = hubbleOf(agent);
    let q: FlowsRequest;
    try {
      const url = req.raw.url ?? req.url;
      q = parseFlowsQuery(url.includes('?') ? url.slice(url.indexOf('?') + 1) : '');
    } catch (e) {
      if (e instanceof FilterError) throw new ApiError(400, e.message);
      throw e;
    }
    const match = (f: Flow) => matchFlow(f, q.filters);
    reply.hijack();
    const res = reply.raw;
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
