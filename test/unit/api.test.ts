// The agent API over a real unix socket, against the real agent core (in-memory store and maps, no devices).
import { mkdtempSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiServer } from '../../src/api/index.ts';
import type { Agent } from '../../src/agent/agent.ts';
import type { MonitorEvent, Pod, Service } from '../../src/control/types.ts';
import { startAgentCore, tapMonitor, type MonitorTap } from './agent-core.ts';

let tap: MonitorTap;
const emit = (e: Partial<MonitorEvent>) => tap.emit(e);
const subscribers = () => tap.readers.size;

interface Reply { status: number; body: any; raw: string; headers: Record<string, string | string[] | undefined> }

function call(socketPath: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const req = request({ socketPath, method, path, headers: { ...(payload ? { 'content-type': 'application/json' } : {}), ...headers } }, (res) => {
      let raw = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (raw += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, raw, body: raw ? JSON.parse(raw) : undefined, headers: res.headers }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('agent API on a unix socket', () => {
  let dir: string;
  let sock: string;
  let agent: Agent;
  let api: ApiServer;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ciliary-api-'));
    sock = join(dir, 'agent.sock');
    writeFileSync(sock, 'stale'); // a leftover file from a killed agent must not stop startup
    agent = await startAgentCore('node-a');
    tap = tapMonitor(agent);
    api = await startApi(agent, { socketPath: sock, port: 0, logger: pino({ level: 'silent' }), monitorMaxBufferedBytes: 4096 });
  });
  afterAll(async () => {
    await api?.close();
    await agent?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const createPod = async (name: string, extra: object = {}): Promise<Pod> => {
    const r = await call(sock, 'POST', '/v1/pods', { name, ...extra });
    expect(r.status, r.raw).toBe(201);
    return r.body;
  };

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
    const st = (await call(sock, 'GET', '/v1/status')).body;
    expect(st).toMatchObject({ node: 'node-a', ipam: { cidr: '172.20.0.0/24' }, routerIP: '172.20.0.1', kvstore: { ok: true, message: 'local (memory)' } });
    // What the datapath does: no tunnel or masquerading, no NodePort without its steering into the datapath, one datapath thread.
    expect(st.features).toMatchObject({ routing: 'native', monitor: { cpus: 1 }, services: { clusterIP: true, nodePort: false, loadBalancer: true }, hubble: true });
    expect(st.features.masquerade).toBeUndefined();
    expect(st.maps.map((m: { name: string }) => m.name)).toContain('cilium_lxc');
    expect((await call(sock, 'GET', '/v1/config')).body).toMatchObject({ 'node-name': 'node-a', 'routing-mode': 'native' });
    const eps = (await call(sock, 'GET', '/v1/endpoint')).body;
    const host = eps.find((e: { isHost: boolean }) => e.isHost);
    expect(host).toMatchObject({ labels: ['reserved:host'], identity: 1, ipv4: '172.20.0.1', ifname: 'cilium_host' });
    expect((await call(sock, 'GET', `/v1/endpoint/${host.id}`)).body.ifname).toBe('cilium_host');
    const unused = [...Array(4096).keys()].find((i) => i > 0 && !eps.some((e: { id: number }) => e.id === i))!;
    expect(await call(sock, 'GET', `/v1/endpoint/${unused}`)).toMatchObject({ status: 404, body: { error: `endpoint ${unused} not found` } });
    expect(await call(sock, 'GET', '/v1/endpoint/abc')).toMatchObject({ status: 400, body: { error: expect.stringContaining('params/id') } });
    expect((await call(sock, 'GET', '/v1/map')).body.find((m: { name: string }) => m.name === 'cilium_lxc')).toMatchObject({ maxEntries: 65535 });
    const lxc = (await call(sock, 'GET', '/v1/map/cilium_lxc')).body;
    expect(lxc.entries.map((e: { key: string }) => e.key).sort()).toEqual(['172.20.0.1:0', '192.168.10.100:0']);
    expect(await call(sock, 'GET', '/v1/map/cilium_nope')).toMatchObject({ status: 404, body: { error: 'map "cilium_nope" not found' } });
    expect(await call(sock, 'GET', '/v1/nothing')).toMatchObject({ status: 404, body: { error: 'no route GET /v1/nothing' } });
  });

  it('creates, gets, lists and deletes pods through the resource manager, filling defaults', async () => {
    const created = await createPod('xwing', { labels: { org: 'alliance', 'app.kubernetes.io/name': 'x' }, command: ['sleep', '1'] });
    expect(created).toMatchObject({ name: 'xwing', namespace: 'default', state: 'ready', netns: 'cil-node-a-default-xwing', labels: { org: 'alliance' }, command: ['sleep', '1'] });
    expect(created.podIP).toMatch(/^172\.20\.0\.\d+$/);
    expect((await call(sock, 'GET', '/v1/pods/default/xwing')).body.endpointID).toBe(created.endpointID);
    expect((await call(sock, 'GET', '/v1/pods')).body.map((p: Pod) => p.name)).toContain('xwing');
    // One writer: the pod is a Pod object of the resource manager.
    expect((await call(sock, 'GET', '/v1/resources/pods/xwing')).body.manifest).toMatchObject({ kind: 'Pod', spec: { containers: [{ image: 'ciliary/run', command: ['sleep', '1'] }] } });
    expect(await call(sock, 'POST', '/v1/pods', { name: 'xwing' })).toMatchObject({ status: 409, body: { error: 'pods "xwing" already exists' } });
    expect(await call(sock, 'DELETE', '/v1/pods/default/xwing')).toMatchObject({ status: 200, body: { deleted: true } });
    expect(await call(sock, 'GET', '/v1/pods/default/xwing')).toMatchObject({ status: 404, body: { error: 'pod "default/xwing" not found' } });
    expect(await call(sock, 'DELETE', '/v1/pods/default/xwing')).toMatchObject({ status: 404, body: { error: 'pods "xwing" not found' } });
    expect(agent.listEndpoints().some((e) => e.podName === 'default/xwing')).toBe(false);
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
    const unknownNode = await call(sock, 'POST', '/v1/pods', { name: 'y', node: 'other' });
    expect(unknownNode.status).toBe(422);
    expect(unknownNode.body.error).toContain('spec.nodeName: node "other" not found');
    const badJson = await call(sock, 'POST', '/v1/pods', '{"name":');
    expect(badJson.status).toBe(400);
    expect(typeof badJson.body.error).toBe('string');
    expect(agent.listPods().map((p) => p.name).filter((n) => n === 'a' || n === 'y')).toEqual([]);
  });

  it('accepts container ports on pods and rejects bad ones naming the field', async () => {
    const ports = [{ name: 'http', containerPort: 8080, protocol: 'TCP' }, { containerPort: 53, protocol: 'UDP' }];
    await createPod('web', { ports });
    expect(agent.getPod('default', 'web')?.ports).toEqual(ports);
    const cases: Array<[unknown, string]> = [
      [[{ containerPort: 0 }], 'body/ports/0/containerPort must be >= 1'],
      [[{ containerPort: 65536 }], 'body/ports/0/containerPort must be <= 65535'],
      [[{ containerPort: '80' }], 'body/ports/0/containerPort must be integer'],
      [[{ name: 'http' }], 'body/ports/0/containerPort is required'],
      [[{ containerPort: 80, protocol: 'SCTP' }], 'body/ports/0/protocol must be equal to one of the allowed values'],
      [[{ containerPort: 80, name: 'Http_Port' }], 'body/ports/0/name must match pattern'],
      [[{ containerPort: 80, name: 'a-very-long-port-name' }], 'body/ports/0/name must NOT have more than 15 characters'],
      [[{ containerPort: 80, hostPort: 0 }], 'body/ports/0/hostPort must be >= 1'],
      [{ containerPort: 80 }, 'body/ports must be array'],
    ];
    for (const [p, msg] of cases) {
      const r = await call(sock, 'POST', '/v1/pods', { name: 'web2', ports: p });
      expect(r.status, JSON.stringify(p)).toBe(400);
      expect(r.body.error, JSON.stringify(p)).toContain(msg);
    }
    await call(sock, 'DELETE', '/v1/pods/default/web');
  });

  it('applies, gets, lists and deletes services, backends from the pods they select', async () => {
    const pod = await createPod('ds1', { labels: { org: 'empire', class: 'deathstar' }, ports: [{ name: 'http', containerPort: 8080 }] });
    const spec = { name: 'deathstar', selector: { org: 'empire', class: 'deathstar' }, ports: [{ port: 80, targetPort: 'http', protocol: 'TCP' }] };
    const created = await call(sock, 'POST', '/v1/services', spec);
    expect(created.status, created.raw).toBe(200);
    expect(created.body.result).toBe('created');
    const svc: Service = created.body.service;
    expect(svc).toMatchObject({ name: 'deathstar', namespace: 'default', type: 'ClusterIP', ports: [{ port: 80, targetPort: 'http' }] });
    expect(svc.clusterIP).toMatch(/^10\.96\.\d+\.\d+$/);
    expect(svc.frontends).toEqual([{
      id: expect.any(Number), address: svc.clusterIP, port: 80, protocol: 'TCP', type: 'ClusterIP',
      backends: [{ id: expect.any(Number), ip: pod.podIP, port: 8080, pod: 'default/ds1', state: 'active' }],
    }]);
    expect((await call(sock, 'POST', '/v1/services', spec)).body.result).toBe('unchanged');
    expect((await call(sock, 'POST', '/v1/services', { ...spec, sessionAffinity: 'ClientIP', sessionAffinityTimeoutSeconds: 60 })).body)
      .toMatchObject({ result: 'configured', service: { clusterIP: svc.clusterIP, sessionAffinity: 'ClientIP', sessionAffinityTimeoutSeconds: 60 } });
    const dns = { name: 'dns', namespace: 'kube-system', clusterIP: '10.96.0.53', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53 }] };
    expect((await call(sock, 'POST', '/v1/services', dns)).body.result).toBe('created');
    const names = (await call(sock, 'GET', '/v1/services')).body.map((s: Service) => `${s.namespace}/${s.name}`);
    expect(names).toEqual(expect.arrayContaining(['default/deathstar', 'kube-system/dns']));
    // CoreDNS's table: name, namespace and clusterIP; 304 while unchanged, a new ETag after a change.
    const table = await call(sock, 'GET', '/v1/service-addresses');
    expect(table.body).toEqual(expect.arrayContaining([{ name: 'deathstar', namespace: 'default', clusterIP: svc.clusterIP }, { name: 'dns', namespace: 'kube-system', clusterIP: '10.96.0.53' }]));
    const etag = String(table.headers.etag);
    expect((await call(sock, 'GET', '/v1/service-addresses', undefined, { 'if-none-match': etag })).status).toBe(304);
    await call(sock, 'POST', '/v1/services', { ...spec, name: 'deathstar2' });
    const changed = await call(sock, 'GET', '/v1/service-addresses', undefined, { 'if-none-match': etag });
    expect(changed.status).toBe(200);
    expect(changed.body.map((s: Service) => s.name)).toContain('deathstar2');
    await call(sock, 'DELETE', '/v1/services/default/deathstar2');
    expect((await call(sock, 'GET', '/v1/service')).body.find((s: Service) => s.name === 'dns').frontends.map((f: { address: string; port: number; protocol: string }) => `${f.address}:${f.port}/${f.protocol}`))
      .toEqual(['10.96.0.53:53/UDP', '10.96.0.53:53/TCP']);
    expect((await call(sock, 'GET', '/v1/lb')).body.rows).toContainEqual([`${svc.clusterIP}:80`, expect.stringContaining('[ClusterIP, non-routable]')]);
    expect((await call(sock, 'GET', '/v1/lb')).body.rows).toContainEqual(['', expect.stringContaining(`${pod.podIP}:8080`)]);
    expect(await call(sock, 'GET', '/v1/services/default/nope')).toMatchObject({ status: 404, body: { error: 'service "default/nope" not found' } });
    expect(await call(sock, 'POST', '/v1/services', { ...spec, name: 'boom', clusterIP: '10.0.0.1' })).toMatchObject({ status: 422, body: { error: expect.stringContaining('spec.clusterIP: 10.0.0.1 is not in the service range 10.96.0.0/16') } });
    expect(await call(sock, 'DELETE', '/v1/services/kube-system/dns')).toMatchObject({ status: 200, body: { namespace: 'kube-system', name: 'dns', deleted: true } });
    expect(await call(sock, 'DELETE', '/v1/services/kube-system/dns')).toMatchObject({ status: 404, body: { error: 'services "dns" not found' } });
    expect(await call(sock, 'GET', '/v1/services/default/Bad_Name')).toMatchObject({ status: 400, body: { error: expect.stringContaining('params/name') } });
    await call(sock, 'DELETE', '/v1/services/default/deathstar');
    await call(sock, 'DELETE', '/v1/pods/default/ds1');
    expect((await call(sock, 'GET', '/v1/lb')).body.rows.some((r: string[]) => r[0] === `${svc.clusterIP}:80`)).toBe(false);
  });

  it('allocates NodePorts: a fixed one taken twice is refused naming the field, a delete frees it', async () => {
    const np = (name: string, nodePort?: number) => call(sock, 'POST', '/v1/services', { name, type: 'NodePort', selector: { app: 'web' }, ports: [{ port: 80, ...(nodePort ? { nodePort } : {}) }] });
    const a = await np('np-a', 30001);
    expect(a.status).toBe(200);
    expect(a.body.service.ports[0].nodePort).toBe(30001);
    expect((await call(sock, 'GET', '/v1/lb')).body.rows).toContainEqual(['0.0.0.0:30001', expect.stringMatching(/\[NodePort, non-routable\]$/)]);
    expect(await np('np-b', 30001)).toMatchObject({ status: 422, body: { error: 'Service "np-b": spec.ports[0].nodePort: Invalid value: 30001: provided port is already allocated' } });
    expect(agent.getService('default', 'np-b')).toBeUndefined();
    const random = (await np('np-c')).body.service.ports[0].nodePort;
    expect(random).toBeGreaterThanOrEqual(30000);
    expect(random).toBeLessThanOrEqual(32767);
    // A re-apply without nodePort keeps the allocated one.
    expect((await np('np-c')).body.service.ports[0].nodePort).toBe(random);
    await call(sock, 'DELETE', '/v1/services/default/np-a');
    expect((await np('np-b', 30001)).status).toBe(200);
    for (const n of ['np-b', 'np-c']) await call(sock, 'DELETE', `/v1/services/default/${n}`);
  });

  it('a container port with hostPort gets HostPort frontends, gone with its pod', async () => {
    const pod = await createPod('hp', { ports: [{ containerPort: 8080, hostPort: 8081 }] });
    const hostPort = async () => ((await call(sock, 'GET', '/v1/service')).body as Service[]).flatMap((s) => s.frontends).filter((f) => f.type === 'HostPort');
    const node = (await call(sock, 'GET', '/v1/status')).body.nodeIP;
    expect((await hostPort()).map((f) => `${f.address}:${f.port} ${f.backends.map((b) => `${b.ip}:${b.port}`)}`)).toEqual([`0.0.0.0:8081 ${pod.podIP}:8080`, `${node}:8081 ${pod.podIP}:8080`]);
    expect((await call(sock, 'GET', '/v1/lb')).body.rows).toContainEqual(['0.0.0.0:8081', expect.stringMatching(/\[HostPort, non-routable\]$/)]);
    await call(sock, 'DELETE', '/v1/pods/default/hp');
    expect(await hostPort()).toEqual([]);
  });

  it('rejects invalid service specs naming the field', async () => {
    const ok = { name: 'svc', selector: { app: 'web' }, ports: [{ port: 80 }] };
    const port = (p: object) => ({ ...ok, ports: [{ port: 80, ...p }] });
    const cases: Array<[unknown, string]> = [
      [{ ...ok, name: 'Svc' }, 'body/name must match pattern'],
      [{ name: 'svc' }, 'body/ports is required'],
      [{ ...ok, ports: [] }, 'body/ports must NOT have fewer than 1 items'],
      [{ ...ok, bogus: true }, 'body/bogus is not allowed (unknown field)'],
      [{ ...ok, ports: [{ port: 80, hostPort: 1 }] }, 'body/ports/0/hostPort is not allowed (unknown field)'],
      [port({ port: 0 }), 'body/ports/0/port must be >= 1'],
      [port({ port: 65536 }), 'body/ports/0/port must be <= 65535'],
      [port({ port: '80' }), 'body/ports/0/port must be integer'],
      [port({ protocol: 'SCTP' }), 'body/ports/0/protocol must be equal to one of the allowed values'],
      [port({ protocol: 'tcp' }), 'body/ports/0/protocol must be equal to one of the allowed values'],
      [port({ targetPort: 0 }), 'body/ports/0/targetPort must be >= 1'],
      [port({ targetPort: 70000 }), 'body/ports/0/targetPort must be <= 65535'],
      [port({ targetPort: 'Http_Port' }), 'body/ports/0/targetPort must match pattern'],
      [port({ targetPort: '8080' }), 'body/ports/0/targetPort must match pattern'],
      [port({ targetPort: true }), 'body/ports/0/targetPort must be integer or string'],
      [port({ targetPort: 80.5 }), 'body/ports/0/targetPort must be integer or string'],
      [{ ...port({ nodePort: 80 }), type: 'NodePort' }, 'body/ports/0/nodePort must be >= 30000'],
      [{ ...port({ nodePort: 32768 }), type: 'NodePort' }, 'body/ports/0/nodePort must be <= 32767'],
      // Past the schema, the one manifest validator speaks (as for `apply -f`).
      [port({ nodePort: 30080 }), 'Service "svc": spec.ports[0].nodePort: may not be used when `type` is \'ClusterIP\''],
      [{ ...ok, ports: [{ port: 80 }, { port: 81 }] }, 'Service "svc": spec.ports[0].name: required when there are several ports'],
      [{ ...ok, ports: [{ name: 'a', port: 80 }, { name: 'a', port: 81 }] }, 'Service "svc": spec.ports[1].name: duplicate port name "a"'],
      [{ ...ok, ports: [{ name: 'a', port: 80 }, { name: 'b', port: 80 }] }, 'Service "svc": spec.ports[1]: duplicate port 80/TCP'],
      [{ ...ok, sessionAffinityTimeoutSeconds: 60 }, 'Service "svc": spec.sessionAffinityConfig: must not be set unless sessionAffinity is ClientIP'],
      [{ ...ok, type: 'ExternalName' }, 'body/type must be equal to one of the allowed values'],
      [{ ...ok, clusterIP: '10.96.0' }, 'body/clusterIP must match pattern'],
      [{ ...ok, clusterIP: '10.96.0.300' }, 'body/clusterIP must match pattern'],
      [{ ...ok, sessionAffinity: 'Sticky' }, 'body/sessionAffinity must be equal to one of the allowed values'],
      [{ ...ok, sessionAffinity: 'ClientIP', sessionAffinityTimeoutSeconds: 0 }, 'body/sessionAffinityTimeoutSeconds must be >= 1'],
      [{ ...ok, sessionAffinity: 'ClientIP', sessionAffinityTimeoutSeconds: 86401 }, 'body/sessionAffinityTimeoutSeconds must be <= 86400'],
      [{ ...ok, externalIPs: ['nope'] }, 'body/externalIPs/0 must match pattern'],
      [{ ...ok, selector: { app: 5 } }, 'body/selector/app must be string'],
      [{ ...ok, selector: { 'bad key!': 'x' } }, 'body/selector key "bad key!"'],
      [{ ...ok, backends: [{ ip: '10.0.0.1' }] }, 'body/backends is not allowed (unknown field)'],
    ];
    for (const [body, msg] of cases) {
      const r = await call(sock, 'POST', '/v1/services', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error, JSON.stringify(body)).toContain(msg);
    }
    expect(agent.getService('default', 'svc')).toBeUndefined();
  });

  it('serves the CT table and flushes it', async () => {
    expect((await call(sock, 'GET', '/v1/lb?revnat=false')).status).toBe(200);
    expect(await call(sock, 'GET', '/v1/lb?revnat=yes')).toMatchObject({ status: 400, body: { error: expect.stringContaining('querystring/revnat') } });
    expect(await call(sock, 'GET', '/v1/lb?frontends=true')).toMatchObject({ status: 400, body: { error: 'querystring/frontends is not allowed (unknown field)' } });
    expect((await call(sock, 'GET', '/v1/ct')).body).toEqual({ lines: [] });
    expect(await call(sock, 'DELETE', '/v1/ct')).toMatchObject({ status: 200, body: { flushed: 0 } });
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
    while (subscribers() === 0) await sleep(5);
    emit({ type: 'trace', source: 12, summary: 'trace 12' });
    emit({ type: 'drop', source: 13, summary: 'drop 13' });
    emit({ type: 'drop', source: 12, summary: 'drop 12 a', reason: 133 });
    emit({ type: 'drop', source: 12, summary: 'drop 12 b' });
    await got;
    expect(lines.map((l) => l.summary)).toEqual(['drop 12 a', 'drop 12 b']);
    expect(lines[0].reason).toBe(133);
    req.destroy();
    for (let i = 0; i < 100 && subscribers() > 0; i++) await sleep(10);
    expect(subscribers()).toBe(0); // the client went away: unsubscribed
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
    while (subscribers() === 0 || !resume) await sleep(5);
    const big = 'y'.repeat(1000);
    const N = 20000; // ~20 MB: far beyond socket buffers and the 4 KiB backlog
    for (let i = 0; i < N; i++) emit({ summary: `e${i}`, verbose: big });
    const rss = process.memoryUsage().rss;
    resume();
    await sleep(100);
    emit({ summary: 'last' });
    await done;
    const lost = summaries.find((s) => /^lost \d+ events$/.test(s));
    expect(lost).toBeDefined();
    const delivered = summaries.filter((s) => /^e\d+$/.test(s)).length;
    expect(delivered + Number(lost!.split(' ')[1])).toBe(N);
    expect(delivered).toBeLessThan(N / 2);
    expect(process.memoryUsage().rss - rss).toBeLessThan(200 * 1024 * 1024);
  });

  const cnp = (name: string, port: unknown = 80, namespace?: string) => ({
    apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name, ...(namespace ? { namespace } : {}) },
    spec: { endpointSelector: { matchLabels: { org: 'empire' } }, ingress: [{ toPorts: [{ ports: [{ port: String(port), protocol: 'TCP' }] }] }] },
  });
  const stored = (o: ReturnType<typeof cnp>) => ({ ...o, metadata: { namespace: 'default', ...o.metadata } });

  it('imports policies through the resource manager: an array or a single object, created / unchanged / configured', async () => {
    const r = await call(sock, 'PUT', '/v1/policy', [cnp('rule1'), cnp('rule2', 443, 'lab')]);
    expect(r.status, r.raw).toBe(200);
    expect(r.body.policies).toEqual([
      { kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'rule1', result: 'created' },
      { kind: 'CiliumNetworkPolicy', namespace: 'lab', name: 'rule2', result: 'created' },
    ]);
    const rev = r.body.revision;
    expect((await call(sock, 'PUT', '/v1/policy', cnp('rule1'))).body).toEqual({ revision: rev, policies: [{ kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'rule1', result: 'unchanged' }] });
    const changed = (await call(sock, 'PUT', '/v1/policy', cnp('rule1', 8080))).body;
    expect(changed.policies[0].result).toBe('configured');
    expect(changed.revision).toBeGreaterThan(rev);
    const list = (await call(sock, 'GET', '/v1/policy')).body;
    expect(list.revision).toBe(changed.revision);
    expect(list.policies).toEqual([
      { kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'rule1', object: stored(cnp('rule1', 8080)), selects: [] },
      { kind: 'CiliumNetworkPolicy', namespace: 'lab', name: 'rule2', object: cnp('rule2', 443, 'lab'), selects: [] },
    ]);
    expect((await call(sock, 'GET', '/v1/resources/cnp/rule1')).body.manifest).toEqual(stored(cnp('rule1', 8080)));
    await call(sock, 'DELETE', '/v1/policy?all=true');
  });

  it('rejects bad policy bodies naming the object and the field', async () => {
    const bad = await call(sock, 'PUT', '/v1/policy', [cnp('ok'), cnp('bad', 70000)]);
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/^policy #2: spec\.ingress\[0\]\.toPorts\[0\]\.ports\[0\]\.port: .*70000/);
    expect((await call(sock, 'PUT', '/v1/policy', { kind: 'CiliumNetworkPolicy', metadata: {} })).body.error).toBe('apiVersion: required field is missing');
    expect((await call(sock, 'PUT', '/v1/policy', [cnp('a'), { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' } }])).body.error).toBe('policy #2: kind: "Pod" is not a policy (CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy, NetworkPolicy)');
    const cases: Array<[unknown, string]> = [
      [[cnp('a'), 'nope'], 'body/1 must be object'],
      [42, 'body must be array or object'],
      [[], 'body must hold at least one policy'],
    ];
    for (const [body, msg] of cases) {
      const r = await call(sock, 'PUT', '/v1/policy', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error, JSON.stringify(body)).toContain(msg);
    }
    expect((await call(sock, 'PUT', '/v1/policy', '[{"kind":')).status).toBe(400);
    // More than 1 MiB is refused before it reaches the agent.
    const huge = await call(sock, 'PUT', '/v1/policy', [{ ...cnp('big'), pad: 'x'.repeat(1024 * 1024) }]);
    expect(huge.status).toBe(413);
    expect(agent.listPolicies().policies.map((p) => p.name).filter((n) => ['ok', 'bad', 'a', 'big'].includes(n))).toEqual([]);
  });

  it('deletes one policy (404 when absent) or all of them', async () => {
    const cw = { apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy', metadata: { name: 'cw', namespace: 'ignored' }, spec: { endpointSelector: {} } };
    expect((await call(sock, 'PUT', '/v1/policy', [cnp('d1'), cnp('d2', 80, 'lab'), cw])).status).toBe(200);
    const rev = agent.listPolicies().revision;
    expect(await call(sock, 'DELETE', '/v1/policy?name=d1')).toMatchObject({ status: 200, body: { revision: rev + 1 } });
    expect(await call(sock, 'DELETE', '/v1/policy?name=d1')).toMatchObject({ status: 404, body: { error: 'CiliumNetworkPolicy "default/d1" not found' } });
    expect((await call(sock, 'DELETE', '/v1/policy?name=d2')).status).toBe(404);
    expect((await call(sock, 'DELETE', '/v1/policy?kind=CiliumNetworkPolicy&namespace=lab&name=d2')).status).toBe(200);
    // namespace is ignored for clusterwide policies
    expect((await call(sock, 'DELETE', '/v1/policy?kind=CiliumClusterwideNetworkPolicy&namespace=whatever&name=cw')).status).toBe(200);
    const cases: Array<[string, string]> = [
      ['/v1/policy', 'querystring/name is required (or all=true)'],
      ['/v1/policy?kind=Bogus&name=x', 'querystring/kind must be equal to one of the allowed values'],
      ['/v1/policy?name=Bad_Name', 'querystring/name must match pattern'],
      ['/v1/policy?all=yes', 'querystring/all must be equal to one of the allowed values'],
      ['/v1/policy?all=true&name=x', 'querystring/name may not be given with all=true'],
      ['/v1/policy?name=x&bogus=1', 'querystring/bogus is not allowed'],
    ];
    for (const [url, msg] of cases) {
      const r = await call(sock, 'DELETE', url);
      expect(r.status, url).toBe(400);
      expect(r.body.error, url).toContain(msg);
    }
    await call(sock, 'PUT', '/v1/policy', [cnp('d3'), cnp('d4')]);
    expect(await call(sock, 'DELETE', '/v1/policy?all=true')).toMatchObject({ status: 200, body: { revision: agent.listPolicies().revision } });
    expect((await call(sock, 'GET', '/v1/policy')).body.policies).toEqual([]);
  });

  it('serves bpf policy tables, identities and the ip list', async () => {
    const pod = await createPod('xw', { labels: { class: 'xwing', org: 'alliance' } });
    const t = await call(sock, 'GET', `/v1/bpf/policy/${pod.endpointID}`);
    expect(t.status).toBe(200);
    expect(t.body.table).toMatch(/^POLICY {3}DIRECTION/);
    expect(t.body.table).toMatch(/\nAllow {4}Ingress {5}ANY /);
    const unused = [...Array(4096).keys()].find((i) => i > 0 && !agent.listEndpoints().some((e) => e.id === i))!;
    expect(await call(sock, 'GET', `/v1/bpf/policy/${unused}`)).toMatchObject({ status: 404, body: { error: `endpoint ${unused} not found` } });
    expect(await call(sock, 'GET', '/v1/bpf/policy/x')).toMatchObject({ status: 400, body: { error: expect.stringContaining('params/id') } });
    const ids = (await call(sock, 'GET', '/v1/identity')).body;
    expect(ids[0]).toEqual({ id: 1, labels: ['reserved:host'] });
    const mine = agent.listEndpoints().find((e) => e.id === pod.endpointID)!;
    expect(ids).toContainEqual({ id: mine.identity, labels: expect.arrayContaining(['k8s:class=xwing', 'k8s:org=alliance']) });
    const ips = (await call(sock, 'GET', '/v1/ip')).body;
    expect(ips).toContainEqual({ prefix: '0.0.0.0/0', identity: 2, labels: ['reserved:world'], source: 'default' });
    expect(ips).toContainEqual(expect.objectContaining({ prefix: `${pod.podIP}/32`, identity: mine.identity }));
    await call(sock, 'DELETE', '/v1/pods/default/xw');
  });

  it('serves an OpenAPI document listing every route with its schemas', async () => {
    const doc = (await call(sock, 'GET', '/v1/openapi.json')).body;
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/v1/config', '/v1/ct', '/v1/endpoint', '/v1/endpoint/{id}', '/v1/healthz', '/v1/lb', '/v1/map', '/v1/map/{name}', '/v1/monitor', '/v1/openapi.json',
      '/v1/pods', '/v1/pods/{namespace}/{name}', '/v1/service', '/v1/service-addresses', '/v1/services', '/v1/services/{namespace}/{name}', '/v1/status',
    ].concat(['/v1/bpf/policy/{id}', '/v1/identity', '/v1/ip', '/v1/policy'])
      .concat(['/v1/apply', '/v1/delete', '/v1/resources/{kind}', '/v1/resources/{kind}/{name}', '/v1/pods/{namespace}/{name}/logs'])
      .concat(['/v1/flows', '/v1/hubble/status', '/v1/hubble/nodes'])
      .concat(['/v1/trace', '/v1/nodes', '/v1/nat', '/v1/fqdn/cache']).sort());
    expect(Object.keys(doc.paths['/v1/policy']).sort()).toEqual(['delete', 'get', 'put']);
    expect(doc.paths['/v1/policy'].delete.parameters.map((p: any) => p.name)).toEqual(['kind', 'namespace', 'name', 'all']);
    expect(Object.keys(doc.paths['/v1/services']).sort()).toEqual(['get', 'post']);
    expect(Object.keys(doc.paths['/v1/services/{namespace}/{name}']).sort()).toEqual(['delete', 'get']);
    expect(Object.keys(doc.paths['/v1/ct']).sort()).toEqual(['delete', 'get']);
    expect(doc.paths['/v1/lb'].get.parameters.map((p: any) => p.name)).toEqual(['revnat']);
    const svcBody = doc.paths['/v1/services'].post.requestBody.content['application/json'].schema;
    expect(svcBody.properties.ports.items.properties.targetPort.anyOf).toHaveLength(2);
    expect(doc.paths['/v1/pods'].post.requestBody.content['application/json'].schema.properties.ports.items.required).toEqual(['containerPort']);
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
      const agent = await startAgentCore('node-b');
      const api = await startApi(agent, { socketPath: sock, logger: pino({ level: 'silent' }) });
      expect(api.port).toBeUndefined();
      await expect(startApi(agent, { socketPath: sock, logger: pino({ level: 'silent' }) })).rejects.toThrow(/in use/);
      await api.close();
      expect(existsSync(sock)).toBe(false);
      // A listener that is not ours still counts as live.
      const other = createServer().listen(sock);
      await new Promise((r) => other.once('listening', r));
      await expect(startApi(agent, { socketPath: sock, logger: pino({ level: 'silent' }) })).rejects.toThrow(/in use/);
      await new Promise((r) => other.close(r));
      await agent.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('close ends open monitor streams instead of hanging', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ciliary-api-'));
    const sock = join(dir, 'agent.sock');
    const agent = await startAgentCore('node-c');
    const own = tapMonitor(agent);
    const api = await startApi(agent, { socketPath: sock, logger: pino({ level: 'silent' }) });
    const ended = new Promise<void>((resolve) => {
      request({ socketPath: sock, path: '/v1/monitor' }, (res) => { res.resume(); res.on('close', () => resolve()); }).on('error', () => resolve()).end();
    });
    while (own.readers.size === 0) await sleep(5);
    await api.close();
    await ended;
    expect(own.readers.size).toBe(0);
    await agent.stop();
    rmSync(dir, { recursive: true, force: true });
  });
});
