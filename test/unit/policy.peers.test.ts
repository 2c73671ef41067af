// More policy peers in the agent core: toServices selects a service's backends (and follows them),
// fromNodes selects nodes by their labels, a host policy (CCNP nodeSelector) fills the host endpoint's map.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Agent } from '../../src/agent/agent.ts';
import type { AgentConfig } from '../../src/control/config.ts';
import { LocalKVStore } from '../../src/control/kvstore.ts';
import { NODES_PREFIX } from '../../src/control/nodes.ts';
import { startAgentCore } from './agent-core.ts';

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const pod = (name: string, labels: Record<string, string>) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, labels }, spec: { containers: [{ name: 'c', image: 'ciliary/run' }] } });
const cnp = (name: string, spec: unknown) => ({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name, namespace: 'default' }, spec });
const service = (selector: Record<string, string>) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { selector, ports: [{ port: 80, targetPort: 8080 }] } });
/** Egress rows of a `bpf policy get` table: "<labels> <port/proto>". */
const egressRows = (table: string) => table.split('\n').filter((l) => / Egress /.test(l)).map((l) => l.split(/ {2,}/).slice(2, 4).join(' '));

describe('more policy peers', () => {
  let agent: Agent | undefined;
  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
  });
  const start = async (cfg: Partial<AgentConfig> = {}, kv = LocalKVStore.inMemory()) => (agent = await startAgentCore('n1', cfg, kv));

  it("toServices allows egress to the service's backends and follows its selector", async () => {
    const a = await start();
    await a.resources.apply([pod('client', { app: 'client' }), pod('web-1', { app: 'web' }), pod('api-1', { app: 'api' }), service({ app: 'web' })]);
    await a.resources.apply([cnp('to-web', { endpointSelector: { matchLabels: { app: 'client' } }, egress: [{ toServices: [{ k8sService: { serviceName: 'web', namespace: 'default' } }], toPorts: [{ ports: [{ port: '8080', protocol: 'TCP' }] }] }] })]);
    const ep = (name: string) => a.listEndpoints().find((e) => e.podName === `default/${name}`)!;
    const labelsOf = (name: string) => a.listIdentities().find((i) => i.id === ep(name).identity)!.labels;
    expect(egressRows(a.bpfPolicy(ep('client').id)!)).toEqual([`${[...labelsOf('web-1')].sort()[0]} 8080/TCP`]);
    // The service now selects the api pods: the allow moves with its backends.
    await a.resources.apply([service({ app: 'api' })]);
    await until(() => egressRows(a.bpfPolicy(ep('client').id)!)[0] === `${[...labelsOf('api-1')].sort()[0]} 8080/TCP`, 'the allow to follow the backends');
    expect(a.bpfPolicy(ep('client').id)).not.toContain('k8s:app=web');
  });

  it('toServices of a selector-less service allows its Endpoints addresses as /32 CIDRs and follows them', async () => {
    const a = await start();
    const outside = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'outside', namespace: 'default' }, spec: { ports: [{ port: 80, targetPort: 8080 }] } };
    const endpoints = (ip: string) => ({ apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'outside', namespace: 'default' }, subsets: [{ addresses: [{ ip }], ports: [{ port: 8080 }] }] });
    await a.resources.apply([pod('client', { app: 'client' }), outside, cnp('to-outside', { endpointSelector: { matchLabels: { app: 'client' } }, egress: [{ toServices: [{ k8sService: { serviceName: 'outside', namespace: 'default' } }] }] })]);
    const client = () => a.listEndpoints().find((e) => e.podName === 'default/client')!;
    expect(egressRows(a.bpfPolicy(client().id)!)).toEqual([]);
    await a.resources.apply([endpoints('203.0.113.9')]);
    await until(() => egressRows(a.bpfPolicy(client().id)!).some((r) => r.includes('cidr:203.0.113.9/32')), 'the allow of the Endpoints address');
    expect(a.listServices().find((s) => s.name === 'outside')!.frontends[0].backends.map((b) => `${b.ip}:${b.port}`)).toEqual(['203.0.113.9:8080']);
    await a.resources.apply([endpoints('203.0.113.10')]);
    await until(() => egressRows(a.bpfPolicy(client().id)!).some((r) => r.includes('cidr:203.0.113.10/32')), 'the allow to follow the Endpoints');
    expect(a.bpfPolicy(client().id)).not.toContain('cidr:203.0.113.9/32');
  });

  // Listing every service per service change made creating n services O(n²) (10,000 took minutes).
  it('with no toServices rule a service change reads no other service; a toServices rule added later sees them all', async () => {
    const a = await start();
    await a.resources.apply([pod('client', { app: 'client' }), pod('web-1', { app: 'web' })]);
    // The policy manager's view of the services (what toServices reads), as the agent wired it.
    const deps = (a as unknown as { policy: { d: { services: () => unknown[] } } }).policy.d;
    const reads = vi.spyOn(deps, 'services');
    for (let i = 0; i < 20; i++) await a.resources.apply([{ ...service({ app: 'web' }), metadata: { name: `s-${i}`, namespace: 'default' } }]);
    expect(reads).not.toHaveBeenCalled();
    await a.resources.apply([cnp('to-s7', { endpointSelector: { matchLabels: { app: 'client' } }, egress: [{ toServices: [{ k8sService: { serviceName: 's-7', namespace: 'default' } }], toPorts: [{ ports: [{ port: '8080', protocol: 'TCP' }] }] }] })]);
    const ep = (name: string) => a.listEndpoints().find((e) => e.podName === `default/${name}`)!;
    const web = [...a.listIdentities().find((i) => i.id === ep('web-1').identity)!.labels].sort()[0];
    expect(egressRows(a.bpfPolicy(ep('client').id)!)).toEqual([`${web} 8080/TCP`]);
  });

  it('k8sServiceSelector selects services by their labels, in the namespace given', async () => {
    const a = await start();
    const labelled = { ...service({ app: 'web' }), metadata: { name: 'web', namespace: 'default', labels: { tier: 'front' } } };
    await a.resources.apply([pod('client', { app: 'client' }), pod('web-1', { app: 'web' }), labelled]);
    const rule = (matchLabels: Record<string, string>) => cnp('by-label', { endpointSelector: { matchLabels: { app: 'client' } }, egress: [{ toServices: [{ k8sServiceSelector: { selector: { matchLabels }, namespace: 'default' } }] }] });
    const client = () => a.listEndpoints().find((e) => e.podName === 'default/client')!;
    await a.resources.apply([rule({ tier: 'back' })]);
    expect(egressRows(a.bpfPolicy(client().id)!)).toEqual([]);
    await a.resources.apply([rule({ tier: 'front' })]);
    expect(a.bpfPolicy(client().id)).toMatch(/Allow +Egress +k8s:app=web +ANY /);
  });

  it('fromNodes selects a node by its labels (its own identity with enable-node-selector-labels)', async () => {
    const kv = LocalKVStore.inMemory();
    const a = await start({ 'enable-node-selector-labels': true }, kv);
    await kv.put(`${NODES_PREFIX}n2`, JSON.stringify({ name: 'n2', nodeIP: '192.168.10.101', podCIDR: '172.20.1.0/24', routerIP: '172.20.1.1', version: 'x', labels: { zone: 'blue' } }));
    await kv.put(`${NODES_PREFIX}n3`, JSON.stringify({ name: 'n3', nodeIP: '192.168.10.102', podCIDR: '172.20.2.0/24', routerIP: '172.20.2.1', version: 'x', labels: { zone: 'red' } }));
    await until(() => a.ipList().some((e) => e.prefix === '192.168.10.102/32'), 'the other nodes in the ipcache');
    const n2 = a.ipList().find((e) => e.prefix === '192.168.10.101/32')!;
    expect(n2.labels).toEqual(['reserved:remote-node', 'k8s:zone=blue']);
    expect(a.ipList().find((e) => e.prefix === '192.168.10.102/32')!.identity).not.toBe(n2.identity);
    await a.resources.apply([pod('srv', { app: 'srv' }), cnp('from-blue', { endpointSelector: { matchLabels: { app: 'srv' } }, ingress: [{ fromNodes: [{ matchLabels: { zone: 'blue' } }] }] })]);
    const srv = a.listEndpoints().find((e) => e.podName === 'default/srv')!;
    // The blue node's identity (its labels on two lines), besides the local host's allow-localhost.
    expect(a.bpfPolicy(srv.id)).toMatch(/\nAllow +Ingress +k8s:zone=blue +ANY +NONE .*\n +reserved:remote-node\n/);
    expect(a.bpfPolicy(srv.id)).not.toContain('k8s:zone=red');
  });

  it('a host policy selects the host endpoint by node labels when the host firewall is on', async () => {
    const a = await start({ 'enable-host-firewall': true, 'node-labels': 'node-role.kubernetes.io/control-plane=' });
    const host = () => a.listEndpoints().find((e) => e.isHost)!;
    expect(host().policyIngress).toBe('Disabled');
    await a.resources.apply([{
      apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy', metadata: { name: 'host-fw' },
      spec: { nodeSelector: { matchLabels: { 'node-role.kubernetes.io/control-plane': '' } }, ingress: [{ fromEntities: ['cluster'], toPorts: [{ ports: [{ port: '8080', protocol: 'TCP' }] }] }] },
    }]);
    expect(host().policyIngress).toBe('Enabled');
    expect(host().policyEgress).toBe('Disabled');
    const rows = a.bpfPolicy(host().id)!.split('\n').filter((l) => / Ingress /.test(l));
    expect(rows.some((l) => /8080\/TCP/.test(l))).toBe(true);
    expect(rows.some((l) => /reserved:remote-node +8080\/TCP/.test(l))).toBe(true);
    expect(rows.some((l) => /Ingress +(ANY|reserved:world) /.test(l))).toBe(false);
  });

  it('without enable-host-firewall a host policy leaves the host endpoint alone', async () => {
    const a = await start({ 'node-labels': 'node-role.kubernetes.io/control-plane=' });
    await a.resources.apply([{ apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy', metadata: { name: 'host-fw' }, spec: { nodeSelector: {}, ingress: [{ fromEntities: ['cluster'] }] } }]);
    expect(a.listEndpoints().find((e) => e.isHost)!.policyIngress).toBe('Disabled');
    expect(a.bpfPolicy(a.listEndpoints().find((e) => e.isHost)!.id)).toBeUndefined();
  });
});
