// BPF masquerade with real traffic (scripts/netns/cluster.sh up 2, native routing): pods reach the
// internet host beyond the lab's router as the node IP (TCP, ICMP echo, ICMP errors back to the
// pod's socket), keep their address toward pods and nodes, `bpf nat list|flush`; then k8s-w1
// restarts with the ip-masq-agent and a two-port range: its config file is followed (a listed CIDR
// sees the pod and no reply comes back; a bad file keeps the old config) and a third flow to one
// destination drops with 167.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nsExec, nsSpawn, requireRoot, run, stop, waitListening } from '../helpers/sys.ts';
import { Lab, until } from '../helpers/lab.ts';
import type { ChildProcess } from 'node:child_process';

const root = requireRoot();
const lab: Lab = root ? new Lab('mq') : (undefined as never);
/** Answers with its hostname (the pod's name) and the client's address. */
const SERVER = ['node', '-e', "require('http').createServer((q,s)=>s.end(require('os').hostname()+' '+q.socket.remoteAddress+'\\n')).listen(80,'0.0.0.0')"];
const NODE_SERVER = (port: number) => ['node', '-e', `require('http').createServer((q,s)=>s.end(q.socket.remoteAddress+'\\n')).listen(${port},'0.0.0.0')`];
/** A connected UDP socket's datagram to a closed port: the ICMP port unreachable must come back to the pod's socket. */
const UDP_REFUSED = (ip: string, port: number) => ['python3', '-c',
  `import socket\ns=socket.socket(2,2)\ns.settimeout(3)\ns.connect(('${ip}',${port}))\ns.send(b'x')\ntry:\n  s.recv(16)\nexcept ConnectionRefusedError:\n  print('refused')\nexcept socket.timeout:\n  print('timeout')`];
/** Logs each datagram's source address and answers it. */
const UDP_LOGGER = (port: number) => ['python3', '-u', '-c',
  `import socket\ns=socket.socket(2,2)\ns.bind(('0.0.0.0',${port}))\nwhile True:\n  d,a=s.recvfrom(64)\n  print(a[0])\n  s.sendto(b'pong',a)`];
/** One datagram from source port 40404, and the answer (or timeout). */
const UDP_ASK = (ip: string, port: number) => ['python3', '-c',
  `import socket\ns=socket.socket(2,2)\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('0.0.0.0',40404))\ns.settimeout(2)\ns.sendto(b'ping',('${ip}',${port}))\ntry:\n  print(s.recv(16).decode())\nexcept socket.timeout:\n  print('timeout')`];
/** Takes one datagram, answers it late from a connected socket (the sender is gone by then): the pod's port unreachable must come back translated. */
const UDP_LATE_ANSWER = (port: number) => ['python3', '-c',
  `import socket,time\ns=socket.socket(2,2)\ns.bind(('0.0.0.0',${port}))\ns.settimeout(20)\nd,a=s.recvfrom(16)\ns.connect(a)\ntime.sleep(0.5)\ns.send(b'late')\ns.settimeout(3)\ntry:\n  s.recv(16)\n  print('answered')\nexcept ConnectionRefusedError:\n  print('refused',a[0])\nexcept socket.timeout:\n  print('timeout',a[0])`];
/** One datagram from a socket that closes right after. */
const UDP_ONE = (ip: string, port: number) => ['python3', '-c', `import socket\nsocket.socket(2,2).sendto(b'x',('${ip}',${port}))`];
/** Three UDP flows (three sockets, three source ports) to one destination. */
const UDP_FLOWS = (ip: string, port: number) => ['python3', '-c', `import socket\nfor _ in range(3): socket.socket(2,2).sendto(b'x',('${ip}',${port}))`];

