// L2 announcements, per node: for each service a CiliumL2AnnouncementPolicy selects for this node,
// the node competes for the service's lease (a kvstore key created only if absent, under a kvstore
// lease of l2announcements-lease-duration); the holder answers ARP for the service's addresses on its
// matching interfaces. When the holder stops renewing, its key expires and a candidate takes over at once.
import type { Logger } from 'pino';
import type { KVLease, KVStore, KVWatch } from '../kvstore.ts';
import type { ResourceView } from '../types.ts';
import { RESOURCES_PREFIX } from '../resources/manager.ts';
import { announcementsFor, l2PolicyOf, leaseName, type AnnouncedService, type Announcement } from './policy.ts';
import type { L2Responder } from './proxy-arp.ts';
import { ReconcileLoop } from '../reconcile-loop.ts';

export const L2_LEASES_NAMESPACE = 'kube-system';
/** ciliary/leases/kube-system/cilium-l2announce-<ns>-<svc> → {holderIdentity, acquireTime}. */
export const L2_LEASES_PREFIX = `ciliary/leases/${L2_LEASES_NAMESPACE}/`;
const DEVICES_REFRESH_MS = 10_000;

export interface LeaseRecord {
  holderIdentity: string;
  acquireTime: string;
}

export interface L2AnnouncerDeps {
  kv: KVStore;
  node: string;
  nodeLabels: Record<string, string>;
  log: Logger;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  resources: { list(kind: string): ResourceView[]; onChange(listener: (e: { key: string }) => void): () => void };
  responder: L2Responder;
  devices(): Promise<string[]>;
}

const pairKey = (a: Announcement) => `${a.ip} ${a.dev}`;

function announcedServiceOf(v: ResourceView): AnnouncedService {
  const m = v.manifest as { metadata: { labels?: Record<string, string> }; spec?: { type?: string; externalIPs?: string[]; loadBalancerClass?: string }; status?: { loadBalancer?: { ingress?: Array<{ ip?: string }> } } };
  return {
    namespace: v.namespace ?? 'default', name: v.name, labels: m.metadata.labels ?? {},
    ...(m.spec?.loadBalancerClass ? { loadBalancerClass: m.spec.loadBalancerClass } : {}),
    loadBalancerIPs: m.spec?.type === 'LoadBalancer' ? (m.status?.loadBalancer?.ingress ?? []).flatMap((i) => (i.ip ? [i.ip] : [])) : [],
    externalIPs: m.spec?.externalIPs ?? [],
  };
}

export class L2Announcer {
  private lease?: KVLease;
  private watch?: KVWatch;
  private unsubscribe?: () => void;
  /** Lease name → its record in the store (any holder). */
  private readonly holders = new Map<string, LeaseRecord>();
  /** Lease name → what this node answers for it now. */
  private readonly announced = new Map<string, Announcement[]>();
  private desired = new Map<string, Announcement[]>();
  private devices: string[] = [];
  private devicesAt = 0;
  private timer?: NodeJS.Timeout;
  private readonly loop = new ReconcileLoop(() => this.runOnce(), (err) => this.d.log.warn({ err: err.message }, 'l2announce: reconcile failed'));
  private refreshDevices = false;
  private closed = false;
  /** When the store was last seen healthy: past the renew deadline this node stops answering. */
  private healthyAt = Date.now();
  /** The last reconcile found the store past the deadline (and answered nothing). */
  private silenced = false;

  constructor(private readonly d: L2AnnouncerDeps) {}

  async start(): Promise<void> {
    this.lease = await this.d.kv.grantLease(Math.max(1, Math.round(this.d.leaseDurationMs / 1000)));
    this.devices = await this.d.devices();
    this.devicesAt = Date.now();
    const leases = this.d.kv.watch(L2_LEASES_PREFIX, (e) => {
      const name = e.key.slice(L2_LEASES_PREFIX.length);
      if (e.type === 'delete') this.holders.delete(name);
      else this.holders.set(name, JSON.parse(e.value) as LeaseRecord);
      this.schedule();
    });
    this.unsubscribe = this.d.resources.onChange((e) => {
      if (e.key.startsWith(`${RESOURCES_PREFIX}Service/`) || e.key.startsWith(`${RESOURCES_PREFIX}CiliumL2AnnouncementPolicy/`)) this.schedule();
    });
    this.watch = leases;
    await leases.ready;
    // Entries a killed agent of this node left behind: the new holders answer now.
    await this.d.responder.cleanStale(() => false).catch((err: Error) => this.d.log.warn({ err: err.message }, 'l2announce: cleaning stale entries failed'));
    this.timer = setInterval(() => this.tick(), this.d.retryPeriodMs);
    this.timer.unref();
    this.schedule();
  }

