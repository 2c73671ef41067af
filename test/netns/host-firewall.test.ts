// Host policies with real traffic: with enable-host-firewall a CiliumClusterwideNetworkPolicy with a
// nodeSelector is enforced on pods' connections to the node itself (a server in the node's netns).
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestAgent } from '../helpers/agent.ts';
import { join } from 'node:path';
import { nsSpawn, poll, requireRoot, run, stop, waitListening } from '../helpers/sys.ts';

const root = requireRoot();
const CLI = join(import.meta.dirname, '..', '..', 'bin', 'ciliary');
const NODE_PORTS = [8080, 9090];
const nodeServer = ['node', '-e', `for (const p of [${NODE_PORTS}]) require('http').createServer((q,s)=>s.end('node '+p+'\\n')).listen(p,'0.0.0.0')`];
const podServer = ['node', '-e', `require('http').createServer((q,s)=>s.end('pod\\n')).listen(80,'0.0.0.0')`];

const hostPolicy = (spec: Record<string, unknown>) => ({ apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy', metadata: { name: 'host-fw' }, spec });

describe.skipIf(!root)('host firewall', () => {
  const agent = new TestAgent(['--enable-host-firewall', '--node-labels=node-role.kubernetes.io/control-plane=']);
  let server: ChildProcess | undefined;
  let routerIP = '';
  let podIP = '';
  beforeAll(async () => {
    await agent.start();
    server = nsSpawn(agent.nodeNetns, nodeServer);
    await agent.createPod('client', { app: 'client' });
    podIP = (await agent.createPod('web', { app: 'web' }, podServer)).podIP;
    routerIP = (await agent.api('GET', '/v1/status')).body.routerIP;
    for (const p of NODE_PORTS) await waitListening(agent.nodeNetns, p);
    await waitListening(agent.podNetns('web'), 80);
  });
  afterAll(async () => {
    await stop(server);
    await agent.destroy();
  });

  const curl = (ns: string, url: string, signal?: AbortSignal) => run('ip', ['netns', 'exec', ns, 'curl', '-s', '--connect-timeout', '2', '--max-time', '3', url], 10_000, signal);
  const hostEndpoint = async () => ((await agent.api('GET', '/v1/endpoint')).body as any[]).find((e) => e.isHost);
  /** A connection the host firewall must drop: the monitor reports "Policy denied" for its first packet. */
  const denied = async (ns: string, ip: string, port: number) => {
    const tuple = `-> ${ip}:${port} tcp SYN`;
    const { event, result } = await agent.expectEvent('?type=drop', `a policy drop of ${tuple}`,
      (e) => /^xx drop \(Policy denied\) /.test(e.summary) && e.summary.endsWith(tuple),
      (signal) => curl(ns, `http://${ip}:${port}/`, signal), { stopAction: true });
    expect(result?.stdout ?? '').toBe('');
    return event;
  };

  it('without a host policy pods reach every port of the node; status shows the host firewall', async () => {
    expect((await agent.api('GET', '/v1/status')).body.features.hostFirewall).toBe(true);
    expect((await hostEndpoint()).policyIngress).toBe('Disabled');
    for (const p of NODE_PORTS) expect((await curl(agent.podNetns('client'), `http://${routerIP}:${p}/`)).stdout).toBe(`node ${p}\n`);
  });

  it('a host policy allowing 8080 from the cluster blocks 9090 on the node', async () => {
    const r = await agent.api('PUT', '/v1/policy', [hostPolicy({
      nodeSelector: { matchLabels: { 'node-role.kubernetes.io/control-plane': '' } },
      ingress: [{ fromEntities: ['cluster'], toPorts: [{ ports: [{ port: '8080', protocol: 'TCP' }] }] }],
    })]);
    expect(r.status).toBe(200);
    expect((await hostEndpoint()).policyIngress).toBe('Enabled');
    expect((await curl(agent.podNetns('client'), `http://${routerIP}:8080/`)).stdout).toBe('node 8080\n');
    await denied(agent.podNetns('client'), routerIP, 9090);
    // Hubble's line for it, as `ciliary observe` prints it.
    const lines = await poll('the drop flow', async () => {
      const r = await run(CLI, ['--socket', agent.socket, 'observe', '--from-pod', 'client', '--verdict', 'DROPPED', '--type', 'drop'], 30_000);
      const found = r.stdout.split('\n').filter((l) => l.includes(`:9090 `));
      return found.length > 0 ? found : undefined;
    }, 10_000, 200);
    expect(lines[0]).toMatch(new RegExp(`default/client:\\d+ \\(ID:\\d+\\) <> ${routerIP.replace(/\./g, '\\.')}:9090 \\(host\\) Policy denied DROPPED \\(TCP Flags: SYN\\)$`));
    // Pods among themselves are not the host's business.
    expect((await curl(agent.podNetns('client'), `http://${podIP}/`)).stdout).toBe('pod\n');
  });

  it("a host egress rule limits the node's own connections to pods; replies to pods still pass", async () => {
    const r = await agent.api('PUT', '/v1/policy', [hostPolicy({
      nodeSelector: {},
      ingress: [{ fromEntities: ['cluster'], toPorts: [{ ports: [{ port: '8080', protocol: 'TCP' }] }] }],
      egress: [{ toEndpoints: [{ matchLabels: { app: 'client' } }] }],
    })]);
    expect(r.status).toBe(200);
    expect((await hostEndpoint()).policyEgress).toBe('Enabled');
    await denied(agent.nodeNetns, podIP, 80);
    expect((await curl(agent.podNetns('client'), `http://${routerIP}:8080/`)).stdout).toBe('node 8080\n');
  });

  it('a nodeSelector in a namespaced policy is refused, naming the field', async () => {
    const r = await agent.api('PUT', '/v1/policy', [{ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'x', namespace: 'default' }, spec: { nodeSelector: {}, ingress: [{}] } }]);
    expect(r.status).toBe(400);
    expect(JSON.stringify(r.body)).toContain('spec.nodeSelector');
  });
});
