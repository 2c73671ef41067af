// The L2 announcer of two nodes over one store, with a recording responder: one holder per service
// lease, takeover when the holder goes, release when the service goes, silence past the renew deadline.
import { describe, expect, it, vi } from 'vitest';
import pino from 'pino';
import { LocalKVStore, type KVStore } from '../../src/control/kvstore.ts';
import { L2Announcer, L2_LEASES_PREFIX } from '../../src/control/l2announce/announcer.ts';
import type { Announcement } from '../../src/control/l2announce/policy.ts';
import type { L2Responder } from '../../src/control/l2announce/proxy-arp.ts';
import type { ResourceView } from '../../src/control/types.ts';

class Records {
  views = new Map<string, ResourceView[]>([['Service', []], ['CiliumL2AnnouncementPolicy', []]]);
  private readonly listeners = new Set<(e: { key: string }) => void>();
  list = (kind: string) => this.views.get(kind) ?? [];
  onChange = (l: (e: { key: string }) => void) => {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  };
  set(kind: string, views: ResourceView[]): void {
    this.views.set(kind, views);
    for (const l of this.listeners) l({ key: `ciliary/resources/${kind}/x` });
  }
}

class Recorder implements L2Responder {
  answering = new Set<string>();
  garps = 0;
  async announce(a: Announcement) {
    this.answering.add(`${a.ip} ${a.dev}`);
    this.garps++;
  }
  async withdraw(a: Announcement) {
    this.answering.delete(`${a.ip} ${a.dev}`);
  }
  async cleanStale() {}
}

const policy = { kind: 'CiliumL2AnnouncementPolicy', name: 'policy1', createdAt: '', status: {}, manifest: { metadata: { name: 'policy1' }, spec: { interfaces: ['^eth[0-9]+'], loadBalancerIPs: true } } } as ResourceView;
const service = (name: string, ip: string) => ({
  kind: 'Service', namespace: 'default', name, createdAt: '', status: {},
  manifest: { metadata: { name, namespace: 'default' }, spec: { type: 'LoadBalancer', ports: [{ port: 80 }] }, status: { loadBalancer: { ingress: [{ ip }] } } },
}) as ResourceView;

function node(name: string, kv: KVStore, records: Records) {
  const responder = new Recorder();
  const announcer = new L2Announcer({
    kv, node: name, nodeLabels: { 'kubernetes.io/hostname': name }, log: pino({ level: 'silent' }),
    leaseDurationMs: 3000, renewDeadlineMs: 1000, retryPeriodMs: 50, resources: records, responder, devices: async () => ['eth1', 'lo'],
  });
  return { responder, announcer };
}

describe('L2 announcer', () => {
  it('one node answers per service; the other takes over when it goes; a deleted service is released', async () => {
    const kv = LocalKVStore.inMemory();
    const records = new Records();
    records.set('CiliumL2AnnouncementPolicy', [policy]);
    records.set('Service', [service('svc1', '10.10.200.1')]);
    const a = node('k8s-w1', kv, records);
    const b = node('k8s-w2', kv, records);
    await a.announcer.start();
    await b.announcer.start();
    await vi.waitFor(() => expect([...a.responder.answering, ...b.responder.answering]).toEqual(['10.10.200.1 eth1']));
    const [holder, other] = a.responder.answering.size ? [a, b] : [b, a];
    const lease = JSON.parse((await kv.get(`${L2_LEASES_PREFIX}cilium-l2announce-default-svc1`))!) as { holderIdentity: string };
    expect(lease.holderIdentity).toBe(holder === a ? 'k8s-w1' : 'k8s-w2');
    expect(other.announcer.leaseViews().map((v) => [v.namespace, v.name, v.status.holder])).toEqual([['kube-system', 'cilium-l2announce-default-svc1', lease.holderIdentity]]);

    await holder.announcer.close();
    expect(holder.responder.answering.size).toBe(0);
    await vi.waitFor(() => expect([...other.responder.answering]).toEqual(['10.10.200.1 eth1']));
    expect(other.responder.garps).toBe(1);

    records.set('Service', []);
    await vi.waitFor(() => expect(other.responder.answering.size).toBe(0));
    await vi.waitFor(async () => expect(await kv.list(L2_LEASES_PREFIX)).toEqual([]));
    await other.announcer.close();
  });

  it('a holder that cannot reach the store past the renew deadline stops answering, and answers again after', async () => {
    const store = LocalKVStore.inMemory();
    let healthy = true;
    const kv: KVStore = {
      get: (k) => store.get(k), put: (k, v, o) => store.put(k, v, o), delete: (k) => store.delete(k), list: (p) => store.list(p),
      createOnly: (k, v, o) => store.createOnly(k, v, o), watch: (p, f) => store.watch(p, f), grantLease: (t) => store.grantLease(t),
      health: () => (healthy ? store.health() : { ok: false, message: 'kvstore etcd unreachable' }), close: () => store.close(),
    };
    const records = new Records();
    records.set('CiliumL2AnnouncementPolicy', [policy]);
    records.set('Service', [service('svc1', '10.10.200.1')]);
    const a = node('k8s-w1', kv, records);
    await a.announcer.start();
    await vi.waitFor(() => expect(a.responder.answering.size).toBe(1));
    healthy = false;
    await vi.waitFor(() => expect(a.responder.answering.size).toBe(0), { timeout: 5000 });
    healthy = true;
    await vi.waitFor(() => expect(a.responder.answering.size).toBe(1));
    await a.announcer.close();
  });
});
