// The agent core follows the store: objects written or removed there by another process or node take
// effect here, and the node's own registration and identity claims are held under its lease.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Agent } from '../../src/agent/agent.ts';
import { KVUnreachableError, LocalKVStore, type KVStore } from '../../src/control/kvstore.ts';
import { readStoreFile } from '../../src/control/kvstore-file.ts';
import { NODES_PREFIX } from '../../src/control/nodes.ts';
import { startAgentCore } from './agent-core.ts';
import { formatEndpointList } from '../../src/cli/endpoint.ts';

/** Resolves when cond() holds, checking after every turn of the event loop (store events are asynchronous). */
async function until(cond: () => boolean, what: string, tries = 200): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('agent core and the store', () => {
  let agent: Agent | undefined;
  let kv: KVStore;
  const dirs: string[] = [];
  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const start = async (store: KVStore = LocalKVStore.inMemory()) => {
    kv = store;
    agent = await startAgentCore('n1', {}, kv);
    return agent;
  };

  it('a pod written into the store by another writer is created, and deleted when its record goes', async () => {
    const a = await start();
    const key = 'ciliary/resources/Pod/default/ext';
    const manifest = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'ext', namespace: 'default', labels: { app: 'ext' } }, spec: { containers: [{ name: 'c', image: 'ciliary/run' }] } };
    await kv.put(key, JSON.stringify({ manifest, createdAt: new Date().toISOString() }));
    await until(() => a.getPod('default', 'ext') !== undefined, 'the pod');
    expect(a.listEndpoints().find((e) => e.podName === 'default/ext')?.labels).toContain('k8s:app=ext');
    expect(a.resources.get('pods', 'default', 'ext')?.manifest).toEqual({ ...manifest, spec: { ...manifest.spec, nodeName: 'n1' } });
    await kv.delete(key);
    await until(() => a.getPod('default', 'ext') === undefined, 'the pod to go');
    expect(a.listEndpoints().some((e) => e.podName === 'default/ext')).toBe(false);
  });

  it('a deployment written into the store gets its replicas, which go with its record', async () => {
    const a = await start();
    const key = 'ciliary/resources/Deployment/default/web';
    const manifest = {
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'default' },
      spec: { replicas: 2, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: 'ciliary/run' }] } } },
    };
    await kv.put(key, JSON.stringify({ manifest, createdAt: new Date().toISOString() }));
    await until(() => a.listPods().filter((p) => p.name.startsWith('web-')).length === 2, 'two replicas');
    expect(a.resources.get('deploy', 'default', 'web')?.status).toMatchObject({ replicas: 2, ready: 2 });
    await kv.delete(key);
    await until(() => a.listPods().every((p) => !p.name.startsWith('web-')), 'the replicas to go');
    expect(a.resources.list('pods', 'default')).toEqual([]);
  });

  it('a service stored by another node gets its frontends, and loses them when deleted', async () => {
    const a = await start();
    const spec = { name: 'remote', namespace: 'default', type: 'ClusterIP', ports: [{ port: 80, targetPort: 80, protocol: 'TCP' }], selector: { app: 'x' }, clusterIP: '10.96.7.7' };
    await kv.put('ciliary/services/default/remote', JSON.stringify({ spec, clusterIP: '10.96.7.7', createdAt: new Date().toISOString() }));
    await until(() => a.lbList(false).some(([svc]) => svc === '10.96.7.7:80'), 'the frontend');
    expect(a.getService('default', 'remote')?.clusterIP).toBe('10.96.7.7');
    await kv.delete('ciliary/services/default/remote');
    await until(() => !a.lbList(false).some(([svc]) => svc === '10.96.7.7:80'), 'the frontend to go');
    expect(a.getService('default', 'remote')).toBeUndefined();
  });

  it('a policy stored by another node is enforced on the selected endpoint, and lifted when deleted', async () => {
    const a = await start();
    await a.resources.apply([{ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'srv', labels: { app: 'srv' } }, spec: { containers: [{ name: 'c', image: 'ciliary/run' }] } }]);
    const ep = a.listEndpoints().find((e) => e.podName === 'default/srv')!;
    expect(ep.policyIngress).toBe('Disabled');
    const cnp = { apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'only-a', namespace: 'default' }, spec: { endpointSelector: { matchLabels: { app: 'srv' } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: 'a' } }] }] } };
    await kv.put('ciliary/policies/CiliumNetworkPolicy/default/only-a', JSON.stringify(cnp));
    await until(() => a.getEndpoint(ep.id)?.policyIngress === 'Enabled', 'ingress enforcement');
    expect(a.listPolicies().policies.map((p) => p.name)).toEqual(['only-a']);
    expect(a.bpfPolicy(ep.id)).not.toMatch(/\nAllow +Ingress +ANY /);
    await kv.delete('ciliary/policies/CiliumNetworkPolicy/default/only-a');
    await until(() => a.getEndpoint(ep.id)?.policyIngress === 'Disabled', 'enforcement to be lifted');
    expect(a.listPolicies().policies).toEqual([]);
  });

  it("another node's identities and published pod addresses enter this node's identity list and ipcache (behind its node IP), and leave them", async () => {
    const a = await start();
    const pair = { IP: '172.20.1.5', Mask: null, HostIP: '192.168.10.101', ID: 4242, Key: 0, Metadata: '', K8sNamespace: 'default', K8sPodName: 'far', NamedPorts: [], Labels: { app: 'far' } };
    await kv.put('cilium/state/identities/v1/id/4242', 'k8s:app=far;k8s:io.kubernetes.pod.namespace=default');
    await kv.put('cilium/state/ip/v1/default/172.20.1.5', JSON.stringify(pair));
    await until(() => a.ipList().some((e) => e.prefix === '172.20.1.5/32'), 'the remote pod in the ipcache');
    expect(a.ipList().find((e) => e.prefix === '172.20.1.5/32')).toMatchObject({ identity: 4242, labels: ['k8s:app=far', 'k8s:io.kubernetes.pod.namespace=default'] });
    expect(a.listIdentities()).toContainEqual({ id: 4242, labels: ['k8s:app=far', 'k8s:io.kubernetes.pod.namespace=default'] });
    // The node's endpoint record (rewritten whenever the pod's process restarts) does not touch the entry.
    await kv.put('ciliary/endpoints/n2/default/far', JSON.stringify({ id: 7, name: 'far', namespace: 'default', podIP: '172.20.1.5', identity: 4242, securityLabels: ['k8s:app=far'] }));
    await new Promise((r) => setTimeout(r, 50));
    expect(a.dumpMap('cilium_ipcache')!.find((e) => e.key === '172.20.1.5/32')?.value).toBe('identity=4242 encryptkey=0 tunnelendpoint=192.168.10.101');
    await kv.delete('cilium/state/ip/v1/default/172.20.1.5');
    await kv.delete('cilium/state/identities/v1/id/4242');
    await until(() => !a.ipList().some((e) => e.prefix === '172.20.1.5/32'), 'the remote pod to leave the ipcache');
    expect(a.listIdentities().some((i) => i.id === 4242)).toBe(false);
  });

  it('a pod whose new labels need the away store is listed waiting-for-identity with its endpoint id, keeps the id when it starts, and leaves the list when deleted', async () => {
    const inner = LocalKVStore.inMemory();
    let away = false;
    // The store refuses new identities (etcd away): every other key still answers.
    const store: KVStore = Object.assign(Object.create(inner) as KVStore, {
      createOnly: (k: string, v: string, o?: Parameters<KVStore['createOnly']>[2]) => (away && k.startsWith('cilium/state/identities/')
        ? Promise.reject(new KVUnreachableError('kvstore etcd unreachable at test')) : inner.createOnly(k, v, o)),
      health: () => (away ? { ok: false, message: 'kvstore etcd unreachable at test' } : inner.health()),
    });
    const a = await start(store);
    away = true;
    const pod = (name: string) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default', labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'ciliary/run' }] } });
    await a.resources.apply([pod('fresh'), pod('gone')]);
    const waiting = a.listEndpoints().filter((e) => e.state === 'waiting-for-identity');
    expect(waiting.map((e) => [e.podName, e.identity, e.ipv4])).toEqual(expect.arrayContaining([['default/fresh', 0, ''], ['default/gone', 0, '']]));
    const fresh = waiting.find((e) => e.podName === 'default/fresh')!;
    expect(fresh.labels).toContain('k8s:app=fresh');
    expect(formatEndpointList(a.listEndpoints())).toMatch(new RegExp(`^${fresh.id} +Disabled +Disabled +<no label id> +k8s:app=fresh +waiting-for-identity`, 'm'));
    const goneId = waiting.find((e) => e.podName === 'default/gone')!.id;
    await a.resources.delete('pod', 'default', 'gone');
    expect(a.listEndpoints().some((e) => e.podName === 'default/gone')).toBe(false);
    expect(await inner.get(`ciliary/endpoints/n1/id/${goneId}`)).toBeUndefined();
    away = false;
    await until(() => a.getEndpoint(fresh.id)?.state === 'ready', 'the waiting pod to start', 600);
    expect(a.getEndpoint(fresh.id)).toMatchObject({ podName: 'default/fresh', state: 'ready' });
    expect(a.getEndpoint(fresh.id)!.identity).toBeGreaterThanOrEqual(256);
    expect(a.listEndpoints().filter((e) => e.podName === 'default/fresh')).toHaveLength(1);
  });

  it("holds the node's registration and identity claims under its lease: they are not in the file a restart reads", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ciliary-core-'));
    dirs.push(dir);
    const a = await start(await LocalKVStore.open(dir));
    await a.resources.apply([{ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', labels: { app: 'p' } }, spec: { containers: [{ name: 'c', image: 'ciliary/run' }] } }]);
    const identity = a.listEndpoints().find((e) => e.podName === 'default/p')!.identity;
    expect(JSON.parse((await kv.get(`${NODES_PREFIX}n1`))!)).toMatchObject({ name: 'n1', podCIDR: '172.20.0.0/24', routerIP: '172.20.0.1' });
    expect(await kv.get(`cilium/state/identities/v1/users/${identity}/n1`)).toBe('1');
    const onDisk = [...readStoreFile(dir).keys()];
    expect(onDisk).toContain('ciliary/endpoints/n1/default/p');
    expect(onDisk).toContain(`cilium/state/identities/v1/id/${identity}`);
    expect(onDisk.filter((k) => k.startsWith(NODES_PREFIX) || k.includes('/identities/v1/users/'))).toEqual([]);
  });
});
