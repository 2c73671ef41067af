// GET /v1/lb: the load-balancer maps as `bpf lb list` shows them (services and backends, or --revnat entries).
import type { FastifyPluginAsync } from 'fastify';
import type { LbService } from '../control/types.ts';
import type { ApiPluginOptions } from './plugin.ts';

const LbQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { revnat: { type: 'string', enum: ['true', 'false'], description: 'list the rev-NAT map instead of services' } },
} as const;

const LbRows = {
  type: 'object',
  properties: {
    rows: {
      type: 'array',
      description: '[service address, backend address] (or [rev-NAT id, address]); a continuation row has an empty first cell',
      items: { type: 'array', items: { type: 'string' }, minItems: 2, maxItems: 2 },
    },
  },
} as const;

export const lbPlugin: FastifyPluginAsync<ApiPluginOptions<LbService>> = async (app, { agent }) => {
  app.get<{ Querystring: { revnat?: 'true' | 'false' } }>('/v1/lb', {
    schema: { summary: 'Load-balancer map rows (`bpf lb list`)', tags: ['lb'], querystring: LbQuery, response: { 200: LbRows } },
  }, async (req) => ({ rows: agent.lbList(req.query.revnat === 'true') }));
};
