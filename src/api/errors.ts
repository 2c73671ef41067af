// One error shape for every route: { error: string }, with the status the cause deserves.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, FastifySchemaValidationError } from 'fastify';
import { ApiError } from '../control/types.ts';

export const ErrorSchema = { type: 'object', properties: { error: { type: 'string' } }, required: ['error'] } as const;

/** Response schemas for the error codes a route can answer with. */
export function errorResponses(...codes: number[]): Record<number, object> {
  return Object.fromEntries(codes.map((c) => [c, { description: 'error', ...ErrorSchema }]));
}

/** Validation errors worded so the offending field is named, e.g. `body/name must match pattern "..."`. */
export function formatSchemaErrors(errors: FastifySchemaValidationError[], dataVar: string): Error {
  type Err = FastifySchemaValidationError & { propertyName?: string; keyword: string };
  const all = errors as Err[];
  let e = all[0];
  // anyOf (e.g. a port number or a port name): the branch whose type matched says what is wrong; if none did, list the types.
  const alt = all.find((x) => x.keyword === 'anyOf' || x.keyword === 'oneOf');
  if (alt) {
    const at = alt.instancePath ?? '';
    const branches = all.filter((x) => x !== alt && (x.instancePath === at || (x.instancePath ?? '').startsWith(`${at}/`)));
    // An error inside the value (an array's item) also comes from the branch whose type matched.
    const specific = branches.find((x) => x.keyword !== 'type' || x.instancePath !== at);
    if (specific) e = specific;
    else {
      const types = branches.filter((x) => x.instancePath === at).map((x) => String((x.params as { type?: unknown }).type));
      return new Error(`${dataVar}${alt.instancePath ?? ''} must be ${types.length ? types.join(' or ') : 'one of the allowed forms'}`);
    }
  }
  const at = `${dataVar}${e.instancePath ?? ''}`;
  const params = (e.params ?? {}) as Record<string, unknown>;
  let msg: string;
  if (e.keyword === 'additionalProperties') msg = `${at}/${String(params.additionalProperty)} is not allowed (unknown field)`;
  else if (e.keyword === 'required') msg = `${at}/${String(params.missingProperty)} is required`;
  else if (e.propertyName !== undefined) msg = `${at} key "${e.propertyName}" ${e.message}`;
  else msg = `${at} ${e.message}`;
  return new Error(msg);
}

function isApiError(err: unknown): err is { statusCode: number; message: string } {
  if (err instanceof ApiError) return true;
  const code = (err as { statusCode?: unknown }).statusCode;
  return typeof code === 'number' && code >= 400 && code < 600;
}

export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    if (err.validation) return reply.code(400).send({ error: err.message });
    if (isApiError(err)) return reply.code(err.statusCode).send({ error: err.message });
    req.log.error({ err }, 'request failed');
    return reply.code(500).send({ error: err.message || String(err) });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: `no route ${req.method} ${req.url.split('?')[0]}` }));
}
