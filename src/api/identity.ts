// GET /v1/identity (`identity list`) and GET /v1/ip (`ip list`): the identities this node knows and the ipcache.
import type { FastifyPluginAsync } from 'fastify';
import type { IdentityService } from '../control/types.ts';
import type { ApiPluginOptions } from './plugin.ts';

const labels = { type: 'array', items: { type: 'string' } } as const;

export const IdentitySchema = {
  type: 'object',
  properties: { id: { type: 'integer' }, labels },
} as const;

export const IpEntrySchema = {
  type: 'object',
  properties: {
    prefix: { type: 'string', description: 'CIDR prefix, e.g. 10.0.0.0/8 or 172.20.0.10/32' },
    identity: { type: 'integer' },
    labels,
    source: { type: 'string', description: 'where the entry comes from, e.g. custom-resource, generated, kube-apiserver' },
  },
} as const;

export const identityPlugin: FastifyPluginAsync<ApiPluginOptions<IdentityService>> = async (app, { agent }) => {
  app.get('/v1/identity', {
    schema: { summary: 'Every identity this node knows: reserved, pods\', CIDR', tags: ['identity'], response: { 200: { type: 'array', items: IdentitySchema } } },
  }, async () => [...agent.listIdentities()].sort((a, b) => a.id - b.id));

  app.get('/v1/ip', {
    schema: { summary: 'ipcache prefixes with their identity (`ip list`)', tags: ['identity'], response: { 200: { type: 'array', items: IpEntrySchema } } },
  }, async () => agent.ipList());
};
