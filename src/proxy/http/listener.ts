// One L7 redirect, run in the proxy worker: an HTTP/1.1 proxy on the router IP and a proxy port. It
// learns each client connection's original destination from the datapath thread, checks every
// request against the HTTP rules, answers 403 "Access denied" to the ones no rule allows, and
// forwards the rest on an upstream connection of its own, which the datapath presents to the
// server as the client.
import { createServer, request, Agent, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import type { HttpRule } from '../../policy/types.ts';
import { allowed, compileRules, type HeaderFix } from './rules.ts';
import type { Downstream, L7Event } from './messages.ts';
import { connectUpstream } from './upstream-socket.ts';

export type { L7Event } from './messages.ts';

export interface ListenerDeps {
  routerIP: string;
  /** Where a client connection was going; undefined without a redirect entry. */
  accept(client: string, clientPort: number): Promise<Downstream | undefined>;
  /** A newly registered upstream port for the client connection, 0 if the map refused. */
  upstreamPort(client: string, clientPort: number): Promise<number>;
  release(port: number): void;
  onEvent(e: L7Event): void;
  log(level: 'warn' | 'debug', msg: string, fields: Record<string, unknown>): void;
}

interface Connection extends Downstream {
  client: string;
  clientPort: number;
  agent: Agent;
  /** The records' peers, made once per connection: every record of it shares them (none changes them). */
  peers: Pick<L7Event, 'client' | 'server'>;
}

const ACCESS_DENIED = 'Access denied\r\n';
const UPSTREAM_FAILED = 'upstream connect error or disconnect/reset before headers. reset reason: connection failure';
/** Envoy logs these as the URL's scheme and host, not among the headers. */
const NOT_LOGGED = new Set(['host', 'x-forwarded-proto']);

export class HttpProxyListener {
  private rules: ReturnType<typeof compileRules>;
  private readonly server: Server;
  private readonly connections = new WeakMap<Socket, Promise<Connection | undefined>>();
  /** Connections whose accept has answered: their requests go on without a wait. */
  private readonly ready = new WeakMap<Socket, Connection>();

  constructor(readonly port: number, rules: HttpRule[], private readonly d: ListenerDeps) {
    this.rules = compileRules(rules);
    this.server = createServer({ keepAlive: true, noDelay: true }, (req, res) => void this.handle(req, res));
    this.server.on('connection', (s: Socket) => this.connections.set(s, this.accept(s)));
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

  private async accept(s: Socket): Promise<Connection | undefined> {
    const client = s.remoteAddress ?? '';
    const clientPort = s.remotePort ?? 0;
    const down = await this.d.accept(client, clientPort);
    if (!down) {
      this.d.log('warn', 'proxy connection without a redirect entry', { client, clientPort });
      s.destroy();
      return undefined;
    }
    const peers = { client: { ip: client, port: clientPort }, server: { ip: down.server, port: down.serverPort } };
    const c: Connection = { ...down, client, clientPort, peers, agent: this.upstreamAgent(client, clientPort, () => c) };
    this.ready.set(s, c);
    s.once('close', () => {
      c.agent.destroy();
      if (c.upstreamPort) this.d.release(c.upstreamPort);
    });
    return c;
  }

  /** One upstream connection at a time per client connection, bound to a port the datapath maps to the client. */
  private upstreamAgent(client: string, clientPort: number, conn: () => Connection): Agent {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const d = this.d;
    type Create = (opts: { host?: string; port?: number | string }, cb: (err: Error | null, s?: Socket) => void) => undefined;
    (agent as unknown as { createConnection: Create }).createConnection = (opts, cb) => {
      const c = conn();
      const spare = c.upstreamPort; // registered with the connection: the first upstream needs no round trip
      c.upstreamPort = 0;
      void (spare ? Promise.resolve(spare) : d.upstreamPort(client, clientPort)).then((port) => {
        if (!port) return cb(new Error('no upstream port for the L7 proxy'));
        const sock = connectUpstream(d.routerIP, port, opts.host ?? '', Number(opts.port));
        sock.once('close', () => d.release(port));
        cb(null, sock);
      });
      return undefined;
    };
    return agent;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    const c = this.ready.get(req.socket) ?? (await this.connections.get(req.socket));
    if (!c) return;
    const raw = req.rawHeaders;
    const host = rawHeader(raw, 'host') ?? '';
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const requestId = randomUUID();
    const base = {
      method, url: `http://${host}${path}`, protocol: req.httpVersion === '1.1' ? 'HTTP/1.1' : `HTTP/${req.httpVersion}`,
      client: c.peers.client, server: c.peers.server, endpoint: c.endpoint, proxyPort: this.port,
    };
    const fixes = allowed(this.rules, { method, path, host, header: (n) => headerValue(req, n) });
    // Without header fixes the client's header lines go on as they came (a flat list: no object to build).
    const headers = fixes?.length ? applyFixes({ ...req.headers, 'x-forwarded-proto': 'http', 'x-request-id': requestId }, fixes) : forwarded(raw, requestId);
    if (!fixes) {
      this.d.onEvent({ ...base, type: 'request', verdict: 'Denied', status: 403, headers: flowHeaders(headers) }); // as Cilium logs a denied request
      req.resume(); // drain the body so the connection stays usable
      const reply = { 'content-type': 'text/plain', 'content-length': String(ACCESS_DENIED.length) };
      res.writeHead(403, reply);
      res.end(ACCESS_DENIED);
      this.d.onEvent({ ...base, type: 'response', verdict: 'Denied', status: 403, latencyMs: elapsed(started), headers: flowHeaders(reply, requestId) });
      return;
    }
    this.d.onEvent({ ...base, type: 'request', verdict: 'Forwarded', headers: flowHeaders(headers) });
    const up = request({ host: c.server, port: c.serverPort, method, path, headers, agent: c.agent, setHost: false }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, upRes.headers);
      upRes.pipe(res);
      upRes.on('end', () => this.d.onEvent({
        ...base, type: 'response', verdict: 'Forwarded', status: upRes.statusCode, latencyMs: elapsed(started), headers: flowHeaders(upRes.headers, requestId),
      }));
    });
    up.on('error', (err) => {
      this.d.log('debug', 'upstream failed', { err: err.message, server: c.server });
      const reply = { 'content-type': 'text/plain', 'content-length': String(UPSTREAM_FAILED.length) };
      if (!res.headersSent) {
        res.writeHead(503, reply);
        res.end(UPSTREAM_FAILED);
      } else res.destroy();
      this.d.onEvent({ ...base, type: 'response', verdict: 'Error', status: 503, latencyMs: elapsed(started), headers: flowHeaders(reply, requestId) });
    });
    // A request without a body ends here; one with a body streams: a large upload never sits in memory.
    if (req.headers['transfer-encoding'] === undefined && (req.headers['content-length'] ?? '0') === '0') up.end();
    else req.pipe(up);
  }
}

