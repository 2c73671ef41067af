// Scheduling in a private three-node lab (real agents over etcd): pods applied with nodeName run on their
// node, every node lists them with NODE and IP, exec/logs/delete of a pod on another node work from any
// node, and a Deployment with podAntiAffinity spreads its replicas over the nodes.
// Names carry a per-run prefix, objects a per-run namespace and state lives in a temp dir.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { register, removeNetns } from '../helpers/sys.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const script = join(repo, 'scripts/netns/cluster.sh');
const cliBin = join(repo, 'bin/ciliary');
const root = process.getuid?.() === 0;
if (!root) console.warn('\n*** SKIPPING lab tests (test/lab/scheduling.test.ts): they need root ***\n');

const tag = `s${process.pid % 1000}`;
const prefix = `${tag}-`;
const ns = `sched-${tag}`;
const NODES = ['k8s-ctr', 'k8s-w1', 'k8s-w2'];

interface Result { code: number | null; stdout: string; stderr: string }

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 120_000): Result {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env }, timeout: timeoutMs });
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

const netnsNames = (): string[] => run('ip', ['netns', 'list']).stdout.split('\n').map((l) => l.split(' ')[0]).filter(Boolean);
const linkNames = (): string[] => run('ip', ['-o', 'link', 'show']).stdout.split('\n').map((l) => l.split(': ')[1]?.split('@')[0] ?? '').filter(Boolean);

function freeNet(): string {
  const used = run('ip', ['-4', '-o', 'addr', 'show']).stdout + run('ip', ['-4', 'route', 'show']).stdout;
  for (let i = 0; i < 50; i++) {
    const net = `192.168.${150 + ((process.pid + i) % 50)}`;
    if (!used.includes(`${net}.`)) return net;
  }
  throw new Error('no free 192.168.150-199.0/24 for the lab');
}

