// /v1/policy: import (PUT), list (GET) and delete network policies; GET /v1/bpf/policy/:id: an endpoint's `bpf policy get` table.
import type { FastifyPluginAsync } from 'fastify';
import { ApiError, ManifestError, type ManifestResult, type PolicyService } from '../control/types.ts';
import { errorResponses } from './errors.ts';
import type { ApiPluginOptions } from './plugin.ts';
import { DNS1123_LABEL } from './pods.ts';

/** Policy names are DNS-1123 subdomains (dots allowed). */
export const DNS1123_SUBDOMAIN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
export const POLICY_KINDS = ['CiliumNetworkPolicy', 'CiliumClusterwideNetworkPolicy', 'NetworkPolicy'] as const;
/** Largest PUT /v1/policy body. */
export const POLICY_BODY_LIMIT = 1024 * 1024;

const str = { type: 'string' } as const;
const kind = { type: 'string', enum: POLICY_KINDS } as const;
const result = { type: 'string', enum: ['created', 'configured', 'unchanged'] } as const;
const revision = { type: 'integer', description: 'policy repository revision' } as const;

/** One policy object or an array of them; each object is validated by the agent, which names the offending field. */
export const PolicyImportBodySchema = {
  description: 'a CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy or NetworkPolicy object, or an array of them',
  anyOf: [{ type: 'array', items: { type: 'object' } }, { type: 'object' }],
} as const;

export const PolicyImportResultSchema = {
  type: 'object',
  properties: {
    revision,
    policies: {
      type: 'array',
      items: { type: 'object', properties: { kind: str, namespace: str, name: str, result } },
    },
  },
} as const;

export const PolicyListSchema = {
  type: 'object',
  properties: {
    revision,
    policies: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          kind: str,
          namespace: str,
          name: str,
          object: { description: 'the object as it was imported' },
          selects: { type: 'array', items: { type: 'integer' }, description: 'endpoint ids the rules select' },
        },
      },
    },
  },
} as const;

const DeleteQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    kind: { ...kind, default: 'CiliumNetworkPolicy' },
    namespace: { type: 'string', minLength: 1, maxLength: 63, pattern: DNS1123_LABEL, description: 'default "default"; ignored for CiliumClusterwideNetworkPolicy' },
    name: { type: 'string', minLength: 1, maxLength: 253, pattern: DNS1123_SUBDOMAIN },
    all: { type: 'string', enum: ['true', 'false'], description: 'true: delete every policy' },
  },
} as const;

interface DeleteQueryT {
  kind: string;
  namespace?: string;
  name?: string;
  all?: 'true' | 'false';
}

const IdParams = { type: 'object', properties: { id: { type: 'string', pattern: '^[0-9]{1,5}$' } }, required: ['id'] } as const;

/** A manifest error as the policy routes have always worded it: `policy #N: FIELD: reason` (#N only with several). */
function policyError(e: unknown, count: number): unknown {
  if (!(e instanceof ManifestError)) return e;
  const detail = e.message.replace(/^[A-Za-z]+ "[^"]*": /, '');
  return new ApiError(e.statusCode, count > 1 && e.document !== undefined ? `policy #${e.document}: ${detail}` : detail);
}

/** Reads from the policy repository; imports and deletes through the resource manager. */
export const policyPlugin: FastifyPluginAsync<ApiPluginOptions<PolicyService>> = async (app, { agent }) => {
  const deleteOne = async (kind: string, ns: string | undefined, name: string) => {
    try {
      await agent.resources.delete(kind, ns, name);
    } catch (e) {
      if (e instanceof ApiError && e.statusCode === 404) throw new ApiError(404, `${kind} "${ns ? `${ns}/` : ''}${name}" not found`);
      throw e;
    }
  };

  app.put<{ Body: unknown }>('/v1/policy', {
    bodyLimit: POLICY_BODY_LIMIT,
    schema: {
      summary: 'Import policies: all or nothing; each is created, configured or unchanged',
      tags: ['policy'],
      body: PolicyImportBodySchema,
      response: { 200: PolicyImportResultSchema, ...errorResponses(400, 413, 422) },
    },
  }, async (req) => {
    const objects = Array.isArray(req.body) ? req.body : [req.body];
    if (!objects.length) throw new ApiError(400, 'body must hold at least one policy');
    objects.forEach((o, i) => {
      const kind = (o as { kind?: unknown }).kind;
      if (kind !== undefined && !(POLICY_KINDS as readonly unknown[]).includes(kind)) {
        throw new ApiError(400, `${objects.length > 1 ? `policy #${i + 1}: ` : ''}kind: "${String(kind)}" is not a policy (${POLICY_KINDS.join(', ')})`);
      }
    });
    let results: ManifestResult[];
    try {
      results = await agent.resources.apply(objects, { anyNamespace: true });
    } catch (e) {
      throw policyError(e, objects.length);
    }
    const policies = results.map((r) => ({ kind: r.kind, ...(r.namespace ? { namespace: r.namespace } : {}), name: r.name, result: r.result as 'created' | 'configured' | 'unchanged' }));
    return { revision: agent.listPolicies().revision, policies };
  });

  app.get('/v1/policy', {
    schema: { summary: 'Policies as imported, with the repository revision', tags: ['policy'], response: { 200: PolicyListSchema } },
  }, async () => agent.listPolicies());

  app.delete<{ Querystring: DeleteQueryT }>('/v1/policy', {
    schema: {
      summary: 'Delete one policy (kind, namespace, name) or all of them (all=true)',
      tags: ['policy'],
      querystring: DeleteQuery,
      response: { 200: { type: 'object', properties: { revision } }, ...errorResponses(400, 404) },
    },
  }, async (req) => {
    const q = req.query;
    if (q.all === 'true') {
      if (q.name !== undefined) throw new ApiError(400, 'querystring/name may not be given with all=true');
      for (const p of agent.listPolicies().policies) await deleteOne(p.kind, p.namespace, p.name);
      return { revision: agent.listPolicies().revision };
    }
    if (q.name === undefined) throw new ApiError(400, 'querystring/name is required (or all=true)');
    const ns = q.kind === 'CiliumClusterwideNetworkPolicy' ? undefined : (q.namespace ?? 'default');
    await deleteOne(q.kind, ns, q.name);
    return { revision: agent.listPolicies().revision };
  });

  app.get<{ Params: { id: string } }>('/v1/bpf/policy/:id', {
    schema: {
      summary: "An endpoint's policy map as `bpf policy get` prints it",
      tags: ['policy'],
      params: IdParams,
      response: { 200: { type: 'object', properties: { table: str } }, ...errorResponses(400, 404) },
    },
  }, async (req) => {
    const table = agent.bpfPolicy(Number(req.params.id));
    if (table === undefined) throw new ApiError(404, `endpoint ${req.params.id} not found`);
    return { table };
  });
};
