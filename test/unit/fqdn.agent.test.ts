// toFQDNs in the agent core: a DNS answer the proxy forwards gives the name's IPs an fqdn: identity
// in the ipcache, allowed on the rule's port in the selecting endpoint's policy map, until the TTL ends.
import { afterEach, describe, expect, it } from 'vitest';
import type { Agent } from '../../src/agent/agent.ts';
import { formatFqdnCache } from '../../src/cli/fqdn.ts';
import { startAgentCore } from './agent-core.ts';

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const pod = (name: string, labels: Record<string, string>) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, labels }, spec: { containers: [{ name: 'c', image: 'ciliary/run' }] } });
const toFqdns = {
  apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'to-fqdns', namespace: 'default' },
  spec: {
    endpointSelector: { matchLabels: { app: 'client' } },
    egress: [
      { toEndpoints: [{ matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'kube-system', 'k8s:k8s-app': 'kube-dns' } }], toPorts: [{ ports: [{ port: '53', protocol: 'ANY' }], rules: { dns: [{ matchPattern: '*' }] } }] },
      { toFQDNs: [{ matchName: 'allowed.example' }, { matchPattern: '*.wild.example' }], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] },
    ],
  },
};

describe('toFQDNs in the agent', () => {
  let agent: Agent | undefined;
  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
  });

  it('an answer for an allowed name allows its IP on the rule port only, until the TTL expires', async () => {
    const a = (agent = await startAgentCore('n1'));
    await a.resources.apply([pod('client', { app: 'client' }), toFqdns]);
    const ep = a.listEndpoints().find((e) => e.podName === 'default/client')!;
    const answer = { endpointId: ep.id, sourceIdentity: ep.identity, qtype: 'A', rcode: 0 };
    a.observeDnsResponse({ ...answer, name: 'other.example.', ips: ['198.51.100.9'], ttl: 30 });
    expect(a.ipList().some((e) => e.prefix === '198.51.100.9/32')).toBe(false);

    a.observeDnsResponse({ ...answer, name: 'allowed.example.', ips: ['198.51.100.7'], ttl: 1 });
    const entry = a.ipList().find((e) => e.prefix === '198.51.100.7/32')!;
    expect(entry.labels).toEqual(['cidr:198.51.100.7/32', 'reserved:world', 'fqdn:allowed.example.']);
    expect(entry.identity).toBeGreaterThan(1 << 24);
    const policy = a.bpfPolicy(ep.id)!;
    const row = policy.split('\n').find((l) => l.includes('cidr:198.51.100.7/32'))!;
    expect(row).toMatch(/^Allow +Egress +cidr:198\.51\.100\.7\/32 +80\/TCP /);
    expect(policy.split('\n').filter((l) => l.includes('198.51.100.7')).length).toBe(1);
    expect(a.listIdentities().find((i) => i.id === entry.identity)?.labels).toContain('fqdn:allowed.example.');

    const table = formatFqdnCache(a.fqdnCacheList());
    expect(table.split('\n')[0]).toMatch(/^Endpoint +Source +FQDN +TTL +ExpirationTime +IPs$/);
    expect(table).toMatch(new RegExp(`\\n${ep.id} +lookup +allowed\\.example\\. +1 +\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z +198\\.51\\.100\\.7\\n`));

    // The 1 s TTL runs out: the IP leaves the ipcache and the policy map.
    await until(() => !a.ipList().some((e) => e.prefix === '198.51.100.7/32'), 'the learned IP to expire');
    expect(a.bpfPolicy(ep.id)).not.toContain('198.51.100.7');
    expect(a.fqdnCacheList().map((r) => r.fqdn)).toEqual(['other.example.']);
  });

  it('a pattern selects matching names; fqdn cache clean takes the allow away', async () => {
    const a = (agent = await startAgentCore('n1'));
    await a.resources.apply([pod('client', { app: 'client' }), toFqdns]);
    const ep = a.listEndpoints().find((e) => e.podName === 'default/client')!;
    a.observeDnsResponse({ endpointId: ep.id, sourceIdentity: ep.identity, qtype: 'A', rcode: 0, name: 'api.wild.example', ips: ['198.51.100.8'], ttl: 300 });
    a.observeDnsResponse({ endpointId: ep.id, sourceIdentity: ep.identity, qtype: 'A', rcode: 0, name: 'a.b.wild.example', ips: ['198.51.100.10'], ttl: 300 });
    expect(a.ipList().find((e) => e.prefix === '198.51.100.8/32')?.labels).toContain('fqdn:*.wild.example.');
    expect(a.ipList().some((e) => e.prefix === '198.51.100.10/32')).toBe(false);
    expect(a.bpfPolicy(ep.id)).toMatch(/Allow +Egress +cidr:198\.51\.100\.8\/32 +80\/TCP/);
    expect(a.fqdnCacheClean()).toBe(2);
    expect(a.bpfPolicy(ep.id)).not.toContain('198.51.100.8');
    expect(a.ipList().some((e) => e.prefix === '198.51.100.8/32')).toBe(false);
  });
});
