// LB-IPAM's allocation (order, first/last addresses, requests, sharing keys, conflicts, pending,
// release) and the L2 announcement policy match, as pure functions; then through the resource manager.
import { describe, expect, it } from 'vitest';
import { allocate, type LBService } from '../../src/control/lbipam/allocator.ts';
import { conflicts, poolOf } from '../../src/control/lbipam/pools.ts';
import { statusUpdates } from '../../src/control/lbipam/status.ts';
import { announcementsFor, l2PolicyOf, leaseName } from '../../src/control/l2announce/policy.ts';
import type { ResourceView } from '../../src/control/types.ts';

const seedPool = poolOf('cilium-pool', '2026-01-01T00:00:00Z', { allowFirstLastIPs: 'No', blocks: [{ cidr: '10.10.200.0/29' }] });

let seq = 0;
function lb(name: string, o: Partial<LBService> = {}): LBService {
  seq++;
  return {
    namespace: 'default', name, createdAt: `2026-01-01T00:00:${String(seq).padStart(2, '0')}Z`, type: 'LoadBalancer',
    labels: {}, annotations: {}, ports: [{ port: 80, protocol: 'TCP' }], ingress: [], ...o,
  };
}
const ips = (r: ReturnType<typeof allocate>, name: string, ns = 'default') => r.services.get(`${ns}/${name}`)?.ips;

