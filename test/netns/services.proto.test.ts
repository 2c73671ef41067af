// What the latency bench ran into: a TCP and a UDP frontend on one ClusterIP port work
// independently, and a source port reused between direct connections to a backend and connections
// through its ClusterIP (TCP after a close, UDP at any time) opens a new connection at once instead
// of hanging on the old CT entry, which carried the other path's reverse NAT.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { requireRoot, run, sleep } from '../helpers/sys.ts';
import { TestAgent } from '../helpers/agent.ts';
import { main } from '../../src/cli/main.ts';

const root = requireRoot();
/** HTTP on TCP 80 and a UDP echo on UDP 80, both answering with the pod's name. */
const tcpAndUdp80 = (name: string) => ['node', '-e', `require('http').createServer((q,s)=>s.end('${name} tcp\\n')).listen(80,'0.0.0.0');const u=require('dgram').createSocket('udp4');u.on('message',(m,r)=>u.send('${name} udp '+m,r.port,r.address));u.bind(80,'0.0.0.0')`];

async function applyService(agent: TestAgent, spec: Record<string, unknown>): Promise<any> {
  const r = await agent.api('POST', '/v1/services', { namespace: 'default', ...spec });
  if (r.status >= 300) throw new Error(`service: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.service;
}

const inPod = (agent: TestAgent, pod: string, cmd: string[], timeoutMs = 60_000) => run('ip', ['netns', 'exec', agent.podNetns(pod), ...cmd], timeoutMs);
/**
 * One HTTP request per source port, in turn, each from a socket bound to that port (SO_REUSEADDR, so
 * an earlier connection's TIME_WAIT to another destination does not block the bind): one line per
 * port, `PORT BODY MILLISECONDS` (spaces in the body as `_`) or `PORT error EXCEPTION`.
 */
const requestsFrom = async (agent: TestAgent, ip: string, ports: number[]): Promise<string[]> => {
  const py = `import socket,time
for p in [${ports.join(',')}]:
  t=time.time();s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.settimeout(3)
  try:
    s.bind(('0.0.0.0',p));s.connect(('${ip}',80));s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n');d=b''
    while True:
      c=s.recv(4096)
      if not c: break
      d+=c
    print(p,d.split(b'\\r\\n\\r\\n',1)[-1].decode().strip().replace(' ','_'),int((time.time()-t)*1000))
  except Exception as e: print(p,'error',type(e).__name__)
  s.close()
`;
  const r = await inPod(agent, 'client', ['python3', '-c', py]);
  return r.stdout.trim().split('\n');
};
/** One UDP request (from a fixed source port when `from` is set): the answer and where it came from. */
const udpAsk = (agent: TestAgent, ip: string, port: number, from = 0) =>
  inPod(agent, 'client', ['node', '-e', `const d=require('dgram').createSocket('udp4');d.on('message',(m,r)=>{console.log(m.toString()+' from '+r.address+':'+r.port);process.exit(0)});d.bind(${from},()=>d.send('ping',${port},'${ip}'));setTimeout(()=>process.exit(3),2000)`]);

async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    if (await check()) return;
    await sleep(100);
  }
  throw new Error(`${what} never answered`);
}

describe.skipIf(!root)('one ClusterIP port over TCP and UDP; source ports reused across direct and service connections', () => {
  let agent: TestAgent;
  let both: any;
  let podIP: string;

  beforeAll(async () => {
    agent = new TestAgent();
    await agent.start();
    podIP = (await agent.createPod('dual', { app: 'dual' }, tcpAndUdp80('dual'))).podIP;
    await agent.createPod('client', { app: 'client' });
    both = await applyService(agent, { name: 'both', selector: { app: 'dual' }, ports: [{ name: 'http', port: 80, protocol: 'TCP' }, { name: 'dns', port: 80, protocol: 'UDP' }] });
    await waitFor(async () => (await inPod(agent, 'client', ['curl', '-s', '--max-time', '1', `http://${podIP}/`])).code === 0, `http://${podIP}/`);
  });
  afterAll(async () => {
    await agent?.destroy();
  });

  it('answers TCP 80 and UDP 80 through the ClusterIP, each from its own server', async () => {
    const tcp = await inPod(agent, 'client', ['curl', '-s', '--max-time', '3', `http://${both.clusterIP}/`]);
    expect(tcp.stdout).toBe('dual tcp\n');
    const udp = await udpAsk(agent, both.clusterIP, 80);
    expect(udp.stdout.trim()).toBe(`dual udp ping from ${both.clusterIP}:80`);
    // And TCP again after UDP wrote its entries.
    expect((await inPod(agent, 'client', ['curl', '-s', '--max-time', '3', `http://${both.clusterIP}/`])).stdout).toBe('dual tcp\n');
  });

  it('lists both frontends with their own rev-NAT entries', async () => {
    const rows = (await agent.api('GET', '/v1/lb?revnat=false')).body.rows as string[][];
    const tcp = rows.find((r) => r[0] === `${both.clusterIP}:80`)?.[1];
    const udp = rows.find((r) => r[0] === `${both.clusterIP}:80/UDP`)?.[1];
    expect(tcp).toMatch(/^0\.0\.0\.0:0 \(\d+\) \[ClusterIP, non-routable\]$/);
    expect(udp).toMatch(/^0\.0\.0\.0:0 \(\d+\) \[ClusterIP, non-routable\]$/);
    const idOf = (row: string) => Number(/\((\d+)\)/.exec(row)![1]);
    expect(idOf(tcp!)).not.toBe(idOf(udp!));
    const revnat = (await agent.api('GET', '/v1/lb?revnat=true')).body.rows as string[][];
    expect(revnat.filter((r) => r[1] === `${both.clusterIP}:80`).map((r) => Number(r[0])).sort()).toEqual([idOf(tcp!), idOf(udp!)].sort());
    let out = '';
    expect(await main(['--socket', agent.socket, 'bpf', 'lb', 'list'], { out: (t) => (out += t), err: (t) => (out += t) }, {})).toBe(0);
    const listed = out.split('\n').filter((l) => l.startsWith(`${both.clusterIP}:80`)).map((l) => l.split(/\s+/)[0]);
    expect(listed.sort()).toEqual([`${both.clusterIP}:80`, `${both.clusterIP}:80/UDP`]);
  });

  /** Every port answered by the TCP server, each in well under the 1 s SYN retransmission. */
  const answeredAtOnce = (lines: string[], ports: number[]) => {
    expect(lines.map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual(ports.map((p) => `${p} dual_tcp`));
    for (const l of lines) expect(Number(l.split(' ')[2]), l).toBeLessThan(500);
  };

  it('source ports used for direct connections to pod:80 then reach it through the ClusterIP at once', async () => {
    const ports = [41001, 41002, 41003, 41004, 41005, 41006];
    answeredAtOnce(await requestsFrom(agent, podIP, ports), ports);
    answeredAtOnce(await requestsFrom(agent, both.clusterIP, ports), ports);
  });

  it('and the reverse: ClusterIP first, then the same source ports directly to pod:80', async () => {
    const ports = [42001, 42002, 42003, 42004, 42005, 42006];
    answeredAtOnce(await requestsFrom(agent, both.clusterIP, ports), ports);
    answeredAtOnce(await requestsFrom(agent, podIP, ports), ports);
  });

  it('a UDP source port used directly to pod:80 is answered from the ClusterIP when it asks the service', async () => {
    for (const p of [44001, 44002]) {
      expect((await udpAsk(agent, podIP, 80, p)).stdout.trim()).toBe(`dual udp ping from ${podIP}:80`);
      expect((await udpAsk(agent, both.clusterIP, 80, p)).stdout.trim()).toBe(`dual udp ping from ${both.clusterIP}:80`);
      expect((await udpAsk(agent, podIP, 80, p)).stdout.trim()).toBe(`dual udp ping from ${podIP}:80`);
    }
  });

  it('the monitor reports the reopened connection\'s SYN as a new one', async () => {
    answeredAtOnce(await requestsFrom(agent, podIP, [43001]), [43001]);
    const { event } = await agent.expectEvent('?type=trace', 'the reopened SYN', (e) => typeof e.summary === 'string' && e.summary.includes(`:43001 -> ${podIP}:80 tcp SYN`),
      async () => answeredAtOnce(await requestsFrom(agent, both.clusterIP, [43001]), [43001]));
    expect(event.summary).toContain('state new');
  });
});
