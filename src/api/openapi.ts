// GET /v1/openapi.json: an OpenAPI 3.1 document assembled from the schemas routes register with.
import type { FastifyPluginCallback, RouteOptions } from 'fastify';
import type { StatusService } from '../control/types.ts';
import type { ApiPluginOptions } from './plugin.ts';

interface CollectedRoute {
  method: string;
  url: string;
  schema: Record<string, unknown>;
}

type JsonSchema = Record<string, unknown>;

/** `/v1/pods/:namespace/:name` → `/v1/pods/{namespace}/{name}`. */
export function openapiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_-]+)/g, '{$1}');
}

function parameters(schema: JsonSchema | undefined, where: 'path' | 'query'): object[] {
  const props = (schema?.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((schema?.required ?? []) as string[]);
  return Object.entries(props).map(([name, s]) => ({
    name,
    in: where,
    required: where === 'path' || required.has(name),
    ...(s.description ? { description: s.description } : {}),
    schema: s,
  }));
}

function responses(schema: Record<string, JsonSchema> | undefined): Record<string, object> {
  if (!schema) return { 200: { description: 'OK' } };
  const out: Record<string, object> = {};
  for (const [code, s] of Object.entries(schema)) {
    const { description, content, ...rest } = s as JsonSchema & { description?: string; content?: object };
    out[code] = { description: description ?? (code.startsWith('2') ? 'OK' : 'error'), content: content ?? { 'application/json': { schema: rest } } };
  }
  return out;
}

/** Builds the document from collected routes; pure, so tests and tools can call it. */
export function buildOpenApi(routes: CollectedRoute[], version: string): object {
  const paths: Record<string, Record<string, object>> = {};
  for (const r of routes) {
    const s = r.schema;
    const op: Record<string, unknown> = {
      operationId: `${r.method.toLowerCase()}${r.url.replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ? c.toUpperCase() : ''))}`,
      ...(s.summary ? { summary: s.summary } : {}),
      ...(s.tags ? { tags: s.tags } : {}),
    };
    const params = [...parameters(s.params as JsonSchema, 'path'), ...parameters(s.querystring as JsonSchema, 'query')];
    if (params.length) op.parameters = params;
    if (s.body) op.requestBody = { required: true, content: { 'application/json': { schema: s.body } } };
    op.responses = responses(s.response as Record<string, JsonSchema>);
    (paths[openapiPath(r.url)] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: { title: 'ciliary agent API', version, description: 'The API the `ciliary` CLI uses, on the agent\'s unix socket.' },
    paths,
  };
}

/** Registered first and not encapsulated, so its onRoute hook sees every route registered after it. */
export const openapiPlugin: FastifyPluginCallback<ApiPluginOptions<StatusService>> = (app, { agent }, done) => {
  const routes: CollectedRoute[] = [];
  app.addHook('onRoute', (r: RouteOptions) => {
    for (const method of Array.isArray(r.method) ? r.method : [r.method]) {
      // fastify adds a HEAD twin for every GET: not part of the API.
      if (method === 'HEAD' || !r.url.startsWith('/v1/')) continue;
      routes.push({ method, url: r.url, schema: (r.schema ?? {}) as Record<string, unknown> });
    }
  });
  app.get('/v1/openapi.json', { schema: { summary: 'This document', tags: ['agent'] } }, async () => buildOpenApi(routes, versionOf(agent)));
  done();
};
(openapiPlugin as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;

function versionOf(agent: StatusService): string {
  try {
    return agent.status().version;
  } catch {
    return 'unknown';
  }
}
