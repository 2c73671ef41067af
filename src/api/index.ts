// The agent API: start it with startApi(agent, { socketPath, port, logger }).
export { startApi, buildApi, type ApiOptions, type ApiServer } from './server.ts';
export { buildOpenApi } from './openapi.ts';
