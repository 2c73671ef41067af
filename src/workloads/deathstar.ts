// cilium/starwars: the Star Wars demo's deathstar API (a go-swagger server), as in http-sw-app.yaml.
// Flags: --port (env PORT, default 80). DEATHSTAR_EXPLODE=1 makes PUT /v1/exhaust-port also crash the process
// two seconds later (exit 2), as the real one does; by default the station survives so labs can go on.
import { createServer, type ServerResponse } from 'node:http';
import { hostname } from 'node:os';
import { portFrom, serve } from './common.ts';

const port = portFrom(process.argv.slice(2), ['PORT'], 80);

const BACKTRACE = `Panic: deathstar exploded

goroutine 1 [running]:
main.HandleGarbage(0x2080c3f50, 0x2, 0x4, 0x425c0, 0x5, 0xa)
        /code/src/github.com/empire/deathstar/
        temp/main.go:9 +0x64
main.main()
        /code/src/github.com/empire/deathstar/
        temp/main.go:5 +0x85
`;

const INFO = `{
\t"name": "Death Star",
\t"hostname": "${hostname()}",
\t"model": "DS-1 Orbital Battle Station",
\t"manufacturer": "Imperial Department of Military Research, Sienar Fleet Systems",
\t"cost_in_credits": "1000000000000",
\t"length": "120000",
\t"crew": "342953",
\t"passengers": "843342",
\t"cargo_capacity": "1000000000000",
\t"hyperdrive_rating": "4.0",
\t"starship_class": "Deep Space Mobile Battlestation",
\t"api": [
\t\t"GET   /v1",
\t\t"GET   /v1/healthz",
\t\t"POST  /v1/request-landing",
\t\t"PUT   /v1/cargobay",
\t\t"GET   /v1/hyper-matter-reactor/status",
\t\t"PUT   /v1/exhaust-port"
\t]
}
`;

type Handler = (res: ServerResponse) => void;
const send = (res: ServerResponse, status: number, type: string, body: string, extra: Record<string, string> = {}) =>
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), ...extra }).end(body);
const text = (res: ServerResponse, status: number, body: string) => send(res, status, 'text/plain', body);
const notImplemented = (op: string): Handler => (res) => text(res, 501, `operation ${op} has not yet been implemented`);

function explode(): void {
  if (!/^(1|true|yes)$/i.test(process.env.DEATHSTAR_EXPLODE ?? '')) return;
  setTimeout(() => {
    process.stderr.write('panic: deathstar exploded\n\ngoroutine 42 [running]:\nmain.configureAPI.func2.1()\n');
    process.exit(2);
  }, 2000).unref();
}

/** path → method → handler; go-swagger's router answers 405 for a known path with another method, 404 otherwise. */
const ROUTES: Record<string, Record<string, Handler>> = {
  '/v1': { GET: (res) => text(res, 200, INFO) },
  '/v1/healthz': { GET: (res) => text(res, 200, '') },
  '/v1/request-landing': { POST: (res) => text(res, 200, 'Ship landed\n') },
  '/v1/cargobay': { PUT: notImplemented('PutCargobay') },
  '/v1/hyper-matter-reactor/status': { GET: notImplemented('GetHyperMatterReactorStatus') },
  '/v1/exhaust-port': {
    PUT: (res) => {
      explode();
      text(res, 503, BACKTRACE);
    },
  },
};

const server = createServer((req, res) => {
  req.resume();
  const path = new URL(req.url ?? '/', 'http://deathstar').pathname.replace(/(.)\/+$/, '$1');
  const route = ROUTES[path];
  const json = (status: number, message: string, extra: Record<string, string> = {}) =>
    send(res, status, 'application/json', JSON.stringify({ code: status, message }), extra);
  if (!route) return json(404, `path ${path} was not found`);
  const handler = route[req.method ?? 'GET'];
  if (!handler) {
    const allowed = Object.keys(route);
    return json(405, `method ${req.method} is not allowed, but [${allowed.join(',')}] are`, { Allow: allowed.join(',') });
  }
  handler(res);
});

serve(server, port, (p) => `Serving deathstar at http://[::]:${p}`, process.stdout);
