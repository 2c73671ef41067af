// Resolution at scale: the entry builder's port-block index, and endpoints with the same labels
// and named ports sharing one resolution (PolicyRepository.reuse, PolicyManager.regenerate).
import { describe, expect, it } from 'vitest';
import { PolicyManager, type PolicyEndpoint } from '../../src/control/policy.ts';
import { LocalKVStore } from '../../src/control/kvstore.ts';
import { mapByteSize, memoryStorage, openMap, type LpmTrieMap, type MapSpec } from '../../src/maps/index.ts';
import { EntryBuilder, type Contribution } from '../../src/policy/entries.ts';
import { parsePolicy, POLICY_KEY_SIZE, POLICY_VALUE_SIZE, PolicyRepository, reservedIdentityLabels, type ResolveContext } from '../../src/policy/index.ts';
import { resolutionKey } from '../../src/policy/repository.ts';

const NS = 'k8s:io.kubernetes.pod.namespace=default';
const cnp = (name: string, selector: Record<string, string>, ingress: unknown[]) => ({
  apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name, namespace: 'default' },
  specs: ingress.map((r) => ({ endpointSelector: { matchLabels: selector }, ingress: [r] })),
});
const allowFrom = (labels: Record<string, string>, port?: number, http?: unknown[]) => ({
  fromEndpoints: [{ matchLabels: labels }],
  ...(port === undefined ? {} : { toPorts: [{ ports: [{ port: String(port), protocol: 'TCP' }], ...(http ? { rules: { http } } : {}) }] }),
});

describe('entry builder', () => {
  const allow = (port: number, portPrefixLen: number, http?: Contribution['http']): Contribution => ({
    identity: 7, egress: false, protocol: 6, port, portPrefixLen, deny: false, labels: ['l'], ...(http ? { http } : {}),
  });

  it('an entry inherits the L7 rules of every block containing it, in the order they were added', () => {
    const b = new EntryBuilder();
    b.add(allow(8089, 16, [{ path: '/d' }]));
    b.add(allow(8088, 13, [{ path: '/c' }]));
    b.add(allow(8088, 15, [{ path: '/b' }]));
    b.add(allow(8090, 16)); // plain, inside 8088/13 only
    b.add(allow(9000, 16)); // plain, outside every L7 block
    const l7 = Object.fromEntries(b.finish().map((e) => [`${e.port}/${e.portPrefixLen}`, e.l7]));
    expect(l7).toEqual({
      '8088/13': [{ path: '/c' }],
      '8088/15': [{ path: '/c' }, { path: '/b' }],
      '8089/16': [{ path: '/d' }, { path: '/c' }, { path: '/b' }],
      '8090/16': [{ path: '/c' }, {}],
      '9000/16': undefined,
    });
  });

  it('1,000 single ports of one identity: one entry each, no L7 (timing printed)', () => {
    const t0 = performance.now();
    let entries = 0;
    for (let ep = 0; ep < 100; ep++) {
      const b = new EntryBuilder();
      for (let i = 0; i < 1000; i++) b.add(allow(10_000 + i, 16));
      const out = b.finish();
      entries += out.length;
      expect(out.every((e) => e.l7 === undefined && e.proxyPort === 0)).toBe(true);
    }
    console.log(`entry builder: 100 × 1,000 entries in ${Math.round(performance.now() - t0)} ms`);
    expect(entries).toBe(100_000);
  });
});

