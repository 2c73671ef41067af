// quay.io/cilium/json-mock (tiefighter, xwing, mediabot in Cilium's demos): json-server over a two-resource db on
// port 80 (env PORT or --port). Routes: /db, /<resource>, /<resource>/<id>; /auth-header-required… needs
// `Authorization: Bearer 123456`, as the image's middleware does.
import { createServer, type ServerResponse } from 'node:http';
import { portFrom, serve } from './common.ts';

const port = portFrom(process.argv.slice(2), ['PORT'], 80);
const DB: Record<string, Array<{ id: number; body: string }>> = {
  private: [{ id: 1, body: 'secret information' }],
  public: [{ id: 1, body: 'public information' }],
};

const HOME = `<!DOCTYPE html>
<html>
<head><title>JSON Server</title></head>
<body>
<h1>Congrats!</h1>
<p>You're successfully running JSON Server</p>
<ul>${Object.keys(DB).map((r) => `<li><a href="${r}">/${r}</a></li>`).join('')}<li><a href="db">/db</a></li></ul>
</body>
</html>
`;

const json = (res: ServerResponse, status: number, value: unknown) => {
  const body = JSON.stringify(value, null, 2);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) }).end(body);
};

const server = createServer((req, res) => {
  req.resume();
  const path = new URL(req.url ?? '/', 'http://json-mock').pathname;
  if (path.startsWith('/auth-header-required') && req.headers.authorization !== 'Bearer 123456') {
    return res.writeHead(401, { 'Content-Type': 'text/html; charset=utf-8' }).end('Invalid Authorization header, try setting it to "Bearer 123456"');
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 404, {});
  if (path === '/') return res.writeHead(200, { 'Content-Type': 'text/html; charset=UTF-8' }).end(HOME);
  if (path === '/db') return json(res, 200, DB);
  const [, resource = '', id] = path.split('/');
  const items = DB[resource];
  if (!items) return json(res, 404, {});
  if (id === undefined || id === '') return json(res, 200, items);
  const item = items.find((i) => String(i.id) === id);
  return item ? json(res, 200, item) : json(res, 404, {});
});

serve(server, port, (p) => `\n  \\{^_^}/ hi!\n\n  Resources\n${Object.keys(DB).map((r) => `  http://localhost:${p}/${r}`).join('\n')}\n`, process.stdout);
