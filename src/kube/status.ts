// The API server's error bodies (meta/v1 Status) and the error type the handlers throw to produce one.

export class StatusError extends Error {
  constructor(readonly code: number, readonly reason: string, message: string, readonly details?: Record<string, unknown>) {
    super(message);
  }

  body(): Record<string, unknown> {
    return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: this.message, reason: this.reason, ...(this.details ? { details: this.details } : {}), code: this.code };
  }
}

/** `group` is "" for the core group; `resource` the plural (pods, deployments). */
export const notFound = (resource: string, group: string, name: string) =>
  new StatusError(404, 'NotFound', `${resource}${group ? `.${group}` : ''} "${name}" not found`, { name, ...(group ? { group } : {}), kind: resource });

export const alreadyExists = (resource: string, group: string, name: string) =>
  new StatusError(409, 'AlreadyExists', `${resource}${group ? `.${group}` : ''} "${name}" already exists`, { name, ...(group ? { group } : {}), kind: resource });

/** `Operation cannot be fulfilled on deployments.apps "web": <why>`, as the API server words a conflict. */
export const conflict = (resource: string, group: string, name: string, why: string) =>
  new StatusError(409, 'Conflict', `Operation cannot be fulfilled on ${resource}${group ? `.${group}` : ''} "${name}": ${why}`, { name, ...(group ? { group } : {}), kind: resource });

/** field.ErrorType wordings a message may already start with, and their Status cause reasons. */
const CAUSES: Array<[string, string]> = [['Unsupported value', 'FieldValueNotSupported'], ['Required value', 'FieldValueRequired'], ['Duplicate value', 'FieldValueDuplicate'], ['Forbidden', 'FieldValueForbidden'], ['Invalid value', 'FieldValueInvalid']];

/** 422 as the API server words it: `Pod "x" is invalid: spec.containers[0].image: Invalid value: ...`. */
export const invalid = (kind: string, group: string, name: string, field: string | undefined, message: string) => {
  const typed = CAUSES.find(([w]) => message.startsWith(w));
  const cause = typed || !field ? message : `Invalid value: ${message}`;
  return new StatusError(422, 'Invalid', `${kind} "${name}" is invalid: ${field ? `${field}: ` : ''}${message}`, {
    name, ...(group ? { group } : {}), kind, causes: [{ reason: typed?.[1] ?? 'FieldValueInvalid', message: cause, ...(field ? { field } : {}) }],
  });
};

export const badRequest = (message: string) => new StatusError(400, 'BadRequest', message);
export const methodNotAllowed = () => new StatusError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