  /** The leases as `get leases -n kube-system` lists them. */
  leaseViews(): ResourceView[] {
    return [...this.holders].map(([name, r]) => ({
      kind: 'Lease', namespace: L2_LEASES_NAMESPACE, name, createdAt: r.acquireTime,
      manifest: {
        apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace: L2_LEASES_NAMESPACE },
        spec: { holderIdentity: r.holderIdentity, leaseDurationSeconds: Math.round(this.d.leaseDurationMs / 1000), acquireTime: r.acquireTime },
      },
      status: { holder: r.holderIdentity },
    }));
  }

  /** Every retry period: the renew deadline, leases free for the taking, and (now and then) the node's interfaces. */
  private tick(): void {
    const expired = !this.storeOk();
    const free = [...this.desired.keys()].some((n) => !this.holders.has(n));
    const stale = Date.now() - this.devicesAt > DEVICES_REFRESH_MS;
    if (free || stale || expired !== this.silenced) this.schedule(stale);
  }

  /** Whether the store answered within the renew deadline. */
  private storeOk(): boolean {
    if (this.d.kv.health().ok) this.healthyAt = Date.now();
    return Date.now() - this.healthyAt <= this.d.renewDeadlineMs;
  }

  private schedule(refreshDevices = false): void {
    if (this.closed) return;
    this.refreshDevices ||= refreshDevices;
    this.loop.request();
  }

  private async runOnce(): Promise<void> {
    if (this.closed) return;
    if (this.refreshDevices) {
      this.refreshDevices = false;
      this.devices = await this.d.devices();
      this.devicesAt = Date.now();
    }
    await this.reconcile();
  }

  private async reconcile(): Promise<void> {
    const policies = this.d.resources.list('CiliumL2AnnouncementPolicy').map(l2PolicyOf);
    const desired = new Map<string, Announcement[]>();
    for (const v of this.d.resources.list('Service')) {
      const s = announcedServiceOf(v);
      const pairs = announcementsFor(s, policies, this.d.nodeLabels, this.devices);
      if (pairs.length) desired.set(leaseName(s), pairs);
    }
    this.desired = desired;
    const storeOk = this.storeOk();
    this.silenced = !storeOk;
    for (const [name, pairs] of desired) {
      if (!this.holders.has(name) && storeOk) await this.tryAcquire(name);
      const mine = this.holders.get(name)?.holderIdentity === this.d.node && storeOk;
      await this.setAnnounced(name, mine ? pairs : []);
    }
    for (const name of [...this.announced.keys()]) {
      if (desired.has(name)) continue;
      await this.setAnnounced(name, []);
      if (this.holders.get(name)?.holderIdentity === this.d.node) await this.d.kv.delete(L2_LEASES_PREFIX + name);
    }
  }

  private async tryAcquire(name: string): Promise<void> {
    const record: LeaseRecord = { holderIdentity: this.d.node, acquireTime: new Date().toISOString() };
    if (await this.d.kv.createOnly(L2_LEASES_PREFIX + name, JSON.stringify(record), { lease: this.lease })) {
      this.holders.set(name, record);
      this.d.log.info({ lease: name }, 'l2announce: holding the lease, answering ARP');
    }
  }

  /** Answers for exactly `pairs` of this lease: new ones announced (with a gratuitous ARP), old ones withdrawn. */
  private async setAnnounced(name: string, pairs: Announcement[]): Promise<void> {
    const have = this.announced.get(name) ?? [];
    const want = new Set(pairs.map(pairKey));
    for (const a of have) if (!want.has(pairKey(a))) await this.d.responder.withdraw(a);
    const had = new Set(have.map(pairKey));
    for (const a of pairs) if (!had.has(pairKey(a))) await this.d.responder.announce(a);
    if (pairs.length) this.announced.set(name, pairs);
    else this.announced.delete(name);
  }

  /** Stops answering and hands the leases over at once (the others see the keys go). */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    this.watch?.close();
    this.unsubscribe?.();
    await this.loop.idle();
    for (const pairs of this.announced.values()) for (const a of pairs) await this.d.responder.withdraw(a).catch(() => undefined);
    this.announced.clear();
    await this.lease?.revoke().catch(() => undefined);
  }
}
