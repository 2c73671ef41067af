// ClusterIP services end to end: random and Maglev selection, UDP, affinity, hairpin, node to
// ClusterIP, no-backend drops, conntrack entries and their expiry, a tiny CT map under load.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { poll, requireRoot, run, waitListening } from '../helpers/sys.ts';
import { TestAgent } from '../helpers/agent.ts';

const root = requireRoot();
/** An HTTP server answering with its own name and the client's address. */
const namedServer = (name: string, port = 80) => ['node', '-e', `require('http').createServer((q,s)=>s.end('${name} '+q.socket.remoteAddress+':'+q.socket.remotePort+'\\n')).listen(${port},'0.0.0.0')`];
const udpEcho = (name: string, port: number) => ['node', '-e', `const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>s.send('${name} '+m,r.port,r.address));s.bind(${port},'0.0.0.0')`];

async function waitHttp(agent: TestAgent, pod: string, url: string): Promise<void> {
  await poll(`${url} to answer from ${pod}`, async () => (await run('ip', ['netns', 'exec', agent.podNetns(pod), 'curl', '-s', '--max-time', '1', url])).code === 0, 15_000, 100);
}

async function applyService(agent: TestAgent, spec: Record<string, unknown>): Promise<any> {
  const r = await agent.api('POST', '/v1/services', { namespace: 'default', ...spec });
  if (r.status >= 300) throw new Error(`service: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.service;
}

const inPod = (agent: TestAgent, pod: string, cmd: string[], timeoutMs = 60_000, signal?: AbortSignal) => run('ip', ['netns', 'exec', agent.podNetns(pod), ...cmd], timeoutMs, signal);

describe.skipIf(!root)('ClusterIP services (random selection)', () => {
  let agent: TestAgent;
  let svc: any;

  beforeAll(async () => {
    agent = new TestAgent(['--bpf-ct-timeout-regular-any=2', '--bpf-ct-timeout-service-any=2']);
    await agent.start();
    await agent.createPod('web1', { app: 'web' }, namedServer('web1'));
    await agent.createPod('web2', { app: 'web' }, namedServer('web2'));
    await agent.createPod('client', { app: 'client' });
    await agent.createPod('echo', { app: 'echo' }, udpEcho('echo', 5353));
    const named = await agent.api('POST', '/v1/pods', { name: 'named', namespace: 'default', labels: { app: 'named' }, ports: [{ name: 'http', containerPort: 8080 }], command: namedServer('named', 8080) });
    expect(named.status).toBeLessThan(300);
    svc = await applyService(agent, { name: 'web', selector: { app: 'web' }, ports: [{ port: 80, targetPort: 80 }] });
    await waitHttp(agent, 'client', `http://${svc.clusterIP}/`);
    await waitListening(agent.podNetns('echo'), 5353, 'udp');
    await waitListening(agent.podNetns('named'), 8080);
  });
  afterAll(async () => {
    await agent?.destroy();
  });

  it('allocates a ClusterIP and lists both backends', async () => {
    expect(svc.clusterIP).toMatch(/^10\.96\./);
    const s = (await agent.api('GET', '/v1/services/default/web')).body;
    expect(s.frontends[0].backends).toHaveLength(2);
    const rows = (await agent.api('GET', '/v1/lb?revnat=false')).body.rows as string[][];
    expect(rows.find((r) => r[0] === `${svc.clusterIP}:80`)?.[1]).toMatch(/^0\.0\.0\.0:0 \(\d+\) \[ClusterIP, non-routable\]$/);
  });

  it('spreads 200 connections over both backends at random (each at least 30%)', async () => {
    const r = await inPod(agent, 'client', ['sh', '-c', `for i in $(seq 200); do curl -s --max-time 2 http://${svc.clusterIP}/; done`]);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(200);
    const web1 = lines.filter((l) => l.startsWith('web1 ')).length;
    const web2 = lines.filter((l) => l.startsWith('web2 ')).length;
    expect(web1 + web2).toBe(200);
    expect(web1).toBeGreaterThanOrEqual(60);
    expect(web2).toBeGreaterThanOrEqual(60);
  });

  it('the backend sees the client pod address; replies come from the ClusterIP', async () => {
    const client = (await agent.api('GET', '/v1/pods/default/client')).body;
    const r = await inPod(agent, 'client', ['curl', '-s', '-w', ' %{remote_ip}:%{remote_port}', `http://${svc.clusterIP}/`]);
    expect(r.stdout).toMatch(new RegExp(`^web[12] ${client.podIP.replace(/\./g, '\\.')}:\\d+\\n ${svc.clusterIP.replace(/\./g, '\\.')}:80$`));
  });

  it('resolves targetPort by container port name', async () => {
    const s = await applyService(agent, { name: 'named', selector: { app: 'named' }, ports: [{ port: 80, targetPort: 'http' }] });
    await waitHttp(agent, 'client', `http://${s.clusterIP}/`);
    const out = await inPod(agent, 'client', ['curl', '-s', `http://${s.clusterIP}/`]);
    expect(out.stdout).toMatch(/^named /);
  });

  it('UDP service', async () => {
    const s = await applyService(agent, { name: 'echo', selector: { app: 'echo' }, ports: [{ port: 53, targetPort: 5353, protocol: 'UDP' }] });
    const js = `const d=require('dgram').createSocket('udp4');d.on('message',(m,r)=>{console.log(m.toString()+' from '+r.address+':'+r.port);process.exit(0)});d.send('ping',53,'${s.clusterIP}');setTimeout(()=>process.exit(3),2000)`;
    const r = await inPod(agent, 'client', ['node', '-e', js]);
    expect(r.stdout.trim()).toBe(`echo ping from ${s.clusterIP}:53`);
  });

  it('an ICMP error about a service connection is RELATED and translated back to the frontend', async () => {
    const s = await applyService(agent, { name: 'refuse', selector: { app: 'echo' }, ports: [{ port: 53, targetPort: 5454, protocol: 'UDP' }] });
    const client = (await agent.api('GET', '/v1/pods/default/client')).body;
    // The server's port unreachable, traced on its way back: conntrack finds the quoted connection (RELATED).
    const trace = await agent.openStream(`/v1/trace?pod=client&proto=icmp&count=1&timeout=20`);
    try {
      await trace.waitFor('the started record', (e) => 'started' in e);
      const r = await inPod(agent, 'client', ['dig', `@${s.clusterIP}`, '+tries=1', '+timeout=3', 'x.example']);
      expect(r.stdout + r.stderr).toMatch(/connection refused/);
      const icmp = await trace.waitFor('the traced ICMP error', (e) => 'header' in e);
      expect(icmp.header).toMatch(/ICMP DestinationUnreachable/);
      expect(icmp.steps.some((l: string) => /^cilium_ct(_any)?4_global lookup \(quoted in ICMP error\) UDP .* → hit related rev_nat=[1-9]\d*$/.test(l)), icmp.steps.join('\n')).toBe(true);
      expect(icmp.verdict).toMatch(new RegExp(`^→ redirect fd=\\d+ \\(to-endpoint ${client.endpointID} default/client\\)$`));
    } finally {
      trace.close();
    }
    const entry = (await agent.api('GET', '/v1/ct')).body.lines.filter((l: string) => l.startsWith(`UDP OUT ${s.clusterIP}:53 `));
    expect(entry.length).toBeGreaterThan(0);
  });

  it('hairpin: a pod reaches itself through its own service', async () => {
    const s = await applyService(agent, { name: 'self', selector: { app: 'named' }, ports: [{ port: 80, targetPort: 8080 }] });
    const r = await inPod(agent, 'named', ['curl', '-s', '--max-time', '3', `http://${s.clusterIP}/`]);
    expect(r.stdout).toMatch(/^named 169\.254\.42\.1:\d+/);
  });

  it('the node reaches a ClusterIP through cilium_host', async () => {
    const r = await run('ip', ['netns', 'exec', agent.nodeNetns, 'curl', '-s', '--max-time', '3', `http://${svc.clusterIP}/`]);
    expect(r.stdout).toMatch(/^web[12] /);
  });

  it('a service without backends drops with reason 158', async () => {
    const s = await applyService(agent, { name: 'empty', selector: { app: 'nothing' }, ports: [{ port: 80 }] });
    const { event } = await agent.expectEvent('?type=drop', 'drop 158 of the SYN to the empty service', (e) => e.reason === 158,
      (signal) => inPod(agent, 'client', ['curl', '-s', '--connect-timeout', '5', `http://${s.clusterIP}/`], 10_000, signal), { stopAction: true });
    expect(event.summary).toMatch(new RegExp(`^xx drop \\(Service backend not found\\) .* -> ${s.clusterIP.replace(/\./g, '\\.')}:80 tcp SYN$`));
  });

  it('records conntrack entries with their flags, and expires them on schedule', async () => {
    await inPod(agent, 'client', ['curl', '-s', `http://${svc.clusterIP}/`]);
    const lines: string[] = (await agent.api('GET', '/v1/ct')).body.lines;
    const svcLine = lines.find((l) => l.startsWith(`TCP OUT ${svc.clusterIP}:80 -> `) && l.includes(' service '));
    expect(svcLine).toBeDefined();
    expect(lines.some((l) => /^TCP OUT 172\.20\.\d+\.\d+:80 -> 172\.20\.\d+\.\d+:\d+ expires=\d+ .*TxFlagsSeen=0x1[bf].*\[ RxClosing TxClosing SeenNonSyn \] RevNAT=\d+/.test(l))).toBe(true);
    expect(lines.some((l) => /^TCP IN 172\.20\.\d+\.\d+:\d+ -> 172\.20\.\d+\.\d+:80 .*SourceSecurityID=\d{3,}/.test(l))).toBe(true);
    // UDP entries live 2 s here (bpf-ct-timeout-regular-any=2); GC runs every second.
    const s = await applyService(agent, { name: 'echo-expiry', selector: { app: 'echo' }, ports: [{ port: 53, targetPort: 5353, protocol: 'UDP' }] });
    const js = `const d=require('dgram').createSocket('udp4');d.on('message',()=>process.exit(0));d.send('x',53,'${s.clusterIP}');setTimeout(()=>process.exit(3),2000)`;
    await inPod(agent, 'client', ['node', '-e', js]);
    const udpNow = (await agent.api('GET', '/v1/ct')).body.lines.filter((l: string) => l.startsWith('UDP '));
    expect(udpNow.length).toBeGreaterThan(0);
    const udpLeft = async () => (await agent.api('GET', '/v1/ct')).body.lines.filter((l: string) => l.startsWith('UDP ')).length === 0;
    await poll('the UDP entries to expire', udpLeft, 8000, 250);
    const flushed = await agent.api('DELETE', '/v1/ct');
    expect(flushed.body.flushed).toBeGreaterThan(0);
    expect((await agent.api('GET', '/v1/ct')).body.lines).toEqual([]);
  });

  it('a long transfer through the service survives adding and removing other backends', async () => {
    await agent.createPod('big1', { app: 'big' }, ['iperf3', '-s']);
    const s = await applyService(agent, { name: 'big', selector: { app: 'big' }, ports: [{ port: 5201 }] });
    await waitListening(agent.podNetns('big1'), 5201);
    const transfer = inPod(agent, 'client', ['iperf3', '-c', s.clusterIP, '-t', '8', '-J']);
    await poll('the transfer to be under way', async () => (await agent.api('GET', '/v1/ct')).body.lines.some((l: string) => l.startsWith(`TCP OUT ${s.clusterIP}:5201 `)), 5000, 100);
    await agent.createPod('big2', { app: 'big' }, ['iperf3', '-s']);
    await agent.createPod('big3', { app: 'big' }, ['iperf3', '-s']);
    await waitListening(agent.podNetns('big3'), 5201);
    await agent.api('DELETE', '/v1/pods/default/big3');
    const r = await transfer;
    expect(r.code, r.stdout.slice(-400)).toBe(0);
    expect(JSON.parse(r.stdout).end.sum_received.seconds).toBeGreaterThan(7);
    expect((await agent.api('GET', '/v1/services/default/big')).body.frontends[0].backends).toHaveLength(2);
  }, 30_000);
});

