// The resource manager against fake pods/services/policies: validation before any change, dependency
// order, rollback, deployments (names, scaling, template changes), anti-affinity, namespaces; and the
// CLI's manifest parsing, error placement and tables.
import { describe, it, expect, beforeEach, vi } from 'vitest';
import pino from 'pino';
import { LocalKVStore, type KVStore } from '../../src/control/kvstore.ts';
import { ResourceManager, type ResourceDeps } from '../../src/control/resources/manager.ts';
import { templateHash, toServiceSpec, type Manifest } from '../../src/control/resources/convert.ts';
import { validateManifest, FieldError } from '../../src/control/resources/validate.ts';
import { ApiError, ManifestError, type Pod, type PodSpec, type Service, type ServiceSpec } from '../../src/control/types.ts';
import { parseManifests, locateError } from '../../src/cli/apply.ts';
import { AgentError } from '../../src/cli/errors.ts';
import { formatResourceTable, jsonPath, toObject } from '../../src/cli/resources.ts';
import { LBIPAM } from '../../src/control/lbipam/controller.ts';

const pod = (name: string, extra: Record<string, unknown> = {}, ns?: string) => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, ...(ns ? { namespace: ns } : {}), labels: { app: name } },
  spec: { containers: [{ name: 'c', image: 'x/y', command: ['sleep', '1000'] }], ...extra },
});
const deploy = (name: string, replicas: number, image = 'x/y', affinity?: unknown) => ({
  apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name },
  spec: {
    replicas, selector: { matchLabels: { app: name } },
    template: { metadata: { labels: { app: name } }, spec: { ...(affinity ? { affinity } : {}), containers: [{ name: 'c', image, command: ['sleep', '1000'] }] } },
  },
});
const svc = (name: string) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name }, spec: { selector: { app: name }, ports: [{ port: 80 }] } });

class Fake {
  pods = new Map<string, Pod>();
  services = new Map<string, Service>();
  policies = new Map<string, unknown>();
  calls: string[] = [];
  failCreate?: string;

  deps(kv: ResourceDeps['kv']): ResourceDeps {
    return {
      node: 'n1', kv, log: pino({ level: 'silent' }),
      workloadFor: (c) => (c.image === 'bad/image' ? { error: 'image "bad/image" is not known' } : { argv: [...(c.command ?? []), ...(c.args ?? [])], env: {} }),
      pods: {
        list: () => [...this.pods.values()],
        create: async (s: PodSpec) => {
          this.calls.push(`pod+${s.name}`);
          if (s.name === this.failCreate) throw new ApiError(500, 'boom');
          const p = { name: s.name, namespace: s.namespace, labels: s.labels, node: 'n1', podIP: '10.0.0.1', endpointID: 1, state: 'ready', netns: '', ifindex: 1, createdAt: new Date().toISOString(), command: s.command, process: s.process } as Pod;
          this.pods.set(`${s.namespace}/${s.name}`, p);
          return p;
        },
        delete: async (ns, name) => { this.calls.push(`pod-${name}`); this.pods.delete(`${ns}/${name}`); },
        logPath: (ns, name) => (this.pods.has(`${ns}/${name}`) ? `/tmp/${ns}_${name}.log` : undefined),
      },
      services: {
        list: () => [...this.services.values()],
        get: (ns, name) => this.services.get(`${ns}/${name}`),
        apply: async (s: ServiceSpec) => {
          this.calls.push(`svc+${s.name}`);
          const old = this.services.get(`${s.namespace}/${s.name}`);
          const v = { ...s, clusterIP: '10.96.0.5', frontends: [], createdAt: new Date().toISOString() } as Service;
          this.services.set(`${s.namespace}/${s.name}`, v);
          return { service: v, result: old ? 'configured' : 'created' };
        },
        delete: async (ns, name) => { this.calls.push(`svc-${name}`); this.services.delete(`${ns}/${name}`); },
      },
      policies: {
        import: async (objects) => {
          const o = objects[0] as Manifest & { kind: string };
          this.calls.push(`pol+${o.metadata.name}`);
          const key = `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`;
          const result = !this.policies.has(key) ? 'created' : JSON.stringify(this.policies.get(key)) === JSON.stringify(o) ? 'unchanged' : 'configured';
          this.policies.set(key, o);
          return { revision: 1, policies: [{ kind: o.kind, namespace: o.metadata.namespace, name: o.metadata.name, result }] };
        },
        list: () => [...this.policies.entries()].map(([k, o]) => ({ kind: k.split('/')[0], namespace: k.split('/')[1], name: k.split('/')[2], object: o, selects: [] })),
        delete: async (kind, ns, name) => {
          if (!this.policies.delete(`${kind}/${ns}/${name}`)) throw new ApiError(404, 'not found');
          return 1;
        },
      },
    };
  }
}