/** The first value of header `name` (lower case) in a raw [name, value, …] list. */
function rawHeader(raw: string[], name: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) if (raw[i].length === name.length && raw[i].toLowerCase() === name) return raw[i + 1];
  return undefined;
}

/** The request's header lines for the server: the client's, with our X-Forwarded-Proto and X-Request-Id in place of any it sent. */
function forwarded(raw: string[], requestId: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i].toLowerCase();
    if (k !== 'x-forwarded-proto' && k !== 'x-request-id') out.push(raw[i], raw[i + 1]);
  }
  out.push('x-forwarded-proto', 'http', 'x-request-id', requestId);
  return out;
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

function applyFixes(headers: OutgoingHttpHeaders, fixes: HeaderFix[]): OutgoingHttpHeaders {
  for (const f of fixes) {
    if (f.action === 'DELETE') delete headers[f.name];
    else if (f.action === 'REPLACE' || (f.action === 'ADD' && headers[f.name] === undefined)) headers[f.name] = f.value ?? '';
  }
  return headers;
}

const canonical = new Map<string, string>();
/** Go's textproto.CanonicalMIMEHeaderKey, as Hubble shows header names: "x-request-id" → "X-Request-Id". */
function canonicalHeaderKey(k: string): string {
  let c = canonical.get(k);
  if (c === undefined) {
    c = k.toLowerCase().replace(/(^|-)([a-z])/g, (_m, dash: string, ch: string) => dash + ch.toUpperCase());
    if (canonical.size < 1024) canonical.set(k, c); // header names repeat; a client inventing new ones does not grow this
  }
  return c;
}

/** A message's headers (an object, or a flat [name, value, …] list) for the flow; a response's start with the request's X-Request-Id. */
function flowHeaders(h: OutgoingHttpHeaders | string[], requestId?: string): Array<{ key: string; value: string }> {
  const out: Array<{ key: string; value: string }> = requestId === undefined ? [] : [{ key: 'X-Request-Id', value: requestId }];
  const add = (k: string, v: string) => {
    const lower = k.toLowerCase();
    if (NOT_LOGGED.has(lower) || (requestId !== undefined && lower === 'x-request-id' && v === requestId)) return;
    out.push({ key: canonicalHeaderKey(k), value: v });
  };
  if (Array.isArray(h)) for (let i = 0; i < h.length; i += 2) add(h[i], h[i + 1]);
  else for (const [k, v] of Object.entries(h)) if (v !== undefined) for (const one of Array.isArray(v) ? v : [v]) add(k, String(one));
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

const elapsed = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
