// GET /v1/fqdn/cache (`fqdn cache list`) and DELETE /v1/fqdn/cache (`fqdn cache clean`).
import type { FastifyPluginAsync } from 'fastify';
import type { FqdnService } from '../control/types.ts';
import type { ApiPluginOptions } from './plugin.ts';

const FqdnCacheRowSchema = {
  type: 'object',
  properties: {
    endpointId: { type: 'integer' },
    source: { type: 'string', description: 'lookup: learned from a DNS answer the proxy forwarded' },
    fqdn: { type: 'string' },
    ttl: { type: 'integer', description: 'seconds the answer is kept (after tofqdns-min-ttl)' },
    expiresAt: { type: 'integer', description: 'ms since the epoch' },
    ips: { type: 'array', items: { type: 'string' } },
  },
} as const;

export const fqdnPlugin: FastifyPluginAsync<ApiPluginOptions<FqdnService>> = async (app, { agent }) => {
  app.get('/v1/fqdn/cache', {
    schema: { summary: 'Names and addresses the DNS proxy taught toFQDNs policy', tags: ['policy'], response: { 200: { type: 'array', items: FqdnCacheRowSchema } } },
  }, async () => agent.fqdnCacheList());

  app.delete<{ Querystring: { endpoint?: string } }>('/v1/fqdn/cache', {
    schema: {
      summary: 'Forget learned names (their IPs lose the toFQDNs allow)', tags: ['policy'],
      querystring: { type: 'object', properties: { endpoint: { type: 'string', pattern: '^[0-9]+$', description: 'only this endpoint\'s entries' } }, additionalProperties: false },
      response: { 200: { type: 'object', properties: { removed: { type: 'integer' } } } },
    },
  }, async (req) => ({ removed: agent.fqdnCacheClean(req.query.endpoint === undefined ? undefined : Number(req.query.endpoint)) }));
};
