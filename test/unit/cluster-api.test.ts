// The agents' API on the node network: refused (401) without the cluster token, served with it; the CLI
// reaches a pod's agent there when the pod's node has no socket on this machine.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiServer } from '../../src/api/index.ts';
import { clusterToken } from '../../src/api/cluster-listener.ts';
import type { Agent } from '../../src/agent/agent.ts';
import { AgentClient } from '../../src/cli/client.ts';
import { LocalKVStore, type KVStore } from '../../src/control/kvstore.ts';
import type { Pod } from '../../src/control/types.ts';
import { startAgentCore } from './agent-core.ts';

function get(port: number, path: string, token?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const shared = (kv: KVStore): KVStore => ({
  get: (k) => kv.get(k), put: (k, v, o) => kv.put(k, v, o), delete: (k) => kv.delete(k), list: (p) => kv.list(p),
  createOnly: (k, v, o) => kv.createOnly(k, v, o), watch: (p, cb) => kv.watch(p, cb), grantLease: (t) => kv.grantLease(t),
  health: () => kv.health(), close: async () => undefined,
});

describe('cluster API listener', () => {
  let dir: string;
  let kv: KVStore;
  let ctr: Agent;
  let w1: Agent;
  let apis: ApiServer[] = [];
  let token: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ciliary-cluster-api-'));
    kv = LocalKVStore.inMemory();
    token = clusterToken(join(dir, 'cluster-token'));
    ctr = await startAgentCore('k8s-ctr', { 'node-ip': '192.168.10.100' }, shared(kv));
    w1 = await startAgentCore('k8s-w1', { 'node-ip': '127.0.0.1' }, shared(kv));
    mkdirSync(join(dir, 'k8s-ctr'));
    apis = [
      await startApi(ctr, { socketPath: join(dir, 'k8s-ctr', 'agent.sock'), logger: pino({ level: 'silent' }) }),
      // k8s-w1 is "another machine": no socket beside k8s-ctr's, only its cluster listener.
      await startApi(w1, { socketPath: join(dir, 'elsewhere', 'agent.sock'), cluster: { address: '127.0.0.1:0', token }, logger: pino({ level: 'silent' }) }),
    ];
  });
  afterAll(async () => {
    for (const a of apis) await a.close();
    await ctr?.stop();
    await w1?.stop();
    await kv.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('makes the token once, mode 0600, and refuses a file others can read', () => {
    expect(statSync(join(dir, 'cluster-token')).mode & 0o777).toBe(0o600);
    expect(clusterToken(join(dir, 'cluster-token'))).toBe(token);
    chmodSync(join(dir, 'cluster-token'), 0o644);
    expect(() => clusterToken(join(dir, 'cluster-token'))).toThrow('readable by others');
    chmodSync(join(dir, 'cluster-token'), 0o600);
  });

  it('answers 401 without the token or with a wrong one, and serves the API with it', async () => {
    const port = apis[1].clusterPort!;
    const none = await get(port, '/v1/healthz');
    expect(none.status).toBe(401);
    expect(JSON.parse(none.body).error).toContain('cluster credential required');
    expect((await get(port, '/v1/healthz', 'x'.repeat(64))).status).toBe(401);
    expect((await get(port, '/v1/healthz', token)).status).toBe(200);
  });

  it("the CLI reaches a pod's agent on another machine through its cluster listener", async () => {
    await ctr.resources.apply([{ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'far', namespace: 'default' }, spec: { nodeName: 'k8s-w1', containers: [{ name: 'c', image: 'ciliary/run' }] } }]);
    for (let i = 0; i < 1000 && !w1.getPod('default', 'far'); i++) await new Promise((r) => setTimeout(r, 5));
    const local = new AgentClient({ node: 'k8s-ctr', socketPath: join(dir, 'k8s-ctr', 'agent.sock'), stateDir: join(dir, 'k8s-ctr') });
    const remote = await local.forPod('default', 'far', { CILIARY_CLUSTER_API_PORT: String(apis[1].clusterPort) });
    expect(remote.target.tcp?.host).toBe('127.0.0.1');
    const pod = await remote.get<Pod>('/v1/pods/default/far');
    expect(pod.node).toBe('k8s-w1');
    expect(pod.podIP).toBe(w1.getPod('default', 'far')!.podIP);
  });
});
