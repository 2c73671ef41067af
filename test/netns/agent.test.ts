// The agent end to end on one node: pods through the API, real traffic through the datapath,
// drops with Cilium's reasons, bad input, clean deletion, and surviving a SIGKILL mid-transfer.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, readdirSync } from 'node:fs';
import { poll, requireRoot, run, sh, nsSpawn, stop, sleep, waitListening } from '../helpers/sys.ts';
import { TestAgent } from '../helpers/agent.ts';

const root = requireRoot();
const HTTP_SERVER = ['node', '-e', "require('http').createServer((q,s)=>s.end('hello from server '+q.socket.remoteAddress)).listen(8080,'0.0.0.0')"];

describe.skipIf(!root)('agent on one node', () => {
  let agent: TestAgent;
  let a: any;
  let b: any;

  beforeAll(async () => {
    agent = new TestAgent();
    await agent.start();
    a = await agent.createPod('client', { app: 'client' });
    b = await agent.createPod('server', { app: 'server' }, HTTP_SERVER);
    await waitListening(agent.podNetns('server'), 8080);
  });
  afterAll(async () => {
    await agent?.destroy();
  });

  const inPod = (pod: string, args: string[], timeoutMs = 30_000, signal?: AbortSignal) => run('ip', ['netns', 'exec', agent.podNetns(pod), ...args], timeoutMs, signal);

  it('gives pods addresses from the node pod CIDR and lists them', async () => {
    expect(a.podIP).toMatch(/^172\.20\.\d+\.\d+$/);
    expect(b.podIP).not.toBe(a.podIP);
    const pods = (await agent.api('GET', '/v1/pods')).body;
    expect(pods.filter((p: any) => p.namespace === 'default').map((p: any) => p.name).sort()).toEqual(['client', 'server']);
    const eps = (await agent.api('GET', '/v1/endpoint')).body;
    expect(eps.find((e: any) => e.ipv4 === a.podIP)?.labels).toContain('k8s:app=client');
  });

  it('pod to pod: ping and HTTP', async () => {
    const p = await inPod('client', ['ping', '-c', '3', '-i', '0.2', '-W', '2', b.podIP]);
    expect(p.stdout).toContain('3 received');
    const c = await inPod('client', ['curl', '-s', '--max-time', '5', `http://${b.podIP}:8080/`]);
    expect(c.stdout).toBe(`hello from server ${a.podIP}`);
  });

  it('pod to pod: iperf3 TCP and UDP', async () => {
    const server = nsSpawn(agent.podNetns('server'), ['iperf3', '-s', '-1', '-B', b.podIP]);
    try {
      await waitListening(agent.podNetns('server'), 5201);
      const r = await inPod('client', ['iperf3', '-c', b.podIP, '-t', '2', '-J']);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout).end.sum_received.bytes).toBeGreaterThan(10_000_000);
    } finally {
      await stop(server);
    }
    const userver = nsSpawn(agent.podNetns('server'), ['iperf3', '-s', '-1', '-B', b.podIP]);
    try {
      await waitListening(agent.podNetns('server'), 5201);
      const r = await inPod('client', ['iperf3', '-u', '-b', '10M', '-c', b.podIP, '-t', '1', '-J']);
      expect(r.code).toBe(0);
      const s = JSON.parse(r.stdout).end.sum;
      expect(s.packets - s.lost_packets).toBeGreaterThan(100);
    } finally {
      await stop(userver);
    }
  });

  it('node to pod and pod to node through cilium_host', async () => {
    const status = (await agent.api('GET', '/v1/status')).body;
    const n = await run('ip', ['netns', 'exec', agent.nodeNetns, 'curl', '-s', '--max-time', '5', `http://${b.podIP}:8080/`]);
    expect(n.stdout).toBe(`hello from server ${status.routerIP}`);
    const p = await inPod('client', ['ping', '-c', '2', '-i', '0.2', '-W', '2', status.routerIP]);
    expect(p.stdout).toContain('2 received');
  });

  it('drops a spoofed source with reason 132 and reports it in monitor', async () => {
    sh('ip', ['-n', agent.podNetns('client'), 'addr', 'add', '172.20.99.99/32', 'dev', 'eth0']);
    const { event: drop } = await agent.expectEvent('?type=drop', 'drop 132 of the spoofed ping', (e) => e.reason === 132,
      (signal) => inPod('client', ['ping', '-c', '1', '-W', '1', '-I', '172.20.99.99', b.podIP], 10_000, signal), { stopAction: true });
    expect(drop.summary).toMatch(/^xx drop \(Invalid source ip\) .*172\.20\.99\.99 -> .* EchoRequest$/);
    sh('ip', ['-n', agent.podNetns('client'), 'addr', 'del', '172.20.99.99/32', 'dev', 'eth0']);
  });

  it('drops a packet whose TTL runs out with reason 196', async () => {
    const { event } = await agent.expectEvent('', 'drop 196 of the TTL-1 ping', (e) => e.type === 'drop' && e.reason === 196,
      (signal) => inPod('client', ['ping', '-c', '1', '-W', '1', '-t', '1', b.podIP], 10_000, signal), { stopAction: true });
    expect(event.summary).toMatch(/TTL exceeded/);
  });

  it('rejects bad input with a message naming the field, and applies nothing', async () => {
    const before = (await agent.api('GET', '/v1/pods')).body.length;
    const r1 = await agent.api('POST', '/v1/pods', { name: 'Bad_Name', namespace: 'default', labels: {} });
    expect(r1.status).toBe(400);
    expect(JSON.stringify(r1.body)).toMatch(/name/);
    const r2 = await agent.api('POST', '/v1/pods', { name: 'ok', namespace: 'default', labels: {}, colour: 'blue' });
    expect(r2.status).toBe(400);
    expect(JSON.stringify(r2.body)).toMatch(/colour/);
    const r3 = await agent.api('POST', '/v1/pods', { name: 'client', namespace: 'default', labels: {} });
    expect(r3.status).toBe(409);
    expect((await agent.api('GET', '/v1/pods')).body.length).toBe(before);
    expect(readdirSync('/var/run/netns').filter((n) => n === agent.podNetns('ok'))).toEqual([]);
  });

  it('deleting a pod leaves nothing behind', async () => {
    const pod = await agent.createPod('doomed', { app: 'doomed' }, ['sleep', '1000']);
    expect(existsSync(`/var/run/netns/${pod.netns}`)).toBe(true);
    expect(() => process.kill(pod.pid, 0)).not.toThrow();
    const del = await agent.api('DELETE', '/v1/pods/default/doomed');
    expect(del.status).toBeLessThan(300);
    expect(existsSync(`/var/run/netns/${pod.netns}`)).toBe(false);
    expect(existsSync(`/etc/netns/${pod.netns}`)).toBe(false);
    expect(() => process.kill(pod.pid, 0)).toThrow();
    const lxc = (await agent.api('GET', '/v1/map/cilium_lxc')).body.entries.map((e: any) => e.key);
    expect(lxc).not.toContain(`${pod.podIP}:0`);
    const ipcache = (await agent.api('GET', '/v1/map/cilium_ipcache')).body.entries.map((e: any) => e.key);
    expect(ipcache).not.toContain(`${pod.podIP}/32`);
    const maps = (await agent.api('GET', '/v1/map')).body.map((m: any) => m.name);
    expect(maps).not.toContain(`cilium_calls_${String(pod.endpointID).padStart(5, '0')}`);
    expect((await agent.api('GET', '/v1/status')).body.ipam.allocated.map((x: any) => x.ip)).not.toContain(pod.podIP);
    expect((await agent.api('GET', '/v1/pods/default/doomed')).status).toBe(404);
  });

  it('survives SIGKILL during a 20-second transfer: no reset, same addresses', async () => {
    const server = nsSpawn(agent.podNetns('server'), ['iperf3', '-s', '-1', '-B', b.podIP]);
    try {
      await waitListening(agent.podNetns('server'), 5201);
      const transfer = inPod('client', ['iperf3', '-c', b.podIP, '-t', '20', '-J'], 60_000);
      await sleep(5000); // deliberately mid-transfer
      await agent.kill('SIGKILL');
      await agent.start();
      const r = await transfer;
      expect(r.code, r.stdout.slice(-500) + r.stderr).toBe(0);
      const j = JSON.parse(r.stdout);
      expect(j.error).toBeUndefined();
      expect(j.end.sum_received.seconds).toBeGreaterThan(19);
    } finally {
      await stop(server);
    }
    const pods = (await agent.api('GET', '/v1/pods')).body;
    expect(pods.find((p: any) => p.name === 'client').podIP).toBe(a.podIP);
    expect(pods.find((p: any) => p.name === 'server').podIP).toBe(b.podIP);
    const c = await inPod('client', ['curl', '-s', '--max-time', '5', `http://${b.podIP}:8080/`]);
    expect(c.stdout).toBe(`hello from server ${a.podIP}`);
  }, 90_000);

  it('SIGTERM ends the pods\' processes; the next agent starts them again', async () => {
    const pod = await agent.createPod('sleepy', { app: 'sleepy' }, ['sleep', '1000']);
    await agent.kill('SIGTERM');
    expect(() => process.kill(pod.pid, 0)).toThrow();
    expect(existsSync(`/var/run/netns/${pod.netns}`)).toBe(true);
    await agent.start();
    const again = await poll('the restarted sleepy process', async () => {
      const p = (await agent.api('GET', '/v1/pods/default/sleepy')).body;
      return p.pid && p.pid !== pod.pid ? p : undefined;
    }, 10_000, 100);
    expect(() => process.kill(again.pid, 0)).not.toThrow();
  });
});
