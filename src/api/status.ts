// GET /v1/status: what `ciliary status` prints.
import type { FastifyPluginAsync } from 'fastify';
import { MapSummarySchema } from './map.ts';
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
    kvstore: str,
    ipam: {
      type: 'object',
      additionalProperties: true,
      properties: {
        cidr: str,
        allocated: { type: 'array', items: { type: 'object', properties: { ip: str, owner: str } } },
      },
    },
    routerIP: str,
    routingMode: { type: 'string', enum: ['tunnel', 'native'] },
    endpoints: { type: 'object', properties: { total: int, ready: int } },
    maps: { type: 'array', items: MapSummarySchema },
    datapath: {
      type: 'object',
      additionalProperties: true,
      properties: { devices: int, rxPackets: int, rxBytes: int, txPackets: int, txBytes: int, drops: int, forwards: int },
    },
    controllers: { type: 'object', properties: { total: int, failing: int } },
  },
} as const;

export const statusPlugin: FastifyPluginAsync<ApiPluginOptions> = async (app, { agent }) => {
  app.get('/v1/status', {
    schema: { summary: 'Agent status', tags: ['agent'], response: { 200: AgentStatusSchema } },
  }, async () => agent.status());
};
