// The real kubectl against a private three-node lab (real agents over etcd, the Kubernetes API on k8s-ctr):
// the seeds' netpod/webpod layout with nodeName, `get pods -o wide` across nodes, exec into a pod on
// another node, and one cilium agent pod per node that runs the CLI against its own agent.
// Names carry a per-run prefix, objects a per-run namespace and state lives in a temp dir.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { poll, requireRoot } from '../helpers/sys.ts';
import { cols, lines } from '../helpers/kubectl.ts';
import { Lab, NODES } from '../helpers/lab.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const root = requireRoot();
const haveKubectl = existsSync('/usr/bin/kubectl');
const lab = root ? new Lab('k') : (undefined as unknown as Lab);
const ns = root ? lab.namespace('kube') : '';

interface Result { code: number | null; stdout: string; stderr: string }

describe.skipIf(!root || !haveKubectl)('kubectl against a three-node lab', () => {
  const kubectlFlags = () => ['--kubeconfig', lab.kubeconfig('k8s-ctr'), '--cache-dir', join(lab.stateRoot, 'kubectl-cache')];
  const kubectl = (...args: string[]): Result => {
    const r = spawnSync('/usr/bin/kubectl', [...kubectlFlags(), ...args], { encoding: 'utf8', timeout: 120_000 });
    return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  };
  const ok = (r: Result): string => {
    expect(r.code, `${r.stderr}${r.stdout}`).toBe(0);
    return r.stdout;
  };
  /** NAME → [STATUS, IP, NODE] from `kubectl get pods -o wide`. */
  const wide = (...args: string[]): Map<string, string[]> => new Map(lines(kubectl('get', 'pods', '-o', 'wide', '--no-headers', ...args).stdout).filter(Boolean)
    .map((l) => cols(l)).map((c) => [c[0], [c[2], c[5], c[6]]]));

  beforeAll(() => lab.up(3), 240_000);

  afterAll(async () => {
    if (root) await lab.down();
  }, 120_000);

  it('get nodes shows the three nodes, k8s-ctr the control plane', async () => {
    const rows = await poll('three nodes', () => {
      const r = lines(kubectl('get', 'nodes', '--no-headers').stdout).filter(Boolean).map(cols);
      return r.length === 3 ? r : undefined;
    }, 60_000, 250);
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
    }, 60_000, 250);
    expect(['netpod', 'webpod1', 'webpod2'].map((p) => rows.get(p)![2])).toEqual(NODES);
    expect(rows.get('webpod2')![1]).toMatch(/^172\.20\.2\.\d+$/);
    const ep = ok(kubectl('get', 'ep', 'svc', '-n', ns, '--no-headers'));
    expect(cols(lines(ep)[0])[1].split(',').sort()).toEqual([`${rows.get('webpod1')![1]}:80`, `${rows.get('webpod2')![1]}:80`].sort());
    // Every node's endpoints, ready with their identity and address.
    const ceps = await poll('three ciliumendpoints', () => {
      const r = lines(kubectl('get', 'ciliumendpoints', '-n', ns, '--no-headers').stdout).filter(Boolean).map(cols);
      return r.length === 3 ? r : undefined;
    }, 60_000, 250);
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
    }, 60_000, 250);
    expect(logs).toContain('Starting up on port 80');
    const follow = spawn('/usr/bin/kubectl', [...kubectlFlags(), 'logs', '-f', '-n', ns, 'webpod2']);
    let followed = '';
    follow.stdout.on('data', (d) => (followed += d));
    follow.stderr.on('data', (d) => (followed += d));
    try {
      await poll('logs -f to print the log', () => (followed.includes('Starting up on port 80') ? true : undefined), 30_000, 250).catch((e: Error) => {
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
