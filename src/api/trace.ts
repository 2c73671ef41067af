// GET /v1/trace: pwru for this datapath. The first NDJSON line, {"started":{count,timeoutSeconds}},
// is written once the tracer is installed: traffic a client sends after reading it is traced.
// Then each matching packet's path (hooks, tail calls, map lookups, rewrites, events, verdict) as
// one line; the stream ends after `count` packets or `timeout` seconds. One trace at a time per
// agent (409 otherwise).
import type { ServerResponse } from 'node:http';
import type { FastifyPluginAsync } from 'fastify';
import { traceStarted } from '../observe/trace/session.ts';
import type { TraceRequest } from '../observe/trace/types.ts';
import type { TraceService } from '../control/types.ts';
import type { ApiPluginOptions } from './plugin.ts';

const IP = { type: 'string', pattern: '^[0-9]{1,3}(\\.[0-9]{1,3}){3}$' } as const;

const TraceQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    pod: { type: 'string', minLength: 1, maxLength: 253, description: 'trace packets of this pod (sent by it, or to or from its address)' },
    namespace: { type: 'string', minLength: 1, maxLength: 63, description: "the pod's namespace (default: default)" },
    ip: { ...IP, description: 'either address' },
    'src-ip': { ...IP, description: 'source address' },
    'dst-ip': { ...IP, description: 'destination address' },
    port: { type: 'string', pattern: '^[0-9]{1,5}$', description: 'either TCP/UDP port' },
    proto: { type: 'string', enum: ['tcp', 'udp', 'icmp', 'TCP', 'UDP', 'ICMP'] },
    count: { type: 'string', pattern: '^[0-9]{1,6}$', description: 'packets to trace (default 10)' },
    timeout: { type: 'string', pattern: '^[0-9]{1,5}(\\.[0-9]+)?$', description: 'seconds before the trace ends (default: none)' },
  },
} as const;

export const PacketTraceSchema = {
  type: 'object',
  properties: {
    started: {
      type: 'object', description: 'first line only: the tracer is installed',
      properties: { count: { type: 'integer' }, timeoutSeconds: { type: 'number', description: '0: no timeout' } },
    },
    header: { type: 'string', description: 'time, source endpoint, tuple, length' },
    steps: { type: 'array', items: { type: 'string' }, description: 'hooks, tail calls, map lookups, rewrites and events, in order' },
    verdict: { type: 'string', description: '"→ redirect fd=N (...)" or "✗ drop CODE reason"' },
  },
} as const;

type Query = Partial<Record<'pod' | 'namespace' | 'ip' | 'src-ip' | 'dst-ip' | 'port' | 'proto' | 'count' | 'timeout', string>>;

export const tracePlugin: FastifyPluginAsync<ApiPluginOptions<TraceService>> = async (app, { agent }) => {
  const streams = new Set<ServerResponse>();
  app.addHook('preClose', async () => {
    for (const res of streams) res.end();
  });

  app.get<{ Querystring: Query }>('/v1/trace', {
    schema: {
      summary: 'Trace matching packets through the datapath (NDJSON: a started line, then one packet per line)',
      tags: ['trace'],
      querystring: TraceQuery,
      response: { 200: { description: 'a started record, then one PacketTrace per line', content: { 'application/x-ndjson': { schema: PacketTraceSchema } } } },
    },
  }, (req, reply) => {
    const q = req.query;
    const request: TraceRequest = {
      pod: q.pod, namespace: q.namespace, ip: q.ip, srcIp: q['src-ip'], dstIp: q['dst-ip'], port: q.port, proto: q.proto, count: q.count, timeout: q.timeout,
    };
    const res = reply.raw;
    let open = false;
    // Throws (400/404/409) before anything is written: fastify answers with the error.
    const stop = agent.startTrace(request, {
      packet: (t) => {
        if (open && !res.writableEnded && !res.destroyed) res.write(JSON.stringify(t) + '\n');
      },
      end: () => {
        if (open && !res.writableEnded && !res.destroyed) res.end();
      },
    });
    reply.hijack();
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    res.write(JSON.stringify(traceStarted(request)) + '\n');
    open = true;
    streams.add(res);
    res.on('close', () => {
      streams.delete(res);
      stop();
    });
  });
};
