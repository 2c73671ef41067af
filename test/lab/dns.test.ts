// Cluster DNS in a private three-node lab (real agents over etcd), as seed 003 has it: the two CoreDNS
// replicas run on k8s-ctr, one copy of kube-dns/coredns for the whole cluster, and a pod on k8s-w1
// resolves a service through them, also with the l7-visibility policy sending its DNS through the
// proxy on its own node. Names carry a per-run prefix and namespace; state lives in a temp dir.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { register, removeNetns } from '../helpers/sys.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const script = join(repo, 'scripts/netns/cluster.sh');
const cliBin = join(repo, 'bin/ciliary');
const root = process.getuid?.() === 0;
const tag = `d${process.pid % 1000}`;
const prefix = `${tag}-`;
const ns = `dns-${tag}`;
const NODES = ['k8s-ctr', 'k8s-w1', 'k8s-w2'];

interface Result { code: number | null; stdout: string; stderr: string }
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 120_000): Result {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env }, timeout: timeoutMs });
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}
const netnsNames = (): string[] => run('ip', ['netns', 'list']).stdout.split('\n').map((l) => l.split(' ')[0]).filter(Boolean);
function freeNet(): string {
  const used = run('ip', ['-4', '-o', 'addr', 'show']).stdout + run('ip', ['-4', 'route', 'show']).stdout;
  for (let i = 0; i < 50; i++) {
    const net = `192.168.${150 + ((process.pid + i * 7) % 50)}`;
    if (!used.includes(`${net}.`)) return net;
  }
  throw new Error('no free 192.168.150-199.0/24 for the lab');
}
async function poll<T>(what: string, fn: () => T | undefined, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe.skipIf(!root)('cluster DNS in a three-node lab', () => {
  let tmp = '';
  let stateRoot = '';
  let env: NodeJS.ProcessEnv = {};
  const lab = (...args: string[]): Result => run('bash', [script, '--state-root', stateRoot, ...args], env, 240_000);
  const on = (node: string, ...args: string[]): Result => run(cliBin, ['--socket', join(stateRoot, node, 'agent.sock'), ...args], { CILIARY_NODE: '' });
  const dig = (...args: string[]) => on('k8s-w1', 'exec', 'curl-pod', '-n', ns, '--', 'dig', '+tries=1', '+timeout=2', ...args);

  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'ciliary-dns-lab-'));
    stateRoot = join(tmp, 'state');
    register('prefix', prefix);
    for (const n of NODES) register('prefix', `cil-${n}-${ns}-`);
    env = { CILIARY_LAB_PREFIX: prefix, CILIARY_LAB_NET: freeNet() };
    const up = lab('up', '3');
    if (up.code !== 0) throw new Error(`cluster.sh up 3 failed: ${up.stderr}${up.stdout}`);
  }, 300_000);

  afterAll(() => {
    if (!tmp) return;
    const down = lab('down');
    if (down.code !== 0) console.warn(`cluster.sh down failed in clean-up: ${down.stderr}`);
    for (const n of netnsNames()) if (n.startsWith(prefix) || NODES.some((node) => n.startsWith(`cil-${node}-${ns}-`))) removeNetns(n);
    rmSync(tmp, { recursive: true, force: true });
  }, 120_000);

  it('two CoreDNS replicas on k8s-ctr; a pod on k8s-w1 resolves a service through kube-dns, also through its node\'s DNS proxy', async () => {
    const rows = await poll('two running CoreDNS pods', () => {
      const out = on('k8s-w1', 'get', 'pods', '-n', 'kube-system', '-o', 'wide').stdout.split('\n').filter((l) => l.startsWith('coredns-')).map((l) => l.split(/\s+/));
      return out.length === 2 && out.every((c) => c[2] === 'Running') ? out : undefined;
    });
    expect(rows.map((c) => c[6])).toEqual(['k8s-ctr', 'k8s-ctr']);
    expect(on('k8s-w2', 'get', 'deployments', '-n', 'kube-system').stdout).toMatch(/^coredns\s+2\/2/m);
    const file = join(tmp, 'pods.yaml');
    writeFileSync(file, [
      ['apiVersion: v1', 'kind: Namespace', 'metadata:', `  name: ${ns}`].join('\n'),
      ['apiVersion: v1', 'kind: Pod', 'metadata:', '  name: curl-pod', `  namespace: ${ns}`, '  labels:', '    app: curl', 'spec:', '  nodeName: k8s-w1',
        '  containers:', '  - name: c', '    image: nicolaka/netshoot', '    command: ["tail"]', '    args: ["-f", "/dev/null"]'].join('\n'),
      ['apiVersion: v1', 'kind: Service', 'metadata:', '  name: webpod', `  namespace: ${ns}`, 'spec:', '  selector:', '    app: webpod', '  ports:', '  - port: 80'].join('\n'),
    ].join('\n---\n'));
    expect(on('k8s-ctr', 'apply', '-f', file).code).toBe(0);
    const vip = await poll('the webpod service', () => /^webpod\s+ClusterIP\s+(\S+)/m.exec(on('k8s-w1', 'get', 'svc', '-n', ns).stdout)?.[1]);
    await poll('curl-pod to resolve webpod', () => (dig('+short', `webpod.${ns}.svc.cluster.local`).stdout.trim() === vip ? true : undefined));
    const visibility = join(tmp, 'l7-visibility.yaml');
    writeFileSync(visibility, ['apiVersion: cilium.io/v2', 'kind: CiliumNetworkPolicy', 'metadata:', '  name: l7-visibility', `  namespace: ${ns}`, 'spec:',
      '  endpointSelector:', '    matchLabels:', `      "k8s:io.kubernetes.pod.namespace": ${ns}`, '  egress:', '  - toPorts:', '    - ports:', '      - port: "53"',
      '        protocol: ANY', '      rules:', '        dns:', '        - matchPattern: "*"'].join('\n'));
    expect(on('k8s-ctr', 'apply', '-f', visibility).code).toBe(0);
    await poll('the proxied lookup and its flow on k8s-w1', () => {
      if (dig('+short', `webpod.${ns}.svc.cluster.local`).stdout.trim() !== vip) return undefined;
      const flows = on('k8s-w1', 'observe', '--type', 'l7', '--last', '20').stdout;
      return new RegExp(`${ns}/curl-pod:\\d+ \\(ID:\\d+\\) <- kube-system/coredns-\\w+-\\w+:53 \\(ID:\\d+\\) dns-response proxy FORWARDED \\(DNS Answer "${vip.replaceAll('.', '\\.')}" TTL: 30`).test(flows) ? true : undefined;
    });
    expect(dig(`other.${ns}.svc.cluster.local`).stdout).toMatch(/status: NXDOMAIN/);
  }, 240_000);
});
