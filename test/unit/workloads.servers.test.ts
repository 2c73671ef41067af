// The built-in workloads run for real as child processes on 127.0.0.1 and high ports (no root needed).
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { connect, createServer } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtin, workloadFor, type BuiltinName } from '../../src/workloads/images.ts';

const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function spawnArgv(argv: string[], env: Record<string, string> = {}): ChildProcess {
  const child = spawn(argv[0], argv.slice(1), { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return child;
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`workload exited with ${child.exitCode}`);
    const up = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`port ${port} never opened`);
}

async function start(name: BuiltinName, args: (port: number) => string[], env: (port: number) => Record<string, string> = () => ({})) {
  const port = await freePort();
  const w = builtin(name, args(port), env(port));
  const child = spawnArgv(w.argv, w.env);
  await waitForPort(port, child);
  return { port, child, url: `http://127.0.0.1:${port}` };
}

/** One request over a raw socket, bytes exactly as given; returns status, headers (lower-case) and body. */
function raw(port: number, request: string): Promise<{ status: number; headers: Record<string, string>; body: string; localPort: number }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = connect(port, '127.0.0.1', () => s.write(request));
    s.on('data', (c) => chunks.push(c));
    s.on('error', reject);
    s.on('end', () => {
      const text = Buffer.concat(chunks).toString();
      const split = text.indexOf('\r\n\r\n');
      const [statusLine, ...lines] = text.slice(0, split).split('\r\n');
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body: text.slice(split + 4), localPort: s.localPort ?? 0 });
    });
  });
}

const allIPs = () => Object.values(networkInterfaces()).flatMap((as) => (as ?? []).map((a) => a.address));

describe('whoami', () => {
  let port = 0;
  beforeAll(async () => {
    ({ port } = await start('whoami', (p) => ['--port', String(p)]));
  });

  it('prints Hostname, IPs, RemoteAddr, then the request as received (Go wire format)', async () => {
    const r = await raw(
      port,
      'GET /?user_id=1234 HTTP/1.1\r\nHost: 10.96.50.1\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\nx-request-id: 1991\r\nX-Envoy-Internal: true\r\nConnection: close\r\n\r\n',
    );
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/plain; charset=utf-8');
    const [info, request] = [r.body.slice(0, r.body.indexOf('GET ')), r.body.slice(r.body.indexOf('GET '))];
    expect(info.split('\n')).toEqual([`Hostname: ${hostname()}`, ...allIPs().map((ip) => `IP: ${ip}`), `RemoteAddr: 127.0.0.1:${r.localPort}`, '']);
    expect(info).toContain('IP: 127.0.0.1\n');
    // Host and User-Agent first, the other headers sorted by canonical key, CRLF line ends as Go's Request.Write.
    expect(request).toBe(
      'GET /?user_id=1234 HTTP/1.1\r\nHost: 10.96.50.1\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\nConnection: close\r\nX-Envoy-Internal: true\r\nX-Request-Id: 1991\r\n\r\n',
    );
  });

  it('a POST shows Content-Length and the body; a missing User-Agent shows Go\'s', async () => {
    const post = await raw(port, 'POST /v1/x HTTP/1.1\r\nHost: webpod\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello');
    expect(post.body).toMatch(/POST \/v1\/x HTTP\/1\.1\r\nHost: webpod\r\nUser-Agent: Go-http-client\/1\.1\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello$/);
    const empty = await raw(port, 'POST / HTTP/1.1\r\nHost: webpod\r\nUser-Agent: curl/8\r\nConnection: close\r\n\r\n');
    expect(empty.body).toContain('User-Agent: curl/8\r\nContent-Length: 0\r\n');
  });

  it('/api answers JSON; /health and /bench', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/api?x=1`, { headers: { 'X-Test': 'a' } });
    const data = (await res.json()) as Record<string, unknown>;
    expect(data).toMatchObject({ hostname: hostname(), url: '/api?x=1', host: `127.0.0.1:${port}`, method: 'GET', ip: allIPs() });
    expect((data.headers as Record<string, string[]>)['X-Test']).toEqual(['a']);
    expect(data.remoteAddr).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(Object.keys(data)).toEqual(['hostname', 'ip', 'headers', 'url', 'host', 'method', 'remoteAddr']);
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/health`, { method: 'POST', body: '503' })).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(503);
    const bench = await fetch(`http://127.0.0.1:${port}/bench`);
    expect([bench.status, await bench.text()]).toEqual([200, '1']);
  });

  it('WHOAMI_PORT_NUMBER and WHOAMI_NAME configure it like the real image', async () => {
    const { port: p } = await start('whoami', () => [], (q) => ({ WHOAMI_PORT_NUMBER: String(q), WHOAMI_NAME: 'webpod1' }));
    const text = await (await fetch(`http://127.0.0.1:${p}/`)).text();
    expect(text.split('\n').slice(0, 2)).toEqual(['Name: webpod1', `Hostname: ${hostname()}`]);
  });

  it('the argv workloadFor gives for traefik/whoami runs', async () => {
    const p = await freePort();
    const w = workloadFor({ image: 'docker.io/traefik/whoami:v1.10', args: ['--port', String(p)] });
    if ('error' in w) throw new Error(w.error);
    await waitForPort(p, spawnArgv(w.argv, w.env));
    expect(await (await fetch(`http://127.0.0.1:${p}/`)).text()).toMatch(/^Hostname: /);
  });
});

