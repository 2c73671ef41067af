// Identity-based L3/L4 policy with real traffic: the Star Wars step, then a table of cases over
// selectors, entities, CIDRs, ports, deny rules, enforcement modes and live connections.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { requireRoot, run, sh, nsSpawn, spawnTracked, stop, waitForOutput, waitListening, within } from '../helpers/sys.ts';
import { TestAgent } from '../helpers/agent.ts';
import type { ChildProcess } from 'node:child_process';

const root = requireRoot();

const httpServer = (ports: number[]) => ['node', '-e', `for (const p of [${ports}]) require('http').createServer((q,s)=>s.end(q.method==='POST'&&q.url==='/v1/request-landing'?'Ship landed\\n':'ok '+p+'\\n')).listen(p,'0.0.0.0'); const u=require('dgram').createSocket('udp4'); u.on('message',(m,r)=>u.send('pong',r.port,r.address)); u.bind(5353,'0.0.0.0')`];

class Lab {
  agent: TestAgent;
  ips: Record<string, string> = {};
  constructor(args: string[] = []) {
    this.agent = new TestAgent(args);
  }
  async pod(name: string, labels: Record<string, string>, opts: { ns?: string; ports?: any[]; serve?: boolean } = {}) {
    const r = await this.agent.api('POST', '/v1/pods', {
      name, namespace: opts.ns ?? 'default', labels, ...(opts.ports ? { ports: opts.ports } : {}), ...(opts.serve ? { command: httpServer([80, 8080, 8085, 9000]) } : {}),
    });
    if (r.status >= 300) throw new Error(JSON.stringify(r.body));
    this.ips[name] = r.body.podIP;
    return r.body;
  }
  netns(pod: string) {
    return this.agent.podNetns(pod, pod === 'other' ? 'other' : 'default');
  }
  async policy(...objects: unknown[]) {
    const r = await this.agent.api('PUT', '/v1/policy', objects);
    if (r.status >= 300) throw new Error(`policy: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }
  async clear() {
    await this.agent.api('DELETE', '/v1/policy?all=true');
  }
  /** Whether a TCP connection from `from` (a pod, or 'node'/'world' from the node) reaches ip:port. */
  async tcp(from: string, ip: string, port: number, signal?: AbortSignal): Promise<boolean> {
    const curl = ['curl', '-s', '--connect-timeout', '2', '--max-time', '3', `http://${ip}:${port}/`];
    const cmd = from === 'node' ? ['ip', 'netns', 'exec', this.agent.nodeNetns, ...curl]
      : from === 'world' ? ['ip', 'netns', 'exec', this.agent.nodeNetns, 'curl', '--interface', WORLD_IP, ...curl.slice(1)]
      : ['ip', 'netns', 'exec', this.netns(from), ...curl];
    const r = await run(cmd[0], cmd.slice(1), 10_000, signal);
    return r.code === 0 && r.stdout.startsWith('ok');
  }
  async udp(from: string, ip: string, signal?: AbortSignal): Promise<boolean> {
    const js = `const d=require('dgram').createSocket('udp4');d.on('message',()=>process.exit(0));d.send('ping',5353,'${ip}');setTimeout(()=>process.exit(1),2000)`;
    return (await run('ip', ['netns', 'exec', this.netns(from), 'node', '-e', js], 10_000, signal)).code === 0;
  }
  async ping(from: string, ip: string, signal?: AbortSignal): Promise<boolean> {
    return (await run('ip', ['netns', 'exec', this.netns(from), 'ping', '-c', '1', '-W', '2', ip], 10_000, signal)).code === 0;
  }
  probe(kind: 'tcp' | 'udp' | 'ping', from: string, ip: string, port: number, signal?: AbortSignal): Promise<boolean> {
    return kind === 'tcp' ? this.tcp(from, ip, port, signal) : kind === 'udp' ? this.udp(from, ip, signal) : this.ping(from, ip, signal);
  }
  /** A denied probe: the datapath reports the policy drop of its first packet; the probe is stopped then, not left to time out. */
  async denied(kind: 'tcp' | 'udp' | 'ping', from: string, ip: string, port: number): Promise<any> {
    const tuple = kind === 'tcp' ? `-> ${ip}:${port} tcp SYN` : kind === 'udp' ? `-> ${ip}:5353 udp` : `-> ${ip} EchoRequest`;
    const { event, result } = await this.agent.expectEvent('?type=drop', `a policy drop of ${kind} ${from} ${tuple}`,
      (e) => /^xx drop \(Policy denied( by denylist)?\) /.test(e.summary) && e.summary.endsWith(tuple),
      (signal) => this.probe(kind, from, ip, port, signal), { stopAction: true });
    expect(result, `${kind} ${from} ${tuple} got through`).toBe(false);
    return event;
  }
}

const WORLD_IP = '198.51.100.1';
const WORLD_IP2 = '198.51.100.2';
const cnp = (name: string, spec: Record<string, unknown>, namespace = 'default') => ({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name, namespace }, spec });
const sel = (labels: Record<string, string>) => ({ matchLabels: labels });
const tcpPorts = (...ports: Array<string | number>) => [{ ports: ports.map((p) => ({ port: String(p), protocol: 'TCP' })) }];

