// What every API plugin receives: the part of the agent it uses (a narrow service from
// control/types.ts), passed in options (no module-level state).
export interface ApiPluginOptions<S> {
  agent: S;
}

// Documentation keys routes carry in their schema for the OpenAPI document.
declare module 'fastify' {
  interface FastifySchema {
    summary?: string;
    description?: string;
    tags?: string[];
  }
}