describe('deathstar', () => {
  let url = '';
  let child: ChildProcess;
  beforeAll(async () => {
    ({ url, child } = await start('deathstar', () => [], (p) => ({ PORT: String(p) })));
  });

  it('POST /v1/request-landing lands the ship', async () => {
    const res = await fetch(`${url}/v1/request-landing`, { method: 'POST' });
    expect([res.status, await res.text()]).toEqual([200, 'Ship landed\n']);
  });

  it('PUT /v1/exhaust-port panics with the goroutine trace (503), and the station stays up', async () => {
    const res = await fetch(`${url}/v1/exhaust-port`, { method: 'PUT' });
    expect(res.status).toBe(503);
    expect(await res.text()).toBe(
      'Panic: deathstar exploded\n\ngoroutine 1 [running]:\nmain.HandleGarbage(0x2080c3f50, 0x2, 0x4, 0x425c0, 0x5, 0xa)\n' +
        '        /code/src/github.com/empire/deathstar/\n        temp/main.go:9 +0x64\nmain.main()\n' +
        '        /code/src/github.com/empire/deathstar/\n        temp/main.go:5 +0x85\n',
    );
    expect(child.exitCode).toBeNull();
  });

  it('GET /v1 describes the station and its API', async () => {
    const res = await fetch(`${url}/v1`);
    expect(res.headers.get('content-type')).toBe('text/plain');
    const info = JSON.parse(await res.text()) as Record<string, unknown>;
    expect(info).toMatchObject({ name: 'Death Star', hostname: hostname(), model: 'DS-1 Orbital Battle Station', starship_class: 'Deep Space Mobile Battlestation' });
    expect(info.api).toEqual([
      'GET   /v1', 'GET   /v1/healthz', 'POST  /v1/request-landing', 'PUT   /v1/cargobay', 'GET   /v1/hyper-matter-reactor/status', 'PUT   /v1/exhaust-port',
    ]);
    expect((await fetch(`${url}/v1/`)).status).toBe(200);
  });

  it('healthz 200, unknown paths 404, wrong methods 405', async () => {
    expect((await fetch(`${url}/v1/healthz`)).status).toBe(200);
    const missing = await fetch(`${url}/v2/nothing`);
    expect([missing.status, await missing.json()]).toEqual([404, { code: 404, message: 'path /v2/nothing was not found' }]);
    expect((await fetch(`${url}/v1/exhaust-port`)).status).toBe(405);
    expect((await fetch(`${url}/v1/request-landing`)).status).toBe(405);
  });

  it('DEATHSTAR_EXPLODE=1: the process dies (exit 2) two seconds after the exhaust port', async () => {
    const d = await start('deathstar', (p) => ['--port', String(p)], () => ({ DEATHSTAR_EXPLODE: '1' }));
    expect((await fetch(`${d.url}/v1/exhaust-port`, { method: 'PUT' })).status).toBe(503);
    expect(await exited(d.child)).toEqual({ code: 2, signal: null });
  });
});

describe('nginx and json-mock', () => {
  it('nginx serves the welcome page, 404s elsewhere', async () => {
    const { url } = await start('nginx', (p) => ['--port', String(p)]);
    const res = await fetch(`${url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('server')).toMatch(/^nginx\//);
    const html = await res.text();
    expect(html).toContain('<title>Welcome to nginx!</title>');
    expect(html).toContain('<p><em>Thank you for using nginx.</em></p>');
    const missing = await fetch(`${url}/nope`);
    expect([missing.status, await missing.text()]).toEqual([404, expect.stringContaining('<center><h1>404 Not Found</h1></center>')]);
  });

  it('json-mock serves its db and guards /auth-header-required', async () => {
    const { url } = await start('json-mock', () => [], (p) => ({ PORT: String(p) }));
    expect(await (await fetch(`${url}/public`)).json()).toEqual([{ id: 1, body: 'public information' }]);
    expect(await (await fetch(`${url}/private/1`)).json()).toEqual({ id: 1, body: 'secret information' });
    expect((await fetch(`${url}/`)).status).toBe(200);
    expect((await fetch(`${url}/auth-header-required/x`)).status).toBe(401);
  });
});

describe('idle, echo-server, host commands', () => {
  it('idle stays up and exits 0 within 1 s of SIGTERM', async () => {
    const w = builtin('idle', []);
    const child = spawnArgv(w.argv);
    await new Promise((r) => setTimeout(r, 2000)); // tsx loaded and the handler installed
    expect(child.exitCode).toBeNull();
    const t0 = Date.now();
    child.kill('SIGTERM');
    expect(await exited(child)).toEqual({ code: 0, signal: null });
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('echo-server echoes TCP and UDP', async () => {
    const { port } = await start('echo-server', (p) => [String(p)]);
    const tcp = await new Promise<string>((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => s.write('ping'));
      s.on('data', (d) => {
        resolve(d.toString());
        s.destroy();
      });
      s.on('error', reject);
    });
    expect(tcp).toBe('ping');
    const udp = await new Promise<string>((resolve) => {
      const s = createSocket('udp4');
      s.on('message', (m) => {
        resolve(m.toString());
        s.close();
      });
      const send = () => s.send('pong', port, '127.0.0.1');
      send();
      const retry = setInterval(send, 200);
      s.on('close', () => clearInterval(retry));
    });
    expect(udp).toBe('pong');
  });

  it('a netshoot `command` runs as given on the host', async () => {
    const w = workloadFor({ image: 'nicolaka/netshoot', command: ['/bin/sh', '-c'], args: ['echo "$GREETING"; exit 3'], env: [{ name: 'GREETING', value: 'hi' }] });
    if ('error' in w) throw new Error(w.error);
    const child = spawnArgv(w.argv, w.env);
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    expect(await exited(child)).toEqual({ code: 3, signal: null });
    expect(out).toBe('hi\n');
  });
});
