// /v1/apply, /v1/delete, /v1/resources: Kubernetes manifests (kubectl apply/delete/get), and pod logs.
import { createReadStream, existsSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { ApiError, ManifestError, type ResourceService } from '../control/types.ts';
import type { ApiPluginOptions } from './plugin.ts';

const str = { type: 'string' } as const;

/** Errors of these routes also say which object (1-based) and which field, so the CLI can name the line. */
const ManifestErrorSchema = { type: 'object', properties: { error: str, document: { type: 'integer' }, path: str }, required: ['error'] } as const;
const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, { description: 'error', ...ManifestErrorSchema }]));

const ResultSchema = {
  type: 'object',
  properties: { kind: str, resource: str, namespace: str, name: str, result: { type: 'string', enum: ['created', 'configured', 'unchanged', 'deleted', 'not found'] } },
} as const;

const ViewSchema = {
  type: 'object',
  properties: {
    kind: str, namespace: str, name: str, createdAt: str,
    manifest: { type: 'object', additionalProperties: true },
    status: { type: 'object', additionalProperties: true },
  },
} as const;

const ObjectsBody = {
  type: 'object',
  additionalProperties: false,
  required: ['objects'],
  properties: { objects: { type: 'array', maxItems: 1000, items: {} }, dryRun: { type: 'boolean' } },
} as const;

const POLL_MS = 200;

export const applyPlugin: FastifyPluginAsync<ApiPluginOptions<ResourceService>> = async (app, { agent }) => {
  const send = async <T>(reply: FastifyReply, fn: () => Promise<T> | T, code = 200) => {
    try {
      return await reply.code(code).send(await fn());
    } catch (e) {
      if (e instanceof ManifestError) return reply.code(e.statusCode).send({ error: e.message, document: e.document, path: e.path });
      throw e;
    }
  };

  app.post<{ Body: { objects: unknown[]; dryRun?: boolean } }>('/v1/apply', {
    schema: {
      summary: 'Apply Kubernetes objects (kubectl apply): all validated first, applied in dependency order, created ones rolled back on failure',
      tags: ['resources'], body: ObjectsBody,
      response: { 200: { type: 'object', properties: { results: { type: 'array', items: ResultSchema } } }, ...errors(400, 404, 409, 422, 500) },
    },
  }, (req, reply) => send(reply, async () => ({ results: await agent.resources.apply(req.body.objects, { dryRun: req.body.dryRun }) })));

  app.post<{ Body: { objects: unknown[] } }>('/v1/delete', {
    schema: {
      summary: 'Delete the objects the manifests name (kubectl delete -f)',
      tags: ['resources'], body: ObjectsBody,
      response: { 200: { type: 'object', properties: { results: { type: 'array', items: ResultSchema } } }, ...errors(400, 403) },
    },
  }, (req, reply) => send(reply, async () => ({ results: await agent.resources.deleteObjects(req.body.objects) })));

  type KindRoute = { Params: { kind: string; name?: string }; Querystring: { namespace?: string } };
  const params = { type: 'object', properties: { kind: { type: 'string', pattern: '^[A-Za-z0-9.]+$' }, name: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$' } } } as const;
  const query = { type: 'object', additionalProperties: false, properties: { namespace: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' } } } as const;

  app.get<KindRoute>('/v1/resources/:kind', {
    schema: { summary: 'List objects of a kind (kubectl names: pods, deploy, svc, ns, cnp, ...); no namespace = all', tags: ['resources'], params, querystring: query, response: { 200: { type: 'array', items: ViewSchema }, ...errors(404) } },
  }, async (req) => agent.resources.list(req.params.kind, req.query.namespace));

  app.get<KindRoute>('/v1/resources/:kind/:name', {
    schema: { summary: 'One object', tags: ['resources'], params, querystring: query, response: { 200: ViewSchema, ...errors(404) } },
  }, async (req) => {
    const v = agent.resources.get(req.params.kind, req.query.namespace, req.params.name!);
    if (!v) throw new ApiError(404, `${req.params.kind} "${req.params.name}" not found`);
    return v;
  });

  app.delete<KindRoute>('/v1/resources/:kind/:name', {
    schema: { summary: 'Delete one object (deleting a namespace deletes what is in it)', tags: ['resources'], params, querystring: query, response: { 200: ResultSchema, ...errors(403, 404) } },
  }, async (req) => agent.resources.delete(req.params.kind, req.query.namespace, req.params.name!));

  type LogRoute = { Params: { namespace: string; name: string }; Querystring: { follow?: 'true' | 'false' } };
  app.get<LogRoute>('/v1/pods/:namespace/:name/logs', {
    schema: {
      summary: "A pod's output (stdout and stderr of every start); follow=true streams new output until the pod is deleted",
      tags: ['pods'],
      params: { type: 'object', required: ['namespace', 'name'], properties: { namespace: str, name: str } },
      querystring: { type: 'object', additionalProperties: false, properties: { follow: { type: 'string', enum: ['true', 'false'] } } },
    },
  }, async (req, reply) => {
    const { namespace, name } = req.params;
    const path = agent.resources.podLogPath(namespace, name);
    if (!path) throw new ApiError(404, `pods "${name}" not found`);
    reply.type('text/plain; charset=utf-8');
    if (req.query.follow !== 'true') return reply.send(existsSync(path) ? createReadStream(path) : '');
    const out = new PassThrough();
    let offset = 0;
    let closed = false;
    const pump = async () => {
      if (closed) return;
      if (agent.resources.podLogPath(namespace, name) === undefined) {
        closed = true;
        out.end();
        return;
      }
      if (!existsSync(path)) return;
      const size = statSync(path).size;
      if (size < offset) offset = 0; // truncated
      if (size === offset) return;
      const fh = await open(path, 'r');
      try {
        const buf = Buffer.alloc(size - offset);
        const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
        offset += bytesRead;
        out.write(buf.subarray(0, bytesRead));
      } finally {
        await fh.close();
      }
    };
    let busy = false;
    const timer = setInterval(() => {
      if (busy) return;
      busy = true;
      pump().catch(() => undefined).finally(() => { busy = false; });
    }, POLL_MS);
    const stop = () => {
      closed = true;
      clearInterval(timer);
      out.end();
    };
    req.raw.on('close', stop);
    out.on('close', stop);
    await pump();
    return reply.send(out);
  });
};
