// /v1/pods: create, list, get and delete pods (a netns with a TUN eth0 and an optional command).
import type { FastifyPluginAsync } from 'fastify';
import { ApiError, type PodService, type PodSpec } from '../control/types.ts';
import { podManifestOf } from '../control/resources/convert.ts';
import { errorResponses } from './errors.ts';
import type { ApiPluginOptions } from './plugin.ts';

/** Kubernetes object names: a DNS-1123 label. */
export const DNS1123_LABEL = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';
/** Label keys: optional DNS-subdomain prefix and '/', then a name of at most 63 characters. */
export const LABEL_KEY =
  '^(?:(?=[^/]{1,253}/)[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*/)?(?=.{1,63}$)[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?$';
/** Label values: empty, or up to 63 alphanumerics with '-', '_', '.' inside. */
export const LABEL_VALUE = '^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?$';

/** Port names (Kubernetes IANA_SVC_NAME): a DNS-1123 label of at most 15 characters with a letter and no '--'. */
export const IANA_SVC_NAME = '^(?=.{1,15}$)(?=.*[a-z])[a-z0-9]+(?:-[a-z0-9]+)*$';

const str = { type: 'string' } as const;

/** A container port; named ones are what a service's string targetPort refers to. */
export const ContainerPortSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['containerPort'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 15, pattern: IANA_SVC_NAME },
    containerPort: { type: 'integer', minimum: 1, maximum: 65535 },
    protocol: { type: 'string', enum: ['TCP', 'UDP'] },
    hostPort: { type: 'integer', minimum: 1, maximum: 65535 },
  },
} as const;

export const PodSpecSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 63, pattern: DNS1123_LABEL },
    namespace: { type: 'string', minLength: 1, maxLength: 63, pattern: DNS1123_LABEL, default: 'default' },
    labels: {
      type: 'object',
      default: {},
      propertyNames: { maxLength: 317, pattern: LABEL_KEY },
      additionalProperties: { type: 'string', maxLength: 63, pattern: LABEL_VALUE },
    },
    node: { type: 'string', minLength: 1, maxLength: 253 },
    command: { type: 'array', minItems: 1, items: { type: 'string' } },
    ports: { type: 'array', items: ContainerPortSchema },
  },
} as const;

export const PodSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    name: str,
    namespace: str,
    labels: { type: 'object', additionalProperties: str },
    node: str,
    podIP: str,
    endpointID: { type: 'integer' },
    state: { type: 'string', enum: ['waiting-for-identity', 'regenerating', 'ready', 'disconnected'] },
    netns: { type: 'string', description: 'network namespace name, for `ip netns exec`' },
    ifindex: { type: 'integer' },
    createdAt: { type: 'string', format: 'date-time' },
    command: { type: 'array', items: str },
    ports: { type: 'array', items: { type: 'object', additionalProperties: true, properties: { name: str, containerPort: { type: 'integer' }, protocol: str } } },
    pid: { type: 'integer' },
  },
} as const;

const PodParams = {
  type: 'object',
  required: ['namespace', 'name'],
  properties: { namespace: { type: 'string', pattern: DNS1123_LABEL }, name: { type: 'string', pattern: DNS1123_LABEL } },
} as const;

type PodRoute = { Params: { namespace: string; name: string } };

/** Reads from the endpoints; creates and deletes through the resource manager (a Pod of image ciliary/run). */
export const podsPlugin: FastifyPluginAsync<ApiPluginOptions<PodService>> = async (app, { agent }) => {
  app.get('/v1/pods', {
    schema: { summary: 'List pods', tags: ['pods'], response: { 200: { type: 'array', items: PodSchema } } },
  }, async () => agent.listPods());

  app.get<PodRoute>('/v1/pods/:namespace/:name', {
    schema: { summary: 'Get a pod', tags: ['pods'], params: PodParams, response: { 200: PodSchema, ...errorResponses(400, 404) } },
  }, async (req) => {
    const pod = agent.getPod(req.params.namespace, req.params.name);
    if (!pod) throw new ApiError(404, `pod "${req.params.namespace}/${req.params.name}" not found`);
    return pod;
  });

  app.post<{ Body: PodSpec }>('/v1/pods', {
    schema: { summary: 'Create a pod (a Pod object of image ciliary/run, as `ciliary run` makes)', tags: ['pods'], body: PodSpecSchema, response: { 201: PodSchema, ...errorResponses(400, 409, 422) } },
  }, async (req, reply) => {
    // `ciliary run` makes a pod on the node it talks to unless it names one (apply -f is what schedules).
    const spec = { ...req.body, node: req.body.node ?? agent.nodeName };
    await agent.resources.apply([podManifestOf(spec)], { createOnly: true, anyNamespace: true });
    return reply.code(201).send(agent.getPod(spec.namespace, spec.name) ?? { name: spec.name, namespace: spec.namespace, node: spec.node });
  });

  app.delete<PodRoute>('/v1/pods/:namespace/:name', {
    schema: {
      summary: 'Delete a pod',
      tags: ['pods'],
      params: PodParams,
      response: { 200: { type: 'object', properties: { namespace: str, name: str, deleted: { type: 'boolean' } } }, ...errorResponses(400, 404) },
    },
  }, async (req) => {
    const { namespace, name } = req.params;
    await agent.resources.delete('Pod', namespace, name);
    return { namespace, name, deleted: true };
  });
};
