// The real kubectl against a private three-node lab (real agents over etcd, the Kubernetes API on k8s-ctr):
// the seeds' netpod/webpod layout with nodeName, `get pods -o wide` across nodes, exec into a pod on
// another node, and one cilium agent pod per node that runs the CLI against its own agent.
// Names carry a per-run prefix, objects a per-run namespace and state lives in a temp dir.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { register, removeNetns } from '../helpers/sys.ts';
import { cols, lines } from '../helpers/kubectl.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const script = join(repo, 'scripts/netns/cluster.sh');
const root = process.getuid?.() === 0;
const haveKubectl = existsSync('/usr/bin/kubectl');

const tag = `k${process.pid % 1000}`;
const prefix = `${tag}-`;
const ns = `kube-${tag}`;
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
    const net = `192.168.${150 + ((process.pid + 17 + i) % 50)}`;
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

describe.skipIf(!root || !haveKubectl)('kubectl against a three-node lab', () => {
  let tmp = '';
  let stateRoot = '';
  let env: NodeJS.ProcessEnv = {};
  const lab = (...args: string[]): Result => run('bash', [script, '--state-root', stateRoot, ...args], env, 180_000);
  const kubectl = (...args: string[]): Result => run('/usr/bin/kubectl', ['--kubeconfig', join(stateRoot, 'k8s-ctr', 'kube', 'admin.conf'), '--cache-dir', join(tmp, 'cache'), ...args]);
  const ok = (r: Result): string => {
    expect(r.code, `${r.stderr}${r.stdout}`).toBe(0);
    return r.stdout;
  };
  /** NAME → [STATUS, IP, NODE] from `kubectl get pods -o wide`. */
  const wide = (...args: string[]): Map<string, string[]> => new Map(lines(kubectl('get', 'pods', '-o', 'wide', '--no-headers', ...args).stdout).filter(Boolean)
    .map((l) => cols(l)).map((c) => [c[0], [c[2], c[5], c[6]]]));

  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'ciliary-kubectl-lab-'));
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

  it('get nodes shows the three nodes, k8s-ctr the control plane', async () => {
    const rows = await poll('three nodes', () => {
      const r = lines(kubectl('get', 'nodes', '--no-headers').stdout).filter(Boolean).map(cols);
      return r.length === 3 ? r : undefined;
    });
    expect(rows.map((c) => c.slice(0, 3))).toEqual([['k8s-ctr', 'Ready', 'control-plane'], ['k8s-w1', 'Ready', '<none>'], ['k8s-w2', 'Ready', '<none>']]);
    const cidrs = kubectl('get', 'nodes', '-o', 'jsonpath={range .items[*]}{.metadata.name}{"\\t"}{.spec.podCIDR}{"\\n"}{end}');
    expect(lines(cidrs.stdout)).toEqual(NODES.map((n, i) => `${n}\t172.20.${i}.0/24`));
  });

  it('the seeds\' layout with nodeName: get pods -o wide puts each pod on its node; get svc,ep lists both webpods, get ciliumendpoints all three', async () => {
    ok(kubectl('create', 'ns', ns));
    expect(ok(kubectl('apply', '-n', ns, '-f', join(repo, 'examples', 'netpod', 'pods-3nodes.yaml')))).toBe('pod/netpod created\npod/webpod1 created\npod/webpod2 created\n');
    ok(kubectl('apply', '-n', ns, '-f', join(repo, 'examples', 'netpod', 'svc.yaml')));
    const rows = await poll('three running pods', () => {
      const m = wide('-n', ns);
      return ['netpod', 'webpod1', 'webpod2'].every((p) => m.get(p)?.[0] === 'Running') ? m : undefined;
    });
    expect(['netpod', 'webpod1', 'webpod2'].map((p) => rows.get(p)![2])).toEqual(NODES);
    expect(rows.get('webpod2')![1]).toMatch(/^172\.20\.2\.\d+$/);
    const ep = ok(kubectl('get', 'ep', 'svc', '-n', ns, '--no-headers'));
    expect(cols(lines(ep)[0])[1].split(',').sort()).toEqual([`${rows.get('webpod1')![1]}:80`, `${rows.get('webpod2')![1]}:80`].sort());
    // Every node's endpoints, ready with their identity and address.
    const ceps = await poll('three ciliumendpoints', () => {
      const r = lines(kubectl('get', 'ciliumendpoints', '-n', ns, '--no-headers').stdout).filter(Boolean).map(cols);
      return r.length === 3 ? r : undefined;
    });
    for (const c of ceps) expect([c[2], c[3]]).toEqual(['ready', rows.get(c[0])![1]]);
    expect(ceps.map((c) => c[1]).every((id) => /^\d+$/.test(id))).toBe(true);
  });

  it('exec and logs reach a pod on another node; netpod curls the service across nodes', async () => {
    expect(ok(kubectl('exec', '-n', ns, 'webpod1', '--', 'hostname')).trim()).toBe('webpod1');
    const hosts = new Set<string>();
    for (let i = 0; i < 12 && hosts.size < 2; i++) {
      const r = ok(kubectl('exec', '-n', ns, 'netpod', '--', 'curl', '-s', '--max-time', '5', `svc.${ns}.svc.cluster.local`));
      hosts.add(/^Hostname: (\S+)$/m.exec(r)?.[1] ?? '');
    }
    expect([...hosts].sort()).toEqual(['webpod1', 'webpod2']);
    // Logs of a pod on another node, as the pod's agent keeps them; -f follows them there.
    const logs = await poll('webpod2 logs', () => {
      const r = kubectl('logs', '-n', ns, 'webpod2');
      return r.code === 0 && r.stdout.includes('Starting up on port 80') ? r.stdout : undefined;
    });
    expect(logs).toContain('Starting up on port 80');
    const follow = spawn('/usr/bin/kubectl', ['--kubeconfig', join(stateRoot, 'k8s-ctr', 'kube', 'admin.conf'), '--cache-dir', join(tmp, 'cache'), 'logs', '-f', '-n', ns, 'webpod2']);
    let followed = '';
    follow.stdout.on('data', (d) => (followed += d));
    follow.stderr.on('data', (d) => (followed += d));
    try {
      await poll('logs -f to print the log', () => (followed.includes('Starting up on port 80') ? true : undefined), 30_000).catch((e: Error) => {
        throw new Error(`${e.message}; printed: ${followed}`);
      });
    } finally {
      follow.kill('SIGKILL');
    }
  });

  it('kube-system has one cilium pod per node; each runs the CLI against its own agent', () => {
    const agents = wide('-n', 'kube-system', '-l', 'k8s-app=cilium');
    expect([...agents.values()].map((c) => c[2]).sort()).toEqual(NODES);
    const ds = cols(lines(ok(kubectl('get', 'ds', '-n', 'kube-system', 'cilium', '--no-headers')))[0]);
    expect(ds.slice(0, 6)).toEqual(['cilium', '3', '3', '3', '3', '3']);
    const onW1 = [...agents].find(([, c]) => c[2] === 'k8s-w1')![0];
    const list = ok(kubectl('exec', '-n', 'kube-system', onW1, '-c', 'cilium-agent', '--', 'cilium', 'endpoint', 'list'));
    expect(list).toContain('k8s:app=webpod');
    expect(list).not.toContain('k8s:app=netpod');
    expect(ok(kubectl('exec', '-n', 'kube-system', 'ds/cilium', '-c', 'cilium-agent', '--', 'cilium', 'status'))).toMatch(/^KVStore:\s+Ok/m);
  });
});