async function poll<T>(what: string, fn: () => T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const manifest = (nodeName: string, name: string, image: string, app: string, extra: string[] = []) => [
  'apiVersion: v1', 'kind: Pod', 'metadata:', `  name: ${name}`, `  namespace: ${ns}`, '  labels:', `    app: ${app}`, 'spec:', `  nodeName: ${nodeName}`,
  '  containers:', '  - name: c', `    image: ${image}`, ...extra, '  terminationGracePeriodSeconds: 0',
].join('\n');

describe.skipIf(!root)('scheduling in a three-node lab', () => {
  let tmp = '';
  let stateRoot = '';
  let env: NodeJS.ProcessEnv = {};
  const lab = (...args: string[]): Result => run('bash', [script, '--state-root', stateRoot, ...args], env, 180_000);
  /** The CLI talking to one node's agent. */
  const on = (node: string, ...args: string[]): Result => run(cliBin, ['--socket', join(stateRoot, node, 'agent.sock'), ...args], { CILIARY_NODE: '' });
  const ok = (r: Result): string => {
    expect(r.code, `${r.stderr}${r.stdout}`).toBe(0);
    return r.stdout;
  };
  /** NAME → [STATUS, IP, NODE] from `get pods -o wide` on a node. */
  const wide = (node: string): Map<string, string[]> => new Map(on(node, 'get', 'pods', '-n', ns, '-o', 'wide').stdout.split('\n').slice(1).filter(Boolean)
    .map((l) => l.split(/\s+/)).map((c) => [c[0], [c[2], c[5], c[6]]]));

  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'ciliary-sched-'));
    stateRoot = join(tmp, 'state');
    register('prefix', prefix);
    for (const n of NODES) register('prefix', `cil-${n}-${ns}-`);
    env = { CILIARY_LAB_PREFIX: prefix, CILIARY_LAB_NET: freeNet() };
    const up = lab('up', '3');
    if (up.code !== 0) throw new Error(`cluster.sh up 3 failed: ${up.stderr}${up.stdout}`);
  }, 240_000);

  afterAll(() => {
    if (!tmp) return;
    const down = lab('down');
    if (down.code !== 0) console.warn(`cluster.sh down failed in clean-up: ${down.stderr}`);
    for (const n of netnsNames()) if (n.startsWith(prefix) || NODES.some((node) => n.startsWith(`cil-${node}-${ns}-`))) removeNetns(n);
    for (const link of linkNames()) if (link.startsWith(prefix)) run('ip', ['link', 'del', link]);
    rmSync(tmp, { recursive: true, force: true });
  }, 120_000);

  it('applies pods with nodeName on k8s-ctr; k8s-w1 lists each on its node with its IP', async () => {
    const file = join(tmp, 'pods.yaml');
    writeFileSync(file, [
      ['apiVersion: v1', 'kind: Namespace', 'metadata:', `  name: ${ns}`].join('\n'),
      manifest('k8s-ctr', 'netpod', 'nicolaka/netshoot', 'netpod', ['    command: ["tail"]', '    args: ["-f", "/dev/null"]']),
      manifest('k8s-w1', 'webpod1', 'traefik/whoami', 'webpod'),
      manifest('k8s-w2', 'webpod2', 'traefik/whoami', 'webpod'),
    ].join('\n---\n'));
    expect(ok(on('k8s-ctr', 'apply', '-f', file))).toContain('pod/webpod2 created');
    const rows = await poll('three running pods on k8s-w1', () => {
      const m = wide('k8s-w1');
      return ['netpod', 'webpod1', 'webpod2'].every((p) => m.get(p)?.[0] === 'Running') ? m : undefined;
    });
    expect(rows.get('netpod')?.[2]).toBe('k8s-ctr');
    expect(rows.get('webpod1')?.[2]).toBe('k8s-w1');
    expect(rows.get('webpod2')?.[2]).toBe('k8s-w2');
    expect(rows.get('webpod2')?.[1]).toMatch(/^172\.20\.2\.\d+$/);
    expect(rows.get('netpod')?.[1]).toMatch(/^172\.20\.0\.\d+$/);
    // Only k8s-w2's agent runs webpod2.
    expect(netnsNames()).toContain(`cil-k8s-w2-${ns}-webpod2`);
    expect(netnsNames()).not.toContain(`cil-k8s-ctr-${ns}-webpod2`);
  });

  it('exec and logs of a k8s-w2 pod from k8s-ctr', async () => {
    const ip = wide('k8s-ctr').get('webpod2')![1];
    expect(ok(on('k8s-ctr', 'exec', 'webpod2', '-n', ns, '--', 'ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0'))).toContain(`inet ${ip}/`);
    expect(ok(on('k8s-ctr', 'exec', 'webpod2', '-n', ns, '--', 'hostname')).trim()).toBe('webpod2');
    const logs = await poll('webpod2 logs', () => {
      const r = on('k8s-ctr', 'logs', 'webpod2', '-n', ns);
      return r.code === 0 && r.stdout.includes('Starting up on port 80') ? r.stdout : undefined;
    });
    expect(logs).toContain('Starting up on port 80');
  });

  it('deleting a k8s-w2 pod from k8s-w1 removes it on k8s-w2', async () => {
    expect(ok(on('k8s-w1', 'delete', 'pod', 'webpod2', '-n', ns))).toContain('pod "webpod2" deleted');
    await poll('webpod2 gone from k8s-w2', () => (!netnsNames().includes(`cil-k8s-w2-${ns}-webpod2`) && !wide('k8s-w2').has('webpod2') ? true : undefined));
    expect(wide('k8s-ctr').has('webpod2')).toBe(false);
    expect(existsSync(`/var/run/netns/cil-k8s-w2-${ns}-webpod2`)).toBe(false);
  });

  it("each agent's API on the node network refuses requests without the cluster token", () => {
    const url = `http://${env.CILIARY_LAB_NET}.102:9876/v1/healthz`;
    const token = readFileSync(join(stateRoot, 'cluster-token'), 'utf8').trim();
    expect(statSync(join(stateRoot, 'cluster-token')).mode & 0o777).toBe(0o600);
    expect(run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', url]).stdout).toBe('401');
    expect(run('curl', ['-s', '--max-time', '5', '-H', `Authorization: Bearer ${token}`, url]).stdout).toContain('"ok"');
  });

  it('a Deployment with podAntiAffinity spreads its replicas over the nodes', async () => {
    const file = join(tmp, 'spread.yaml');
    writeFileSync(file, [
      'apiVersion: apps/v1', 'kind: Deployment', 'metadata:', '  name: spread', `  namespace: ${ns}`, 'spec:', '  replicas: 3',
      '  selector:', '    matchLabels:', '      app: spread', '  template:', '    metadata:', '      labels:', '        app: spread', '    spec:',
      '      affinity:', '        podAntiAffinity:', '          requiredDuringSchedulingIgnoredDuringExecution:', '          - labelSelector:',
      '              matchLabels:', '                app: spread', '            topologyKey: kubernetes.io/hostname',
      '      containers:', '      - name: c', '        image: traefik/whoami',
    ].join('\n'));
    ok(on('k8s-w2', 'apply', '-f', file));
    const nodes = await poll('three running replicas', () => {
      const spread = [...wide('k8s-w1')].filter(([name, c]) => name.startsWith('spread-') && c[0] === 'Running');
      return spread.length === 3 ? spread.map(([, c]) => c[2]).sort() : undefined;
    });
    expect(nodes).toEqual(NODES);
  });

  it("another agent takes the deployments over when the leader's agent is killed", async () => {
    // The leader says so in its log; SIGKILL leaves its lease to expire in etcd.
    const leaders = NODES.filter((n) => readFileSync(join(stateRoot, n, 'agent.log'), 'utf8').includes('leading the cluster controllers'));
    expect(leaders).toHaveLength(1);
    process.kill(Number(readFileSync(join(stateRoot, leaders[0], 'agent.pid'), 'utf8').trim()), 'SIGKILL');
    const [survivor, target] = NODES.filter((n) => n !== leaders[0]);
    const file = join(tmp, 'after.yaml');
    writeFileSync(file, [
      'apiVersion: apps/v1', 'kind: Deployment', 'metadata:', '  name: after', `  namespace: ${ns}`, 'spec:', '  replicas: 2',
      '  selector:', '    matchLabels:', '      app: after', '  template:', '    metadata:', '      labels:', '        app: after', '    spec:',
      '      nodeSelector:', `        kubernetes.io/hostname: ${target}`, '      containers:', '      - name: c', '        image: traefik/whoami',
    ].join('\n'));
    ok(on(survivor, 'apply', '-f', file));
    const nodes = await poll('two replicas made by the new leader', () => {
      const after = [...wide(survivor)].filter(([name, c]) => name.startsWith('after-') && c[0] === 'Running');
      return after.length === 2 ? after.map(([, c]) => c[2]) : undefined;
    }, 60_000);
    expect(nodes).toEqual([target, target]);
  }, 90_000);
});
