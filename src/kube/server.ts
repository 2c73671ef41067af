// The Kubernetes API subset for the real kubectl (kube-apiserver-listen-address): HTTPS with the generated
// CA, client certificates or the bearer token, discovery, the resource routes of api.ts, watches and exec.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { KubeBackend } from './backend.ts';
import { KubeApi } from './api.ts';
import { attachExec } from './exec.ts';
import { ensurePki, listenHost } from './pki.ts';
import { decodeProtobufObject } from './protobuf.ts';
import { openapiGroupVersion, openapiRoot } from './openapi.ts';
import { findResource, groupList, resourceList, type KubeResource } from './resources.ts';
import { badRequest, notFound, StatusError } from './status.ts';
import { selectObjects, SelectorError } from './selectors.ts';
import { startWatch } from './watch.ts';

export interface KubeApiServer {
  address: string;
  port: number;
  kubeconfigPath: string;
  close(): Promise<void>;
}

const MAX_BODY = 8 << 20;
const LOG_POLL_MS = 250;
export const KUBE_VERSION = { major: '1', minor: '32', gitVersion: 'v1.32.0+ciliary', gitCommit: '', gitTreeState: 'clean', buildDate: '', goVersion: '', compiler: 'ciliary', platform: 'linux/amd64' };

function send(res: ServerResponse, status: number, body: unknown, contentType = 'application/json'): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-cache, private' });
  res.end(text);
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) reject(new StatusError(413, 'RequestEntityTooLarge', 'request entity too large'));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Client certificate signed by our CA, or `Authorization: Bearer <token>`. */
export function authenticated(req: IncomingMessage, token: string): boolean {
  if ((req.socket as TLSSocket).authorized) return true;
  const auth = req.headers.authorization ?? '';
  return auth === `Bearer ${token}`;
}

const UNAUTHORIZED = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 };

interface Route {
  resource: KubeResource;
  namespace?: string;
  name?: string;
  subresource?: string;
}

/** /api/v1/… or /apis/<g>/<v>/…: [namespaces/<ns>/]<plural>[/<name>[/<sub>]]. */
export function parseResourcePath(path: string): Route | { discovery: unknown } | undefined {
  const segs = path.split('/').filter(Boolean).map(decodeURIComponent);
  let group: string;
  let version: string;
  let rest: string[];
  if (segs[0] === 'api' && segs[1] === 'v1') [group, version, rest] = ['', 'v1', segs.slice(2)];
  else if (segs[0] === 'apis' && segs.length >= 3) [group, version, rest] = [segs[1], segs[2], segs.slice(3)];
  else return undefined;
  if (!rest.length) {
    const list = resourceList(group, version);
    return list ? { discovery: list } : undefined;
  }
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const resource = findResource(group, version, rest[0]);
  if (!resource || rest.length > 3) return undefined;
  return { resource, namespace, name: rest[1], subresource: rest[2] };
}

/** Paths anyone may GET (kubeadm's default RBAC for system:unauthenticated). */
const PUBLIC_PATHS = new Set(['/version', '/healthz', '/livez', '/readyz']);

