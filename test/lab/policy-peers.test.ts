// fromNodes in a real three-node lab (native routing, etcd) with enable-node-selector-labels: every
// other node's address has an identity of its own carrying its labels, and a pod's ingress rule
// selecting a node by label admits that node's own connections and no other node's.
// Names carry a per-run prefix and net, state lives in a temp dir: another lab on this machine is safe.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { removeNetns, requireRoot, run, sh, sleep } from '../helpers/sys.ts';
import { main } from '../../src/cli/main.ts';

const root = requireRoot();
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const script = join(repo, 'scripts/netns/cluster.sh');
const tag = `pp${process.pid % 100000}`;
const prefix = `${tag}-`;
const pod = (name: string) => `${tag}-${name}`;
const SERVER = ['node', '-e', "require('http').createServer((q,s)=>s.end('srv '+q.socket.remoteAddress+'\\n')).listen(80,'0.0.0.0')"];

/** A /24 for the lab that nothing on this machine uses yet (another range than the multinode lab's). */
function freeNet(): string {
  const used = sh('ip', ['-4', '-o', 'addr', 'show']) + sh('ip', ['-4', 'route', 'show']);
  for (let i = 0; i < 50; i++) {
    const net = `192.168.${200 + ((process.pid + i) % 50)}`;
    if (!used.includes(`${net}.`)) return net;
  }
  throw new Error('no free 192.168.200-249.0/24 for the lab');
}

const net = root ? freeNet() : '';
const stateRoot = root ? mkdtempSync(join(tmpdir(), 'ciliary-policy-peers-')) : '';
const labEnv = [`CILIARY_LAB_PREFIX=${prefix}`, `CILIARY_LAB_NET=${net}`, 'CILIARY_AGENT_ARGS=--enable-node-selector-labels'];
const sock = (node: string) => join(stateRoot, node, 'agent.sock');
const nodeIP = (i: number) => `${net}.${100 + i}`;
const lab = (...args: string[]) => run('env', [...labEnv, script, '--state-root', stateRoot, ...args], 240_000);

async function ok(node: string, ...argv: string[]): Promise<string> {
  let out = '';
  let err = '';
  const code = await main(['--socket', sock(node), ...argv], { out: (s) => (out += s), err: (s) => (err += s) }, {});
  if (code !== 0) throw new Error(`ciliary ${argv.join(' ')} on ${node}: ${err}`);
  return out;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

/** curl from a node's own namespace (the node itself, not a pod). */
const curlFromNode = (node: string, url: string) => run('ip', ['netns', 'exec', `${prefix}${node}`, 'curl', '-s', '--connect-timeout', '2', '--max-time', '3', url], 10_000);

describe.skipIf(!root)('fromNodes by node label, three nodes over etcd', () => {
  let srvIP = '';
  beforeAll(async () => {
    const up = await lab('up', '3');
    if (up.code !== 0) throw new Error(`cluster.sh up 3 failed: ${up.stderr}`);
    await ok('k8s-ctr', 'run', pod('srv'), '--labels', 'app=srv', '--', ...SERVER);
    srvIP = (await ok('k8s-ctr', 'get', 'pods', pod('srv'), '-o', 'wide')).split('\n')[1].split(/\s+/)[5];
  }, 300_000);

  afterAll(async () => {
    if (!root) return;
    await ok('k8s-ctr', 'delete', 'pod', pod('srv')).catch(() => undefined);
    const down = await lab('down');
    if (down.code !== 0) console.warn(`cluster.sh down: ${down.stderr}`);
    for (const ns of sh('ip', ['netns', 'list']).split('\n').map((l) => l.split(' ')[0])) {
      if (ns.startsWith('cil-') && ns.includes(`-default-${tag}-`)) removeNetns(ns);
    }
    for (const d of existsSync('/etc/netns') ? readdirSync('/etc/netns', { withFileTypes: true }) : []) {
      if (d.name.startsWith('cil-') && d.name.includes(`-default-${tag}-`)) rmSync(join('/etc/netns', d.name), { recursive: true, force: true });
    }
    rmSync(stateRoot, { recursive: true, force: true });
  }, 120_000);

  it("each other node's address has its own identity with the node's labels", async () => {
    const list = await until('both workers in the ipcache', async () => {
      const out = await ok('k8s-ctr', 'ip', 'list', '-n');
      return out.includes(`${nodeIP(1)}/32`) && out.includes(`${nodeIP(2)}/32`) ? out : undefined;
    });
    const idOf = (ip: string) => list.split('\n').find((l) => l.startsWith(`${ip}/32 `))!.split(/\s+/)[1];
    expect(idOf(nodeIP(1))).not.toBe(idOf(nodeIP(2)));
    expect(Number(idOf(nodeIP(1)))).toBeGreaterThan(1 << 24);
    const labels = await ok('k8s-ctr', 'ip', 'list');
    expect(labels).toMatch(new RegExp(`\\n${nodeIP(1).replace(/\./g, '\\.')}/32 +reserved:remote-node +generated\\n +k8s:kubernetes\\.io/hostname=k8s-w1\\n`));
  });

  it('an ingress rule fromNodes hostname=k8s-w1 admits k8s-w1 and not k8s-w2', async () => {
    const file = join(stateRoot, 'from-w1.yaml');
    const yaml = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: ${tag}-from-w1, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: srv}}
  ingress:
  - fromNodes: [{matchLabels: {kubernetes.io/hostname: k8s-w1}}]
`;
    writeFileSync(file, yaml);
    // Both nodes reach the pod before the policy.
    for (const n of ['k8s-w1', 'k8s-w2']) await until(`${n} to reach the pod`, async () => ((await curlFromNode(n, `http://${srvIP}/`)).stdout.startsWith('srv ') ? true : undefined));
    await ok('k8s-ctr', 'apply', '-f', file);
    await until('the policy on the pod', async () => ((await curlFromNode('k8s-w2', `http://${srvIP}/`)).code !== 0 ? true : undefined));
    const w1 = await curlFromNode('k8s-w1', `http://${srvIP}/`);
    expect(w1.stdout).toBe(`srv ${nodeIP(1)}\n`);
    expect((await curlFromNode('k8s-w2', `http://${srvIP}/`)).stdout).toBe('');
    await ok('k8s-ctr', 'delete', 'cnp', `${tag}-from-w1`);
  });
});
