// The agent API over a real unix socket, against an in-memory agent.
import { mkdtempSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiServer } from '../../src/api/index.ts';
import {
  ApiError, type AgentFacade, type AgentStatus, type Endpoint, type MapEntryView, type MapSummary, type MonitorEvent, type Pod, type PodSpec,
} from '../../src/control/types.ts';

class FakeAgent implements AgentFacade {
  readonly nodeName = 'node-a';
  pods = new Map<string, Pod>();
  subscribers = new Set<(e: MonitorEvent) => void>();
  created: PodSpec[] = [];
  nextId = 100;

  status(): AgentStatus {
    return {
      node: 'node-a', nodeIP: '192.168.10.100', version: '0.1.0-test', uptimeSeconds: 5, kvstore: 'Ok local',
      ipam: { cidr: '172.20.0.0/24', allocated: [{ ip: '172.20.0.1', owner: 'router' }] }, routerIP: '172.20.0.1', routingMode: 'tunnel',
      endpoints: { total: 1, ready: 1 }, maps: this.listMaps(),
      datapath: { devices: 1, rxPackets: 1, rxBytes: 2, txPackets: 3, txBytes: 4, drops: 0, forwards: 1 },
      controllers: { total: 3, failing: 0 },
    };
  }
  config(): Record<string, unknown> {
    return { 'routing-mode': 'tunnel', 'kvstore-opt': { a: 'b' } };
  }
  listPods(): Pod[] {
    return [...this.pods.values()];
  }
  getPod(namespace: string, name: string): Pod | undefined {
    return this.pods.get(`${namespace}/${name}`);
  }
  async createPod(spec: PodSpec): Promise<Pod> {
    this.created.push(spec);
    if (this.pods.has(`${spec.namespace}/${spec.name}`)) throw new ApiError(409, `pod "${spec.namespace}/${spec.name}" already exists`);
    if (spec.node && spec.node !== this.nodeName) throw new ApiError(400, `node: "${spec.node}" is not this agent's node "${this.nodeName}"`);
    if (spec.name === 'explode') throw new Error('netns creation failed: boom');
    const id = this.nextId++;
    const pod: Pod = {
      name: spec.name, namespace: spec.namespace, labels: spec.labels, node: this.nodeName, podIP: `172.20.0.${id - 90}`, endpointID: id,
      state: 'ready', netns: `ciliary-${spec.namespace}-${spec.name}`, ifindex: 2, createdAt: new Date().toISOString(), command: spec.command,
    };
    this.pods.set(`${spec.namespace}/${spec.name}`, pod);
    return pod;
  }
  async deletePod(namespace: string, name: string): Promise<void> {
    this.pods.delete(`${namespace}/${name}`);
  }
  listEndpoints(): Endpoint[] {
    return [{ id: 7, podName: '', identity: 1, labels: ['reserved:host'], ipv4: '', ifindex: 1, ifname: 'cilium_host', state: 'ready', policyIngress: 'Disabled', policyEgress: 'Disabled', isHost: true }];
  }
  getEndpoint(id: number): Endpoint | undefined {
    return this.listEndpoints().find((e) => e.id === id);
  }
  listMaps(): MapSummary[] {
    return [{ name: 'cilium_lxc', type: 'hash', keySize: 4, valueSize: 32, maxEntries: 65535, count: 1, pressure: 1 / 65535 }];
  }
  dumpMap(name: string): MapEntryView[] | undefined {
    return name === 'cilium_lxc' ? [{ key: '172.20.0.10:0', value: 'id=100' }] : undefined;
  }
  subscribeMonitor(cb: (e: MonitorEvent) => void): () => void {
    this.subscribers.add(cb);
    return () => this.subscribers.delete(cb);
  }
  emit(e: Partial<MonitorEvent>): void {
    const ev: MonitorEvent = { type: 'trace', time: new Date().toISOString(), summary: 'x', ...e };
    for (const s of this.subscribers) s(ev);
  }
}

interface Reply { status: number; body: any; raw: string }

