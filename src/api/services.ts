// /v1/services: list, get, apply (create or update) and delete services; GET /v1/service is cilium's `service list` source.
import type { FastifyPluginAsync } from 'fastify';
import { ApiError, type ServiceService, type ServiceSpec } from '../control/types.ts';
import { serviceManifestOf } from '../control/resources/convert.ts';
import { errorResponses } from './errors.ts';
import type { ApiPluginOptions } from './plugin.ts';
import { DNS1123_LABEL, IANA_SVC_NAME, LABEL_KEY, LABEL_VALUE } from './pods.ts';

/** A dotted-quad IPv4 address. */
export const IPV4 = '^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$';

const str = { type: 'string' } as const;
const int = { type: 'integer' } as const;
const portNumber = { type: 'integer', minimum: 1, maximum: 65535 } as const;
const protocol = { type: 'string', enum: ['TCP', 'UDP'] } as const;
const ipv4 = { type: 'string', pattern: IPV4, description: 'IPv4 address' } as const;
const SERVICE_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer'] as const;

export const ServicePortSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['port'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 63, pattern: DNS1123_LABEL },
    port: portNumber,
    targetPort: {
      description: 'a port number, or the name of a container port (defaults to port)',
      anyOf: [portNumber, { type: 'string', pattern: IANA_SVC_NAME }],
    },
    protocol,
    nodePort: { type: 'integer', minimum: 30000, maximum: 32767 },
  },
} as const;

export const ServiceSpecSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'ports'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 63, pattern: DNS1123_LABEL },
    namespace: { type: 'string', minLength: 1, maxLength: 63, pattern: DNS1123_LABEL, default: 'default' },
    type: { type: 'string', enum: SERVICE_TYPES },
    selector: {
      type: 'object',
      propertyNames: { maxLength: 317, pattern: LABEL_KEY },
      additionalProperties: { type: 'string', maxLength: 63, pattern: LABEL_VALUE },
    },
    ports: { type: 'array', minItems: 1, items: ServicePortSchema },
    clusterIP: ipv4,
    sessionAffinity: { type: 'string', enum: ['None', 'ClientIP'] },
    sessionAffinityTimeoutSeconds: { type: 'integer', minimum: 1, maximum: 86400 },
    externalIPs: { type: 'array', items: ipv4 },
  },
} as const;

const ServiceBackendSchema = {
  type: 'object',
  additionalProperties: true,
  properties: { id: int, ip: str, port: int, pod: { type: 'string', description: '"namespace/name", or "" for an explicit backend' }, state: { type: 'string', enum: ['active', 'terminating'] } },
} as const;

const ServiceFrontendSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    id: { type: 'integer', description: 'service ID, also the rev-NAT index' },
    address: str,
    port: int,
    protocol: str,
    type: { type: 'string', description: 'ClusterIP, NodePort, ExternalIPs, LoadBalancer or HostPort' },
    backends: { type: 'array', items: ServiceBackendSchema },
  },
} as const;

export const ServiceSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    name: str,
    namespace: str,
    type: str,
    selector: { type: 'object', additionalProperties: str },
    ports: {
      type: 'array',
      items: { type: 'object', additionalProperties: true, properties: { name: str, port: int, targetPort: { anyOf: [int, str] }, protocol: str, nodePort: int } },
    },
    clusterIP: str,
    sessionAffinity: str,
    sessionAffinityTimeoutSeconds: int,
    externalIPs: { type: 'array', items: str },
    backends: { type: 'array', items: { type: 'object', additionalProperties: true, properties: { ip: str, port: int } } },
    frontends: { type: 'array', items: ServiceFrontendSchema },
    createdAt: { type: 'string', format: 'date-time' },
  },
} as const;

const ServiceParams = {
  type: 'object',
  required: ['namespace', 'name'],
  properties: { namespace: { type: 'string', pattern: DNS1123_LABEL }, name: { type: 'string', pattern: DNS1123_LABEL } },
} as const;

const ServiceList = { type: 'array', items: ServiceSchema } as const;

type ServiceRoute = { Params: { namespace: string; name: string } };

/** Reads from the service manager; applies and deletes through the resource manager (a Service object). */
export const servicesPlugin: FastifyPluginAsync<ApiPluginOptions<ServiceService>> = async (app, { agent }) => {
  const sorted = () => [...agent.listServices()].sort((a, b) => (a.namespace === b.namespace ? (a.name < b.name ? -1 : 1) : a.namespace < b.namespace ? -1 : 1));

  app.get('/v1/services', {
    schema: { summary: 'List services', tags: ['services'], response: { 200: ServiceList } },
  }, async () => sorted());

  // What CoreDNS serves, read every few seconds: name, namespace and clusterIP only, and 304 while
  // nothing changed (the full list of 10,000 services kept the agent's thread busy for ~1 s).
  app.get('/v1/service-addresses', {
    schema: { summary: 'Names and cluster IPs of the services (ETag / If-None-Match)', tags: ['services'] },
  }, async (req, reply) => {
    const a = agent.serviceAddresses?.() ?? { etag: '', json: JSON.stringify(sorted().map(({ name, namespace, clusterIP }) => ({ name, namespace, clusterIP }))) };
    if (a.etag) reply.header('etag', a.etag);
    if (a.etag && req.headers['if-none-match'] === a.etag) return reply.code(304).send();
    return reply.type('application/json').send(a.json);
  });

  // cilium-dbg's `service list` reads GET /v1/service: the same objects, their frontends carry the table;
  // pods' HostPort frontends (no service of their own) follow in one nameless entry.
  app.get('/v1/service', {
    schema: { summary: 'List services with their frontends and backends (`service list`), then the HostPort frontends', tags: ['services'], response: { 200: ServiceList } },
  }, async () => {
    const hostPorts = agent.hostPortFrontends?.() ?? [];
    return hostPorts.length ? [...sorted(), { name: '', namespace: '', ports: [], clusterIP: '', frontends: hostPorts, createdAt: new Date().toISOString() }] : sorted();
  });

  app.get<ServiceRoute>('/v1/services/:namespace/:name', {
    schema: { summary: 'Get a service', tags: ['services'], params: ServiceParams, response: { 200: ServiceSchema, ...errorResponses(400, 404) } },
  }, async (req) => {
    const svc = agent.getService(req.params.namespace, req.params.name);
    if (!svc) throw new ApiError(404, `service "${req.params.namespace}/${req.params.name}" not found`);
    return svc;
  });

  app.post<{ Body: ServiceSpec }>('/v1/services', {
    schema: {
      summary: 'Create or update a service (kubectl apply semantics)',
      tags: ['services'],
      body: ServiceSpecSchema,
      response: {
        200: { type: 'object', properties: { service: ServiceSchema, result: { type: 'string', enum: ['created', 'configured', 'unchanged'] } } },
        ...errorResponses(400, 409, 422),
      },
    },
  }, async (req) => {
    const spec = req.body;
    const [{ result }] = await agent.resources.apply([serviceManifestOf(spec)], { anyNamespace: true });
    return { service: agent.getService(spec.namespace, spec.name), result };
  });

  app.delete<ServiceRoute>('/v1/services/:namespace/:name', {
    schema: {
      summary: 'Delete a service',
      tags: ['services'],
      params: ServiceParams,
      response: { 200: { type: 'object', properties: { namespace: str, name: str, deleted: { type: 'boolean' } } }, ...errorResponses(400, 404) },
    },
  }, async (req) => {
    const { namespace, name } = req.params;
    await agent.resources.delete('Service', namespace, name);
    return { namespace, name, deleted: true };
  });
};