const cnp = { apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'rule1' }, spec: { endpointSelector: { matchLabels: { org: 'empire' } }, ingress: [{ fromEndpoints: [{ matchLabels: { org: 'empire' } }] }] } };

describe('resource manager', () => {
  let fake: Fake;
  let rm: ResourceManager;
  beforeEach(async () => {
    fake = new Fake();
    rm = new ResourceManager(fake.deps(memoryKv()));
    await rm.restore();
  });

  it('applies in dependency order and reports kubectl results; re-apply is unchanged', async () => {
    const objs = [pod('xwing'), deploy('web', 2), svc('web'), cnp, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team' } }];
    const r = await rm.apply(objs);
    expect(r.map((x) => `${x.resource}/${x.name} ${x.result}`)).toEqual([
      'pod/xwing created', 'deployment.apps/web created', 'service/web created', 'ciliumnetworkpolicy.cilium.io/rule1 created', 'namespace/team created',
    ]);
    expect(fake.calls.slice(0, 3)).toEqual(['pol+rule1', 'svc+web', 'pod+xwing']);
    const again = await rm.apply(objs);
    expect(again.map((x) => x.result)).toEqual(['unchanged', 'unchanged', 'unchanged', 'unchanged', 'unchanged']);
    const names = rm.list('pods').map((v) => v.name).filter((n) => n.startsWith('web-'));
    expect(names).toHaveLength(2);
    const hash = templateHash(deploy('web', 2).spec.template);
    for (const n of names) expect(n).toMatch(new RegExp(`^web-${hash}-[bcdfghjklmnpqrstvwxz2456789]{5}$`));
  });

  it('validates everything first: a bad object anywhere changes nothing', async () => {
    const bad = { ...pod('b'), spec: { containers: [{ name: 'c', image: 'x/y', imag: 'typo' }] } };
    const e = await rm.apply([svc('web'), pod('a'), bad]).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ManifestError);
    expect((e as ManifestError).document).toBe(3);
    expect((e as ManifestError).path).toBe('spec.containers[0].imag');
    expect(fake.calls).toEqual([]);
    const img = await rm.apply([pod('a', {}), { ...pod('c'), spec: { containers: [{ name: 'c', image: 'bad/image' }] } }]).catch((x: unknown) => x);
    expect((img as ManifestError).path).toBe('spec.containers[0].image');
    const node = await rm.apply([pod('a', { nodeName: 'k8s-w1' })]).catch((x: unknown) => x);
    expect((node as ManifestError).message).toContain('spec.nodeName: node "k8s-w1" not found');
    const ns = await rm.apply([pod('a', {}, 'nope')]).catch((x: unknown) => x);
    expect((ns as ManifestError).message).toContain('namespaces "nope" not found');
    expect(fake.calls).toEqual([]);
  });

  it('rolls back what the apply created when a step fails', async () => {
    fake.failCreate = 'b';
    const e = await rm.apply([svc('web'), pod('a'), pod('b')]).catch((x: unknown) => x);
    expect((e as ManifestError).document).toBe(3);
    expect(fake.pods.size).toBe(0);
    expect(fake.services.size).toBe(0);
    expect(rm.list('pods')).toEqual([]);
  });

  it('scales deployments and replaces pods of a changed template', async () => {
    await rm.apply([deploy('web', 3)]);
    expect(fake.pods.size).toBe(3);
    expect((await rm.apply([deploy('web', 1)]))[0].result).toBe('configured');
    expect(fake.pods.size).toBe(1);
    const before = [...fake.pods.keys()];
    await rm.apply([deploy('web', 1, 'x/z')]);
    expect(fake.pods.size).toBe(1);
    expect([...fake.pods.keys()]).not.toEqual(before);
    // A deleted replica is replaced.
    const [only] = [...fake.pods.values()];
    await rm.delete('pod', 'default', only.name);
    expect(fake.pods.size).toBe(1);
    expect(rm.get('deploy', 'default', 'web')!.status).toMatchObject({ replicas: 1, ready: 1, upToDate: 1, available: 1 });
    await rm.delete('deployments', 'default', 'web');
    expect(fake.pods.size).toBe(0);
  });

  it('keeps a replica Pending when required anti-affinity matches, and starts it once the other goes', async () => {
    const affinity = { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['web'] }] }, topologyKey: 'kubernetes.io/hostname' }] } };
    await rm.apply([deploy('web', 2, 'x/y', affinity)]);
    const views = rm.list('pods');
    expect(views.map((v) => v.status.status).sort()).toEqual(['Pending', 'Running']);
    expect(views.find((v) => v.status.status === 'Pending')!.status.podIP).toBe('');
    const running = views.find((v) => v.status.status === 'Running')!;
    await rm.delete('pod', 'default', running.name);
    // The pending one started, and a replacement is pending.
    expect(fake.pods.size).toBe(1);
    expect(rm.list('pods').map((v) => v.status.status).sort()).toEqual(['Pending', 'Running']);
  });

  it('namespaces: builtins exist, deleting one deletes its contents', async () => {
    expect(rm.list('ns').map((v) => v.name)).toEqual(['default', 'kube-system']);
    await rm.apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team' } }, pod('a', {}, 'team'), { ...svc('s'), metadata: { name: 's', namespace: 'team' } }]);
    expect(rm.list('pods', 'team')).toHaveLength(1);
    await rm.delete('namespace', undefined, 'team');
    expect(fake.pods.size).toBe(0);
    expect(fake.services.size).toBe(0);
    await expect(rm.delete('ns', undefined, 'default')).rejects.toThrow(/may not be deleted/);
    await expect(rm.delete('ns', undefined, 'team')).rejects.toThrow('namespaces "team" not found');
  });

  it('delete -f reports missing objects as not found, workloads first', async () => {
    await rm.apply([svc('web'), pod('a')]);
    fake.calls = [];
    const r = await rm.deleteObjects([svc('web'), pod('a'), pod('zz')]);
    expect(r.map((x) => x.result)).toEqual(['deleted', 'deleted', 'not found']);
    expect(fake.calls).toEqual(['pod-a', 'svc-web']);
  });

  it('stores LB IP pools and counts their addresses', async () => {
    const pool = { apiVersion: 'cilium.io/v2alpha1', kind: 'CiliumLoadBalancerIPPool', metadata: { name: 'p' }, spec: { allowFirstLastIPs: 'No', blocks: [{ cidr: '10.10.200.0/29' }, { start: '10.0.0.1', stop: '10.0.0.4' }] } };
    expect((await rm.apply([pool]))[0]).toMatchObject({ resource: 'ciliumloadbalancerippool.cilium.io', result: 'created' });
    expect(rm.list('ippools')[0].status).toMatchObject({ ipsAvailable: 10, disabled: false });
  });

  it('LB-IPAM writes the seed\'s .1 .2 .3 into status.loadBalancer.ingress; a re-apply keeps it, a delete frees it', async () => {
    const kv = memoryKv();
    const mgr = new ResourceManager(fake.deps(kv));
    await mgr.restore();
    const lbipam = new LBIPAM({ kv, node: 'n1', log: pino({ level: 'silent' }), leaseTtlSeconds: 5, resources: mgr });
    await lbipam.start();
    const pool = { apiVersion: 'cilium.io/v2alpha1', kind: 'CiliumLoadBalancerIPPool', metadata: { name: 'cilium-pool' }, spec: { allowFirstLastIPs: 'No', blocks: [{ cidr: '10.10.200.0/29' }] } };
    const lb = (name: string) => ({ ...svc(name), spec: { type: 'LoadBalancer', selector: { app: 'webpod' }, ports: [{ port: 80 }] } });
    const ingress = (name: string) => fake.services.get(`default/${name}`)?.loadBalancerIngress?.join(',');
    await mgr.apply([pool, lb('svc1')]);
    await vi.waitFor(() => expect(ingress('svc1')).toBe('10.10.200.1'));
    await mgr.apply([lb('svc2')]);
    await vi.waitFor(() => expect(ingress('svc2')).toBe('10.10.200.2'));
    await mgr.apply([lb('svc3')]);
    await vi.waitFor(() => expect(ingress('svc3')).toBe('10.10.200.3'));
    expect(toObject(mgr.get('svc', 'default', 'svc1')!).status).toMatchObject({ loadBalancer: { ingress: [{ ip: '10.10.200.1' }] } });
    expect((await mgr.apply([lb('svc1')]))[0].result).toBe('unchanged');
    expect(formatResourceTable('CiliumLoadBalancerIPPool', mgr.list('ippools'), { now: Date.parse(mgr.list('ippools')[0].createdAt) + 5000 }))
      .toBe('NAME          DISABLED   CONFLICTING   IPS AVAILABLE   AGE\ncilium-pool   false      False         3               5s\n');
    await mgr.delete('svc', 'default', 'svc1');
    await mgr.apply([lb('svc4')]);
    await vi.waitFor(() => expect(ingress('svc4')).toBe('10.10.200.1'));
    await mgr.apply([{ ...lb('svc2'), spec: { selector: { app: 'webpod' }, ports: [{ port: 80 }] } }]);
    await vi.waitFor(() => expect(mgr.get('svc', 'default', 'svc2')!.manifest.status).toBeUndefined());
    expect(ingress('svc2')).toBeUndefined();
    await lbipam.close();
  });
});

