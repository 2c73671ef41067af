// traefik/whoami: answers every request with the pod's hostname, addresses, the peer, and the request as received.
// Flags as the real image: -port (env WHOAMI_PORT_NUMBER, default 80), -name (env WHOAMI_NAME).
// Routes: /api (JSON), /health (GET: current status; POST an integer to change it), /bench ("1"), anything else: the dump.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { hostname } from 'node:os';
import { flagValue, goLogTime, interfaceIPs, portFrom, readBody, remoteAddr, serve } from './common.ts';

const argv = process.argv.slice(2);
const port = portFrom(argv, ['WHOAMI_PORT_NUMBER'], 80);
const name = flagValue(argv, 'name') ?? process.env.WHOAMI_NAME ?? '';
let healthStatus = 200;

/** Go's textproto.CanonicalMIMEHeaderKey: `x-request-id` → `X-Request-Id`; keys with non-token bytes stay as they are. */
function canonicalKey(key: string): string {
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(key)) return key;
  return key.toLowerCase().replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase());
}

/** Request headers grouped by canonical key in arrival order, minus Host (Go keeps it in r.Host). */
function headerMap(req: IncomingMessage): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const key = canonicalKey(req.rawHeaders[i]);
    if (key === 'Host') continue;
    const values = m.get(key) ?? [];
    values.push(req.rawHeaders[i + 1].trim());
    m.set(key, values);
  }
  return m;
}

/** r.URL.RequestURI(): the origin-form target, also for absolute-form requests. */
function requestURI(url: string): string {
  const abs = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(url);
  if (!abs) return url;
  const rest = url.slice(abs[0].length);
  return rest === '' ? '/' : rest.startsWith('/') ? rest : `/${rest}`;
}

const SKIP = new Set(['Host', 'User-Agent', 'Content-Length', 'Transfer-Encoding', 'Trailer']);

/** The request in wire format, as Go's (*http.Request).Write renders it: Host, User-Agent, length, then sorted headers, CRLFs. */
function requestDump(req: IncomingMessage, body: Buffer): Buffer {
  const headers = headerMap(req);
  const method = req.method ?? 'GET';
  const ua = headers.has('User-Agent') ? headers.get('User-Agent')![0] : 'Go-http-client/1.1';
  const chunked = /(^|,)\s*chunked\s*$/i.test(req.headers['transfer-encoding'] ?? '');
  let head = `${method} ${requestURI(req.url ?? '/')} HTTP/1.1\r\nHost: ${req.headers.host ?? ''}\r\n`;
  if (ua) head += `User-Agent: ${ua}\r\n`;
  if (chunked) head += 'Transfer-Encoding: chunked\r\n';
  else if (body.length > 0 || ['POST', 'PUT', 'PATCH'].includes(method)) head += `Content-Length: ${body.length}\r\n`;
  for (const key of [...headers.keys()].filter((k) => !SKIP.has(k)).sort()) {
    for (const v of headers.get(key)!) head += `${key}: ${v}\r\n`;
  }
  head += '\r\n';
  if (!chunked) return Buffer.concat([Buffer.from(head), body]);
  const chunk = body.length ? [Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n')] : [];
  return Buffer.concat([Buffer.from(head), ...chunk, Buffer.from('0\r\n\r\n')]);
}

/** Go duration strings as `?wait=` takes them: 300ms, 1s, 1.5m, 1h2m. */
function durationMs(s: string): number | undefined {
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1e3, m: 6e4, h: 3.6e6 };
  const parts = [...s.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)];
  if (!parts.length || parts.map((p) => p[0]).join('') !== s) return undefined;
  return parts.reduce((ms, p) => ms + Number(p[1]) * unit[p[2]], 0);
}

async function whoami(req: IncomingMessage, res: ServerResponse, query: URLSearchParams): Promise<void> {
  const wait = durationMs(query.get('wait') ?? '');
  if (wait) await new Promise((r) => setTimeout(r, wait));
  const body = await readBody(req);
  let text = name ? `Name: ${name}\n` : '';
  text += `Hostname: ${hostname()}\n`;
  for (const ip of interfaceIPs()) text += `IP: ${ip}\n`;
  text += `RemoteAddr: ${remoteAddr(req.socket)}\n`;
  const parts = [Buffer.from(text), requestDump(req, body)];
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(query.get('env') ?? '')) {
    parts.push(Buffer.from(Object.entries(process.env).map(([k, v]) => `${k}=${v}\n`).join('')));
  }
  const out = Buffer.concat(parts);
  res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': out.length }).end(out);
}

function api(req: IncomingMessage, res: ServerResponse): void {
  const data = {
    hostname: hostname(),
    ip: interfaceIPs(),
    headers: Object.fromEntries([...headerMap(req)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    url: requestURI(req.url ?? '/'),
    host: req.headers.host ?? '',
    method: req.method,
    ...(name ? { name } : {}),
    remoteAddr: remoteAddr(req.socket),
  };
  // encoding/json escapes <, > and & for HTML safety.
  const json = JSON.stringify(data).replace(/[<>&]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`);
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(json) + 1 }).end(`${json}\n`);
}

async function health(req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'POST') {
    res.writeHead(healthStatus).end();
    return;
  }
  const code = Number((await readBody(req)).toString().trim());
  if (!Number.isInteger(code) || code < 100 || code > 999) {
    res.writeHead(400, { 'Content-Type': 'text/plain; charset=utf-8' }).end('invalid status code\n');
    return;
  }
  healthStatus = code;
  res.writeHead(200).end();
}

const server = createServer((req, res) => {
  const url = new URL(requestURI(req.url ?? '/'), 'http://whoami');
  const done = (p: Promise<void> | void) => Promise.resolve(p).catch(() => res.destroy());
  if (url.pathname === '/api') done(api(req, res));
  else if (url.pathname === '/health') done(health(req, res));
  else if (url.pathname === '/bench') res.writeHead(200, { Connection: 'keep-alive', 'Content-Type': 'text/plain' }).end('1');
  else done(whoami(req, res, url.searchParams));
});

serve(server, port, (p) => `${goLogTime()} Starting up on port ${p}`);
