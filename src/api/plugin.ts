// What every API plugin receives: the agent, passed in options (no module-level state).
import type { AgentFacade } from '../control/types.ts';

export interface ApiPluginOptions {
  agent: AgentFacade;
}

// Documentation keys routes carry in their schema for the OpenAPI document.
declare module 'fastify' {
  interface FastifySchema {
    summary?: string;
    description?: string;
    tags?: string[];
  }
}
