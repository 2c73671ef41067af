// Service map writes in order: a resync for a pod that just became ready, run while a service
// apply still waits on the store, is not overwritten by the apply's frontends computed from the
// older pod list (the seed-003 NodePort patch whose backend runs on another node lost its backend).
import { describe, it, expect, afterEach } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { native } from '../../src/native/index.ts';
import { MapRegistry } from '../../src/maps/index.ts';
import { Datapath } from '../../src/dataplane/datapath.ts';
import { LocalKVStore, type KVStore } from '../../src/control/kvstore.ts';
import { ServiceManager } from '../../src/nat/services.ts';
import type { Pod } from '../../src/control/types.ts';

const pod: Pod = { name: 'prometheus', namespace: 'mon', labels: { app: 'prometheus' }, node: 'k8s-w2', podIP: '172.20.2.2', endpointID: 0, state: 'ready', netns: '', ifindex: 0, createdAt: '' };

describe('service map writes', () => {
  let dir = '';
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('a remote pod resync during a service apply leaves the pod as the backend', async () => {
    dir = mkdtempSync(join(tmpdir(), 'ciliary-svc-'));
    const dp = new Datapath(new MapRegistry(dir, native.mapFile));
    const store = LocalKVStore.inMemory();
    let release: () => void = () => undefined;
    let held: Promise<void> | undefined;
    let reached: () => void = () => undefined;
    const waiting = new Promise<void>((r) => (reached = r));
    // The first id written for the service (its ClusterIP frontend) waits until released.
    const kv: KVStore = Object.assign(Object.create(store) as KVStore, {
      put: async (key: string, value: string) => {
        if (key.includes('frontend') && !held) {
          held = new Promise<void>((r) => (release = r));
          reached();
          await held;
        }
        return store.put(key, value);
      },
    });
    const pods: Pod[] = [];
    let reads = 0;
    const services = new ServiceManager(kv, dp.lb, () => (reads++, pods), { serviceCidr: '10.96.0.0/16', maglev: false, reservedIPs: [], node: 'k8s-ctr', nodeIPs: ['192.168.10.100'] }, pino({ level: 'silent' }));
    await services.restore();
    const applied = services.apply({ name: 'prometheus', namespace: 'mon', selector: { app: 'prometheus' }, type: 'NodePort', ports: [{ port: 9090, targetPort: 9090, nodePort: 30001 }] });
    await waiting;
    pods.push(pod);
    const before = reads;
    const resynced = services.syncAll();
    // A resync not queued behind the apply reads the pods at once and ends first; a queued one waits.
    if (reads > before) await resynced;
    release();
    await Promise.all([applied, resynced]);
    const fes = services.get('mon', 'prometheus')!.frontends.map((f) => `${f.address}:${f.port} ${f.backends.map((b) => `${b.ip}:${b.port}`).join(',')}`);
    expect(fes).toEqual(['10.96.0.1:9090 172.20.2.2:9090', '0.0.0.0:30001 172.20.2.2:9090', '192.168.10.100:30001 172.20.2.2:9090']);
    services.close();
  });
});