describe('shared resolutions', () => {
  const client = { id: 1, identity: 300, labels: ['k8s:app=client', NS] };
  const target = (id: number, extra: Partial<PolicyEndpoint> = {}) => ({ id, identity: 301, labels: ['k8s:role=target', NS], ...extra });
  const ctxOf = (): ResolveContext => ({
    identities: new Map([...reservedIdentityLabels(), [300, client.labels], [301, target(0).labels]]),
    enforcement: 'default',
    cidrIdentity: () => 16_777_217,
  });
  const setup = () => {
    const repo = new PolicyRepository();
    repo.add(parsePolicy(cnp('p', { role: 'target' }, [allowFrom({ app: 'client' }, 80)])));
    return { repo, ctx: ctxOf() };
  };

  it('keys endpoints by labels and named ports, not by id or label order', () => {
    expect(resolutionKey(target(1))).toBe(resolutionKey({ ...target(2), labels: [NS, 'k8s:role=target'] }));
    expect(resolutionKey(target(1))).not.toBe(resolutionKey(target(2, { namedPorts: { http: { port: 80, protocol: 'TCP' } } })));
    expect(resolutionKey(target(1))).not.toBe(resolutionKey(client));
  });

  it('a reused resolution is tracked like a resolved one', () => {
    const { repo, ctx } = setup();
    const first = repo.resolve(target(10), ctx);
    const second = repo.reuse(target(11), ctx, first);
    expect(second?.entries).toEqual(first.entries);
    expect(repo.takeStaleEndpoints()).toEqual([]);
    // Both read the client selector: a new client identity affects both.
    expect(repo.addIdentity(302, ['k8s:app=client', 'k8s:v=2', NS])).toEqual([10, 11]);
    repo.forgetEndpoint(10);
    expect(repo.removeIdentity(302)).toEqual([11]);
    // A policy change marks the reused endpoint stale too.
    repo.takeStaleEndpoints();
    repo.add(parsePolicy(cnp('p', { role: 'target' }, [allowFrom({ app: 'client' }, 81)])));
    expect(repo.takeStaleEndpoints()).toEqual([11]);
  });

  it('is refused after any change, for other labels or named ports, another ctx, or a result with warnings', () => {
    const { repo, ctx } = setup();
    const first = repo.resolve(target(10), ctx);
    expect(repo.reuse(client, ctx, first)).toBeUndefined();
    expect(repo.reuse(target(11, { namedPorts: { http: { port: 80, protocol: 'TCP' } } }), ctx, first)).toBeUndefined();
    expect(repo.reuse(target(11), ctxOf(), first)).toBeUndefined();
    expect(repo.reuse(target(11), ctx, { ...first })).toBeUndefined(); // not a resolve() result
    repo.addIdentity(303, ['k8s:app=other', NS]);
    expect(repo.reuse(target(11), ctx, first)).toBeUndefined();
    const again = repo.resolve(target(10), ctx);
    expect(repo.reuse(target(11), ctx, again)).toBeDefined();
    repo.add(parsePolicy(cnp('q', { role: 'target' }, [{ fromEndpoints: [{ matchLabels: { app: 'client' } }], toPorts: [{ ports: [{ port: 'web', protocol: 'TCP' }] }] }])));
    const warned = repo.resolve(target(10), ctx);
    expect(warned.warnings).toHaveLength(1);
    expect(repo.reuse(target(11), ctx, warned)).toBeUndefined();
  });

  it('1,000 rules reach 100 endpoints of one identity with the same entries as alone (timing printed)', async () => {
    const eps: PolicyEndpoint[] = [client, ...Array.from({ length: 100 }, (_, i) => target(100 + i))];
    const spec: MapSpec<'lpm_trie'> = { name: 'cilium_policy', type: 'lpm_trie', keySize: POLICY_KEY_SIZE, valueSize: POLICY_VALUE_SIZE, maxEntries: 4096 };
    const maps = new Map<number, LpmTrieMap>(eps.map((e) => [e.id, openMap(memoryStorage(mapByteSize(spec)), spec) as LpmTrieMap]));
    const identities = new Map([[300, client.labels], [301, target(0).labels]]);
    const log = { warn: () => {}, info: () => {} } as never;
    const kv = LocalKVStore.inMemory();
    const pm = new PolicyManager({ kv, log, enforcement: 'default', endpoints: () => eps, identities: () => identities, policyMap: (id) => maps.get(id), setIpcache: () => {} });
    await pm.restore();
    const rules = Array.from({ length: 1000 }, (_, i) => allowFrom({ app: 'client' }, 10_000 + i));
    const t0 = performance.now();
    await pm.import([cnp('bench-1000', { role: 'target' }, rules)]);
    console.log(`policy manager: 1,000 rules on 100 endpoints in ${Math.round(performance.now() - t0)} ms`);

    const dump = (id: number) => maps.get(id)!.dump().map((e) => Buffer.from(e.key).toString('hex') + Buffer.from(e.value).toString('hex')).sort();
    const alone = new PolicyRepository();
    alone.add(parsePolicy(cnp('bench-1000', { role: 'target' }, rules)));
    const ctx = { ...ctxOf(), allowLocalhost: true };
    expect(alone.resolve(target(100), ctx).entries).toHaveLength(1002); // 1,000 ports + host + egress allow-all
    for (const e of eps.slice(1)) expect(dump(e.id)).toEqual(dump(100));
    expect(dump(100)).toHaveLength(1002);
    // Every target reads the client selector: a new client identity regenerates all of them.
    expect(pm.repo.addIdentity(302, ['k8s:app=client', 'k8s:v=2', NS])).toHaveLength(100);
  });
});
