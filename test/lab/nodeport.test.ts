// NodePort from outside the cluster on three real agents over etcd (scripts/netns/cluster.sh up 3):
// an outside client on the node network curls a node IP and a NodePort whose only backend runs on
// k8s-w2; k8s-w2 keeps the client's address, k8s-w1 (no local backend) SNATs to its own IP and the
// reply returns through it (Mode: SNAT); externalTrafficPolicy Local keeps the address and k8s-w1 does
// not answer; `patch svc` turns a ClusterIP service into NodePort 30001 live, keeping its ClusterIP; a
// fixed nodePort taken twice is refused naming the field, and patching back to ClusterIP frees it.
// Nodes reach their own NodePorts; an externalIP or LoadBalancer address the client routes via a node
// and a container's hostPort answer from outside; a backend's port unreachable reaches the client through the entry node.
// Names carry a per-run prefix and net, state lives in a temp dir: another lab on this machine is safe.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireRoot, run, sh } from '../helpers/sys.ts';
import { Lab, until, type NodeName } from '../helpers/lab.ts';

const root = requireRoot();
/** Answers with its hostname (the pod's name) and the client's address, on 80 and 9090. */
const SERVER = ['node', '-e', "const h=require('http');for(const p of [80,9090])h.createServer((q,s)=>s.end(require('os').hostname()+' '+q.socket.remoteAddress+'\\n')).listen(p,'0.0.0.0')"];

/** A connected UDP socket's datagram: 'refused' when the ICMP port unreachable comes back to it. */
const UDP_REFUSED = (ip: string, port: number) => ['python3', '-c',
  `import socket\ns=socket.socket(2,2)\ns.settimeout(3)\ns.connect(('${ip}',${port}))\ns.send(b'x')\ntry:\n  s.recv(16)\nexcept ConnectionRefusedError:\n  print('refused')\nexcept socket.timeout:\n  print('timeout')`];

let lab: Lab;
const pod = (name: string) => lab.pod(name);
const ok = (node: NodeName, ...argv: string[]) => lab.ok(node, ...argv);
const cli = (node: NodeName, ...argv: string[]) => lab.cli(node, ...argv);
const nodeIP = (i: number) => lab.nodeIP(i);
const CLIENT_IP = () => lab.testpcIP;

/** curl from testpc, the outside client on the node network; undefined when it gets no answer. */
const curlOut = async (url: string, maxTime = '2') => {
  const r = await run('ip', ['netns', 'exec', lab.ns('testpc'), 'curl', '-s', '--max-time', maxTime, url], 15_000);
  return r.code === 0 ? r.stdout : undefined;
};

function apply(node: NodeName, name: string, yaml: string): Promise<{ code: number; out: string; err: string }> {
  const file = join(lab.stateRoot, `${name}.yaml`);
  writeFileSync(file, yaml);
  return cli(node, 'apply', '-f', file);
}

const nodePortSvc = (name: string, nodePort: number, policy = 'Cluster') =>
  `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}}\nspec:\n  type: NodePort\n  externalTrafficPolicy: ${policy}\n  selector: {app: ${lab.tag}-web}\n  ports: [{port: 80, targetPort: 80, nodePort: ${nodePort}}]\n`;

