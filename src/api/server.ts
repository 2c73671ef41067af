// The agent's API: fastify on a unix socket (0600), optionally also on 127.0.0.1:PORT.
import { chmodSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { AgentFacade } from '../control/types.ts';
import { applyPlugin } from './apply.ts';
import { configPlugin } from './config.ts';
import { ctPlugin } from './ct.ts';
import { endpointPlugin } from './endpoint.ts';
import { formatSchemaErrors, installErrorHandlers } from './errors.ts';
import { flowsPlugin } from './flows.ts';
import { healthzPlugin } from './healthz.ts';
import { fqdnPlugin } from './fqdn.ts';
import { identityPlugin } from './identity.ts';
import { lbPlugin } from './lb.ts';
import { mapPlugin } from './map.ts';
import { monitorPlugin } from './monitor.ts';
import { natPlugin } from './nat.ts';
import { nodesPlugin } from './nodes.ts';
import { openapiPlugin } from './openapi.ts';
import { podsPlugin } from './pods.ts';
import { policyPlugin } from './policy.ts';
import { servicesPlugin } from './services.ts';
import { statusPlugin } from './status.ts';
import { tracePlugin } from './trace.ts';
import { listenCluster } from './cluster-listener.ts';

export interface ApiOptions {
  socketPath: string;
  /** Also listen on 127.0.0.1:port (0 picks a free port; undefined = no TCP). */
  port?: number;
  logger: Logger;
  /** Also listen on the node network (HOST:PORT) for requests carrying the cluster token. */
  cluster?: { address: string; token: string };
  /** Per-client monitor backlog before events are dropped (tests make it small). */
  monitorMaxBufferedBytes?: number;
}

export interface ApiServer {
  close(): Promise<void>;
  /** The bound TCP port, when TCP was asked for. */
  port?: number;
  /** The bound port of the cluster listener. */
  clusterPort?: number;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** The fastify app with every plugin, not listening yet; `onHandler` receives the raw request handler. */
export async function buildApi(agent: AgentFacade, logger: Logger, opts: { onHandler?: (h: Handler) => void; monitorMaxBufferedBytes?: number } = {}): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    // Per-request info lines would drown the agent's log (the CLI polls): requests log at debug below.
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: true,
    // Strict: unknown fields are errors, and nothing is coerced to the declared type.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true } },
    schemaErrorFormatter: formatSchemaErrors,
    serverFactory: (handler) => {
      opts.onHandler?.(handler);
      return createServer(handler);
    },
  });
  installErrorHandlers(app);
  app.addHook('onResponse', async (req, reply) => {
    req.log.debug({ method: req.method, url: req.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'api request');
  });
  await app.register(openapiPlugin, { agent });
  await app.register(healthzPlugin, { agent });
  await app.register(statusPlugin, { agent });
  await app.register(configPlugin, { agent });
  await app.register(podsPlugin, { agent });
  await app.register(servicesPlugin, { agent });
  await app.register(endpointPlugin, { agent });
  await app.register(mapPlugin, { agent });
  await app.register(lbPlugin, { agent });
  await app.register(ctPlugin, { agent });
  await app.register(natPlugin, { agent });
  await app.register(policyPlugin, { agent });
  await app.register(identityPlugin, { agent });
  await app.register(fqdnPlugin, { agent });
  await app.register(nodesPlugin, { agent });
  await app.register(applyPlugin, { agent });
  await app.register(monitorPlugin, { agent, maxBufferedBytes: opts.monitorMaxBufferedBytes });
  await app.register(flowsPlugin, { agent });
  await app.register(tracePlugin, { agent });
  return app;
}

export async function startApi(agent: AgentFacade, opts: ApiOptions): Promise<ApiServer> {
  let handler: Handler | undefined;
  const app = await buildApi(agent, opts.logger, { onHandler: (h) => { handler = h; }, monitorMaxBufferedBytes: opts.monitorMaxBufferedBytes });
  mkdirSync(dirname(opts.socketPath), { recursive: true });
  await removeStaleSocket(opts.socketPath);
  await app.listen({ path: opts.socketPath });
  chmodSync(opts.socketPath, 0o600);

  let tcp: Server | undefined;
  let port: number | undefined;
  if (opts.port !== undefined && handler) {
    const server = createServer(handler);
    tcp = server;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(opts.port, '127.0.0.1', () => resolve());
      });
    } catch (e) {
      await app.close();
      throw e;
    }
    port = (server.address() as { port: number }).port;
    opts.logger.info({ port }, 'API also listening on TCP 127.0.0.1');
  }
  let cluster: Server | undefined;
  if (opts.cluster && handler) {
    cluster = await listenCluster(opts.cluster.address, opts.cluster.token, handler).catch(async (e: Error) => {
      await app.close();
      throw e;
    });
    opts.logger.info({ address: cluster.address() }, 'API listening on the node network (cluster token required)');
  }
  opts.logger.info({ socket: opts.socketPath }, 'API listening');

  return {
    port,
    clusterPort: (cluster?.address() as { port: number } | undefined)?.port,
    async close() {
      for (const server of [tcp, cluster]) {
        if (!server) continue;
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
      await app.close();
      if (existsSync(opts.socketPath)) unlinkSync(opts.socketPath);
    },
  };
}

/** A socket file left by a killed agent is removed; one a live agent answers on is an error. */
async function removeStaleSocket(path: string): Promise<void> {
  if (!existsSync(path)) return;
  const live = await new Promise<boolean>((resolve) => {
    const s = connect(path);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
  if (live) throw new Error(`API socket ${path} is in use: another agent is running for this state directory`);
  unlinkSync(path);
}
