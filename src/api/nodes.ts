// GET /v1/nodes (`node list`, `get nodes`): the cluster's nodes as this agent's registry sees them.
import type { FastifyPluginAsync } from 'fastify';
import type { AgentFacade } from '../control/types.ts';
import type { ApiPluginOptions } from './plugin.ts';
import '../control/nodes.ts';

export type NodesService = Pick<AgentFacade, 'listNodes'>;

const str = { type: 'string' } as const;

export const NodeSchema = {
  type: 'object',
  properties: {
    name: str,
    nodeIP: str,
    podCIDR: str,
    routerIP: str,
    version: str,
    labels: { type: 'object', additionalProperties: str },
    createdAt: str,
    osImage: str,
    kernelVersion: str,
    source: { type: 'string', enum: ['local', 'kvstore'] },
    ready: { type: 'boolean' },
  },
} as const;

export const nodesPlugin: FastifyPluginAsync<ApiPluginOptions<NodesService>> = async (app, { agent }) => {
  app.get('/v1/nodes', {
    schema: { summary: 'Nodes of the cluster, this one included (`node list`)', tags: ['cluster'], response: { 200: { type: 'array', items: NodeSchema } } },
  }, async () => agent.listNodes?.() ?? []);
};
