// The Hubble-UI-like page the agent serves (hubble-ui-listen-address, default :12000):
//   GET /                    one self-contained HTML page (service map + live flow table)
//   GET /api/flows?last=N    the newest N flows of the ring, oldest first (JSON array)
//   GET /api/events          Server-Sent Events: `flow` per new flow, `lost` {lost: n} when this client lagged
//   GET /api/servicemap      {nodes, edges, flows} folded from the ring
//   GET /api/status          {hubble: boolean, clients: number}
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Flow, FlowSource } from '../flow.ts';
import { buildServiceMap } from './servicemap.ts';
import { SseClient, startEventStream } from './sse.ts';

export interface WebOptions {
  /** "host:port", ":port" (all addresses), "[v6]:port"; port 0 picks a free one. */
  address: string;
  /** Hubble's ring; may appear after the server starts (or never, with Hubble off). */
  flows: () => FlowSource | undefined;
  log?: Pick<Logger, 'info' | 'warn' | 'debug'>;
  /** Per-client backlog of the event stream before the oldest flows are dropped. */
  clientBacklog?: number;
  /** Flows folded into the service map (the newest of the ring). */
  mapFlows?: number;
  /** How often to look for the flow source while it is missing (ms). */
  pollMs?: number;
}

export interface WebServer {
  readonly port: number;
  readonly address: string;
  close(): Promise<void>;
}

const DEFAULT_LAST = 100;
const MAX_LAST = 1 << 16;

/** ":12000" → {port 12000}; "127.0.0.1:0" → {host, port 0}; "[::1]:80" → {host ::1}. */
export function parseListenAddress(addr: string): { host?: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(addr.trim());
  if (!m) throw new Error(`hubble-ui-listen-address: "${addr}" is not host:port or :port`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`hubble-ui-listen-address: port ${port} is out of range`);
  const host = m[1] ?? m[2];
  return host ? { host, port } : { port };
}

let pageCache: string | undefined;

/** The page with its stylesheet and script inlined: one request, no external assets. */
export function renderPage(): string {
  if (pageCache) return pageCache;
  const asset = (name: string) => readFileSync(new URL(`./assets/${name}`, import.meta.url), 'utf8');
  const html = asset('index.html');
  // Function replacements: `$` in the assets must not be read as replacement patterns.
  pageCache = html
    .replace('<!--STYLE-->', () => `<style>\n${asset('style.css')}</style>`)
    .replace('<!--SCRIPT-->', () => `<script>\n${(asset('map-layout.js') + asset('app.js')).replace(/<\/script/gi, '<\\/script')}</script>`);
  return pageCache;
}

export async function startWebServer(opts: WebOptions): Promise<WebServer> {
  const { host, port } = parseListenAddress(opts.address);
  const backlog = opts.clientBacklog ?? 1024;
  const mapFlows = opts.mapFlows ?? MAX_LAST;
  const clients = new Set<SseClient>();
  let unsubscribe: (() => void) | undefined;
  let subscribed: FlowSource | undefined;

  // One subscription to the flow source, fanned out to every browser, held while a browser listens (a
  // relay source streams every node's flows only then); the source is looked up until Hubble exists.
  const attach = () => {
    const src = opts.flows();
    if (src !== subscribed) {
      unsubscribe?.();
      unsubscribe = undefined;
      subscribed = src;
    }
    if (!subscribed || unsubscribe || clients.size === 0) return;
    unsubscribe = subscribed.onFlow((f: Flow) => {
      const data = JSON.stringify(f);
      for (const c of clients) c.push('flow', data);
    });
    opts.log?.debug({}, 'hubble ui: subscribed to flows');
  };
  const detachIfIdle = () => {
    if (clients.size > 0) return;
    unsubscribe?.();
    unsubscribe = undefined;
  };
  attach();
  const poll = setInterval(attach, opts.pollMs ?? 1000);
  poll.unref();
  const heartbeat = setInterval(() => { for (const c of clients) c.heartbeat(); }, 15_000);
  heartbeat.unref();

  const recent = (n: number): Flow[] => {
    attach();
    return subscribed?.recent(n) ?? [];
  };

  const json = (res: ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
    res.end(text);
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' });
      return res.end();
    }
    switch (url.pathname) {
      case '/':
      case '/index.html': {
        const page = renderPage();
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' });
        return res.end(req.method === 'HEAD' ? undefined : page);
      }
      case '/api/flows': {
        const raw = url.searchParams.get('last');
        const n = raw === null || raw === '' ? DEFAULT_LAST : Number(raw);
        if (!Number.isInteger(n) || n < 0) return json(res, 400, { error: `last: "${raw}" is not a whole number` });
        return json(res, 200, recent(Math.min(n, MAX_LAST)));
      }
      case '/api/servicemap':
        return json(res, 200, buildServiceMap(recent(mapFlows)));
      case '/api/status':
        attach();
        return json(res, 200, { hubble: subscribed !== undefined, clients: clients.size });
      case '/api/events': {
        startEventStream(res);
        res.socket?.setNoDelay(true);
        const c = new SseClient(res, backlog);
        clients.add(c);
        attach();
        const drop = () => {
          clients.delete(c);
          detachIfIdle();
        };
        req.on('close', drop);
        res.on('error', drop);
        return;
      }
      case '/favicon.ico':
        res.writeHead(204);
        return res.end();
      default:
        return json(res, 404, { error: `no such page: ${url.pathname}` });
    }
  };

  const server: Server = createServer((req, res) => {
    try {
      handle(req, res);
    } catch (e) {
      opts.log?.warn({ err: e, url: req.url }, 'hubble ui: request failed');
      if (!res.headersSent) json(res, 500, { error: (e as Error).message });
      else res.destroy();
    }
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(host === undefined ? { port } : { port, host }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    clearInterval(poll);
    clearInterval(heartbeat);
    throw e;
  }
  const a = server.address() as AddressInfo;
  const address = `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  opts.log?.info({ address }, 'hubble ui listening');
  return {
    port: a.port,
    address,
    close: async () => {
      clearInterval(poll);
      clearInterval(heartbeat);
      unsubscribe?.();
      clients.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
