// GET /v1/healthz: the agent answers, so it is alive.
import type { FastifyPluginAsync } from 'fastify';
import type { StatusService } from '../control/types.ts';
import type { ApiPluginOptions } from './plugin.ts';

export const healthzPlugin: FastifyPluginAsync<ApiPluginOptions<StatusService>> = async (app) => {
  app.get('/v1/healthz', {
    schema: {
      summary: 'Liveness of the agent',
      tags: ['agent'],
      response: { 200: { type: 'object', properties: { status: { type: 'string', enum: ['ok'] } } } },
    },
  }, async () => ({ status: 'ok' }));
};