function call(socketPath: string, method: string, path: string, body?: unknown): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const req = request({ socketPath, method, path, headers: payload ? { 'content-type': 'application/json' } : {} }, (res) => {
      let raw = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (raw += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, raw, body: raw ? JSON.parse(raw) : undefined }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('agent API on a unix socket', () => {
  let dir: string;
  let sock: string;
  let agent: FakeAgent;
  let api: ApiServer;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ciliary-api-'));
    sock = join(dir, 'agent.sock');
    writeFileSync(sock, 'stale'); // a leftover file from a killed agent must not stop startup
    agent = new FakeAgent();
    api = await startApi(agent, { socketPath: sock, port: 0, logger: pino({ level: 'silent' }), monitorMaxBufferedBytes: 4096 });
  });
  afterAll(async () => {
    await api?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('listens with mode 0600 and answers healthz', async () => {
    expect(statSync(sock).mode & 0o777).toBe(0o600);
    expect(await call(sock, 'GET', '/v1/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
  });

  it('also answers on TCP 127.0.0.1 when a port is given', async () => {
    expect(api.port).toBeGreaterThan(0);
    const res = await fetch(`http://127.0.0.1:${api.port}/v1/healthz`);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('serves status, config, endpoints and maps', async () => {
    const st = await call(sock, 'GET', '/v1/status');
    expect(st.body).toMatchObject({ node: 'node-a', ipam: { cidr: '172.20.0.0/24' }, maps: [{ name: 'cilium_lxc', maxEntries: 65535 }] });
    expect((await call(sock, 'GET', '/v1/config')).body).toEqual({ 'routing-mode': 'tunnel', 'kvstore-opt': { a: 'b' } });
    expect((await call(sock, 'GET', '/v1/endpoint')).body[0]).toMatchObject({ id: 7, isHost: true, labels: ['reserved:host'] });
    expect((await call(sock, 'GET', '/v1/endpoint/7')).body.ifname).toBe('cilium_host');
    expect(await call(sock, 'GET', '/v1/endpoint/8')).toMatchObject({ status: 404, body: { error: 'endpoint 8 not found' } });
    expect(await call(sock, 'GET', '/v1/endpoint/abc')).toMatchObject({ status: 400, body: { error: expect.stringContaining('params/id') } });
    expect((await call(sock, 'GET', '/v1/map')).body[0]).toMatchObject({ name: 'cilium_lxc', count: 1 });
    expect((await call(sock, 'GET', '/v1/map/cilium_lxc')).body).toEqual({ name: 'cilium_lxc', entries: [{ key: '172.20.0.10:0', value: 'id=100' }] });
    expect(await call(sock, 'GET', '/v1/map/cilium_nope')).toMatchObject({ status: 404, body: { error: 'map "cilium_nope" not found' } });
    expect(await call(sock, 'GET', '/v1/nothing')).toMatchObject({ status: 404, body: { error: 'no route GET /v1/nothing' } });
  });

  it('creates, gets, lists and deletes pods, filling defaults', async () => {
    const created = await call(sock, 'POST', '/v1/pods', { name: 'xwing', labels: { org: 'alliance', 'app.kubernetes.io/name': 'x' }, command: ['sleep', '1'] });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'xwing', namespace: 'default', endpointID: 100, state: 'ready', netns: 'ciliary-default-xwing' });
    expect(agent.created.at(-1)).toEqual({ name: 'xwing', namespace: 'default', labels: { org: 'alliance', 'app.kubernetes.io/name': 'x' }, command: ['sleep', '1'] });
    expect((await call(sock, 'GET', '/v1/pods/default/xwing')).body.podIP).toBe('172.20.0.10');
    expect((await call(sock, 'GET', '/v1/pods')).body.map((p: Pod) => p.name)).toEqual(['xwing']);
    expect(await call(sock, 'POST', '/v1/pods', { name: 'xwing' })).toMatchObject({ status: 409, body: { error: 'pod "default/xwing" already exists' } });
    expect(await call(sock, 'DELETE', '/v1/pods/default/xwing')).toMatchObject({ status: 200, body: { deleted: true } });
    expect(await call(sock, 'GET', '/v1/pods/default/xwing')).toMatchObject({ status: 404, body: { error: 'pod "default/xwing" not found' } });
    expect((await call(sock, 'DELETE', '/v1/pods/default/xwing')).status).toBe(404);
  });

  it('rejects invalid pod specs naming the field', async () => {
    const cases: Array<[unknown, string]> = [
      [{ name: 'Bad_Name' }, 'body/name must match pattern'],
      [{}, 'body/name is required'],
      [{ name: 'a', bogus: 1 }, 'body/bogus is not allowed'],
      [{ name: 'a', namespace: 'Nope!' }, 'body/namespace must match pattern'],
      [{ name: 'a', labels: { 'bad key!': 'x' } }, 'body/labels key "bad key!"'],
      [{ name: 'a', labels: { org: 'has space' } }, 'body/labels/org must match pattern'],
      [{ name: 'a', labels: { org: 5 } }, 'body/labels/org must be string'],
      [{ name: 'a', labels: { ['x'.repeat(64)]: 'v' } }, 'body/labels key'],
      [{ name: 'a', command: 'sleep 1' }, 'body/command must be array'],
      [{ name: 'a', command: ['sleep', 1] }, 'body/command/1 must be string'],
      [{ name: 'a'.repeat(64) }, 'body/name must NOT have more than 63 characters'],
      [{ name: 42 }, 'body/name must be string'],
    ];
    for (const [body, msg] of cases) {
      const r = await call(sock, 'POST', '/v1/pods', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error, JSON.stringify(body)).toContain(msg);
    }
    const badJson = await call(sock, 'POST', '/v1/pods', '{"name":');
    expect(badJson.status).toBe(400);
    expect(typeof badJson.body.error).toBe('string');
  });

  it('maps ApiError to its status and other errors to 500', async () => {
    expect(await call(sock, 'POST', '/v1/pods', { name: 'y', node: 'other' })).toMatchObject({ status: 400, body: { error: expect.stringContaining('node: "other"') } });
    expect(await call(sock, 'POST', '/v1/pods', { name: 'explode' })).toMatchObject({ status: 500, body: { error: 'netns creation failed: boom' } });
  });

  it('streams monitor events as NDJSON, filtered by type and related-to', async () => {
    const lines: any[] = [];
    const req = request({ socketPath: sock, path: '/v1/monitor?type=drop&related-to=12' });
    const got = new Promise<void>((resolve, reject) => {
      req.on('response', (res) => {
        expect(res.headers['content-type']).toBe('application/x-ndjson');
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          buf += d;
          for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
            lines.push(JSON.parse(buf.slice(0, i)));
            buf = buf.slice(i + 1);
            if (lines.length === 2) resolve();
          }
        });
      });
      req.on('error', reject);
    });
    req.end();
    while (agent.subscribers.size === 0) await sleep(5);
    agent.emit({ type: 'trace', source: 12, summary: 'trace 12' });
    agent.emit({ type: 'drop', source: 13, summary: 'drop 13' });
    agent.emit({ type: 'drop', source: 12, summary: 'drop 12 a', reason: 133 });
    agent.emit({ type: 'drop', source: 12, summary: 'drop 12 b' });
    await got;
    expect(lines.map((l) => l.summary)).toEqual(['drop 12 a', 'drop 12 b']);
    expect(lines[0].reason).toBe(133);
    req.destroy();
    for (let i = 0; i < 100 && agent.subscribers.size > 0; i++) await sleep(10);
    expect(agent.subscribers.size).toBe(0); // the client went away: unsubscribed
  });

  it('drops events for a slow monitor client and says how many', async () => {
    const summaries: string[] = [];
    let resume!: () => void;
    const done = new Promise<void>((resolve, reject) => {
      const req = request({ socketPath: sock, path: '/v1/monitor' }, (res) => {
        res.pause(); // a consumer that does not read
        resume = () => {
          let buf = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => {
            buf += d;
            for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
              const ev = JSON.parse(buf.slice(0, i));
              buf = buf.slice(i + 1);
              summaries.push(ev.summary);
              if (ev.summary === 'last') { req.destroy(); resolve(); }
            }
          });
          res.resume();
        };
      });
      req.on('error', (e) => (summaries.includes('last') ? resolve() : reject(e)));
      req.end();
    });
    while (agent.subscribers.size === 0 || !resume) await sleep(5);
    const big = 'y'.repeat(1000);
    const N = 20000; // ~20 MB: far beyond socket buffers and the 4 KiB backlog
    for (let i = 0; i < N; i++) agent.emit({ summary: `e${i}`, verbose: big });
    const rss = process.memoryUsage().rss;
    resume();
    await sleep(100);
    agent.emit({ summary: 'last' });
    await done;
    const lost = summaries.find((s) => /^lost \d+ events$/.test(s));
    expect(lost).toBeDefined();
    const delivered = summaries.filter((s) => /^e\d+$/.test(s)).length;
    expect(delivered + Number(lost!.split(' ')[1])).toBe(N);
    expect(delivered).toBeLessThan(N / 2);
    expect(process.memoryUsage().rss - rss).toBeLessThan(200 * 1024 * 1024);
  });

  it('serves an OpenAPI document listing every route with its schemas', async () => {
    const doc = (await call(sock, 'GET', '/v1/openapi.json')).body;
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/v1/config', '/v1/endpoint', '/v1/endpoint/{id}', '/v1/healthz', '/v1/map', '/v1/map/{name}', '/v1/monitor', '/v1/openapi.json',
      '/v1/pods', '/v1/pods/{namespace}/{name}', '/v1/status',
    ]);
    expect(Object.keys(doc.paths['/v1/pods']).sort()).toEqual(['get', 'post']);
    expect(Object.keys(doc.paths['/v1/pods/{namespace}/{name}']).sort()).toEqual(['delete', 'get']);
    const post = doc.paths['/v1/pods'].post;
    expect(post.requestBody.content['application/json'].schema.properties.name.pattern).toBe('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$');
    expect(post.responses['201'].content['application/json'].schema.properties.podIP).toEqual({ type: 'string' });
    expect(post.responses['400'].content['application/json'].schema.properties.error).toEqual({ type: 'string' });
    expect(doc.paths['/v1/endpoint/{id}'].get.parameters[0]).toMatchObject({ name: 'id', in: 'path', required: true });
    expect(doc.paths['/v1/monitor'].get.parameters.map((p: any) => p.name)).toEqual(['type', 'related-to']);
    expect(doc.paths['/v1/monitor'].get.responses['200'].content['application/x-ndjson']).toBeDefined();
  });
});

