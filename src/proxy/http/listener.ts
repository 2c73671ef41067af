// One L7 redirect: an HTTP/1.1 proxy on the router IP and a proxy port. It learns each client
// connection's original destination from cilium_proxy4, checks every request against the HTTP
// rules, answers 403 "Access denied" to the ones no rule allows, and forwards the rest on an
// upstream connection of its own, which the datapath presents to the server as the client.
import { createServer, request, Agent, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { HttpRule } from '../../policy/types.ts';
import type { ProxyRedirects } from '../../dataplane/lib/proxy.ts';
import { formatIPv4, parseIPv4 } from '../../wire/ip-text.ts';
import { allowed, compileRules, type HeaderFix } from './rules.ts';
import type { UpstreamPorts } from './upstream-ports.ts';

export interface L7Event {
  type: 'request' | 'response';
  verdict: 'Forwarded' | 'Denied' | 'Error';
  method: string;
  url: string;
  protocol: string;
  status?: number;
  latencyMs?: number;
  client: { ip: string; port: number };
  server: { ip: string; port: number };
  /** The endpoint whose policy redirected the connection. */
  endpoint: number;
  proxyPort: number;
}

export interface ListenerDeps {
  routerIP: string;
  redirects: ProxyRedirects;
  upstreamPorts: UpstreamPorts;
  onEvent: (e: L7Event) => void;
  log: Logger;
}

interface Downstream {
  client: string;
  clientPort: number;
  server: string;
  serverPort: number;
  endpoint: number;
  agent: Agent;
}

export class HttpProxyListener {
  private rules: ReturnType<typeof compileRules>;
  private readonly server: Server;
  private readonly downstreams = new WeakMap<Socket, Downstream>();

  constructor(readonly port: number, rules: HttpRule[], private readonly d: ListenerDeps) {
    this.rules = compileRules(rules);
    this.server = createServer({ keepAlive: true }, (req, res) => this.handle(req, res));
    this.server.on('connection', (s: Socket) => this.accept(s));
    // A request that is not HTTP gets a 400 and the connection closes; the proxy carries on.
    this.server.on('clientError', (_e, s: Socket) => {
      if (s.writable) s.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 11\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nBad Request');
      else s.destroy();
    });
  }

  setRules(rules: HttpRule[]): void {
    this.rules = compileRules(rules);
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, this.d.routerIP, () => resolve());
    });
  }

  close(): void {
    this.server.close();
    this.server.closeAllConnections();
  }

  private accept(s: Socket): void {
    const client = s.remoteAddress ?? '';
    const clientPort = s.remotePort ?? 0;
    const orig = this.d.redirects.originalDestination(parseIPv4(client), clientPort);
    if (!orig) {
      this.d.log.warn({ client, clientPort }, 'proxy connection without a redirect entry');
      s.destroy();
      return;
    }
    const ds: Downstream = { client, clientPort, server: formatIPv4(orig.addr), serverPort: orig.port, endpoint: orig.endpoint, agent: this.upstreamAgent(client, clientPort) };
    this.downstreams.set(s, ds);
    s.on('close', () => ds.agent.destroy());
  }

  /** One upstream connection at a time per client connection, bound to a port the datapath maps to the client. */
  private upstreamAgent(client: string, clientPort: number): Agent {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const ports = this.d.upstreamPorts;
    const redirects = this.d.redirects;
    const routerIP = this.d.routerIP;
    agent.createConnection = (opts: { host?: string; port?: number | string }) => {
      const port = ports.take();
      redirects.registerUpstream(parseIPv4(client), clientPort, port);
      const sock = connect({ host: opts.host ?? '', port: Number(opts.port), localAddress: routerIP, localPort: port });
      sock.once('close', () => {
        redirects.releaseUpstream(port);
        ports.give(port);
      });
      return sock;
    };
    return agent;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const started = process.hrtime.bigint();
    const ds = this.downstreams.get(req.socket);
    const host = req.headers.host ?? '';
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const base = {
      method, url: `http://${host}${path}`, protocol: `HTTP/${req.httpVersion}`,
      client: { ip: ds?.client ?? '', port: ds?.clientPort ?? 0 }, server: { ip: ds?.server ?? '', port: ds?.serverPort ?? 0 },
      endpoint: ds?.endpoint ?? 0, proxyPort: this.port,
    };
    const fixes = ds ? allowed(this.rules, { method, path, host, header: (n) => headerValue(req, n) }) : undefined;
    if (!ds || !fixes) {
      this.d.onEvent({ ...base, type: 'request', verdict: 'Denied', status: 403 }); // as Cilium logs a denied request
      req.resume(); // drain the body so the connection stays usable
      res.writeHead(403, { 'content-type': 'text/plain', 'content-length': '15' });
      res.end('Access denied\r\n');
      this.d.onEvent({ ...base, type: 'response', verdict: 'Denied', status: 403, latencyMs: elapsed(started) });
      return;
    }
    this.d.onEvent({ ...base, type: 'request', verdict: 'Forwarded' });
    const headers = applyFixes({ ...req.headers, 'x-forwarded-proto': 'http', 'x-request-id': randomUUID() }, fixes);
    const up = request({ host: ds.server, port: ds.serverPort, method, path, headers, agent: ds.agent, setHost: false }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, upRes.headers);
      upRes.pipe(res);
      upRes.on('end', () => this.d.onEvent({ ...base, type: 'response', verdict: 'Forwarded', status: upRes.statusCode, latencyMs: elapsed(started) }));
    });
    up.on('error', (err) => {
      this.d.log.debug({ err: err.message, server: ds.server }, 'upstream failed');
      if (!res.headersSent) {
        const body = 'upstream connect error or disconnect/reset before headers. reset reason: connection failure';
        res.writeHead(503, { 'content-type': 'text/plain', 'content-length': String(body.length) });
        res.end(body);
      } else res.destroy();
      this.d.onEvent({ ...base, type: 'response', verdict: 'Error', status: 503, latencyMs: elapsed(started) });
    });
    req.pipe(up); // streamed both ways: a large upload never sits in memory
  }
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

function applyFixes(headers: Record<string, string | string[] | undefined>, fixes: HeaderFix[]): Record<string, string | string[] | undefined> {
  for (const f of fixes) {
    if (f.action === 'DELETE') delete headers[f.name];
    else if (f.action === 'REPLACE' || (f.action === 'ADD' && headers[f.name] === undefined)) headers[f.name] = f.value ?? '';
  }
  return headers;
}

const elapsed = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
