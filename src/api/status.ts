// GET /v1/status: what `ciliary status` prints.
import type { FastifyPluginAsync } from 'fastify';
import { MapSummarySchema } from './map.ts';
import type { StatusService } from '../control/types.ts';
import type { ApiPluginOptions } from './plugin.ts';

const int = { type: 'integer' } as const;
const str = { type: 'string' } as const;

export const AgentStatusSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    node: str,
    nodeIP: str,
    version: str,
    uptimeSeconds: { type: 'number' },
    kvstore: { type: 'object', properties: { ok: { type: 'boolean' }, message: str }, description: "the store's own health report" },
    ipam: {
      type: 'object',
      additionalProperties: true,
      properties: {
        cidr: str,
        allocated: { type: 'array', items: { type: 'object', properties: { ip: str, owner: str } } },
      },
    },
    routerIP: str,
    features: {
      type: 'object',
      additionalProperties: true,
      description: 'what the datapath really does now: routing, masquerading, monitor, service kinds, proxy, hubble',
      properties: {
        routing: { type: 'string', enum: ['tunnel', 'native'] },
        tunnelGso: { type: 'string' },
        monitor: { type: 'object', properties: { cpus: int, ringEvents: int } },
        services: { type: 'object', additionalProperties: { type: 'boolean' } },
        hubble: { type: 'boolean' },
      },
    },
    endpoints: { type: 'object', properties: { total: int, ready: int } },
    maps: { type: 'array', items: MapSummarySchema },
    datapath: {
      type: 'object',
      additionalProperties: true,
      properties: { devices: int, rxPackets: int, rxBytes: int, txPackets: int, txBytes: int, drops: int, forwards: int, tunnelGsoTx: int, tunnelGsoRx: int },
    },
    controllers: { type: 'object', properties: { total: int, failing: int } },
  },
} as const;

export const statusPlugin: FastifyPluginAsync<ApiPluginOptions<StatusService>> = async (app, { agent }) => {
  app.get('/v1/status', {
    schema: { summary: 'Agent status', tags: ['agent'], response: { 200: AgentStatusSchema } },
  }, async () => agent.status());
};
