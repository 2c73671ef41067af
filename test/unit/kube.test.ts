// Pure parts of the kube API and the cilium-dbg verbs: resourceVersions from the store's revisions, the
// metrics list parser, endpoint label matching, and the tables of the derived kinds, derived Endpoints.
import { describe, expect, it } from 'vitest';
import { LocalKVStore } from '../../src/control/kvstore.ts';
import type { ResourceApi } from '../../src/control/types.ts';
import { StoreRevisions } from '../../src/kube/store-revisions.ts';
import { toTable } from '../../src/kube/tables.ts';
import { parseMetrics } from '../../src/cli/dbg-agent.ts';
import { hasLabel } from '../../src/cli/dbg-endpoint.ts';
import type { Endpoint } from '../../src/control/types.ts';
import { patchedManifest } from '../../src/kube/patch.ts';
import { endpointsObjects } from '../../src/kube/derived.ts';
import type { KubeBackend, KubeObject } from '../../src/kube/backend.ts';

describe('StoreRevisions', () => {
  it('gives each record the revision of its last change and resolves a write once its event arrived', async () => {
    const kv = LocalKVStore.inMemory();
    let managerListener: ((e: { type: 'put' | 'delete'; key: string; revision?: string }) => void) | undefined;
    const resources = { onChange: (l: typeof managerListener) => { managerListener = l; return () => {}; } } as unknown as ResourceApi;
    const revs = new StoreRevisions(kv, resources);
    const seen: string[] = [];
    revs.onChange((k) => seen.push(k));
    await kv.put('ciliary/policies/x', '{}');
    await kv.put('ciliary/policies/y', '{}');
    expect(Number(revs.current)).toBe(2);
    const before = revs.of('Pod', 'default', 'web');
    expect(before).toBe('1');
    const settled = revs.settled('Pod', 'default', 'web', before);
    managerListener!({ type: 'put', key: 'ciliary/resources/Pod/default/web', revision: '7' });
    await settled;
    expect(revs.of('Pod', 'default', 'web')).toBe('7');
    expect(revs.current).toBe('7');
    managerListener!({ type: 'delete', key: 'ciliary/resources/Pod/default/web', revision: '8' });
    expect(revs.of('Pod', 'default', 'web')).toBe('1');
    expect(seen).toEqual(['ciliary/policies/x', 'ciliary/policies/y', 'ciliary/resources/Pod/default/web', 'ciliary/resources/Pod/default/web']);
    revs.close();
    await kv.close();
  });
});

describe('cilium-dbg helpers', () => {
  it('metrics list: labels as k=v, values with six decimals, comments skipped', () => {
    const text = '# HELP cilium_drop_count_total x\n# TYPE cilium_drop_count_total counter\ncilium_drop_count_total{reason="Policy denied",direction="INGRESS"} 3\ncilium_endpoint 2\n';
    expect(parseMetrics(text)).toEqual([
      { metric: 'cilium_drop_count_total', labels: 'reason=Policy denied direction=INGRESS', value: '3.000000' },
      { metric: 'cilium_endpoint', labels: '', value: '2.000000' },
    ]);
  });

  it('endpoint get -l: a label with its source matches exactly, one without matches any source', () => {
    const ep = { labels: ['k8s:app=web', 'reserved:host'] } as Endpoint;
    expect(hasLabel(ep, 'k8s:app=web')).toBe(true);
    expect(hasLabel(ep, 'app=web')).toBe(true);
    expect(hasLabel(ep, 'any:app=db')).toBe(false);
    expect(hasLabel(ep, 'host')).toBe(true);
  });
});

describe('derived kinds as kubectl prints them', () => {
  const meta = (name: string) => ({ name, namespace: 'default', creationTimestamp: '2026-01-01T00:00:00Z' });
  it('EndpointSlice: ports, then the first three addresses and "+ N more..."', () => {
    const slice = { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: meta('web-abcde'), addressType: 'IPv4', ports: [{ port: 80 }], endpoints: ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'].map((ip) => ({ addresses: [ip] })) };
    const t = toTable('EndpointSlice', [slice], '5', false, Date.parse('2026-01-01T00:01:00Z')) as { rows: Array<{ cells: unknown[] }> };
    expect(t.rows[0].cells).toEqual(['web-abcde', 'IPv4', '80', '10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...', '60s']);
  });

  it('Lease: NAME HOLDER AGE', () => {
    const lease = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: meta('cilium-operator-resource-lock'), spec: { holderIdentity: 'k8s-ctr' } };
    const t = toTable('Lease', [lease], '5', false, Date.parse('2026-01-01T00:01:00Z')) as { columnDefinitions: Array<{ name: string }>; rows: Array<{ cells: unknown[] }> };
    expect(t.columnDefinitions.map((c) => c.name)).toEqual(['Name', 'Holder', 'Age']);
    expect(t.rows[0].cells).toEqual(['cilium-operator-resource-lock', 'k8s-ctr', '60s']);
  });
});

describe('PATCH of a Service back to ClusterIP (the API server\'s dropTypeDependentFields)', () => {
  const nodePort = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'prom' }, spec: { type: 'NodePort', externalTrafficPolicy: 'Cluster', ports: [{ port: 9090, targetPort: 9090, nodePort: 30001 }] } };

  it('drops the nodePorts and externalTrafficPolicy it kept unchanged', () => {
    const out = patchedManifest(nodePort, 'application/strategic-merge-patch+json', { spec: { type: 'ClusterIP' } });
    expect(out.spec).toEqual({ type: 'ClusterIP', ports: [{ port: 9090, targetPort: 9090 }] });
  });

  it('keeps a nodePort the patch changes (validation refuses it, naming the field), and NodePort services as they are', () => {
    const changed = patchedManifest(nodePort, 'application/merge-patch+json', { spec: { type: 'ClusterIP', ports: [{ port: 9090, targetPort: 9090, nodePort: 30002 }] } });
    expect((changed.spec as { ports: unknown[] }).ports).toEqual([{ port: 9090, targetPort: 9090, nodePort: 30002 }]);
    expect(patchedManifest(nodePort, 'application/merge-patch+json', { metadata: { labels: { a: 'b' } } }).spec).toEqual(nodePort.spec);
  });
});

describe('derived Endpoints', () => {
  it("a selector-less service shows the user's Endpoints; a service with a selector keeps the derived one", () => {
    const meta = (name: string) => ({ name, namespace: 'default', creationTimestamp: '2026-01-01T00:00:00Z' });
    const written = { apiVersion: 'v1', kind: 'Endpoints', metadata: meta('outside'), subsets: [{ addresses: [{ ip: '203.0.113.9' }], ports: [{ port: 8080 }] }] };
    const objects: Record<string, KubeObject[]> = {
      Pod: [],
      Service: [{ apiVersion: 'v1', kind: 'Service', metadata: meta('outside'), spec: { ports: [{ port: 80 }] } }, { apiVersion: 'v1', kind: 'Service', metadata: meta('web'), spec: { selector: { app: 'web' }, ports: [{ port: 80 }] } }],
      Endpoints: [written, { ...written, metadata: meta('web') }],
    } as unknown as Record<string, KubeObject[]>;
    const backend = { list: (kind: string) => objects[kind] ?? [] } as unknown as KubeBackend;
    const eps = endpointsObjects(backend);
    expect(eps.find((e) => e.metadata.name === 'outside')).toEqual(written);
    expect(eps.find((e) => e.metadata.name === 'web')).not.toHaveProperty('subsets');
  });
});
