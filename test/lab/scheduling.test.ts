// Scheduling in a private three-node lab (real agents over etcd): pods applied with nodeName run on their
// node, every node lists them with NODE and IP, exec/logs/delete of a pod on another node work from any
// node, and a Deployment with podAntiAffinity spreads its replicas over the nodes.
// Names carry a per-run prefix, objects a per-run namespace and state lives in a temp dir.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { requireRoot, run, sh } from '../helpers/sys.ts';
import { Lab, NODES, type NodeName, until } from '../helpers/lab.ts';
import { DEPLOYMENTS_LEADER_KEY } from '../../src/control/resources/leader.ts';

const root = requireRoot();
const lab = root ? new Lab('s') : (undefined as unknown as Lab);
const ns = root ? lab.namespace('sched') : '';
const netnsNames = (): string[] => sh('ip', ['netns', 'list']).split('\n').map((l) => l.split(' ')[0]).filter(Boolean);

const manifest = (nodeName: string, name: string, image: string, app: string, extra: string[] = []) => [
  'apiVersion: v1', 'kind: Pod', 'metadata:', `  name: ${name}`, `  namespace: ${ns}`, '  labels:', `    app: ${app}`, 'spec:', `  nodeName: ${nodeName}`,
  '  containers:', '  - name: c', `    image: ${image}`, ...extra, '  terminationGracePeriodSeconds: 0',
].join('\n');