describe.skipIf(!root)('Star Wars L3/L4 policy', () => {
  const lab = new Lab();
  beforeAll(async () => {
    await lab.agent.start();
    await lab.pod('deathstar', { org: 'empire', class: 'deathstar' }, { serve: true });
    await lab.pod('tiefighter', { org: 'empire', class: 'tiefighter' });
    await lab.pod('xwing', { org: 'alliance', class: 'xwing' });
    await waitListening(lab.netns('deathstar'), 80);
  });
  afterAll(() => lab.agent.destroy());

  const land = (ship: string) => run('ip', ['netns', 'exec', lab.netns(ship), 'curl', '-s', '--connect-timeout', '2', '-XPOST', `http://${lab.ips.deathstar}/v1/request-landing`], 15_000);

  it('without policy both ships land', async () => {
    expect((await land('xwing')).stdout).toBe('Ship landed\n');
    expect((await land('tiefighter')).stdout).toBe('Ship landed\n');
  });

  it('rule1 drops the xwing SYN (Policy denied) and lets the tiefighter land', async () => {
    await lab.policy(cnp('rule1', {
      description: 'L3-L4 policy to restrict deathstar access to empire ships only',
      endpointSelector: sel({ org: 'empire', class: 'deathstar' }),
      ingress: [{ fromEndpoints: [sel({ org: 'empire' })], toPorts: tcpPorts(80) }],
    }));
    const drop = await lab.denied('tcp', 'xwing', lab.ips.deathstar, 80);
    expect(drop.reason).toBe(133);
    expect((await land('tiefighter')).stdout).toBe('Ship landed\n');
    const eps = (await lab.agent.api('GET', '/v1/endpoint')).body;
    const ds = eps.find((e: any) => e.ipv4 === lab.ips.deathstar);
    expect([ds.policyIngress, ds.policyEgress]).toEqual(['Enabled', 'Disabled']);
    expect(eps.find((e: any) => e.ipv4 === lab.ips.xwing).policyIngress).toBe('Disabled');
    const table = (await lab.agent.api('GET', `/v1/bpf/policy/${ds.id}`)).body.table as string;
    expect(table).toMatch(/^POLICY\s+DIRECTION\s+LABELS \(source:key\[=value\]\)\s+PORT\/PROTO/);
    expect(table).toMatch(/Allow\s+Ingress\s+k8s:class=tiefighter\s+80\/TCP\s+NONE\s+disabled/);
  });

  it('deleting the rule restores the xwing', async () => {
    await lab.agent.api('DELETE', '/v1/policy?name=rule1');
    expect((await land('xwing')).stdout).toBe('Ship landed\n');
  });
});

interface Case {
  name: string;
  policies: unknown[];
  expect: Array<[kind: 'tcp' | 'udp' | 'ping', from: string, to: string, port: number, allowed: boolean]>;
}