describe.skipIf(!root)('session affinity, Maglev and a small CT map', () => {
  let agent: TestAgent;

  beforeAll(async () => {
    agent = new TestAgent(['--bpf-lb-algorithm=maglev', '--bpf-ct-global-tcp-max=64']);
    await agent.start();
    for (const n of ['m1', 'm2', 'm3']) await agent.createPod(n, { app: 'm' }, namedServer(n));
    await agent.createPod('client', { app: 'client' });
  });
  afterAll(async () => {
    await agent?.destroy();
  });

  it('ClientIP affinity keeps one client on one backend', async () => {
    const s = await applyService(agent, { name: 'sticky', selector: { app: 'm' }, ports: [{ port: 80 }], sessionAffinity: 'ClientIP' });
    await waitHttp(agent, 'client', `http://${s.clusterIP}/`);
    const r = await inPod(agent, 'client', ['sh', '-c', `for i in $(seq 20); do curl -s http://${s.clusterIP}/; done`]);
    const names = new Set(r.stdout.trim().split('\n').map((l) => l.split(' ')[0]));
    expect(names.size).toBe(1);
  });

  it('Maglev picks the same backend for the same tuple, also after a restart and a CT flush', async () => {
    for (const n of ['u1', 'u2', 'u3']) await agent.createPod(n, { app: 'u' }, udpEcho(n, 5353));
    const s = await applyService(agent, { name: 'mag', selector: { app: 'u' }, ports: [{ port: 53, targetPort: 5353, protocol: 'UDP' }] });
    for (const n of ['u1', 'u2', 'u3']) await waitListening(agent.podNetns(n), 5353, 'udp');
    // UDP from fixed source ports: the same 5-tuple each time, and no TIME_WAIT in the way.
    const pick = async (port: number) => {
      const js = `const d=require('dgram').createSocket('udp4');d.on('message',(m)=>{console.log(m.toString().split(' ')[0]);process.exit(0)});d.bind(${port},()=>d.send('x',53,'${s.clusterIP}'));setTimeout(()=>process.exit(3),2000)`;
      return (await inPod(agent, 'client', ['node', '-e', js])).stdout.trim();
    };
    const ports = [40001, 40002, 40003, 40004, 40005, 40006, 40007, 40008];
    const before: string[] = [];
    for (const p of ports) before.push(await pick(p));
    expect(before.every((b) => /^u[123]$/.test(b))).toBe(true);
    expect(new Set(before).size).toBeGreaterThan(1);
    await agent.kill('SIGKILL');
    await agent.start();
    expect((await agent.api('DELETE', '/v1/ct')).status).toBe(200);
    const after: string[] = [];
    for (const p of ports) after.push(await pick(p));
    expect(after).toEqual(before);
  });

  it('a CT map of 64 entries serves 500 connections, evicting the least recently used', async () => {
    const s = await applyService(agent, { name: 'web', selector: { app: 'm' }, ports: [{ port: 80 }] });
    await waitHttp(agent, 'client', `http://${s.clusterIP}/`);
    const client = (await agent.api('GET', '/v1/pods/default/client')).body;
    // Each connection prints its source port: the order in which the connections were made.
    const r = await inPod(agent, 'client', ['sh', '-c', `for i in $(seq 500); do curl -s --max-time 2 -o /dev/null -w '%{local_port}\\n' http://${s.clusterIP}/; done`], 120_000);
    const ports = r.stdout.trim().split('\n');
    expect(ports).toHaveLength(500);
    expect(ports.every((p) => /^\d+$/.test(p) && p !== '0')).toBe(true);
    const maps = (await agent.api('GET', '/v1/map')).body;
    const ct = maps.find((m: any) => m.name === 'cilium_ct4_global');
    expect(ct.maxEntries).toBe(64);
    expect(ct.count).toBeGreaterThan(0);
    // What is left belongs to the newest connections; the oldest were evicted.
    const lines: string[] = (await agent.api('GET', '/v1/ct')).body.lines;
    const clientPort = new RegExp(`${client.podIP.replace(/\./g, '\\.')}:(\\d+)`);
    const left = new Set(lines.filter((l) => l.startsWith('TCP ')).map((l) => clientPort.exec(l)?.[1]).filter((p): p is string => p !== undefined));
    expect(left.size).toBeGreaterThan(0);
    const newest = new Set(ports.slice(-100));
    expect([...left].filter((p) => !newest.has(p)), lines.join('\n')).toEqual([]);
    // One more connection into the full map: its entries go in by evicting the least recently used.
    const trace = await agent.openStream('/v1/trace?pod=client&proto=tcp&count=50&timeout=20');
    try {
      await trace.waitFor('the started record', (e) => 'started' in e);
      await inPod(agent, 'client', ['curl', '-s', '--max-time', '2', '-o', '/dev/null', `http://${s.clusterIP}/`]);
      const syn = await trace.waitFor('the traced SYN', (e) => / TCP SYN length /.test(e.header ?? ''));
      expect(syn.steps.filter((l: string) => /^cilium_ct4_global insert .* → inserted, evicted the least recently used entry$/.test(l)).length, syn.steps.join('\n')).toBeGreaterThan(0);
    } finally {
      trace.close();
    }
  }, 150_000);
});

