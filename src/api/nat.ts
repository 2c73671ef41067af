// /v1/nat: the BPF masquerade translations, listed (`bpf nat list`) or flushed (`bpf nat flush`).
import type { FastifyPluginAsync } from 'fastify';
import type { AgentFacade } from '../control/types.ts';
import type { ApiPluginOptions } from './plugin.ts';

declare module '../control/types.ts' {
  interface AgentFacade {
    /** `bpf nat list` lines of cilium_snat_v4_external. */
    natList(): string[];
    /** Empties cilium_snat_v4_external; returns how many entries were removed. */
    natFlush(): number;
  }
}

export type NatService = Pick<AgentFacade, 'natList' | 'natFlush'>;

export const natPlugin: FastifyPluginAsync<ApiPluginOptions<NatService>> = async (app, { agent }) => {
  app.get('/v1/nat', {
    schema: {
      summary: 'BPF masquerade entries, one line each (`bpf nat list`)',
      tags: ['nat'],
      response: { 200: { type: 'object', properties: { lines: { type: 'array', items: { type: 'string' } } } } },
    },
  }, async () => ({ lines: agent.natList() }));

  app.delete('/v1/nat', {
    schema: {
      summary: 'Empty cilium_snat_v4_external',
      tags: ['nat'],
      response: { 200: { type: 'object', properties: { flushed: { type: 'integer', description: 'entries removed' } } } },
    },
  }, async () => ({ flushed: agent.natFlush() }));
};
