// Errors the CLI turns into exit codes: usage mistakes exit 2, everything else 1.

export class UsageError extends Error {
  readonly exitCode = 2;
}

export class CliError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}

/** The agent's socket does not answer (not running, wrong node, no permission). */
export class AgentUnreachableError extends CliError {
  constructor(readonly socketPath: string, readonly code: string, hint: string) {
    super(`cannot reach the ciliary agent at ${socketPath} (${code}): ${hint}`);
  }
}

/** The agent answered with an error status; the message is the agent's. */
export class AgentError extends CliError {
  /** The agent's whole error body ({error, document, path} for manifests). */
  body?: Record<string, unknown>;

  constructor(message: string, readonly statusCode: number) {
    super(message);
  }
}
