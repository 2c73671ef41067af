// GET /v1/monitor: monitor events as NDJSON until the client leaves; a slow client loses events, not memory.
import type { ServerResponse } from 'node:http';
import type { FastifyPluginAsync } from 'fastify';
import type { MonitorEvent, MonitorService } from '../control/types.ts';
import type { ApiPluginOptions } from './plugin.ts';

export const MONITOR_TYPES = ['drop', 'trace', 'policy-verdict', 'l7', 'agent'] as const;

export const MonitorEventSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    type: { type: 'string', enum: MONITOR_TYPES },
    time: { type: 'string', format: 'date-time' },
    summary: { type: 'string', description: "the line cilium monitor prints" },
    reason: { type: 'integer' },
    reasonDesc: { type: 'string' },
    observationPoint: { type: 'string' },
    source: { type: 'integer', description: 'endpoint id' },
    srcIdentity: { type: 'integer' },
    dstIdentity: { type: 'integer' },
    ifindex: { type: 'integer' },
    hex: { type: 'string' },
    verbose: { type: 'string' },
  },
} as const;

const MonitorQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    type: { type: 'string', enum: MONITOR_TYPES },
    'related-to': { type: 'string', pattern: '^[0-9]{1,5}$', description: 'endpoint id' },
  },
} as const;

export interface MonitorPluginOptions extends ApiPluginOptions<MonitorService> {
  /** Bytes a client may have unread before events are dropped for it (the socket's buffer is on top). */
  maxBufferedBytes?: number;
}

export function lostLine(n: number): string {
  return JSON.stringify({ type: 'agent', time: new Date().toISOString(), summary: `lost ${n} events` }) + '\n';
}

export const monitorPlugin: FastifyPluginAsync<MonitorPluginOptions> = async (app, { agent, maxBufferedBytes = 64 * 1024 }) => {
  const streams = new Set<ServerResponse>();
  // Streams never end by themselves: end them before the server waits for its connections.
  app.addHook('preClose', async () => {
    for (const res of streams) res.end();
  });

  app.get<{ Querystring: { type?: MonitorEvent['type']; 'related-to'?: string } }>('/v1/monitor', {
    schema: {
      summary: 'Stream monitor events (NDJSON) until the client disconnects',
      tags: ['monitor'],
      querystring: MonitorQuery,
      response: { 200: { description: 'one MonitorEvent per line', content: { 'application/x-ndjson': { schema: MonitorEventSchema } } } },
    },
  }, (req, reply) => {
    const type = req.query.type;
    const related = req.query['related-to'] === undefined ? undefined : Number(req.query['related-to']);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    res.flushHeaders();
    let lost = 0;
    const onEvent = (e: MonitorEvent) => {
      if (type !== undefined && e.type !== type) return;
      if (related !== undefined && e.source !== related) return;
      if (res.writableNeedDrain || res.writableLength > maxBufferedBytes) {
        lost++;
        return;
      }
      if (lost) { res.write(lostLine(lost)); lost = 0; }
      res.write(JSON.stringify(e) + '\n');
    };
    res.on('drain', () => {
      if (lost) { res.write(lostLine(lost)); lost = 0; }
    });
    const unsubscribe = agent.subscribeMonitor(onEvent);
    streams.add(res);
    res.on('close', () => {
      unsubscribe();
      streams.delete(res);
    });
  });
};