describe.skipIf(!root)('NodePort from outside the cluster, three nodes, native routing', () => {
  let webIP = '';

  beforeAll(async () => {
    lab = new Lab('n');
    await lab.up(3);
    await ok('k8s-w2', 'run', pod('web'), '--labels', `app=${lab.tag}-web`, '--', ...SERVER);
    webIP = (await ok('k8s-w2', 'get', 'pods', pod('web'), '-o', 'wide')).split('\n')[1].split(/\s+/)[5];
    await until('the web pod answering', async () => ((await lab.exec('k8s-w2', pod('web'), ['curl', '-s', '--max-time', '1', 'http://127.0.0.1/'])).code === 0 ? true : undefined));
  }, 300_000);

  afterAll(async () => {
    if (!lab) return;
    await cli('k8s-w2', 'delete', 'pod', pod('web')).catch(() => undefined);
    await lab.down();
  }, 120_000);

  it('Cluster policy: k8s-w2 (local backend) keeps the client address, k8s-w1 SNATs to its node IP', async () => {
    const svc = pod('np');
    expect((await apply('k8s-ctr', svc, nodePortSvc(svc, 30080))).code).toBe(0);
    const row = (await ok('k8s-w1', 'get', 'svc', svc)).split('\n')[1].split(/\s+/);
    expect(row.slice(1, 5)).toEqual(['NodePort', row[2], '<none>', '80:30080/TCP']);
    expect(await ok('k8s-w1', 'service', 'list')).toMatch(new RegExp(`${nodeIP(1).replace(/\./g, '\\.')}:30080 +NodePort +1 => ${webIP.replace(/\./g, '\\.')}:80`));
    const lb = await ok('k8s-w1', 'bpf', 'lb', 'list');
    expect(lb).toMatch(/^0\.0\.0\.0:30080 +0\.0\.0\.0:0 \(\d+\) \[NodePort, non-routable\]$/m);
    expect(lb).toMatch(new RegExp(`^${nodeIP(1).replace(/\./g, '\\.')}:30080 +0\\.0\\.0\\.0:0 \\(\\d+\\) \\[NodePort\\]$`, 'm'));
    expect(await until('k8s-w2:30080 answering', () => curlOut(`http://${nodeIP(2)}:30080/`))).toBe(`${pod('web')} ${CLIENT_IP()}\n`);
    expect(await until('k8s-w1:30080 answering', () => curlOut(`http://${nodeIP(1)}:30080/`))).toBe(`${pod('web')} ${nodeIP(1)}\n`);
    // From a pod on k8s-ctr and from k8s-ctr itself to k8s-w1's NodePort: SNATed by k8s-w1 the same way.
    await ok('k8s-ctr', 'run', pod('client'));
    expect(await until('a pod reaching k8s-w1:30080', () => lab.curl('k8s-ctr', pod('client'), `http://${nodeIP(1)}:30080/`))).toBe(`${pod('web')} ${nodeIP(1)}\n`);
    expect((await run('ip', ['netns', 'exec', lab.ns('k8s-ctr'), 'curl', '-s', '--max-time', '2', `http://${nodeIP(1)}:30080/`])).stdout).toBe(`${pod('web')} ${nodeIP(1)}\n`);
    await ok('k8s-ctr', 'delete', 'pod', pod('client'));
    expect(await ok('k8s-w1', 'bpf', 'ct', 'list', 'global')).toMatch(new RegExp(`TCP OUT ${webIP.replace(/\./g, '\\.')}:80 -> ${CLIENT_IP().replace(/\./g, '\\.')}:\\d+ .*\\[ [^\\]]*NodePort`));
    // The SNAT in cilium_snat_v4_external: the client's tuple leaves as k8s-w1's address.
    expect(await ok('k8s-w1', 'bpf', 'nat', 'list')).toMatch(new RegExp(`^TCP OUT ${CLIENT_IP().replace(/\./g, '\\.')}:\\d+ -> ${webIP.replace(/\./g, '\\.')}:80 XLATE_SRC ${nodeIP(1).replace(/\./g, '\\.')}:\\d+ `, 'm'));
    await ok('k8s-ctr', 'delete', 'svc', svc);
  });

  it('Local policy: k8s-w2 keeps the client address, k8s-w1 has no local backend and does not answer', async () => {
    const svc = pod('local');
    expect((await apply('k8s-ctr', svc, nodePortSvc(svc, 30081, 'Local'))).code).toBe(0);
    expect(await until('k8s-w2:30081 answering', () => curlOut(`http://${nodeIP(2)}:30081/`))).toBe(`${pod('web')} ${CLIENT_IP()}\n`);
    const w1 = await until('the Local frontend on k8s-w1', async () => {
      const lb = await ok('k8s-w1', 'bpf', 'lb', 'list');
      return lb.includes(`${nodeIP(1)}:30081`) ? lb : undefined;
    });
    // The frontend has no backend slot on w1: only the service entry, flagged Local.
    expect(w1).toMatch(new RegExp(`^${nodeIP(1).replace(/\./g, '\\.')}:30081 +0\\.0\\.0\\.0:0 \\(\\d+\\) \\[NodePort, Local\\]\\n(?! )`, 'm'));
    expect(await curlOut(`http://${nodeIP(1)}:30081/`, '1')).toBeUndefined();
    await ok('k8s-ctr', 'delete', 'svc', svc);
  });

  it('patch svc turns a ClusterIP service into NodePort 30001 live, keeping its ClusterIP', async () => {
    const svc = pod('prom');
    await apply('k8s-ctr', svc, `apiVersion: v1\nkind: Service\nmetadata: {name: ${svc}}\nspec:\n  selector: {app: ${lab.tag}-web}\n  ports: [{port: 9090, targetPort: 9090}]\n`);
    const before = (await ok('k8s-ctr', 'get', 'svc', svc)).split('\n')[1].split(/\s+/);
    expect(before.slice(1, 5)).toEqual(['ClusterIP', before[2], '<none>', '9090/TCP']);
    expect(await ok('k8s-ctr', 'patch', 'svc', svc, '-p', '{"spec":{"type":"NodePort","ports":[{"port":9090,"targetPort":9090,"nodePort":30001}]}}')).toBe(`service/${svc} patched\n`);
    const after = (await ok('k8s-ctr', 'get', 'svc', svc)).split('\n')[1].split(/\s+/);
    expect(after.slice(1, 5)).toEqual(['NodePort', before[2], '<none>', '9090:30001/TCP']);
    expect(await until('k8s-w2:30001 answering', () => curlOut(`http://${nodeIP(2)}:30001/`))).toBe(`${pod('web')} ${CLIENT_IP()}\n`);

    // The same fixed port for another service: refused, naming the field; free again after the delete.
    const other = pod('other');
    const taken = await apply('k8s-ctr', other, nodePortSvc(other, 30001));
    expect(taken.code).not.toBe(0);
    expect(taken.err).toContain('spec.ports[0].nodePort: Invalid value: 30001: provided port is already allocated');
    expect((await cli('k8s-ctr', 'get', 'svc', other)).code).not.toBe(0);
    // Back to ClusterIP: the nodePort goes (as the API server clears it), with its frontends; the port is free.
    expect(await ok('k8s-ctr', 'patch', 'svc', svc, '-p', '{"spec":{"type":"ClusterIP"}}')).toBe(`service/${svc} patched\n`);
    expect((await ok('k8s-ctr', 'get', 'svc', svc)).split('\n')[1].split(/\s+/).slice(1, 5)).toEqual(['ClusterIP', before[2], '<none>', '9090/TCP']);
    await until('the :30001 frontends gone on k8s-w2', async () => ((await ok('k8s-w2', 'bpf', 'lb', 'list')).includes(':30001 ') ? undefined : true));
    expect(await ok('k8s-w2', 'service', 'list')).not.toContain(':30001');
    expect(await curlOut(`http://${nodeIP(2)}:30001/`, '1')).toBeUndefined();
    expect((await apply('k8s-ctr', other, nodePortSvc(other, 30001))).code).toBe(0);
    await ok('k8s-ctr', 'delete', 'svc', svc);
    await ok('k8s-ctr', 'delete', 'svc', other);
  });

  it('nodes reach their own IP:nodePort; their own connections out are untouched', async () => {
    const svc = pod('self');
    expect((await apply('k8s-ctr', svc, nodePortSvc(svc, 30082))).code).toBe(0);
    // k8s-w1 has no local backend: SNATed to its IP as for a client outside. k8s-w2's backend sees cilium_host's address.
    expect(await until('k8s-w1 → its own :30082', () => lab.inHost('k8s-w1', ['curl', '-s', '--max-time', '2', `http://${nodeIP(1)}:30082/`]))).toBe(`${pod('web')} ${nodeIP(1)}\n`);
    const w2Host = (JSON.parse(sh('ip', ['-n', lab.ns('k8s-w2'), '-4', '-j', 'addr', 'show', 'cilium_host'])) as Array<{ addr_info: Array<{ local: string }> }>)[0].addr_info[0].local;
    expect(await until('k8s-w2 → its own :30082', () => lab.inHost('k8s-w2', ['curl', '-s', '--max-time', '2', `http://${nodeIP(2)}:30082/`]))).toBe(`${pod('web')} ${w2Host}\n`);
    expect(sh('ip', ['-n', lab.ns('k8s-w1'), 'rule', 'show'])).toContain(`from all to ${nodeIP(1)} iif lo ipproto tcp dport 30000-32767 lookup 2006 proto 198`);
    // The node's own connections to testpc's whoami and another node keep working, from the node's address.
    expect(await lab.inHost('k8s-w1', ['curl', '-s', '--max-time', '2', `http://${CLIENT_IP()}/`])).toMatch(new RegExp(`^RemoteAddr: ${nodeIP(1).replace(/\./g, '\\.')}:\\d+$`, 'm'));
    expect(await lab.inHost('k8s-w1', ['curl', '-s', '--max-time', '2', `http://${nodeIP(2)}:30082/`])).toBe(`${pod('web')} ${nodeIP(1)}\n`);
    await ok('k8s-ctr', 'delete', 'svc', svc);
  });

  it('externalIPs routed to a node by the outside client reach the backend; a UDP port without listener answers port unreachable through both nodes', async () => {
    const svc = pod('ext');
    const EXT = '10.77.0.10';
    expect((await apply('k8s-ctr', svc, `apiVersion: v1\nkind: Service\nmetadata: {name: ${svc}}\nspec:\n  type: NodePort\n  selector: {app: ${lab.tag}-web}\n  externalIPs: [${EXT}]\n` +
      `  ports:\n  - {name: http, port: 80, targetPort: 80}\n  - {name: closed, port: 53, targetPort: 5353, protocol: UDP, nodePort: 30083}\n`)).code).toBe(0);
    sh('ip', ['-n', lab.ns('testpc'), 'route', 'replace', `${EXT}/32`, 'via', nodeIP(1)]);
    expect(await until('the externalIP via k8s-w1', () => curlOut(`http://${EXT}/`))).toBe(`${pod('web')} ${nodeIP(1)}\n`);
    expect(sh('ip', ['-n', lab.ns('k8s-w1'), 'rule', 'show'])).toContain(`from all to ${EXT} iif eth1 lookup 2006 proto 198`);
    sh('ip', ['-n', lab.ns('testpc'), 'route', 'replace', `${EXT}/32`, 'via', nodeIP(2)]);
    expect(await until('the externalIP via k8s-w2', () => curlOut(`http://${EXT}/`))).toBe(`${pod('web')} ${CLIENT_IP()}\n`);
    // The backend's ICMP error goes back through the entry node, translated like the flow.
    for (const i of [1, 2]) expect((await lab.inHost('testpc', UDP_REFUSED(nodeIP(i), 30083)))?.trim()).toBe('refused');
    await ok('k8s-ctr', 'delete', 'svc', svc);
    await until('the externalIP rule gone', async () => (sh('ip', ['-n', lab.ns('k8s-w1'), 'rule', 'show']).includes(EXT) ? undefined : true));
    sh('ip', ['-n', lab.ns('testpc'), 'route', 'del', `${EXT}/32`]);
  });

  it('a LoadBalancer address from an LB-IPAM pool, routed via a node by the client, reaches the backend (no L2 announcement needed)', async () => {
    const svc = pod('lb');
    const LB = '10.78.0.5';
    const manifests = `apiVersion: cilium.io/v2alpha1\nkind: CiliumLoadBalancerIPPool\nmetadata: {name: ${svc}}\nspec:\n  blocks: [{start: ${LB}, stop: ${LB}}]\n---\n` +
      `apiVersion: v1\nkind: Service\nmetadata: {name: ${svc}}\nspec:\n  type: LoadBalancer\n  selector: {app: ${lab.tag}-web}\n  ports: [{port: 80, targetPort: 80}]\n`;
    expect((await apply('k8s-ctr', svc, manifests)).code).toBe(0);
    await until('the LoadBalancer address allocated', async () => ((await ok('k8s-ctr', 'get', 'svc', svc)).split('\n')[1].split(/\s+/)[3] === LB ? true : undefined));
    sh('ip', ['-n', lab.ns('testpc'), 'route', 'replace', `${LB}/32`, 'via', nodeIP(1)]);
    expect(await until('the LoadBalancer address via k8s-w1', () => curlOut(`http://${LB}/`))).toBe(`${pod('web')} ${nodeIP(1)}\n`);
    await ok('k8s-ctr', 'delete', 'svc', svc);
    await ok('k8s-ctr', 'delete', 'ippools', svc);
    await until('the LoadBalancer address rule gone', async () => (sh('ip', ['-n', lab.ns('k8s-w1'), 'rule', 'show']).includes(LB) ? undefined : true));
    sh('ip', ['-n', lab.ns('testpc'), 'route', 'del', `${LB}/32`]);
  });

  it('a container hostPort answers the outside client on its node\'s address, and stops with its pod', async () => {
    const hp = pod('hp');
    expect((await apply('k8s-ctr', hp, `apiVersion: v1\nkind: Pod\nmetadata: {name: ${hp}, labels: {app: ${lab.tag}-hp}}\nspec:\n  nodeName: k8s-w1\n  containers:\n  - name: c\n    image: traefik/whoami\n    ports:\n    - {containerPort: 80, hostPort: 8081}\n`)).code).toBe(0);
    const body = await until('hostPort 8081 on k8s-w1', () => curlOut(`http://${nodeIP(1)}:8081/`));
    expect(body).toContain(`Hostname: ${hp}`);
    expect(body).toMatch(new RegExp(`^RemoteAddr: ${CLIENT_IP().replace(/\./g, '\\.')}:\\d+$`, 'm'));
    expect(await ok('k8s-w1', 'service', 'list')).toMatch(new RegExp(`${nodeIP(1).replace(/\./g, '\\.')}:8081 +HostPort +1 => `));
    await ok('k8s-ctr', 'delete', 'pod', hp);
    await until('the hostPort rule gone', async () => (sh('ip', ['-n', lab.ns('k8s-w1'), 'rule', 'show']).includes('dport 8081') ? undefined : true));
    expect(await curlOut(`http://${nodeIP(1)}:8081/`, '1')).toBeUndefined();
  });

  it('status --verbose prints the KubeProxyReplacement Details of what runs', async () => {
    const out = await ok('k8s-w1', 'status', '--verbose');
    for (const line of ['KubeProxyReplacement Details:', '  Mode:                   SNAT', '  - NodePort:       Enabled (Range: 30000-32767)', '  - LoadBalancer:   Enabled', '  - externalIPs:    Enabled', '  - HostPort:       Enabled']) {
      expect(out.split('\n')).toContain(line);
    }
  });
});
