// A validation error that names the field (and, when the caller can map it, the YAML line).

export class PolicyError extends Error {
  /** Field path, e.g. `spec.ingress[0].toPorts[0].ports[0].port`. */
  readonly path: string;
  /** What is wrong, without the path. */
  readonly reason: string;
  readonly line?: number;
  readonly document?: number;

  constructor(path: string, reason: string, where: { line?: number; document?: number } = {}) {
    const at = [where.document !== undefined ? `document ${where.document}` : '', where.line !== undefined ? `line ${where.line}` : ''].filter(Boolean).join(', ');
    super(`${path}: ${reason}${at ? ` (${at})` : ''}`);
    this.name = 'PolicyError';
    this.path = path;
    this.reason = reason;
    this.line = where.line;
    this.document = where.document;
  }
}