describe('manifest validation and conversion', () => {
  const path = (o: unknown) => {
    try {
      validateManifest(o);
      return 'ok';
    } catch (e) {
      return e instanceof FieldError ? `${e.path}: ${e.reason}` : String(e);
    }
  };
  it('names the field', () => {
    expect(path({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'a' } })).toBe('spec: required field is missing');
    expect(path({ apiVersion: 'v1', kind: 'Podd', metadata: { name: 'a' } })).toMatch(/^kind: no matches for kind "Podd"/);
    expect(path({ apiVersion: 'v2', kind: 'Pod', metadata: { name: 'a' } })).toMatch(/^apiVersion: no matches/);
    expect(path({ ...deploy('w', 1), spec: { ...deploy('w', 1).spec, selector: { matchLabels: { app: 'x' } } } })).toMatch(/selector` does not match template/);
    expect(path({ ...svc('s'), spec: { ports: [{ port: 80, targetPort: 'http' }, { port: 81 }] } })).toBe('spec.ports[0].name: required when there are several ports');
    expect(path({ ...pod('a'), metadata: { name: 'a', labels: { n: 1 } } })).toBe('metadata.labels.n: must be a string, not number 1 (quote it)');
    expect(path({ ...cnp, spec: { ...cnp.spec, bogus: 1 } })).toMatch(/^spec\.bogus: /);
    const ep = { apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'ext' }, subsets: [{ addresses: [{ ip: '203.0.113.9' }], ports: [{ port: 8080 }] }] };
    expect(path(ep)).toBe('ok');
    expect(path({ ...ep, subsets: [{ addresses: [{ ip: '203.0.113.9', zone: 'a' }] }] })).toBe('subsets[0].addresses[0].zone: unknown field "zone"');
    expect(path({ ...ep, subsets: [{ addresses: [{ ip: 'nope' }] }] })).toBe('subsets[0].addresses[0].ip: Invalid value: "nope": must be a valid IPv4 address');
    const slice = { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'ext-1', labels: { 'kubernetes.io/service-name': 'ext' } }, addressType: 'IPv4', endpoints: [{ addresses: ['203.0.113.9'] }] };
    expect(path(slice)).toBe('ok');
    expect(path({ ...slice, metadata: { name: 'ext-1' } })).toBe('metadata.labels.kubernetes.io/service-name: required: the service these endpoints belong to');
    expect(path({ ...slice, addressType: 'IPv6' })).toMatch(/^addressType: /);
    expect(path(deploy('w', 2))).toBe('ok');
  });

  it('maps a Service manifest to the ServiceSpec', () => {
    const m = {
      apiVersion: 'v1', kind: 'Service', metadata: { name: 's', namespace: 'default' },
      spec: { type: 'NodePort', selector: { a: 'b' }, externalIPs: ['1.2.3.4'], sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } }, ports: [{ name: 'http', port: 80, targetPort: 'web', nodePort: 30080 }] },
    } as unknown as Manifest;
    expect(toServiceSpec(m)).toEqual({
      name: 's', namespace: 'default', type: 'NodePort', selector: { a: 'b' }, externalIPs: ['1.2.3.4'], sessionAffinity: 'ClientIP', sessionAffinityTimeoutSeconds: 60,
      ports: [{ name: 'http', port: 80, targetPort: 'web', protocol: 'TCP', nodePort: 30080 }],
    });
  });

  it('template hashes are stable whatever the key order', () => {
    expect(templateHash({ a: 1, b: { c: [1, 2] } })).toBe(templateHash({ b: { c: [1, 2] }, a: 1 }));
    expect(templateHash({ a: 1 })).toMatch(/^[bcdfghjklmnpqrstvwxz2456789]{9,10}$/);
  });
});

describe('CLI manifest helpers', () => {
  it('places an agent error on its document and line', () => {
    const set = parseManifests('apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: b\nspec:\n  containers:\n  - name: c\n    imag: x\n', 'f.yaml');
    expect(set.objects).toHaveLength(2);
    const e = new AgentError('Pod "b": spec.containers[0].imag: unknown field "imag"', 400);
    e.body = { error: e.message, document: 2, path: 'spec.containers[0].imag' };
    expect(locateError(e, set)).toBe('f.yaml: document 2, line 13: Pod "b": spec.containers[0].imag: unknown field "imag"');
  });

  it('jsonpath and tables', () => {
    expect(jsonPath('{.status.podIP}', { status: { podIP: '1.2.3.4' } })).toBe('1.2.3.4');
    const svcView = { kind: 'Service', namespace: 'default', name: 's', createdAt: '', manifest: { apiVersion: 'v1', kind: 'Service', metadata: { name: 's' }, spec: { ports: [{ port: 80 }] } }, status: { service: { clusterIP: '10.96.1.2' } } };
    expect(jsonPath('{.spec.clusterIP}', toObject(svcView as never))).toBe('10.96.1.2');
    expect(jsonPath('{.items[*].metadata.name}', { items: [{ metadata: { name: 'a' } }, { metadata: { name: 'b' } }] })).toBe('a b');
    const now = Date.parse('2024-01-01T00:01:00Z');
    const t = formatResourceTable('Deployment', [{ kind: 'Deployment', namespace: 'default', name: 'web', createdAt: '2024-01-01T00:00:00Z', manifest: {}, status: { replicas: 2, ready: 1, upToDate: 2, available: 1 } }], { now });
    expect(t).toBe('NAME   READY   UP-TO-DATE   AVAILABLE   AGE\nweb    1/2     2            1           60s\n');
  });
});

function memoryKv(): KVStore {
  return LocalKVStore.inMemory();
}
