// Two agents' cluster membership over one shared store (what etcd is in the lab): each sees the
// other's node and pods in its own ipcache and tunnel map, and forgets them when the node goes;
// `node list` and `get nodes` text.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { native } from '../../src/native/index.ts';
import { MapRegistry, type HashMap, type LpmTrieMap } from '../../src/maps/index.ts';
import { dumpEntries } from '../../src/maps/cilium/index.ts';
import { ipcacheSpec } from '../../src/maps/cilium/ipcache.ts';
import { tunnelSpec } from '../../src/maps/cilium/tunnel.ts';
import { LocalKVStore } from '../../src/control/kvstore.ts';
import { MultiNode } from '../../src/control/multinode.ts';
import { NODES_PREFIX, nodeLabels, registerNode, type NodeView } from '../../src/control/nodes.ts';
import type { Endpoint, Pod } from '../../src/control/types.ts';
import { formatGetNodes, formatNodeList } from '../../src/cli/nodes.ts';

const log = pino({ level: 'silent' });

interface Member { mn: MultiNode; ipcache: LpmTrieMap; tunnel: HashMap; remoteChanges: number }

async function until(what: string, ok: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const entries = (m: { dump(): never } | LpmTrieMap | HashMap) => dumpEntries(m as LpmTrieMap).map((e) => `${e.key} ${e.value}`).sort();

const pod = (name: string, ip: string, id: number): Pod => ({
  name, namespace: 'default', labels: { app: name }, node: '', podIP: ip, endpointID: id, state: 'ready', netns: '', ifindex: 0, createdAt: '',
  ports: [{ name: 'http', containerPort: 80, protocol: 'TCP' }],
});
const endpoint = (id: number, identity: number, ip: string): Endpoint => ({
  id, podName: '', identity, labels: [], ipv4: ip, ifindex: 0, ifname: '', state: 'ready', policyIngress: 'Disabled', policyEgress: 'Disabled', isHost: false,
});

describe('cluster membership over a shared kvstore', () => {
  let dir: string;
  let kv: LocalKVStore;
  const members: Member[] = [];

  async function join2(node: string, idx: number, mode: 'native' | 'tunnel'): Promise<Member> {
    const reg = new MapRegistry(join(dir, node), native.mapFile);
    const ipcache = reg.open(ipcacheSpec() as never) as LpmTrieMap;
    const tunnel = reg.open(tunnelSpec() as never) as HashMap;
    const m: Member = { mn: undefined as never, ipcache, tunnel, remoteChanges: 0 };
    const lease = await kv.grantLease(5);
    await registerNode(kv, lease, {
      name: node, nodeIP: `192.168.10.${100 + idx}`, podCIDR: `172.20.${idx}.0/24`, routerIP: `172.20.${idx}.1`, version: '0.1.0',
      labels: nodeLabels(node, idx === 0 ? 'node-role.kubernetes.io/control-plane=' : ''),
    });
    m.mn = await MultiNode.start(kv, {
      node, clusterId: 0, nodeIP: `192.168.10.${100 + idx}`, podCidr: `172.20.${idx}.0/24`, routingMode: mode,
      autoDirectNodeRoutes: false, ipcache, tunnel, lease, onRemotePods: () => m.remoteChanges++,
    }, log);
    members.push(m);
    return m;
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ciliary-multinode-'));
    kv = LocalKVStore.inMemory();
  });
  afterEach(async () => {
    for (const m of members.splice(0)) m.mn.close();
    await kv.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes the other node\'s pods behind its node IP and its addresses as remote-node; forgets them when it goes', async () => {
    const ctr = await join2('k8s-ctr', 0, 'tunnel');
    const w1 = await join2('k8s-w1', 1, 'tunnel');
    await w1.mn.publish([pod('web', '172.20.1.7', 12)], [endpoint(12, 4242, '172.20.1.7')]);
    await until('web in the ctr ipcache', () => entries(ctr.ipcache).length === 3);
    expect(entries(ctr.ipcache)).toEqual([
      '172.20.1.1/32 identity=6 encryptkey=0 tunnelendpoint=192.168.10.101',
      '172.20.1.7/32 identity=4242 encryptkey=0 tunnelendpoint=192.168.10.101',
      '192.168.10.101/32 identity=6 encryptkey=0 tunnelendpoint=0.0.0.0',
    ]);
    expect(entries(ctr.tunnel)).toEqual(['172.20.1.0:0 192.168.10.101:0']);
    expect(entries(w1.tunnel)).toEqual(['172.20.0.0:0 192.168.10.100:0']);
    // Its own pods never come back into its ipcache from the store.
    expect(entries(w1.ipcache).some((e) => e.startsWith('172.20.1.7/32'))).toBe(false);
    // As a service backend on the other node: labels and named ports travel with the address.
    await until('a remote-pods callback', () => ctr.remoteChanges > 0);
    expect(ctr.mn.remoteBackendPods()).toMatchObject([{ name: 'web', namespace: 'default', labels: { app: 'web' }, node: 'k8s-w1', podIP: '172.20.1.7', state: 'ready', ports: [{ name: 'http', containerPort: 80 }] }]);

    // The pod goes: withdrawn from the store and from the other ipcache.
    await w1.mn.publish([], []);
    await until('web gone from the ctr ipcache', () => entries(ctr.ipcache).length === 2);

    // The node goes (its registration deleted, as when its lease expires): everything of it goes.
    await w1.mn.publish([pod('web', '172.20.1.7', 12)], [endpoint(12, 4242, '172.20.1.7')]);
    await until('web back', () => entries(ctr.ipcache).length === 3);
    await kv.delete(`${NODES_PREFIX}k8s-w1`);
    await until('w1 gone from ctr', () => entries(ctr.ipcache).length === 0 && entries(ctr.tunnel).length === 0);
    // Still listed, NotReady: its agent stopped renewing the lease (kubectl's view of a silent kubelet).
    expect(ctr.mn.nodes().map((n) => [n.name, n.ready])).toEqual([['k8s-ctr', true], ['k8s-w1', false]]);
  });

  it('routing: native (the stack carries it), noted when other nodes\' pod CIDRs are not routed', async () => {
    const ctr = await join2('k8s-ctr', 0, 'native');
    expect(ctr.mn.routing()).toEqual({ routing: 'native' });
    await join2('k8s-w1', 1, 'tunnel');
    await until('w1 seen by ctr', () => ctr.mn.nodes().length === 2);
    expect(ctr.mn.routing()).toEqual({ routing: 'native', routingNote: 'no routes to other nodes: auto-direct-node-routes is off' });
  });

  it('node list and get nodes', async () => {
    await join2('k8s-ctr', 0, 'native');
    const w1 = await join2('k8s-w1', 1, 'native');
    await until('both nodes', () => w1.mn.nodes().length === 2);
    const nodes: NodeView[] = w1.mn.nodes();
    expect(formatNodeList(nodes)).toBe([
      'Name      IPv4 Address     Endpoint CIDR   IPv6 Address   Endpoint CIDR   Source',
      'k8s-ctr   192.168.10.100   172.20.0.0/24                                  kvstore',
      'k8s-w1    192.168.10.101   172.20.1.0/24                                  local',
      '',
    ].join('\n'));
    const created = nodes.map((n, i) => ({ ...n, createdAt: new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString() }));
    const now = Date.UTC(2026, 0, 1, 0, 5);
    expect(formatGetNodes(created, false, now)).toBe([
      'NAME      STATUS   ROLES           AGE   VERSION',
      'k8s-ctr   Ready    control-plane   5m    v0.1.0',
      'k8s-w1    Ready    <none>          4m    v0.1.0',
      '',
    ].join('\n'));
    const wide = formatGetNodes(created, true, now).trimEnd().split('\n').map((l) => l.split(/ {3,}/));
    expect(wide[0]).toEqual(['NAME', 'STATUS', 'ROLES', 'AGE', 'VERSION', 'INTERNAL-IP', 'EXTERNAL-IP', 'OS-IMAGE', 'KERNEL-VERSION', 'CONTAINER-RUNTIME']);
    expect(wide[1].slice(5)).toEqual(['192.168.10.100', '<none>', nodes[0].osImage, nodes[0].kernelVersion, 'ciliary://0.1.0']);
    // A node whose lease ran out: NotReady in get nodes, out of Cilium's node list (it left the kvstore).
    const lost = created.map((n) => (n.name === 'k8s-ctr' ? { ...n, ready: false } : n));
    expect(formatGetNodes(lost, false, now).split('\n')[1]).toBe('k8s-ctr   NotReady   control-plane   5m    v0.1.0');
    expect(formatNodeList(lost)).not.toContain('k8s-ctr');
  });
});