const CASES: Case[] = [
  { name: 'no policy: everything flows', policies: [], expect: [['tcp', 'a', 'srv', 80, true], ['udp', 'a', 'srv', 0, true], ['ping', 'a', 'srv', 0, true]] },
  { name: 'ingress fromEndpoints by label', policies: [cnp('p', { endpointSelector: sel({ app: 'srv' }), ingress: [{ fromEndpoints: [sel({ app: 'a' })] }] })],
    expect: [['tcp', 'a', 'srv', 80, true], ['tcp', 'b', 'srv', 80, false], ['udp', 'a', 'srv', 0, true], ['udp', 'b', 'srv', 0, false], ['ping', 'b', 'srv', 0, false]] },
  { name: 'L3 rule allows every port and ICMP', policies: [cnp('p', { endpointSelector: sel({ app: 'srv' }), ingress: [{ fromEndpoints: [sel({ app: 'a' })] }] })],
    expect: [['tcp', 'a', 'srv', 9000, true], ['ping', 'a', 'srv', 0, true]] },
  { name: 'L4 rule: only that port, ICMP denied', policies: [cnp('p', { endpointSelector: sel({ app: 'srv' }), ingress: [{ fromEndpoints: [sel({ app: 'a' })], toPorts: tcpPorts(80) }] })],
    expect: [['tcp', 'a', 'srv', 80, true], ['tcp', 'a', 'srv', 9000, false], ['ping', 'a', 'srv', 0, false], ['udp', 'a', 'srv', 0, false]] },
  { name: 'toPorts only applies to every peer', policies: [cnp('p', { endpointSelector: sel({ app: 'srv' }), ingress: [{ toPorts: tcpPorts(8080) }] })],
    expect: [['tcp', 'a', 'srv', 8080, true], ['tcp', 'b', 'srv', 8080, true], ['tcp', 'b', 'srv', 80, false]] },
  { name: 'port range with endPort', policies: [cnp('p', { endpointSelector: sel({ app: 'srv' }), ingress: [{ toPorts: [{ ports: [{ port: '8080', endPort: 8090, protocol: 'TCP' }] }] }] })],
    expect: [['tcp', 'a', 'srv', 8080, true], ['tcp', 'a', 'srv', 8085, true], ['tcp', 'a', 'srv', 9000, false], ['tcp', 'a', 'srv', 80, false]] },
  { name: 'named port', policies: [cnp('p', { endpointSelector: sel({ app: 'srv' }), ingress: [{ toPorts: tcpPorts('http-alt') }] })],
    expect: [['tcp', 'a', 'srv', 8080, true], ['tcp', 'a', 'srv', 80, false]] },
  { name: 'UDP port', policies: [cnp('p', { endpointSelector: sel({ app: 'srv' }), ingress: [{ toPorts: [{ ports: [{ port: '5353', protocol: 'UDP' }] }] }] })],
    expect: [['udp', 'a', 'srv', 0, true], ['tcp', 'a', 'srv', 80, false]] },
  { name: 'protocol ANY on a port', policies: [cnp('p', { endpointSelector: sel({ app: 'srv' }), ingress: [{ toPorts: [{ ports: [{ port: '5353', protocol: 'ANY' }, { port: '80', protocol: 'ANY' }] }] }] })],
    expect: [['udp', 'a', 'srv', 0, true], ['tcp', 'a', 'srv', 80, true], ['ping', 'a', 'srv', 0, false]] },
  { name: 'icmps allow echo only', policies: [cnp('p', { endpointSelector: sel({ app: 'srv' }), ingress: [{ icmps: [{ fields: [{ type: 8, family: 'IPv4' }] }] }] })],
    expect: [['ping', 'a', 'srv', 0, true], ['tcp', 'a', 'srv', 80, false]] },
  { name: 'matchExpressions In', policies: [cnp('p', { endpointSelector: sel({ app: 'srv' }), ingress: [{ fromEndpoints: [{ matchExpressions: [{ key: 'team', operator: 'In', values: ['x', 'z'] }] }] }] })],
    expect: [['tcp', 'a', 'srv', 80, true], ['tcp', 'b', 'srv', 80, false]] },
  { name: 'matchExpressions NotIn', policies: [cnp('p', { endpointSelector: sel({ app: 'srv' }), ingress: [{ fromEndpoints: [{ matchExpressions: [{ key: 'team', operator: 'NotIn', values: ['x'] }] }] }] })],
    expect: [['tcp', 'a', 'srv', 80, false], ['tcp', 'b', 'srv', 80, true]] },
  { name: 'matchExpressions Exists', policies: [cnp('p', { endpointSelector: sel({ app: 'srv' }), ingress: [{ fromEndpoints: [{ matchExpressions: [{ key: 'vip', operator: 'Exists' }] }] }] })],
    expect: [['tcp', 'b', 'srv', 80, true], ['tcp', 'a', 'srv', 80, false]] },
  { name: 'matchExpressions DoesNotExist', policies: [cnp('p', { endpointSelector: sel({ app: 'srv' }), ingress: [{ fromEndpoints: [{ matchExpressions: [{ key: 'vip', operator: 'DoesNotExist' }] }] }] })],
    expect: [['tcp', 'a', 'srv', 80, true], ['tcp', 'b', 'srv', 80, false]] },
  { name: 'fromEndpoints {} selects only the policy namespace', policies: [cnp('p', { endpointSelector: sel({ app: 'srv' }), ingress: [{ fromEndpoints: [{}] }] })],
    expect: [['tcp', 'a', 'srv', 80, true], ['tcp', 'other', 'srv', 80, false]] },
  { name: 'namespace label selects another namespace', policies: [cnp('p', { endpointSelector: sel({ app: 'srv' }), ingress: [{ fromEndpoints: [sel({ 'k8s:io.kubernetes.pod.namespace': 'other' })] }] })],
    expect: [['tcp', 'other', 'srv', 80, true], ['tcp', 'a', 'srv', 80, false]] },
  { name: 'fromEntities cluster', policies: [cnp('p', { endpointSelector: sel({ app: 'srv' }), ingress: [{ fromEntities: ['cluster'] }] })],
    expect: [['tcp', 'a', 'srv', 80, true], ['tcp', 'other', 'srv', 80, true], ['tcp', 'world', 'srv', 80, false]] },
  { name: 'fromEntities world', policies: [cnp('p', { endpointSelector: sel({ app: 'srv' }), ingress: [{ fromEntities: ['world'] }] })],
    expect: [['tcp', 'world', 'srv', 80, true], ['tcp', 'a', 'srv', 80, false]] },
  { name: 'fromEntities all', policies: [cnp('p', { endpointSelector: sel({ app: 'srv' }), ingress: [{ fromEntities: ['all'] }] })],
    expect: [['tcp', 'world', 'srv', 80, true], ['tcp', 'b', 'srv', 80, true]] },
  { name: 'the local host always reaches its pods', policies: [cnp('p', { endpointSelector: sel({ app: 'srv' }), ingress: [{ fromEndpoints: [sel({ app: 'a' })] }] })],
    expect: [['tcp', 'node', 'srv', 80, true], ['tcp', 'b', 'srv', 80, false]] },
  { name: 'fromCIDR', policies: [cnp('p', { endpointSelector: sel({ app: 'srv' }), ingress: [{ fromCIDR: ['198.51.100.0/24'] }] })],
    expect: [['tcp', 'world', 'srv', 80, true], ['tcp', 'a', 'srv', 80, false]] },
  { name: 'egress toEndpoints', policies: [cnp('p', { endpointSelector: sel({ app: 'a' }), egress: [{ toEndpoints: [sel({ app: 'srv' })] }] })],
    expect: [['tcp', 'a', 'srv', 80, true], ['tcp', 'a', 'b', 80, false], ['tcp', 'b', 'srv', 80, true]] },
  { name: 'egress default deny blocks the world', policies: [cnp('p', { endpointSelector: sel({ app: 'a' }), egress: [{ toEndpoints: [sel({ app: 'srv' })] }] })],
    expect: [['tcp', 'a', 'world', 80, false], ['tcp', 'a', 'host', 80, false]] },
  { name: 'egress toEntities world', policies: [cnp('p', { endpointSelector: sel({ app: 'a' }), egress: [{ toEntities: ['world'] }] })],
    expect: [['tcp', 'a', 'world', 80, true], ['tcp', 'a', 'srv', 80, false]] },
  { name: 'egress toEntities host', policies: [cnp('p', { endpointSelector: sel({ app: 'a' }), egress: [{ toEntities: ['host'] }] })],
    expect: [['tcp', 'a', 'host', 80, true], ['tcp', 'a', 'world', 80, false]] },
  { name: 'egress toCIDRSet with except', policies: [cnp('p', { endpointSelector: sel({ app: 'a' }), egress: [{ toCIDRSet: [{ cidr: '198.51.100.0/24', except: ['198.51.100.2/32'] }] }] })],
    expect: [['tcp', 'a', 'world', 80, true], ['tcp', 'a', 'world2', 80, false]] },
  { name: 'egress toCIDR with a port', policies: [cnp('p', { endpointSelector: sel({ app: 'a' }), egress: [{ toCIDR: ['198.51.100.1/32'], toPorts: tcpPorts(8080) }] })],
    expect: [['tcp', 'a', 'world', 8080, true], ['tcp', 'a', 'world', 80, false]] },
  { name: 'ingressDeny wins over allow', policies: [cnp('p', { endpointSelector: sel({ app: 'srv' }), ingress: [{ fromEntities: ['all'] }], ingressDeny: [{ fromEndpoints: [sel({ app: 'a' })] }] })],
    expect: [['tcp', 'a', 'srv', 80, false], ['tcp', 'b', 'srv', 80, true]] },
  { name: 'deny on a port wins over an L3 allow', policies: [cnp('p', { endpointSelector: sel({ app: 'srv' }), ingress: [{ fromEndpoints: [sel({ app: 'a' })] }], ingressDeny: [{ fromEndpoints: [sel({ app: 'a' })], toPorts: tcpPorts(9000) }] })],
    expect: [['tcp', 'a', 'srv', 80, true], ['tcp', 'a', 'srv', 9000, false]] },
  { name: 'egressDeny to a CIDR', policies: [cnp('p', { endpointSelector: sel({ app: 'a' }), egress: [{ toEntities: ['all'] }], egressDeny: [{ toCIDR: ['198.51.100.1/32'] }] })],
    expect: [['tcp', 'a', 'world', 80, false], ['tcp', 'a', 'srv', 80, true]] },
  { name: 'allow rules add up across policies', policies: [
    cnp('p1', { endpointSelector: sel({ app: 'srv' }), ingress: [{ fromEndpoints: [sel({ app: 'a' })], toPorts: tcpPorts(80) }] }),
    cnp('p2', { endpointSelector: sel({ app: 'srv' }), ingress: [{ fromEndpoints: [sel({ app: 'b' })], toPorts: tcpPorts(9000) }] })],
  expect: [['tcp', 'a', 'srv', 80, true], ['tcp', 'b', 'srv', 9000, true], ['tcp', 'a', 'srv', 9000, false], ['tcp', 'b', 'srv', 80, false]] },
  { name: 'ingress-only policy leaves egress open', policies: [cnp('p', { endpointSelector: sel({ app: 'a' }), ingress: [{ fromEndpoints: [sel({ app: 'b' })] }] })],
    expect: [['tcp', 'a', 'srv', 80, true], ['tcp', 'srv', 'a', 80, false], ['tcp', 'b', 'a', 80, true]] },
  { name: 'replies pass a default-deny ingress', policies: [cnp('p', { endpointSelector: sel({ app: 'a' }), ingress: [{}] })],
    expect: [['tcp', 'a', 'srv', 80, true], ['udp', 'a', 'srv', 0, true], ['ping', 'a', 'srv', 0, true], ['tcp', 'b', 'a', 80, false]] },
  { name: 'enableDefaultDeny false keeps the direction open', policies: [cnp('p', { endpointSelector: sel({ app: 'srv' }), enableDefaultDeny: { ingress: false }, ingress: [{ fromEndpoints: [sel({ app: 'a' })] }] })],
    expect: [['tcp', 'b', 'srv', 80, true], ['tcp', 'a', 'srv', 80, true]] },
  { name: 'clusterwide policy', policies: [{ apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy', metadata: { name: 'cw' }, spec: { endpointSelector: sel({ app: 'srv' }), ingress: [{ fromEndpoints: [sel({ app: 'a' })] }] } }],
    expect: [['tcp', 'a', 'srv', 80, true], ['tcp', 'b', 'srv', 80, false]] },
  { name: 'clusterwide {} peers include other namespaces', policies: [{ apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy', metadata: { name: 'cw' }, spec: { endpointSelector: sel({ app: 'srv' }), ingress: [{ fromEndpoints: [{}] }] } }],
    expect: [['tcp', 'other', 'srv', 80, true], ['tcp', 'world', 'srv', 80, false]] },
  { name: 'Kubernetes NetworkPolicy', policies: [{ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'np', namespace: 'default' }, spec: { podSelector: sel({ app: 'srv' }), policyTypes: ['Ingress'], ingress: [{ from: [{ podSelector: sel({ app: 'a' }) }], ports: [{ port: 80, protocol: 'TCP' }] }] } }],
    expect: [['tcp', 'a', 'srv', 80, true], ['tcp', 'a', 'srv', 9000, false], ['tcp', 'b', 'srv', 80, false]] },
  { name: 'NetworkPolicy with an empty policyTypes Egress denies all egress', policies: [{ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'np', namespace: 'default' }, spec: { podSelector: sel({ app: 'a' }), policyTypes: ['Egress'] } }],
    expect: [['tcp', 'a', 'srv', 80, false], ['tcp', 'b', 'srv', 80, true]] },
  { name: 'NetworkPolicy ipBlock', policies: [{ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'np', namespace: 'default' }, spec: { podSelector: sel({ app: 'a' }), policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '198.51.100.0/24', except: ['198.51.100.1/32'] } }] }] } }],
    expect: [['tcp', 'a', 'world2', 80, true], ['tcp', 'a', 'world', 80, false]] },
  { name: 'a selector that matches nothing changes nothing', policies: [cnp('p', { endpointSelector: sel({ app: 'nobody' }), ingress: [{}] })],
    expect: [['tcp', 'a', 'srv', 80, true], ['tcp', 'b', 'srv', 80, true]] },
];