/** `serviceIP`: the kubernetes service's ClusterIP, in the serving certificate as kube-apiserver puts it. */
export async function startKubeApiServer(o: { address: string; stateDir: string; backend: KubeBackend; log: Logger; serviceIP?: string }): Promise<KubeApiServer> {
  const pki = ensurePki(o.stateDir, o.address, o.serviceIP ? [o.serviceIP] : []);
  const api = new KubeApi(o.backend);
  const watches = new Set<() => void>();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'https://localhost');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    // As kube-apiserver's system:public-info-viewer: version and health need no credential (a pod's curl).
    if (!(method === 'GET' && PUBLIC_PATHS.has(path)) && !authenticated(req, pki.token)) return send(res, 401, UNAUTHORIZED);
    if (method === 'GET') {
      if (path === '/version') return send(res, 200, KUBE_VERSION);
      if (path === '/api') return send(res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: o.address }] });
      if (path === '/apis') return send(res, 200, groupList());
      if (path === '/openapi/v3') return send(res, 200, openapiRoot());
      const gvDoc = path.startsWith('/openapi/v3/') ? openapiGroupVersion(path.slice('/openapi/v3/'.length)) : undefined;
      if (gvDoc) return send(res, 200, gvDoc);
      if (path === '/healthz' || path === '/livez' || path === '/readyz') return send(res, 200, 'ok', 'text/plain');
    }
    const route = parseResourcePath(path);
    if (!route) return send(res, 404, new StatusError(404, 'NotFound', 'the server could not find the requested resource').body());
    if ('discovery' in route) return send(res, 200, route.discovery);
    if (method === 'GET' && url.searchParams.get('watch') && !route.name) return watch(req, res, route, url.searchParams);
    if (method === 'GET' && route.subresource === 'log' && url.searchParams.get('follow') === 'true') return followLog(req, res, api.logSource(route.namespace ?? 'default', route.name ?? '', true));
    const raw = ['POST', 'PUT', 'PATCH'].includes(method) ? await readBody(req) : Buffer.alloc(0);
    let contentType = req.headers['content-type'] ?? 'application/json';
    let body = raw.toString('utf8');
    // Typed clients (kubectl create namespace) send protobuf and do not fall back to JSON.
    if (contentType.includes('protobuf')) [contentType, body] = ['application/json', JSON.stringify(decodeProtobufObject(raw))];
    const reply = await api.handle({ method, ...route, query: url.searchParams, accept: req.headers.accept ?? '', contentType, body });
    send(res, reply.status, reply.body, reply.contentType);
  };

  /** A watch stream over the store's change events (watch.ts), until the client goes or timeoutSeconds pass. */
  const watch = (req: IncomingMessage, res: ServerResponse, route: Route, query: URLSearchParams) => {
    try {
      selectObjects([], query.get('labelSelector') ?? undefined, query.get('fieldSelector') ?? undefined);
    } catch (e) {
      if (e instanceof SelectorError) throw badRequest(e.message);
      throw e;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    // Headers now: a client waits for them before it counts the watch as started.
    res.flushHeaders();
    const stop = startWatch({
      api, resource: route.resource, namespace: route.namespace, query,
      asTable: (req.headers.accept ?? '').includes('as=Table'), write: (line) => res.write(line),
    });
    const timeout = Number(query.get('timeoutSeconds') ?? 1800);
    const end = () => {
      stop();
      clearTimeout(timer);
      watches.delete(end);
      res.end();
    };
    const timer = setTimeout(end, timeout * 1000);
    watches.add(end);
    req.on('close', end);
  };

  /** kubectl logs -f: the file so far, then what is appended (another node's pod: `ciliary logs -f`), until the client goes. */
  const followLog = (req: IncomingMessage, res: ServerResponse, source: { path?: string; argv?: string[] }) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const { path, argv } = source;
    const child = argv ? spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'ignore'] }) : undefined;
    child?.stdout!.on('data', (d: Buffer) => res.write(d));
    let offset = 0;
    const poll = () => {
      const size = path && existsSync(path) ? statSync(path).size : 0;
      if (size < offset) offset = 0;
      if (size > offset) {
        res.write(readFileSync(path!).subarray(offset, size));
        offset = size;
      }
    };
    if (!child) poll();
    const timer = child ? undefined : setInterval(poll, LOG_POLL_MS);
    const end = () => {
      clearInterval(timer);
      child?.kill('SIGTERM');
      watches.delete(end);
      res.end();
    };
    child?.on('exit', end);
    watches.add(end);
    req.on('close', end);
  };

  const server: Server = createServer({ key: pki.serverKey, cert: pki.serverCert, ca: pki.ca, requestCert: true, rejectUnauthorized: false }, (req, res) => {
    handle(req, res).catch((e: unknown) => {
      const err = e instanceof StatusError ? e : new StatusError(500, 'InternalError', (e as Error).message);
      if (!(e instanceof StatusError)) o.log.warn({ err: (e as Error).message, url: req.url }, 'kube-apiserver: request failed');
      if (!res.headersSent) send(res, err.code, err.body());
      else res.end();
    });
  });
  attachExec(server, {
    authenticated: (req) => authenticated(req, pki.token),
    route: (path) => {
      const r = parseResourcePath(path);
      return r && 'resource' in r ? r : undefined;
    },
    argv: (ns, name, command) => api.execArgv(ns, name, command),
    notFound: (name) => notFound('pods', '', name).body(),
    log: o.log,
  });
  const host = listenHost(o.address);
  const port = Number(o.address.slice(o.address.lastIndexOf(':') + 1) || 6443);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  o.log.info({ address: o.address, kubeconfig: pki.kubeconfigPath }, 'kube-apiserver listening');
  return {
    address: o.address, port: (server.address() as { port: number }).port, kubeconfigPath: pki.kubeconfigPath,
    close: () => new Promise<void>((resolve) => {
      for (const end of [...watches]) end();
      o.backend.close();
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