describe.skipIf(!root)('BPF masquerade to the lab\'s internet host', () => {
  const ip: Record<string, string> = {};
  let nodeServer: ChildProcess | undefined;
  let udpLogger: ChildProcess | undefined;
  const masqFile = root ? join(lab.stateRoot, 'ip-masq-agent.yaml') : '';

  const remoteAddr = (body: string | undefined) => /RemoteAddr: (\S+)/.exec(body ?? '')?.[1];

  beforeAll(async () => {
    const up = await lab.sh(['up', '2']);
    if (up.code !== 0) throw new Error(`cluster.sh up 2 failed: ${up.stderr}`);
    expect(up.stdout).toMatch(new RegExp(`internet netns ${lab.ns('internet')} +${lab.internetIP.replace(/\./g, '\\.')} +whoami :80`));
    await lab.ok('k8s-ctr', 'run', lab.pod('client'), '--labels', 'app=client');
    await lab.ok('k8s-w1', 'run', lab.pod('web'), '--labels', 'app=web', '--', ...SERVER);
    await lab.ok('k8s-w1', 'run', lab.pod('client1'), '--labels', 'app=client1');
    ip.client = await lab.podIP('k8s-ctr', lab.pod('client'));
    ip.web = await lab.podIP('k8s-w1', lab.pod('web'));
    ip.client1 = await lab.podIP('k8s-w1', lab.pod('client1'));
  }, 300_000);

  afterAll(async () => {
    if (!root) return;
    await stop(nodeServer);
    await stop(udpLogger);
    await lab.down();
  }, 120_000);

  it('cluster.sh status lists the outside hosts; the node routes via the router, which knows no pod CIDR', async () => {
    const status = (await lab.sh(['status'])).stdout;
    expect(status).toMatch(new RegExp(`^testpc +${lab.testpcIP} +pid \\d+ +whoami :80$`, 'm'));
    expect(status).toMatch(new RegExp(`^internet +${lab.internetIP} +pid \\d+ +whoami :80$`, 'm'));
    expect(nsExec(lab.ns('k8s-ctr'), ['ip', 'route', 'show', 'default'])).toContain(`default via ${lab.net}.254 dev eth1`);
    expect(nsExec(lab.ns('router'), ['ip', 'route', 'show'])).not.toContain('172.20.');
  });

  it('status prints Masquerading: BPF [eth1] with the native routing CIDR; the steering rules are in place', async () => {
    expect(await lab.ok('k8s-ctr', 'status')).toMatch(/^Masquerading: +BPF {3}\[eth1\] {3}172\.20\.0\.0\/16 \[IPv4: Enabled, IPv6: Disabled\]$/m);
    const rules = nsExec(lab.ns('k8s-ctr'), ['ip', 'rule', 'show']);
    expect(rules).toContain('iif eth1 ipproto tcp dport 61000-65534 lookup 2006 proto 198');
    expect(rules).toContain('iif eth1 ipproto tcp dport 30000-32767 lookup 2006 proto 198');
    expect(rules).toContain('iif eth1 ipproto icmp lookup 2006 proto 198');
    expect(rules).toMatch(/^100:\s+from all lookup local$/m);
    expect(rules).not.toMatch(/^0:\s+from all lookup local$/m);
  });

  it('the internet host and testpc see the node IP for a pod\'s curl; bpf nat list shows both directions', async () => {
    const seen = remoteAddr(await until('the internet host answering', () => lab.curl('k8s-ctr', lab.pod('client'), `http://${lab.internetIP}/`)));
    expect(seen).toMatch(new RegExp(`^${lab.nodeIP(0).replace(/\./g, '\\.')}:6[1-5]\\d{3}$`));
    const port = seen!.split(':')[1];
    expect(remoteAddr(await lab.curl('k8s-ctr', lab.pod('client'), `http://${lab.testpcIP}/`))?.split(':')[0]).toBe(lab.nodeIP(0));
    const nat = await lab.ok('k8s-ctr', 'bpf', 'nat', 'list');
    expect(nat).toMatch(new RegExp(`^TCP OUT ${ip.client}:\\d+ -> ${lab.internetIP}:80 XLATE_SRC ${lab.nodeIP(0)}:${port} Created=\\d+sec ago NeedsCT=1$`, 'm'));
    expect(nat).toMatch(new RegExp(`^TCP IN ${lab.internetIP}:80 -> ${lab.nodeIP(0)}:${port} XLATE_DST ${ip.client}:\\d+ Created=\\d+sec ago NeedsCT=1$`, 'm'));
  });

  it('no SNAT toward a pod or a node on another node: they see the pod\'s address', async () => {
    expect(await until('web answering', () => lab.curl('k8s-ctr', lab.pod('client'), `http://${ip.web}/`))).toBe(`${lab.pod('web')} ${ip.client}\n`);
    nodeServer = nsSpawn(lab.ns('k8s-w1'), NODE_SERVER(8089));
    await waitListening(lab.ns('k8s-w1'), 8089);
    expect(await lab.curl('k8s-ctr', lab.pod('client'), `http://${lab.nodeIP(1)}:8089/`)).toBe(`${ip.client}\n`);
  });

  it('ping to the internet host works through the translated echo id; an ICMP error reaches the pod\'s socket', async () => {
    const ping = await lab.exec('k8s-ctr', lab.pod('client'), ['ping', '-c', '2', '-W', '2', lab.internetIP]);
    expect(ping.stdout).toContain('2 packets transmitted, 2 received');
    expect(await lab.ok('k8s-ctr', 'bpf', 'nat', 'list')).toMatch(new RegExp(`^ICMP OUT ${ip.client}:\\d+ -> ${lab.internetIP}:0 XLATE_SRC ${lab.nodeIP(0)}:\\d+ `, 'm'));
    expect((await lab.exec('k8s-ctr', lab.pod('client'), UDP_REFUSED(lab.internetIP, 5002))).stdout.trim()).toBe('refused');
    // The node's own ping: its replies are steered too, and handed back to the node's stack.
    expect(nsExec(lab.ns('k8s-ctr'), ['ping', '-c', '1', '-W', '2', lab.internetIP])).toContain('1 packets transmitted, 1 received');
  });

  it('a port unreachable the pod sends about a masqueraded flow\'s reply reaches the internet host translated', async () => {
    const server = run('ip', ['netns', 'exec', lab.ns('internet'), ...UDP_LATE_ANSWER(5006)], 30_000);
    await waitListening(lab.ns('internet'), 5006, 'udp');
    await lab.exec('k8s-ctr', lab.pod('client'), UDP_ONE(lab.internetIP, 5006));
    expect((await server).stdout.trim()).toBe(`refused ${lab.nodeIP(0)}`);
  });

  it('bpf nat flush empties the map', async () => {
    const flushed = await lab.ok('k8s-ctr', 'bpf', 'nat', 'flush');
    expect(flushed).toMatch(/^Flushed [1-9]\d* entries from cilium_snat_v4_external$/m);
    const after = await lab.cli('k8s-ctr', 'bpf', 'nat', 'list');
    expect(after.out.split('\n').filter((l) => l.includes(ip.client))).toEqual([]);
  });

  describe('k8s-w1 with the ip-masq-agent and masquerade-port-range 61000-61001', () => {
    const agentLog = () => readFileSync(join(lab.stateRoot, 'k8s-w1', 'agent.log'), 'utf8');

    beforeAll(async () => {
      writeFileSync(masqFile, 'nonMasqueradeCIDRs:\n  - 198.51.100.0/24\nmasqLinkLocal: false\n');
      await lab.restartAgent('k8s-w1', 2, `--enable-ip-masq-agent --ip-masq-agent-config-path ${masqFile} --masquerade-port-range 61000-61001`);
    }, 120_000);

    it('status prints BPF (ip-masq-agent); the steering rules follow the new range', async () => {
      expect(await lab.ok('k8s-w1', 'status')).toMatch(/^Masquerading: +BPF \(ip-masq-agent\) {3}\[eth1\] {3}172\.20\.0\.0\/16 \[IPv4: Enabled, IPv6: Disabled\]$/m);
      const rules = nsExec(lab.ns('k8s-w1'), ['ip', 'rule', 'show']);
      expect(rules).toContain('iif eth1 ipproto udp dport 61000-61001 lookup 2006 proto 198');
      expect(rules).not.toContain('61000-65534');
    });

    it('a third flow to one destination finds no free port: dropped with 167 and counted', async () => {
      await lab.exec('k8s-w1', lab.pod('client1'), UDP_FLOWS(lab.internetIP, 5003));
      const metrics = await until('the NAT drop counted', async () => {
        const out = await lab.ok('k8s-w1', 'bpf', 'metrics', 'list');
        return /^No mapping for NAT masquerade +EGRESS +[1-9]/m.test(out) ? out : undefined;
      });
      expect(metrics).toMatch(/^No mapping for NAT masquerade +EGRESS +1 /m);
      const udp = (await lab.ok('k8s-w1', 'bpf', 'nat', 'list')).split('\n').filter((l) => l.startsWith(`UDP OUT ${ip.client1}:`));
      expect(udp.map((l) => /XLATE_SRC \S+:(\d+)/.exec(l)![1]).sort()).toEqual(['61000', '61001']);
    }, 60_000);

    it('nonMasqueradeCIDRs listing the internet host: it sees the pod IP and the reply is lost; a bad file keeps that config', async () => {
      let seenBy = '';
      udpLogger = nsSpawn(lab.ns('internet'), UDP_LOGGER(5004));
      udpLogger.stdout?.on('data', (d: Buffer) => (seenBy += d));
      await waitListening(lab.ns('internet'), 5004, 'udp');
      /** The pod asks from one source port (one flow, one translation); returns its answer and the source the host logged. */
      const ask = async (): Promise<[string, string]> => {
        const before = seenBy.length;
        const answer = (await lab.exec('k8s-w1', lab.pod('client1'), UDP_ASK(lab.internetIP, 5004))).stdout.trim();
        const source = await until('the internet host logging the datagram', async () => seenBy.slice(before).split('\n')[0] || undefined);
        return [answer, source];
      };
      expect(await ask()).toEqual(['pong', lab.nodeIP(1)]);
      writeFileSync(masqFile, JSON.stringify({ nonMasqueradeCIDRs: ['198.51.100.0/24', `${lab.inet}.0/24`], masqLinkLocal: false }));
      await until('the config reloaded', async () => (agentLog().includes(`"${lab.inet}.0/24"`) ? true : undefined));
      expect(await ask()).toEqual(['timeout', ip.client1]);
      expect((await lab.exec('k8s-w1', lab.pod('client1'), ['curl', '-s', '--max-time', '2', `http://${lab.internetIP}/`])).code).toBe(28);
      writeFileSync(masqFile, 'nonMasqueradeCIDRs: [not-a-cidr\n');
      await until('the bad config logged', async () => (/ip-masq-agent: invalid config; keeping the one in force/.test(agentLog()) ? true : undefined));
      expect(await ask()).toEqual(['timeout', ip.client1]);
      writeFileSync(masqFile, 'nonMasqueradeCIDRs:\n  - 198.51.100.0/24\n');
      await until('the config reloaded again', async () => (agentLog().split('\n').filter((l) => l.includes('ip-masq-agent: config loaded')).length >= 3 ? true : undefined));
      expect(await ask()).toEqual(['pong', lab.nodeIP(1)]);
    }, 180_000);
  });

  describe('k8s-ctr with enable-bpf-masquerade=false: iptables masquerades', () => {
    const postNat = () => nsExec(lab.ns('k8s-ctr'), ['iptables', '-t', 'nat', '-S']);
    const RULE = '-A CILIUM_POST_nat -s 172.20.0.0/24 ! -d 172.20.0.0/16 -o eth1 -m comment --comment "cilium masquerade non-cluster" -j MASQUERADE';

    beforeAll(() => lab.restartAgent('k8s-ctr', 2, '--enable-bpf-masquerade=false'), 120_000);

    it('status prints Masquerading: IPTables; CILIUM_POST_nat has one MASQUERADE rule, one after a restart', async () => {
      expect(await lab.ok('k8s-ctr', 'status')).toMatch(/^Masquerading: +IPTables \[IPv4: Enabled, IPv6: Disabled\]$/m);
      expect(postNat()).toContain('-A POSTROUTING -m comment --comment "cilium-feeder: CILIUM_POST_nat" -j CILIUM_POST_nat');
      expect(postNat().split('\n').filter((l) => l === RULE)).toHaveLength(1);
      await lab.restartAgent('k8s-ctr', 2, '--enable-bpf-masquerade=false');
      expect(postNat().split('\n').filter((l) => l.includes('CILIUM_POST_nat'))).toEqual(['-N CILIUM_POST_nat', '-A POSTROUTING -m comment --comment "cilium-feeder: CILIUM_POST_nat" -j CILIUM_POST_nat', RULE]);
    }, 120_000);

    it('the internet host sees the node IP; no BPF translation; a pod on another node still sees the pod', async () => {
      await lab.ok('k8s-ctr', 'bpf', 'nat', 'flush');
      const seen = remoteAddr(await until('the internet host answering', () => lab.curl('k8s-ctr', lab.pod('client'), `http://${lab.internetIP}/`)));
      expect(seen?.split(':')[0]).toBe(lab.nodeIP(0));
      expect((await lab.ok('k8s-ctr', 'bpf', 'nat', 'list')).split('\n').filter((l) => l.includes(ip.client))).toEqual([]);
      expect(await lab.curl('k8s-ctr', lab.pod('client'), `http://${ip.web}/`)).toBe(`${lab.pod('web')} ${ip.client}\n`);
    });

    it('the agent\'s stop removes the rule and its chain', async () => {
      await lab.stopAgent('k8s-ctr');
      expect(postNat()).not.toContain('CILIUM_POST_nat');
    }, 60_000);
  });
});
