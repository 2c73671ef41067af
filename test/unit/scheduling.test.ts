// Several agent cores over one store act as a cluster: a pod applied on any node is placed by the
// scheduler's rules and runs only on its node; deployments are reconciled by the lease holder.
import { afterEach, describe, expect, it } from 'vitest';
import type { Agent } from '../../src/agent/agent.ts';
import { LocalKVStore, type KVStore } from '../../src/control/kvstore.ts';
import { DEPLOYMENTS_LEADER_KEY } from '../../src/control/resources/leader.ts';
import { ManifestError } from '../../src/control/types.ts';
import { startAgentCore } from './agent-core.ts';

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The shared store as one agent sees it: its stop does not close the store for the others. */
function nodeView(kv: KVStore): KVStore {
  return {
    get: (k) => kv.get(k), put: (k, v, o) => kv.put(k, v, o), delete: (k) => kv.delete(k), list: (p) => kv.list(p),
    createOnly: (k, v, o) => kv.createOnly(k, v, o), watch: (p, cb) => kv.watch(p, cb), grantLease: (t) => kv.grantLease(t),
    health: () => kv.health(), close: async () => undefined,
  };
}

const pod = (name: string, spec: Record<string, unknown> = {}, labels: Record<string, string> = { app: name }) => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, labels }, spec: { containers: [{ name: 'c', image: 'ciliary/run' }], ...spec },
});

const antiAffinity = (app: string) => ({
  affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: [app] }] }, topologyKey: 'kubernetes.io/hostname' }] } },
});

const deployment = (name: string, replicas: number, spec: Record<string, unknown> = {}) => ({
  apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name },
  spec: { replicas, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'ciliary/run' }], ...spec } } },
});

