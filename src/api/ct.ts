// /v1/ct: the global conntrack maps, listed (`bpf ct list global`) or flushed (`bpf ct flush global`).
import type { FastifyPluginAsync } from 'fastify';
import type { CtService } from '../control/types.ts';
import type { ApiPluginOptions } from './plugin.ts';

export const ctPlugin: FastifyPluginAsync<ApiPluginOptions<CtService>> = async (app, { agent }) => {
  app.get('/v1/ct', {
    schema: {
      summary: 'Conntrack entries, one line each (`bpf ct list global`)',
      tags: ['ct'],
      response: { 200: { type: 'object', properties: { lines: { type: 'array', items: { type: 'string' } } } } },
    },
  }, async () => ({ lines: agent.ctList() }));

  app.delete('/v1/ct', {
    schema: {
      summary: 'Empty both global conntrack maps',
      tags: ['ct'],
      response: { 200: { type: 'object', properties: { flushed: { type: 'integer', description: 'entries removed' } } } },
    },
  }, async () => ({ flushed: agent.ctFlush() }));
};