describe('LB-IPAM allocation', () => {
  it('gives the seed\'s three services .1 .2 .3 in creation order (allowFirstLastIPs No keeps .0 and .7)', () => {
    const r = allocate([seedPool], [lb('svc1'), lb('svc2'), lb('svc3')]);
    expect([ips(r, 'svc1'), ips(r, 'svc2'), ips(r, 'svc3')]).toEqual([['10.10.200.1'], ['10.10.200.2'], ['10.10.200.3']]);
    expect(r.pools.get('cilium-pool')).toMatchObject({ conflicting: false, disabled: false, ipsTotal: 6, ipsUsed: 3, ipsAvailable: 3 });
  });

  it('uses the first and last address by default, and always for /31 and /32', () => {
    const all = poolOf('p', '', { blocks: [{ cidr: '10.0.0.0/30' }, { start: '10.0.1.5', stop: '10.0.1.6' }] });
    expect(allocate([all], []).pools.get('p')?.ipsAvailable).toBe(6);
    const r = allocate([all], [lb('a')]);
    expect(ips(r, 'a')).toEqual(['10.0.0.0']);
    const tiny = poolOf('t', '', { allowFirstLastIPs: 'No', blocks: [{ cidr: '10.0.2.0/31' }, { cidr: '10.0.3.1/32' }] });
    expect(allocate([tiny], []).pools.get('t')?.ipsTotal).toBe(3);
  });

  it('keeps addresses a service holds, and fills the gap a deleted one left', () => {
    const r = allocate([seedPool], [lb('svc2', { ingress: ['10.10.200.2'] }), lb('svc3', { ingress: ['10.10.200.3'] }), lb('svc4')]);
    expect([ips(r, 'svc2'), ips(r, 'svc3'), ips(r, 'svc4')]).toEqual([['10.10.200.2'], ['10.10.200.3'], ['10.10.200.1']]);
  });

  it('honours lbipam.cilium.io/ips and spec.loadBalancerIP, and leaves a taken or foreign request pending', () => {
    const r = allocate([seedPool], [
      lb('first'),
      lb('annotated', { annotations: { 'lbipam.cilium.io/ips': '10.10.200.5' } }),
      lb('legacy', { loadBalancerIP: '10.10.200.6' }),
      lb('taken', { annotations: { 'lbipam.cilium.io/ips': '10.10.200.1' } }),
      lb('outside', { loadBalancerIP: '192.0.2.1' }),
    ]);
    expect([ips(r, 'first'), ips(r, 'annotated'), ips(r, 'legacy')]).toEqual([['10.10.200.1'], ['10.10.200.5'], ['10.10.200.6']]);
    expect(r.services.get('default/taken')).toMatchObject({ ips: [], reason: 'already_allocated' });
    expect(r.services.get('default/outside')).toMatchObject({ ips: [], reason: 'no_pool' });
  });

  it('shares one address between services of one sharing key with different ports; the same port waits', () => {
    const key = { 'lbipam.cilium.io/sharing-key': 'shared-web' };
    const r = allocate([seedPool], [
      lb('http', { annotations: key }),
      lb('https', { annotations: key, ports: [{ port: 443, protocol: 'TCP' }] }),
      lb('http-again', { annotations: { ...key, 'lbipam.cilium.io/ips': '10.10.200.1' } }),
      lb('other-ns', { namespace: 'team', annotations: key, ports: [{ port: 8080, protocol: 'TCP' }] }),
    ]);
    expect(ips(r, 'http')).toEqual(['10.10.200.1']);
    expect(ips(r, 'https')).toEqual(['10.10.200.1']);
    expect(r.services.get('default/http-again')).toMatchObject({ ips: [], reason: 'already_allocated' });
    // Not across namespaces by default.
    expect(ips(r, 'other-ns', 'team')).toEqual(['10.10.200.2']);
    expect(r.pools.get('cilium-pool')?.ipsUsed).toBe(2);
  });

  it('marks the newer of two overlapping pools conflicting and allocates nothing from it', () => {
    const newer = poolOf('newer', '2026-02-01T00:00:00Z', { blocks: [{ start: '10.10.200.4', stop: '10.10.200.20' }] });
    expect(conflicts([newer, seedPool])).toEqual(new Map([['newer', 'Pool overlaps with CIDR of pool "cilium-pool"']]));
    const only = poolOf('only', '', { serviceSelector: { matchLabels: { color: 'blue' } }, blocks: [{ cidr: '10.20.0.0/30' }] });
    const conflicting = poolOf('conflicting', '2026-03-01T00:00:00Z', { serviceSelector: { matchLabels: { color: 'blue' } }, blocks: [{ cidr: '10.20.0.0/29' }] });
    const r = allocate([only, conflicting], Array.from({ length: 5 }, (_, i) => lb(`s${i}`, { labels: { color: 'blue' } })));
    expect(r.pools.get('conflicting')).toMatchObject({ conflicting: true, ipsAvailable: 0 });
    expect([...r.services.values()].map((a) => a.ips[0] ?? a.reason)).toEqual(['10.20.0.0', '10.20.0.1', '10.20.0.2', '10.20.0.3', 'pool_exhausted']);
    const self = poolOf('self', '', { blocks: [{ cidr: '10.30.0.0/24' }, { cidr: '10.30.0.128/25' }] });
    expect(conflicts([self]).get('self')).toMatch(/overlapping blocks/);
  });

  it('leaves a service pending without a matching pool; a selector, a disabled pool and a foreign class say no', () => {
    const blue = poolOf('blue', '', { serviceSelector: { matchLabels: { color: 'blue' } }, blocks: [{ cidr: '10.40.0.0/30' }] });
    const byName = poolOf('by-name', '', { serviceSelector: { matchLabels: { 'io.kubernetes.service.name': 'named' } }, blocks: [{ cidr: '10.41.0.0/30' }] });
    const off = poolOf('off', '', { disabled: true, blocks: [{ cidr: '10.42.0.0/30' }] });
    const r = allocate([blue, byName, off], [
      lb('plain'), lb('sky', { labels: { color: 'blue' } }), lb('named'), lb('kept', { ingress: ['10.42.0.1'] }),
      lb('metallb', { labels: { color: 'blue' }, loadBalancerClass: 'metallb' }), lb('cluster', { type: 'ClusterIP' }),
    ]);
    expect(r.services.get('default/plain')).toMatchObject({ ips: [], reason: 'no_pool' });
    expect(ips(r, 'sky')).toEqual(['10.40.0.0']);
    expect(ips(r, 'named')).toEqual(['10.41.0.0']);
    // A disabled pool hands out nothing new but keeps what it gave.
    expect(ips(r, 'kept')).toEqual(['10.42.0.1']);
    expect(r.services.has('default/metallb')).toBe(false);
    expect(r.services.has('default/cluster')).toBe(false);
  });
});