describe.skipIf(!root)('policy cases (default enforcement)', () => {
  const lab = new Lab();
  let worldServer: ChildProcess;
  beforeAll(async () => {
    await lab.agent.start();
    // An outside world on the node: addresses no pod owns, served by the node itself.
    sh('ip', ['-n', lab.agent.nodeNetns, 'addr', 'add', `${WORLD_IP}/32`, 'dev', 'lo']);
    sh('ip', ['-n', lab.agent.nodeNetns, 'addr', 'add', `${WORLD_IP2}/32`, 'dev', 'lo']);
    worldServer = nsSpawn(lab.agent.nodeNetns, httpServer([80, 8080]));
    await lab.pod('a', { app: 'a', team: 'x' }, { serve: true });
    await lab.pod('b', { app: 'b', team: 'y', vip: 'yes' }, { serve: true });
    await lab.pod('srv', { app: 'srv' }, { serve: true, ports: [{ name: 'http-alt', containerPort: 8080 }] });
    await lab.agent.api('POST', '/v1/pods', { name: 'other', namespace: 'other', labels: { app: 'a', team: 'x' } });
    lab.ips.world = WORLD_IP;
    lab.ips.world2 = WORLD_IP2;
    lab.ips.host = (await lab.agent.api('GET', '/v1/status')).body.routerIP;
    await waitListening(lab.agent.nodeNetns, 8080);
    for (const p of ['a', 'b', 'srv']) await waitListening(lab.netns(p), 5353, 'udp');
  });
  afterAll(async () => {
    await stop(worldServer);
    await lab.agent.destroy();
  });

  for (const c of CASES) {
    it(c.name, async () => {
      await lab.clear();
      if (c.policies.length) await lab.policy(...c.policies);
      for (const [kind, from, to, port, allowed] of c.expect) {
        if (allowed) expect(await lab.probe(kind, from, lab.ips[to], port), `${kind} ${from} -> ${to}${port ? `:${port}` : ''}`).toBe(true);
        else await lab.denied(kind, from, lab.ips[to], port);
      }
    });
  }

  it('a drop by a deny rule reports reason 181', async () => {
    await lab.clear();
    await lab.policy(cnp('p', { endpointSelector: sel({ app: 'srv' }), ingress: [{ fromEntities: ['all'] }], ingressDeny: [{ fromEndpoints: [sel({ app: 'a' })] }] }));
    const drop = await lab.denied('tcp', 'a', lab.ips.srv, 80);
    expect(drop.reason).toBe(181);
    expect(drop.summary).toMatch(/^xx drop \(Policy denied by denylist\) /);
  });

  it("a deny rule's policy verdict names the deny entry's match (L3-Only), as Cilium's; the default deny's is none", async () => {
    await lab.clear();
    await lab.policy(cnp('p', { endpointSelector: sel({ app: 'srv' }), ingress: [{ fromEndpoints: [sel({ app: 'b' })], toPorts: tcpPorts(81) }], ingressDeny: [{ fromEndpoints: [sel({ app: 'a' })] }] }));
    const verdict = (from: 'a' | 'b') => lab.agent.expectEvent('?type=policy-verdict', `a policy verdict for ${from} -> srv:80`,
      (e) => e.summary.startsWith('Policy verdict log: ') && e.summary.includes(` ${lab.ips[from]}:`) && e.summary.endsWith(`-> ${lab.ips.srv}:80 tcp SYN`),
      (signal) => lab.probe('tcp', from, lab.ips.srv, 80, signal), { stopAction: true });
    expect((await verdict('a')).event.summary).toMatch(/, ingress, action deny, auth: disabled, match L3-Only, /);
    expect((await verdict('b')).event.summary).toMatch(/, ingress, action deny, auth: disabled, match none, /);
  });

  it('removing an allow cuts a live connection', async () => {
    await lab.clear();
    await lab.policy(cnp('p', { endpointSelector: sel({ app: 'srv' }), ingress: [{ fromEndpoints: [sel({ app: 'a' })] }] }));
    // A client that sends a request every 100 ms on ONE keep-alive connection and counts the answers
    // to requests sent in each phase: the first until it prints, the second from the line we send it
    // once the policy has changed, for 2 s.
    const js = `const http=require('http');const ag=new http.Agent({keepAlive:true,maxSockets:1});const ok=[0,0];let phase=0;
      const go=()=>{const p=phase;const r=http.get({host:'${lab.ips.srv}',port:80,agent:ag,timeout:300},(s)=>{s.resume();s.on('end',()=>{if(p===phase)ok[p]++;setTimeout(go,100)})});r.on('error',()=>setTimeout(go,100));r.on('timeout',()=>r.destroy())};
      go();setTimeout(()=>{console.log(ok[0]);phase=-1},1500);
      process.stdin.once('data',()=>{phase=1;setTimeout(()=>{console.log(ok[1]);process.exit(0)},2000)})`;
    const client = spawnTracked('ip', ['netns', 'exec', lab.netns('a'), 'node', '-e', js], { stdin: true });
    let out = '';
    client.stdout!.on('data', (d) => (out += d));
    const exited = new Promise((r) => client.once('exit', r));
    await waitForOutput(client, /^\d+$/, 'the first phase count', 10_000);
    await lab.policy(cnp('p', { endpointSelector: sel({ app: 'srv' }), ingress: [{ fromEndpoints: [sel({ app: 'b' })] }] }));
    client.stdin!.end('policy changed\n');
    await within('the client to finish', exited, 10_000);
    const [before, after] = out.trim().split('\n').map(Number);
    expect(before).toBeGreaterThan(5);
    expect(after).toBe(0);
  });

  it('an invalid policy is rejected naming the field, and nothing of it applies', async () => {
    await lab.clear();
    const r = await lab.agent.api('PUT', '/v1/policy', [
      cnp('good', { endpointSelector: sel({ app: 'srv' }), ingress: [{}] }),
      cnp('bad', { endpointSelector: sel({ app: 'srv' }), ingress: [{ toPorts: [{ ports: [{ port: '70000' }] }] }] }),
    ]);
    expect(r.status).toBe(400);
    expect(JSON.stringify(r.body)).toMatch(/spec\.ingress\[0\]\.toPorts\[0\]\.ports\[0\]\.port/);
    expect((await lab.agent.api('GET', '/v1/policy')).body.policies).toEqual([]);
    expect(await lab.tcp('b', lab.ips.srv, 80)).toBe(true);
  });
});

