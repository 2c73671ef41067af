// GET /v1/config: the agent's effective configuration (Cilium's key names).
import type { FastifyPluginAsync } from 'fastify';
import type { StatusService } from '../control/types.ts';
import type { ApiPluginOptions } from './plugin.ts';

export const configPlugin: FastifyPluginAsync<ApiPluginOptions<StatusService>> = async (app, { agent }) => {
  app.get('/v1/config', {
    schema: {
      summary: 'Effective agent configuration',
      tags: ['agent'],
      response: { 200: { type: 'object', additionalProperties: true, description: 'key → value, keys as Cilium names them' } },
    },
  }, async () => agent.config());
};