const view = (kind: string, name: string, manifest: Record<string, unknown>, createdAt: string, namespace?: string): ResourceView =>
  ({ kind, name, createdAt, manifest: { metadata: { name, ...(namespace ? { namespace } : {}) }, ...manifest }, status: {}, ...(namespace ? { namespace } : {}) }) as ResourceView;

describe('LB-IPAM status writes', () => {
  const pool = view('CiliumLoadBalancerIPPool', 'cilium-pool', { spec: { allowFirstLastIPs: 'No', blocks: [{ cidr: '10.10.200.0/29' }] } }, '2026-01-01T00:00:00Z');
  const svc = (name: string, spec: Record<string, unknown>, status?: Record<string, unknown>, at = '2026-01-01T00:00:01Z') =>
    view('Service', name, { spec: { ports: [{ port: 80 }], ...spec }, ...(status ? { status } : {}) }, at, 'default');

  it('writes status.loadBalancer.ingress and the IPRequestSatisfied condition, then nothing more', () => {
    const [u] = statusUpdates([svc('svc1', { type: 'LoadBalancer' })], [pool]);
    expect(u).toEqual({
      kind: 'Service', namespace: 'default', name: 'svc1',
      status: { loadBalancer: { ingress: [{ ip: '10.10.200.1' }] }, conditions: [{ type: 'cilium.io/IPRequestSatisfied', status: 'True', reason: 'satisfied', message: '' }] },
    });
    expect(statusUpdates([svc('svc1', { type: 'LoadBalancer' }, u.status)], [pool])).toEqual([]);
  });

  it('releases the address of a service that is no longer a LoadBalancer, and of a pool that went away', () => {
    const held = { loadBalancer: { ingress: [{ ip: '10.10.200.1' }] }, conditions: [{ type: 'cilium.io/IPRequestSatisfied', status: 'True' }] };
    expect(statusUpdates([svc('svc1', { type: 'ClusterIP' }, held)], [pool])).toEqual([{ kind: 'Service', namespace: 'default', name: 'svc1', status: undefined }]);
    const [u] = statusUpdates([svc('svc1', { type: 'LoadBalancer' }, held)], []);
    expect(u.status).toMatchObject({ loadBalancer: {}, conditions: [{ status: 'False', reason: 'no_pool' }] });
  });
});

describe('L2 announcement policy', () => {
  const policy = l2PolicyOf(view('CiliumL2AnnouncementPolicy', 'policy1', {
    spec: {
      serviceSelector: { matchLabels: { color: 'blue' } },
      nodeSelector: { matchExpressions: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'DoesNotExist' }] },
      interfaces: ['^eth[0-9]+'], externalIPs: true, loadBalancerIPs: true,
    },
  }, ''));
  const worker = { 'kubernetes.io/hostname': 'k8s-w1' };
  const blue = { namespace: 'default', name: 'svc1', labels: { color: 'blue' }, loadBalancerIPs: ['10.10.200.1'], externalIPs: ['192.0.2.9'] };

  it('announces the selected service\'s addresses on matching interfaces of selected nodes only', () => {
    expect(announcementsFor(blue, [policy], worker, ['eth1', 'lo0', 'veth9'])).toEqual([{ ip: '10.10.200.1', dev: 'eth1' }, { ip: '192.0.2.9', dev: 'eth1' }]);
    expect(announcementsFor(blue, [policy], { ...worker, 'node-role.kubernetes.io/control-plane': '' }, ['eth1'])).toEqual([]);
    // The seed's services carry no labels: the policy does not announce them.
    expect(announcementsFor({ ...blue, labels: {} }, [policy], worker, ['eth1'])).toEqual([]);
    expect(announcementsFor({ ...blue, loadBalancerClass: 'other' }, [policy], worker, ['eth1'])).toEqual([]);
    expect(leaseName(blue)).toBe('cilium-l2announce-default-svc1');
  });
});
