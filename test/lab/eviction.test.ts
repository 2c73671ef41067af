// Pod eviction from a dead node in a private three-node lab over etcd (pod-eviction-timeout 10s):
// w2's agent killed, `get nodes` shows it NotReady, its Deployment replica is recreated on a ready node
// once the timeout passed, and w2's agent, restarted, deletes the pod it no longer owns.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot, sh } from '../helpers/sys.ts';
import { Lab, NODES, type NodeName, until } from '../helpers/lab.ts';

const EVICTION_TIMEOUT_S = 10;
const root = requireRoot();
const lab = root ? new Lab('e', [`CILIARY_AGENT_ARGS=--pod-eviction-timeout=${EVICTION_TIMEOUT_S}s`]) : (undefined as unknown as Lab);
const netnsNames = (): string[] => sh('ip', ['netns', 'list']).split('\n').map((l) => l.split(' ')[0]).filter(Boolean);

describe.skipIf(!root)('pod eviction from a NotReady node', () => {
  const deploy = root ? lab.pod('web') : '';
  /** The deployment's pods from `get pods -o wide` on a node: NAME → [STATUS, NODE]. */
  const replicas = async (node: NodeName): Promise<Map<string, string[]>> => new Map((await lab.ok(node, 'get', 'pods', '-o', 'wide')).split('\n').slice(1)
    .map((l) => l.split(/\s+/)).filter((c) => c[0].startsWith(`${deploy}-`)).map((c) => [c[0], [c[2], c[6]]]));
  /** NAME → STATUS from `get nodes` on a node. */
  const nodeStatus = async (node: NodeName): Promise<Map<string, string>> => new Map((await lab.ok(node, 'get', 'nodes')).split('\n').slice(1).filter(Boolean)
    .map((l) => l.split(/\s+/)).map((c) => [c[0], c[1]]));

  beforeAll(() => lab.up(3), 240_000);

  afterAll(async () => {
    if (root) await lab.down();
  }, 120_000);

  it('w2 dead: NotReady, its replica recreated elsewhere after the timeout; back, it deletes the pod it no longer owns', async () => {
    await lab.ok('k8s-ctr', 'apply', '-f', lab.file('web.yaml', [
      'apiVersion: apps/v1', 'kind: Deployment', 'metadata:', `  name: ${deploy}`, 'spec:', '  replicas: 3',
      '  selector:', '    matchLabels:', '      app: web', '  template:', '    metadata:', '      labels:', '        app: web', '    spec:',
      '      containers:', '      - name: c', '        image: traefik/whoami',
    ].join('\n')));
    const placed = await until('three running replicas', async () => {
      const m = await replicas('k8s-ctr');
      return [...m.values()].filter((c) => c[0] === 'Running').length === 3 ? m : undefined;
    }, 60_000);
    // Spread to the nodes with the fewest pods: w2 (no other pods) gets one.
    const onW2 = [...placed].find(([, c]) => c[1] === 'k8s-w2')?.[0];
    expect(onW2, JSON.stringify([...placed])).toBeDefined();
    expect(await nodeStatus('k8s-ctr')).toEqual(new Map(NODES.map((n) => [n, 'Ready'])));

    process.kill(lab.agentPid('k8s-w2'), 'SIGKILL');
    await until('k8s-w2 NotReady on k8s-ctr', async () => ((await nodeStatus('k8s-ctr')).get('k8s-w2') === 'NotReady' ? true : undefined), 30_000);
    const notReadyAt = Date.now();
    // Not evicted at once: the replica stays on w2 until the timeout passed.
    expect((await replicas('k8s-ctr')).get(onW2!)?.[1]).toBe('k8s-w2');
    expect((await nodeStatus('k8s-w1')).get('k8s-w2')).toBe('NotReady');
    expect(await lab.ok('k8s-ctr', 'node', 'list')).not.toContain('k8s-w2');

    const after = await until('the replica recreated on a ready node', async () => {
      const m = await replicas('k8s-w1');
      return !m.has(onW2!) && [...m.values()].filter((c) => c[0] === 'Running').length === 3 ? m : undefined;
    }, 60_000);
    expect(Date.now() - notReadyAt).toBeGreaterThanOrEqual((EVICTION_TIMEOUT_S - 1) * 1000);
    expect([...after.values()].map((c) => c[1]).filter((n) => n === 'k8s-w2')).toEqual([]);
    // Its namespace still runs on w2 (nothing there could delete it) until w2's agent comes back.
    expect(netnsNames()).toContain(`cil-k8s-w2-default-${onW2!}`);

    const restarted = await lab.script('restart', 'k8s-w2');
    expect(restarted.code, restarted.stderr).toBe(0);
    await until('k8s-w2 Ready again', async () => ((await nodeStatus('k8s-ctr')).get('k8s-w2') === 'Ready' ? true : undefined), 30_000);
    await until('w2 deleted the evicted pod', async () => (!netnsNames().includes(`cil-k8s-w2-default-${onW2!}`) ? true : undefined), 30_000);
    expect((await replicas('k8s-w2')).has(onW2!)).toBe(false);
    expect([...(await replicas('k8s-w2')).values()].filter((c) => c[0] === 'Running')).toHaveLength(3);
  }, 240_000);
});
