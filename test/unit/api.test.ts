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
  type PolicyImportResult, type PolicySummary, type Service, type ServiceSpec,
} from '../../src/control/types.ts';

type Obj = { kind?: string; metadata?: { name?: string; namespace?: string }; spec?: { ingress?: Array<{ toPorts?: Array<{ ports?: Array<{ port?: unknown }> }> }> } };

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
  services = new Map<string, Service>();
  applied: ServiceSpec[] = [];
  ctEntries = ['TCP OUT 10.96.43.209:80 -> 10.0.1.90:59668 service expires=475561 RevNAT=5', 'TCP IN 10.0.1.90:59668 -> 10.0.1.108:80 expires=475561 RevNAT=0'];
  listServices(): Service[] {
    return [...this.services.values()];
  }
  getService(namespace: string, name: string): Service | undefined {
    return this.services.get(`${namespace}/${name}`);
  }
  async applyService(spec: ServiceSpec): Promise<{ service: Service; result: 'created' | 'configured' | 'unchanged' }> {
    this.applied.push(spec);
    if (spec.name === 'boom') throw new ApiError(400, 'clusterIP: 10.0.0.1 is not in service-cluster-ip-range');
    const key = `${spec.namespace}/${spec.name}`;
    const old = this.services.get(key);
    const { clusterIP: _c, frontends: _f, createdAt: _t, ...oldSpec } = old ?? ({} as Service);
    if (old && JSON.stringify({ ...oldSpec, clusterIP: old.clusterIP }) === JSON.stringify({ ...spec, clusterIP: spec.clusterIP ?? old.clusterIP })) return { service: old, result: 'unchanged' };
    const clusterIP = spec.clusterIP ?? old?.clusterIP ?? `10.96.0.${this.services.size + 10}`;
    const service: Service = {
      ...spec, clusterIP, createdAt: old?.createdAt ?? new Date().toISOString(),
      frontends: spec.ports.map((p, i) => ({
        id: 16 + i, address: clusterIP, port: p.port, protocol: p.protocol ?? 'TCP', type: 'ClusterIP',
        backends: [{ id: 1, ip: '172.20.0.10', port: typeof p.targetPort === 'number' ? p.targetPort : p.port, pod: 'default/xwing', state: 'active' }],
      })),
    };
    this.services.set(key, service);
    return { service, result: old ? 'configured' : 'created' };
  }
  async deleteService(namespace: string, name: string): Promise<void> {
    this.services.delete(`${namespace}/${name}`);
  }
  lbList(revnat: boolean): Array<[string, string]> {
    return revnat ? [['16', '10.108.12.195:80']] : [['10.108.12.195:80', '0.0.0.0:0 (16) [ClusterIP, non-routable]'], ['', '172.16.1.234:80 (16)']];
  }
  ctList(): string[] {
    return [...this.ctEntries];
  }
  ctFlush(): number {
    const n = this.ctEntries.length;
    this.ctEntries = [];
    return n;
  }
  policies = new Map<string, PolicySummary>();
  revision = 1;
  imported: unknown[][] = [];
  /** Checks what the real agent checks first (kind, name, port ranges), naming the object and the field. */
  async importPolicies(objects: unknown[]): Promise<PolicyImportResult> {
    this.imported.push(objects);
    for (const [i, raw] of objects.entries()) {
      const o = raw as Obj;
      const at = objects.length > 1 ? `policy #${i + 1}: ` : '';
      if (!o.kind) throw new ApiError(400, `${at}kind: required`);
      if (!o.metadata?.name) throw new ApiError(400, `${at}metadata.name: required`);
      for (const [r, rule] of (o.spec?.ingress ?? []).entries()) {
        for (const [t, tp] of (rule.toPorts ?? []).entries()) {
          for (const [k, p] of (tp.ports ?? []).entries()) {
            const port = Number(p.port);
            if (!(port >= 0 && port <= 65535)) throw new ApiError(400, `${at}spec.ingress[${r}].toPorts[${t}].ports[${k}].port: ${String(p.port)} is out of range 0-65535`);
          }
        }
      }
    }
    const policies: PolicyImportResult['policies'] = [];
    for (const raw of objects) {
      const o = raw as Obj;
      const kind = o.kind!;
      const namespace = kind === 'CiliumClusterwideNetworkPolicy' ? undefined : (o.metadata!.namespace ?? 'default');
      const key = `${kind}/${namespace ?? ''}/${o.metadata!.name}`;
      const old = this.policies.get(key);
      const result = !old ? 'created' : JSON.stringify(old.object) === JSON.stringify(raw) ? 'unchanged' : 'configured';
      if (result !== 'unchanged') this.revision++;
      this.policies.set(key, { kind, namespace, name: o.metadata!.name!, object: raw, selects: [7] });
      policies.push({ kind, namespace, name: o.metadata!.name!, result });
    }
    return { revision: this.revision, policies };
  }
  listPolicies(): { revision: number; policies: PolicySummary[] } {
    return { revision: this.revision, policies: [...this.policies.values()] };
  }
  async deletePolicy(kind: string, namespace: string | undefined, name: string): Promise<number> {
    const key = `${kind}/${namespace ?? ''}/${name}`;
    if (!this.policies.delete(key)) throw new ApiError(404, `policy ${kind} ${namespace ? `${namespace}/` : ''}${name} not found`);
    return ++this.revision;
  }
  async deleteAllPolicies(): Promise<number> {
    this.policies.clear();
    return ++this.revision;
  }
  bpfPolicy(endpointID: number): string | undefined {
    return endpointID === 7 ? 'POLICY   DIRECTION   LABELS (source:key[=value])   PORT/PROTO   PROXY PORT   AUTH TYPE   BYTES   PACKETS   PREFIX\nAllow    Ingress     ANY                           ANY          NONE         disabled    0       0         0\n' : undefined;
  }
  listIdentities(): Array<{ id: number; labels: string[] }> {
    return [{ id: 18300, labels: ['k8s:class=xwing', 'k8s:org=alliance'] }, { id: 1, labels: ['reserved:host'] }];
  }
  ipList(): Array<{ prefix: string; identity: number; labels: string[]; source: string }> {
    return [{ prefix: '172.20.0.10/32', identity: 18300, labels: ['k8s:class=xwing'], source: 'custom-resource' }];
  }
  subscribeMonitor(cb: (e: MonitorEvent) => void): () => void {
    this.subscribers.add(cb);
    return () => this.subscribers.delete(cb);
  }
  startTrace(): () => void {
    return () => undefined;
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

  it('accepts container ports on pods and rejects bad ones naming the field', async () => {
    const ports = [{ name: 'http', containerPort: 8080, protocol: 'TCP' }, { containerPort: 53, protocol: 'UDP' }];
    const created = await call(sock, 'POST', '/v1/pods', { name: 'web', ports });
    expect(created.status).toBe(201);
    expect(agent.created.at(-1)?.ports).toEqual(ports);
    const cases: Array<[unknown, string]> = [
      [[{ containerPort: 0 }], 'body/ports/0/containerPort must be >= 1'],
      [[{ containerPort: 65536 }], 'body/ports/0/containerPort must be <= 65535'],
      [[{ containerPort: '80' }], 'body/ports/0/containerPort must be integer'],
      [[{ name: 'http' }], 'body/ports/0/containerPort is required'],
      [[{ containerPort: 80, protocol: 'SCTP' }], 'body/ports/0/protocol must be equal to one of the allowed values'],
      [[{ containerPort: 80, name: 'Http_Port' }], 'body/ports/0/name must match pattern'],
      [[{ containerPort: 80, name: 'a-very-long-port-name' }], 'body/ports/0/name must NOT have more than 15 characters'],
      [[{ containerPort: 80, hostPort: 80 }], 'body/ports/0/hostPort is not allowed (unknown field)'],
      [{ containerPort: 80 }, 'body/ports must be array'],
    ];
    for (const [p, msg] of cases) {
      const r = await call(sock, 'POST', '/v1/pods', { name: 'web2', ports: p });
      expect(r.status, JSON.stringify(p)).toBe(400);
      expect(r.body.error, JSON.stringify(p)).toContain(msg);
    }
    await call(sock, 'DELETE', '/v1/pods/default/web');
  });

  it('applies, gets, lists and deletes services', async () => {
    const spec = { name: 'deathstar', selector: { org: 'empire', class: 'deathstar' }, ports: [{ port: 80, targetPort: 'http', protocol: 'TCP' }] };
    const created = await call(sock, 'POST', '/v1/services', spec);
    expect(created.status).toBe(200);
    expect(created.body.result).toBe('created');
    expect(created.body.service).toMatchObject({ name: 'deathstar', namespace: 'default', clusterIP: '10.96.0.10', ports: [{ port: 80, targetPort: 'http' }] });
    expect(created.body.service.frontends[0]).toEqual({
      id: 16, address: '10.96.0.10', port: 80, protocol: 'TCP', type: 'ClusterIP',
      backends: [{ id: 1, ip: '172.20.0.10', port: 80, pod: 'default/xwing', state: 'active' }],
    });
    expect(agent.applied.at(-1)).toEqual({ ...spec, namespace: 'default' });
    expect((await call(sock, 'POST', '/v1/services', spec)).body.result).toBe('unchanged');
    const nodePort = { ...spec, type: 'NodePort', ports: [{ port: 80, targetPort: 8080, nodePort: 31234 }], sessionAffinity: 'ClientIP', sessionAffinityTimeoutSeconds: 60, externalIPs: ['192.168.10.50'] };
    expect((await call(sock, 'POST', '/v1/services', nodePort)).body).toMatchObject({ result: 'configured', service: { type: 'NodePort', ports: [{ nodePort: 31234, targetPort: 8080 }] } });
    const dns = { name: 'kube-dns', namespace: 'kube-system', clusterIP: '10.96.0.10', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53 }], backends: [{ ip: '172.20.0.2', port: 53 }, { ip: '172.20.0.3' }] };
    expect((await call(sock, 'POST', '/v1/services', dns)).body.result).toBe('created');
    expect((await call(sock, 'GET', '/v1/services')).body.map((s: Service) => `${s.namespace}/${s.name}`)).toEqual(['default/deathstar', 'kube-system/kube-dns']);
    expect((await call(sock, 'GET', '/v1/service')).body.map((s: Service) => s.frontends.map((f) => f.id))).toEqual([[16], [16, 17]]);
    expect((await call(sock, 'GET', '/v1/services/kube-system/kube-dns')).body.backends).toEqual([{ ip: '172.20.0.2', port: 53 }, { ip: '172.20.0.3' }]);
    expect(await call(sock, 'GET', '/v1/services/default/nope')).toMatchObject({ status: 404, body: { error: 'service "default/nope" not found' } });
    expect(await call(sock, 'POST', '/v1/services', { ...spec, name: 'boom' })).toMatchObject({ status: 400, body: { error: expect.stringContaining('clusterIP: 10.0.0.1') } });
    expect(await call(sock, 'DELETE', '/v1/services/kube-system/kube-dns')).toMatchObject({ status: 200, body: { namespace: 'kube-system', name: 'kube-dns', deleted: true } });
    expect(await call(sock, 'DELETE', '/v1/services/kube-system/kube-dns')).toMatchObject({ status: 404, body: { error: 'service "kube-system/kube-dns" not found' } });
    expect(await call(sock, 'GET', '/v1/services/default/Bad_Name')).toMatchObject({ status: 400, body: { error: expect.stringContaining('params/name') } });
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
      [port({ nodePort: 30080 }), 'body/ports/0/nodePort may not be used when type is ClusterIP'],
      [{ ...ok, ports: [{ port: 80 }, { port: 81 }] }, 'body/ports/0/name is required when a service has more than one port'],
      [{ ...ok, ports: [{ name: 'a', port: 80 }, { name: 'a', port: 81 }] }, 'body/ports/1/name "a" is used by another port'],
      [{ ...ok, type: 'ExternalName' }, 'body/type must be equal to one of the allowed values'],
      [{ ...ok, clusterIP: '10.96.0' }, 'body/clusterIP must match pattern'],
      [{ ...ok, clusterIP: '10.96.0.300' }, 'body/clusterIP must match pattern'],
      [{ ...ok, sessionAffinity: 'Sticky' }, 'body/sessionAffinity must be equal to one of the allowed values'],
      [{ ...ok, sessionAffinity: 'ClientIP', sessionAffinityTimeoutSeconds: 0 }, 'body/sessionAffinityTimeoutSeconds must be >= 1'],
      [{ ...ok, sessionAffinity: 'ClientIP', sessionAffinityTimeoutSeconds: 86401 }, 'body/sessionAffinityTimeoutSeconds must be <= 86400'],
      [{ ...ok, sessionAffinityTimeoutSeconds: 60 }, 'body/sessionAffinityTimeoutSeconds needs sessionAffinity ClientIP'],
      [{ ...ok, externalIPs: ['nope'] }, 'body/externalIPs/0 must match pattern'],
      [{ ...ok, selector: { app: 5 } }, 'body/selector/app must be string'],
      [{ ...ok, selector: { 'bad key!': 'x' } }, 'body/selector key "bad key!"'],
      [{ ...ok, backends: [{ port: 80 }] }, 'body/backends/0/ip is required'],
      [{ ...ok, backends: [{ ip: '10.0.0.1', port: 0 }] }, 'body/backends/0/port must be >= 1'],
      [{ ...ok, backends: [{ ip: '10.0.0.1', weight: 1 }] }, 'body/backends/0/weight is not allowed (unknown field)'],
    ];
    for (const [body, msg] of cases) {
      const r = await call(sock, 'POST', '/v1/services', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error, JSON.stringify(body)).toContain(msg);
    }
    expect(agent.getService('default', 'svc')).toBeUndefined();
  });

  it('serves bpf lb rows and the CT table, and flushes it', async () => {
    expect((await call(sock, 'GET', '/v1/lb')).body).toEqual({ rows: [['10.108.12.195:80', '0.0.0.0:0 (16) [ClusterIP, non-routable]'], ['', '172.16.1.234:80 (16)']] });
    expect((await call(sock, 'GET', '/v1/lb?revnat=false')).body.rows).toHaveLength(2);
    expect((await call(sock, 'GET', '/v1/lb?revnat=true')).body).toEqual({ rows: [['16', '10.108.12.195:80']] });
    expect(await call(sock, 'GET', '/v1/lb?revnat=yes')).toMatchObject({ status: 400, body: { error: expect.stringContaining('querystring/revnat') } });
    expect(await call(sock, 'GET', '/v1/lb?frontends=true')).toMatchObject({ status: 400, body: { error: 'querystring/frontends is not allowed (unknown field)' } });
    expect((await call(sock, 'GET', '/v1/ct')).body.lines).toHaveLength(2);
    expect(await call(sock, 'DELETE', '/v1/ct')).toMatchObject({ status: 200, body: { flushed: 2 } });
    expect((await call(sock, 'GET', '/v1/ct')).body).toEqual({ lines: [] });
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

  const cnp = (name: string, port: unknown = 80, namespace?: string) => ({
    apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name, ...(namespace ? { namespace } : {}) },
    spec: { endpointSelector: { matchLabels: { org: 'empire' } }, ingress: [{ toPorts: [{ ports: [{ port, protocol: 'TCP' }] }] }] },
  });

  it('imports policies: an array or a single object, created / unchanged / configured', async () => {
    const r = await call(sock, 'PUT', '/v1/policy', [cnp('rule1'), cnp('rule2', 443, 'lab')]);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ revision: 3, policies: [
      { kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'rule1', result: 'created' },
      { kind: 'CiliumNetworkPolicy', namespace: 'lab', name: 'rule2', result: 'created' },
    ] });
    expect(agent.imported.at(-1)).toEqual([cnp('rule1'), cnp('rule2', 443, 'lab')]);
    expect((await call(sock, 'PUT', '/v1/policy', cnp('rule1'))).body).toEqual({ revision: 3, policies: [{ kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'rule1', result: 'unchanged' }] });
    expect(agent.imported.at(-1)).toEqual([cnp('rule1')]);
    expect((await call(sock, 'PUT', '/v1/policy', cnp('rule1', 8080))).body.policies[0].result).toBe('configured');
    const list = (await call(sock, 'GET', '/v1/policy')).body;
    expect(list.revision).toBe(4);
    expect(list.policies).toEqual([
      { kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'rule1', object: cnp('rule1', 8080), selects: [7] },
      { kind: 'CiliumNetworkPolicy', namespace: 'lab', name: 'rule2', object: cnp('rule2', 443, 'lab'), selects: [7] },
    ]);
  });

  it('rejects bad policy bodies naming the object and the field', async () => {
    const bad = await call(sock, 'PUT', '/v1/policy', [cnp('ok'), cnp('bad', 70000)]);
    expect(bad).toMatchObject({ status: 400, body: { error: 'policy #2: spec.ingress[0].toPorts[0].ports[0].port: 70000 is out of range 0-65535' } });
    expect((await call(sock, 'PUT', '/v1/policy', { kind: 'CiliumNetworkPolicy', metadata: {} })).body.error).toBe('metadata.name: required');
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
    const n = agent.imported.length;
    const huge = await call(sock, 'PUT', '/v1/policy', [{ ...cnp('big'), pad: 'x'.repeat(1024 * 1024) }]);
    expect(huge.status).toBe(413);
    expect(agent.imported.length).toBe(n);
  });

  it('deletes one policy (404 when absent) or all of them', async () => {
    await call(sock, 'PUT', '/v1/policy', [cnp('d1'), cnp('d2', 80, 'lab'), { kind: 'CiliumClusterwideNetworkPolicy', metadata: { name: 'cw', namespace: 'ignored' } }]);
    const rev = agent.revision;
    expect(await call(sock, 'DELETE', '/v1/policy?name=d1')).toMatchObject({ status: 200, body: { revision: rev + 1 } });
    expect(await call(sock, 'DELETE', '/v1/policy?name=d1')).toMatchObject({ status: 404, body: { error: 'policy CiliumNetworkPolicy default/d1 not found' } });
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
    expect(agent.policies.size).toBeGreaterThan(0);
    expect(await call(sock, 'DELETE', '/v1/policy?all=true')).toMatchObject({ status: 200, body: { revision: agent.revision } });
    expect(agent.policies.size).toBe(0);
    expect((await call(sock, 'GET', '/v1/policy')).body.policies).toEqual([]);
  });

  it('serves bpf policy tables, identities and the ip list', async () => {
    const t = await call(sock, 'GET', '/v1/bpf/policy/7');
    expect(t.status).toBe(200);
    expect(t.body.table).toMatch(/^POLICY {3}DIRECTION/);
    expect(await call(sock, 'GET', '/v1/bpf/policy/8')).toMatchObject({ status: 404, body: { error: 'endpoint 8 not found' } });
    expect(await call(sock, 'GET', '/v1/bpf/policy/x')).toMatchObject({ status: 400, body: { error: expect.stringContaining('params/id') } });
    expect((await call(sock, 'GET', '/v1/identity')).body).toEqual([{ id: 1, labels: ['reserved:host'] }, { id: 18300, labels: ['k8s:class=xwing', 'k8s:org=alliance'] }]);
    expect((await call(sock, 'GET', '/v1/ip')).body).toEqual([{ prefix: '172.20.0.10/32', identity: 18300, labels: ['k8s:class=xwing'], source: 'custom-resource' }]);
  });

  it('serves an OpenAPI document listing every route with its schemas', async () => {
    const doc = (await call(sock, 'GET', '/v1/openapi.json')).body;
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/v1/config', '/v1/ct', '/v1/endpoint', '/v1/endpoint/{id}', '/v1/healthz', '/v1/lb', '/v1/map', '/v1/map/{name}', '/v1/monitor', '/v1/openapi.json',
      '/v1/pods', '/v1/pods/{namespace}/{name}', '/v1/service', '/v1/services', '/v1/services/{namespace}/{name}', '/v1/status',
    ].concat(['/v1/bpf/policy/{id}', '/v1/identity', '/v1/ip', '/v1/policy'])
      .concat(['/v1/apply', '/v1/delete', '/v1/resources/{kind}', '/v1/resources/{kind}/{name}', '/v1/pods/{namespace}/{name}/logs'])
      .concat(['/v1/flows', '/v1/hubble/status'])
      .concat(['/v1/trace', '/v1/nodes']).sort());
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
