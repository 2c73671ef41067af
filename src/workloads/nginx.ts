// nginx (the official image without configuration): the "Welcome to nginx!" page on port 80, nginx's error pages,
// and a combined-format access log on stdout. --port or env NGINX_PORT moves it (for tests).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { portFrom, serve } from './common.ts';

const VERSION = 'nginx/1.27.4';
const port = portFrom(process.argv.slice(2), ['NGINX_PORT'], 80);

const WELCOME = `<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
<style>
html { color-scheme: light dark; }
body { width: 35em; margin: 0 auto;
font-family: Tahoma, Verdana, Arial, sans-serif; }
</style>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. Further configuration is required.</p>

<p>For online documentation and support please refer to
<a href="http://nginx.org/">nginx.org</a>.<br/>
Commercial support is available at
<a href="http://nginx.com/">nginx.com</a>.</p>

<p><em>Thank you for using nginx.</em></p>
</body>
</html>
`;

const FIFTY_X = `<!DOCTYPE html>
<html>
<head>
<title>Error</title>
<style>
html { color-scheme: light dark; }
body { width: 35em; margin: 0 auto;
font-family: Tahoma, Verdana, Arial, sans-serif; }
</style>
</head>
<body>
<h1>An error occurred.</h1>
<p>Sorry, the page you are looking for is currently unavailable.<br/>
Please try again later.</p>
<p>If you are the system administrator of this resource then you should check
the error log for details.</p>
<p><em>Faithfully yours, nginx.</em></p>
</body>
</html>
`;

const errorPage = (status: string) =>
  `<html>\r\n<head><title>${status}</title></head>\r\n<body>\r\n<center><h1>${status}</h1></center>\r\n<hr><center>${VERSION}</center>\r\n</body>\r\n</html>\r\n`;

const PAGES: Record<string, string> = { '/': WELCOME, '/index.html': WELCOME, '/50x.html': FIFTY_X };

function accessLog(req: IncomingMessage, status: number, bytes: number): void {
  const d = new Date();
  const mon = d.toLocaleString('en-US', { month: 'short', timeZone: 'UTC' });
  const p = (n: number) => String(n).padStart(2, '0');
  const time = `${p(d.getUTCDate())}/${mon}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
  const ip = (req.socket.remoteAddress ?? '-').replace(/^::ffff:(?=\d+\.)/, '');
  const q = (h: string | string[] | undefined) => (typeof h === 'string' && h ? h : '-');
  process.stdout.write(
    `${ip} - - [${time}] "${req.method} ${req.url} HTTP/${req.httpVersion}" ${status} ${bytes} "${q(req.headers.referer)}" "${q(req.headers['user-agent'])}" "${q(req.headers['x-forwarded-for'])}"\n`,
  );
}

function reply(req: IncomingMessage, res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { Server: VERSION, 'Content-Type': 'text/html', 'Content-Length': Buffer.byteLength(body), ...(status === 200 ? { 'Accept-Ranges': 'bytes' } : {}) });
  res.end(req.method === 'HEAD' ? undefined : body);
  accessLog(req, status, req.method === 'HEAD' ? 0 : Buffer.byteLength(body));
}

const server = createServer((req, res) => {
  req.resume();
  const path = new URL(req.url ?? '/', 'http://nginx').pathname;
  const page = PAGES[path];
  if (!page) return reply(req, res, 404, errorPage('404 Not Found'));
  if (req.method !== 'GET' && req.method !== 'HEAD') return reply(req, res, 405, errorPage('405 Not Allowed'));
  reply(req, res, 200, page);
});

serve(server, port, () => `${new Date().toISOString()} [notice] 1#1: start worker processes`);
