// GET /v1/nodes (`node list`, `get nodes`): the cluster's nodes as this agent's registry sees them.
import type { FastifyPluginAsync } from 'fastify';
import type { ApiPluginOptions } from './plugin.ts';
import '../control/nodes.ts';

const str = { type: 'string' } as const;

export const NodeSchema = {
  type: 'object',
  properties: {
    Name: str,
    Cluster: str,
    IPAddresses: { type: 'array', items: { type: 'object', properties: { Type: str, IP: str } } },
    IPv4AllocCIDR: str,
    IPv4RouterIP: str,
    Labels: { type: 'object', additionalProperties: str },
    CreatedAt: str,
    Version: str,
    OSImage: str,
    KernelVersion: str,
    Source: { type: 'string', enum: ['local', 'kvstore'] },
  },
} as const;

export const nodesPlugin: FastifyPluginAsync<ApiPluginOptions> = async (app, { agent }) => {
  app.get('/v1/nodes', {
    schema: { summary: 'Nodes of the cluster, this one included (`node list`)', tags: ['cluster'], response: { 200: { type: 'array', items: NodeSchema } } },
  }, async () => agent.listNodes?.() ?? []);
};