describe.skipIf(!root)('policy enforcement modes', () => {
  for (const mode of ['always', 'never'] as const) {
    describe(mode, () => {
      const lab = new Lab([`--policy-enforcement-mode=${mode}`]);
      beforeAll(async () => {
        await lab.agent.start();
        await lab.pod('a', { app: 'a' });
        await lab.pod('srv', { app: 'srv' }, { serve: true });
        await waitListening(lab.netns('srv'), 80);
      });
      afterAll(() => lab.agent.destroy());

      it(mode === 'always' ? 'denies without any policy, except the host' : 'ignores policy', async () => {
        if (mode === 'never') await lab.policy(cnp('p', { endpointSelector: sel({ app: 'srv' }), ingress: [{}] }));
        if (mode === 'never') expect(await lab.tcp('a', lab.ips.srv, 80)).toBe(true);
        else await lab.denied('tcp', 'a', lab.ips.srv, 80);
        expect(await lab.tcp('node', lab.ips.srv, 80)).toBe(true);
      });

      if (mode === 'always') {
        it('allows what a policy allows', async () => {
          await lab.policy(
            cnp('in', { endpointSelector: sel({ app: 'srv' }), ingress: [{ fromEndpoints: [sel({ app: 'a' })] }] }),
            cnp('out', { endpointSelector: sel({ app: 'a' }), egress: [{ toEndpoints: [sel({ app: 'srv' })] }] }),
          );
          expect(await lab.tcp('a', lab.ips.srv, 80)).toBe(true);
        });
      }
    });
  }
});