describe.skipIf(!root)('scheduling in a three-node lab', () => {
  /** `ciliary exec POD -n NS -- CMD` on a node: its output, when it succeeded. */
  const execOk = async (node: NodeName, name: string, ...cmd: string[]): Promise<string> => {
    const r = await lab.exec(node, name, cmd, 30_000, ns);
    expect(r.code, `${r.stderr}${r.stdout}`).toBe(0);
    return r.stdout;
  };
  /** NAME → [STATUS, IP, NODE] from `get pods -o wide` on a node. */
  const wide = async (node: NodeName): Promise<Map<string, string[]>> => new Map((await lab.cli(node, 'get', 'pods', '-n', ns, '-o', 'wide')).out.split('\n').slice(1).filter(Boolean)
    .map((l) => l.split(/\s+/)).map((c) => [c[0], [c[2], c[5], c[6]]]));

  beforeAll(() => lab.up(3), 240_000);

  afterAll(async () => {
    if (root) await lab.down();
  }, 120_000);

  it('applies pods with nodeName on k8s-ctr; k8s-w1 lists each on its node with its IP', async () => {
    const file = lab.file('pods.yaml', [
      ['apiVersion: v1', 'kind: Namespace', 'metadata:', `  name: ${ns}`].join('\n'),
      manifest('k8s-ctr', 'netpod', 'nicolaka/netshoot', 'netpod', ['    command: ["tail"]', '    args: ["-f", "/dev/null"]']),
      manifest('k8s-w1', 'webpod1', 'traefik/whoami', 'webpod'),
      manifest('k8s-w2', 'webpod2', 'traefik/whoami', 'webpod'),
    ].join('\n---\n'));
    expect(await lab.ok('k8s-ctr', 'apply', '-f', file)).toContain('pod/webpod2 created');
    const rows = await until('three running pods on k8s-w1', async () => {
      const m = await wide('k8s-w1');
      return ['netpod', 'webpod1', 'webpod2'].every((p) => m.get(p)?.[0] === 'Running') ? m : undefined;
    }, 30_000);
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
    const ip = (await wide('k8s-ctr')).get('webpod2')![1];
    expect(await execOk('k8s-ctr', 'webpod2', 'ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0')).toContain(`inet ${ip}/`);
    expect((await execOk('k8s-ctr', 'webpod2', 'hostname')).trim()).toBe('webpod2');
    const logs = await until('webpod2 logs', async () => {
      const r = await lab.cli('k8s-ctr', 'logs', 'webpod2', '-n', ns);
      return r.code === 0 && r.out.includes('Starting up on port 80') ? r.out : undefined;
    }, 30_000);
    expect(logs).toContain('Starting up on port 80');
  });

  it('deleting a k8s-w2 pod from k8s-w1 removes it on k8s-w2', async () => {
    expect(await lab.ok('k8s-w1', 'delete', 'pod', 'webpod2', '-n', ns)).toContain('pod "webpod2" deleted');
    await until('webpod2 gone from k8s-w2', async () => (!netnsNames().includes(`cil-k8s-w2-${ns}-webpod2`) && !(await wide('k8s-w2')).has('webpod2') ? true : undefined), 30_000);
    expect((await wide('k8s-ctr')).has('webpod2')).toBe(false);
    expect(existsSync(`/var/run/netns/cil-k8s-w2-${ns}-webpod2`)).toBe(false);
  });

  it("each agent's API on the node network refuses requests without the cluster token", async () => {
    const url = `http://${lab.nodeIP(2)}:9876/v1/healthz`;
    const token = readFileSync(join(lab.stateRoot, 'cluster-token'), 'utf8').trim();
    expect(statSync(join(lab.stateRoot, 'cluster-token')).mode & 0o777).toBe(0o600);
    expect((await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', url])).stdout).toBe('401');
    expect((await run('curl', ['-s', '--max-time', '5', '-H', `Authorization: Bearer ${token}`, url])).stdout).toContain('"ok"');
  });

  it('a Deployment with podAntiAffinity spreads its replicas over the nodes', async () => {
    const file = lab.file('spread.yaml', [
      'apiVersion: apps/v1', 'kind: Deployment', 'metadata:', '  name: spread', `  namespace: ${ns}`, 'spec:', '  replicas: 3',
      '  selector:', '    matchLabels:', '      app: spread', '  template:', '    metadata:', '      labels:', '        app: spread', '    spec:',
      '      affinity:', '        podAntiAffinity:', '          requiredDuringSchedulingIgnoredDuringExecution:', '          - labelSelector:',
      '              matchLabels:', '                app: spread', '            topologyKey: kubernetes.io/hostname',
      '      containers:', '      - name: c', '        image: traefik/whoami',
    ].join('\n'));
    await lab.ok('k8s-w2', 'apply', '-f', file);
    const nodes = await until('three running replicas', async () => {
      const spread = [...await wide('k8s-w1')].filter(([name, c]) => name.startsWith('spread-') && c[0] === 'Running');
      return spread.length === 3 ? spread.map(([, c]) => c[2]).sort() : undefined;
    }, 30_000);
    expect(nodes).toEqual(NODES);
  });

  it("another agent takes the deployments over when the leader's agent is killed", async () => {
    // The leader says so in its log (pino JSON: msg "leading" with the controllers' key); SIGKILL leaves its lease to expire in etcd.
    const leads = (line: string) => line.includes('"msg":"leading"') && line.includes(`"key":"${DEPLOYMENTS_LEADER_KEY}"`);
    const leaders = NODES.filter((n) => readFileSync(join(lab.stateRoot, n, 'agent.log'), 'utf8').split('\n').some(leads));
    expect(leaders).toHaveLength(1);
    process.kill(lab.agentPid(leaders[0]), 'SIGKILL');
    const [survivor, target] = NODES.filter((n) => n !== leaders[0]);
    const file = lab.file('after.yaml', [
      'apiVersion: apps/v1', 'kind: Deployment', 'metadata:', '  name: after', `  namespace: ${ns}`, 'spec:', '  replicas: 2',
      '  selector:', '    matchLabels:', '      app: after', '  template:', '    metadata:', '      labels:', '        app: after', '    spec:',
      '      nodeSelector:', `        kubernetes.io/hostname: ${target}`, '      containers:', '      - name: c', '        image: traefik/whoami',
    ].join('\n'));
    await lab.ok(survivor, 'apply', '-f', file);
    const nodes = await until('two replicas made by the new leader', async () => {
      const after = [...await wide(survivor)].filter(([name, c]) => name.startsWith('after-') && c[0] === 'Running');
      return after.length === 2 ? after.map(([, c]) => c[2]) : undefined;
    }, 60_000);
    expect(nodes).toEqual([target, target]);
  }, 90_000);
});
