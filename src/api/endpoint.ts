// GET /v1/endpoint and /v1/endpoint/:id: local endpoints as `endpoint list` shows them.
import type { FastifyPluginAsync } from 'fastify';
import { ApiError, type EndpointService } from '../control/types.ts';
import { errorResponses } from './errors.ts';
import type { ApiPluginOptions } from './plugin.ts';

const str = { type: 'string' } as const;
const enabled = { type: 'string', enum: ['Enabled', 'Disabled'] } as const;

export const EndpointSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    id: { type: 'integer' },
    podName: { type: 'string', description: '"namespace/name", or "" for the host endpoint' },
    identity: { type: 'integer' },
    labels: { type: 'array', items: str },
    ipv4: str,
    ifindex: { type: 'integer' },
    ifname: str,
    state: { type: 'string', enum: ['waiting-for-identity', 'regenerating', 'ready', 'disconnected'] },
    policyIngress: enabled,
    policyEgress: enabled,
    isHost: { type: 'boolean' },
  },
} as const;

// A string with a pattern rather than an integer: the API does not coerce types, anywhere.
const IdParams = { type: 'object', properties: { id: { type: 'string', pattern: '^[0-9]{1,5}$' } }, required: ['id'] } as const;

export const endpointPlugin: FastifyPluginAsync<ApiPluginOptions<EndpointService>> = async (app, { agent }) => {
  app.get('/v1/endpoint', {
    schema: { summary: 'List endpoints', tags: ['endpoint'], response: { 200: { type: 'array', items: EndpointSchema } } },
  }, async () => [...agent.listEndpoints()].sort((a, b) => a.id - b.id));

  app.get<{ Params: { id: string } }>('/v1/endpoint/:id', {
    schema: { summary: 'Get one endpoint', tags: ['endpoint'], params: IdParams, response: { 200: EndpointSchema, ...errorResponses(400, 404) } },
  }, async (req) => {
    const ep = agent.getEndpoint(Number(req.params.id));
    if (!ep) throw new ApiError(404, `endpoint ${req.params.id} not found`);
    return ep;
  });
};