describe('scheduling over several nodes', () => {
  let kv: KVStore;
  const agents = new Map<string, Agent>();
  afterEach(async () => {
    for (const a of agents.values()) await a.stop();
    agents.clear();
    await kv.close();
  });
  const cluster = async (...names: string[]) => {
    kv = LocalKVStore.inMemory();
    for (const [i, n] of names.entries()) await join(n, i);
    return (n: string) => agents.get(n)!;
  };
  const join = async (n: string, i: number) => {
    agents.set(n, await startAgentCore(n, { 'node-ip': `192.168.10.${100 + i}` }, nodeView(kv)));
  };
  /** Where each pod of the namespace runs, as every node lists it. */
  const placement = (a: Agent) => Object.fromEntries(a.resources.list('pods', 'default').map((v) => [v.name, v.status.node]));
  const runningOn = (n: string, name: string) => [...agents].filter(([, a]) => a.getPod('default', name)).map(([node]) => node).join() === n;

  it('runs a pod with spec.nodeName on that node only, listed with its node and IP everywhere', async () => {
    const at = await cluster('k8s-ctr', 'k8s-w1', 'k8s-w2');
    await at('k8s-w1').resources.apply([pod('web', { nodeName: 'k8s-w2' })]);
    await until(() => runningOn('k8s-w2', 'web'), 'the pod on k8s-w2');
    const ip = at('k8s-w2').getPod('default', 'web')!.podIP;
    await until(() => at('k8s-ctr').resources.get('pods', 'default', 'web')?.status.podIP === ip, 'its IP on k8s-ctr');
    expect(at('k8s-ctr').resources.get('pods', 'default', 'web')?.status).toMatchObject({ node: 'k8s-w2', status: 'Running', ready: '1/1' });
    const unknown = await at('k8s-ctr').resources.apply([pod('lost', { nodeName: 'k8s-w9' })]).catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(ManifestError);
    expect((unknown as ManifestError).statusCode).toBe(422);
    expect((unknown as ManifestError).message).toContain('spec.nodeName: node "k8s-w9" not found');
  });

  it('spreads plain pods to the node with the fewest pods, ties by name, and honours nodeSelector', async () => {
    const at = await cluster('k8s-ctr', 'k8s-w1', 'k8s-w2');
    for (const n of ['a', 'b', 'c', 'd']) await at('k8s-w2').resources.apply([pod(n)]);
    await at('k8s-w1').resources.apply([pod('cp', { nodeSelector: { 'node-role.kubernetes.io/control-plane': '' } })]);
    expect(placement(at('k8s-w1'))).toEqual({ a: 'k8s-ctr', b: 'k8s-w1', c: 'k8s-w2', d: 'k8s-ctr', cp: 'k8s-ctr' });
    await until(() => runningOn('k8s-ctr', 'cp') && runningOn('k8s-w1', 'b'), 'the pods on their nodes');
  });

  it('keeps a pod Pending with the scheduler reason while no node fits, and places it when one joins', async () => {
    const at = await cluster('k8s-ctr', 'k8s-w1');
    await at('k8s-w1').resources.apply([pod('late', { nodeSelector: { 'kubernetes.io/hostname': 'k8s-w2' } })]);
    expect(at('k8s-ctr').resources.get('pods', 'default', 'late')?.status).toMatchObject({
      status: 'Pending', node: '', reason: "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector.",
    });
    await join('k8s-w2', 2);
    await until(() => runningOn('k8s-w2', 'late'), 'the pod on the new node');
    expect(at('k8s-w1').resources.get('pods', 'default', 'late')?.status.node).toBe('k8s-w2');
  });

  it('spreads replicas with required anti-affinity, one per node, the rest Pending', async () => {
    const at = await cluster('k8s-ctr', 'k8s-w1', 'k8s-w2');
    await at('k8s-w1').resources.apply([deployment('webpod', 2, antiAffinity('webpod'))]);
    await until(() => at('k8s-w1').resources.list('pods').length === 2, 'two replicas');
    const nodes = Object.values(placement(at('k8s-w2')));
    expect(new Set(nodes).size).toBe(2);
    await at('k8s-ctr').resources.apply([deployment('webpod', 4, antiAffinity('webpod'))]);
    await until(() => at('k8s-w2').resources.list('pods').filter((v) => v.status.status === 'Running').length === 3, 'three running replicas');
    await until(() => at('k8s-w2').resources.list('pods').length === 4, 'four replicas');
    const views = at('k8s-w2').resources.list('pods');
    expect(views.map((v) => v.status.node).filter(Boolean).sort()).toEqual(['k8s-ctr', 'k8s-w1', 'k8s-w2']);
    expect(views.find((v) => v.status.status === 'Pending')?.status.reason).toBe("0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules.");
  });

  it('a service applied on one node has the same ClusterIP on every node', async () => {
    const at = await cluster('k8s-ctr', 'k8s-w1', 'k8s-w2');
    await at('k8s-w1').resources.apply([{ apiVersion: 'v1', kind: 'Service', metadata: { name: 'websvc' }, spec: { selector: { app: 'web' }, ports: [{ port: 80 }] } }]);
    const ip = at('k8s-w1').getService('default', 'websvc')!.clusterIP;
    await until(() => ['k8s-ctr', 'k8s-w2'].every((n) => at(n).getService('default', 'websvc')?.clusterIP === ip), 'the service on the other nodes');
    expect(at('k8s-w1').getService('default', 'websvc')?.clusterIP).toBe(ip);
  });

  it('deletes a pod from any node on its own node', async () => {
    const at = await cluster('k8s-ctr', 'k8s-w1', 'k8s-w2');
    await at('k8s-ctr').resources.apply([pod('gone', { nodeName: 'k8s-w2' })]);
    await until(() => runningOn('k8s-w2', 'gone'), 'the pod on k8s-w2');
    await at('k8s-w1').resources.delete('pods', 'default', 'gone');
    await until(() => runningOn('', 'gone'), 'the pod to go from k8s-w2');
    expect(at('k8s-ctr').resources.get('pods', 'default', 'gone')).toBeUndefined();
  });

  it("moves an older agent's per-node records to the cluster prefix, its pods kept on it", async () => {
    kv = LocalKVStore.inMemory();
    const manifest = pod('old');
    await kv.put('ciliary/resources/k8s-w1/Pod/default/old', JSON.stringify({ manifest: { ...manifest, metadata: { ...manifest.metadata, namespace: 'default' } }, createdAt: new Date().toISOString() }));
    await join('k8s-ctr', 0);
    await join('k8s-w1', 1);
    await until(() => runningOn('k8s-w1', 'old'), 'the pod on its old node');
    expect(await kv.list('ciliary/resources/k8s-w1/')).toEqual([]);
    await until(() => placement(agents.get('k8s-ctr')!).old === 'k8s-w1', 'k8s-ctr to list it on k8s-w1');
  });

  it('reconciles deployments on the lease holder only; another node takes over when it goes', async () => {
    const at = await cluster('k8s-ctr', 'k8s-w1', 'k8s-w2');
    expect(await kv.get(DEPLOYMENTS_LEADER_KEY)).toBe('k8s-ctr');
    await at('k8s-w2').resources.apply([deployment('web', 3)]);
    await until(() => at('k8s-w2').resources.list('pods').length === 3, 'three replicas');
    expect(Object.values(placement(at('k8s-w2'))).sort()).toEqual(['k8s-ctr', 'k8s-w1', 'k8s-w2']);
    // The leader's controllers stop (its agent goes away): its lease is released.
    await at('k8s-ctr').resources.close();
    let next: string | undefined;
    for (let i = 0; i < 100 && !next; i++) next = await kv.get(DEPLOYMENTS_LEADER_KEY);
    expect(['k8s-w1', 'k8s-w2']).toContain(next);
    await at('k8s-w2').resources.apply([deployment('web', 5)]);
    await until(() => at('k8s-w2').resources.list('pods').length === 5, 'five replicas by the new leader');
    const onW2 = at('k8s-w2').resources.list('pods').find((v) => v.status.node === 'k8s-w2')!;
    await at('k8s-w2').resources.delete('pods', 'default', onW2.name);
    await until(() => at('k8s-w2').resources.list('pods').length === 5 && !at('k8s-w2').resources.get('pods', 'default', onW2.name), 'the deleted replica replaced');
  });
});
