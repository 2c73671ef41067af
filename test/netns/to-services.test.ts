// toServices for a Service without a selector: its user-written Endpoints point at a host outside the
// cluster (addresses on the node's lo). The ClusterIP balances to those addresses, the egress policy
// `toServices: [{k8sService}]` allows exactly them (as /32 CIDR identities), and moving the Endpoints
// to another address (or replacing them by an EndpointSlice) moves the allow.
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestAgent } from '../helpers/agent.ts';
import { nsSpawn, requireRoot, run, sh, stop, waitListening } from '../helpers/sys.ts';

const root = requireRoot();
const FIRST_IP = '203.0.113.21';
const SECOND_IP = '203.0.113.22';
const OTHER_IP = '203.0.113.23';
const PORT = 8080;
/** Answers with the address the request came in on, so the test sees which backend served it. */
const WEB_SERVER = `require('http').createServer((q,s)=>s.end('served by '+q.socket.localAddress+'\\n')).listen(${PORT},'0.0.0.0')`;

const service = {
  apiVersion: 'v1', kind: 'Service', metadata: { name: 'outside', namespace: 'default' },
  spec: { ports: [{ port: 80, targetPort: PORT, protocol: 'TCP' }] },
};
const endpoints = (ip: string) => ({
  apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'outside', namespace: 'default' },
  subsets: [{ addresses: [{ ip }], ports: [{ port: PORT, protocol: 'TCP' }] }],
});
const policy = {
  apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'to-outside', namespace: 'default' },
  spec: { endpointSelector: { matchLabels: { app: 'client' } }, egress: [{ toServices: [{ k8sService: { serviceName: 'outside', namespace: 'default' } }] }] },
};

describe.skipIf(!root)('toServices of a selector-less service', () => {
  const agent = new TestAgent();
  let server: ChildProcess | undefined;
  let clusterIP = '';
  beforeAll(async () => {
    await agent.start();
    for (const ip of [FIRST_IP, SECOND_IP, OTHER_IP]) sh('ip', ['-n', agent.nodeNetns, 'addr', 'add', `${ip}/32`, 'dev', 'lo']);
    server = nsSpawn(agent.nodeNetns, ['node', '-e', WEB_SERVER]);
    await agent.createPod('client', { app: 'client' });
    await waitListening(agent.nodeNetns, PORT);
    await apply([service, endpoints(FIRST_IP), policy]);
    clusterIP = ((await agent.api('GET', '/v1/resources/services/outside?namespace=default')).body as { status: { service: { clusterIP: string } } }).status.service.clusterIP;
  });
  afterAll(async () => {
    if (server) await stop(server);
    await agent.destroy();
  });

  const apply = async (objects: unknown[]) => {
    const r = await agent.api('POST', '/v1/apply', { objects });
    if (r.status !== 200) throw new Error(`apply: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body as { results: Array<{ kind: string; result: string }> };
  };
  const curl = (ip: string, port: number, signal?: AbortSignal) =>
    run('ip', ['netns', 'exec', agent.podNetns('client'), 'curl', '-s', '--connect-timeout', '2', '--max-time', '3', `http://${ip}:${port}/`], 10_000, signal);
  const denied = async (ip: string) => {
    const tuple = `-> ${ip}:${PORT} tcp SYN`;
    const { result } = await agent.expectEvent('?type=drop', `a policy drop of ${tuple}`,
      (e) => /^xx drop \(Policy denied\) /.test(e.summary) && e.summary.endsWith(tuple),
      (signal) => curl(ip, PORT, signal), { stopAction: true });
    expect(result?.stdout ?? '').toBe('');
  };

  it('the Endpoints address is allowed directly and through the ClusterIP; another address on the host is denied', async () => {
    expect((await curl(FIRST_IP, PORT)).stdout).toBe(`served by ${FIRST_IP}\n`);
    expect((await curl(clusterIP, 80)).stdout).toBe(`served by ${FIRST_IP}\n`);
    await denied(OTHER_IP);
    const ipcache = (await agent.api('GET', '/v1/ip')).body as Array<{ prefix: string; labels: string[] }>;
    expect(ipcache.find((e) => e.prefix === `${FIRST_IP}/32`)?.labels).toContain(`cidr:${FIRST_IP}/32`);
  });

  it('moving the Endpoints to another address moves the backend and the allow', async () => {
    expect((await apply([endpoints(SECOND_IP)])).results.map((r) => `${r.kind} ${r.result}`)).toEqual(['Endpoints configured']);
    expect((await curl(SECOND_IP, PORT)).stdout).toBe(`served by ${SECOND_IP}\n`);
    expect((await curl(clusterIP, 80)).stdout).toBe(`served by ${SECOND_IP}\n`);
    await denied(FIRST_IP);
  });

  it('an EndpointSlice in place of the Endpoints serves the same way', async () => {
    const slice = {
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'outside-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'outside' } },
      addressType: 'IPv4', endpoints: [{ addresses: [FIRST_IP] }], ports: [{ port: PORT, protocol: 'TCP' }],
    };
    expect((await apply([slice])).results.map((r) => `${r.kind} ${r.result}`)).toEqual(['EndpointSlice created']);
    const del = await agent.api('POST', '/v1/delete', { objects: [endpoints(SECOND_IP)] });
    expect(del.status).toBe(200);
    expect((await curl(FIRST_IP, PORT)).stdout).toBe(`served by ${FIRST_IP}\n`);
    expect((await curl(clusterIP, 80)).stdout).toBe(`served by ${FIRST_IP}\n`);
    await denied(SECOND_IP);
  });

  it('Endpoints for a service with a selector are refused', async () => {
    const r = await agent.api('POST', '/v1/apply', { objects: [
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'selected', namespace: 'default' }, spec: { selector: { app: 'web' }, ports: [{ port: 80 }] } },
    ] });
    expect(r.status).toBe(200);
    const refused = await agent.api('POST', '/v1/apply', { objects: [{ ...endpoints(FIRST_IP), metadata: { name: 'selected', namespace: 'default' } }] });
    expect(refused.status).toBe(422);
    expect((refused.body as { error: string }).error).toContain('service "selected" has a selector');
  });
});