describe.skipIf(!root)('cluster DNS', () => {
  let agent: TestAgent;

  beforeAll(async () => {
    agent = new TestAgent();
    await agent.start();
    await agent.createPod('web', { app: 'web' }, namedServer('web'));
    await agent.createPod('client', { app: 'client' });
    await applyService(agent, { name: 'web', selector: { app: 'web' }, ports: [{ port: 80 }] });
  });
  afterAll(async () => {
    await agent?.destroy();
  });

  it('kube-dns is a service at 10.96.0.10 selecting the two CoreDNS pods', async () => {
    const s = (await agent.api('GET', '/v1/services/kube-system/kube-dns')).body;
    expect(s.clusterIP).toBe('10.96.0.10');
    expect(s.frontends.map((f: any) => `${f.port}/${f.protocol}`).sort()).toEqual(['53/TCP', '53/UDP', '9153/TCP']);
  });

  it('a pod curls a service by its full name and by its short name', async () => {
    const svc = (await agent.api('GET', '/v1/services/default/web')).body;
    await waitHttp(agent, 'client', 'http://web.default.svc.cluster.local/');
    const full = await inPod(agent, 'client', ['curl', '-s', 'http://web.default.svc.cluster.local/']);
    expect(full.stdout).toMatch(/^web /);
    const short = await inPod(agent, 'client', ['curl', '-s', 'http://web/']);
    expect(short.stdout).toMatch(/^web /);
    const dig = await inPod(agent, 'client', ['dig', '+short', 'web.default.svc.cluster.local']);
    expect(dig.stdout.trim()).toBe(svc.clusterIP);
    const tcp = await inPod(agent, 'client', ['dig', '+tcp', '+short', 'web.default.svc.cluster.local']);
    expect(tcp.stdout.trim()).toBe(svc.clusterIP);
  });

  it('answers NXDOMAIN for an unknown cluster name', async () => {
    const r = await inPod(agent, 'client', ['dig', 'nope.default.svc.cluster.local']);
    expect(r.stdout).toMatch(/status: NXDOMAIN/);
    expect(r.stdout).toMatch(/SERVER: 10\.96\.0\.10#53/);
  });
});