describe('API socket lifecycle', () => {
  it('refuses a socket a live process answers on, and removes its socket on close', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ciliary-api-'));
    const sock = join(dir, 'sub', 'agent.sock');
    try {
      const api = await startApi(new FakeAgent(), { socketPath: sock, logger: pino({ level: 'silent' }) });
      expect(api.port).toBeUndefined();
      await expect(startApi(new FakeAgent(), { socketPath: sock, logger: pino({ level: 'silent' }) })).rejects.toThrow(/in use/);
      await api.close();
      expect(existsSync(sock)).toBe(false);
      // A listener that is not ours still counts as live.
      const other = createServer().listen(sock);
      await new Promise((r) => other.once('listening', r));
      await expect(startApi(new FakeAgent(), { socketPath: sock, logger: pino({ level: 'silent' }) })).rejects.toThrow(/in use/);
      await new Promise((r) => other.close(r));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('close ends open monitor streams instead of hanging', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ciliary-api-'));
    const sock = join(dir, 'agent.sock');
    const agent = new FakeAgent();
    const api = await startApi(agent, { socketPath: sock, logger: pino({ level: 'silent' }) });
    const ended = new Promise<void>((resolve) => {
      request({ socketPath: sock, path: '/v1/monitor' }, (res) => { res.resume(); res.on('close', () => resolve()); }).on('error', () => resolve()).end();
    });
    while (agent.subscribers.size === 0) await sleep(5);
    await api.close();
    await ended;
    expect(agent.subscribers.size).toBe(0);
    rmSync(dir, { recursive: true, force: true });
  });
});
