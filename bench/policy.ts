// Policy: pod → pod throughput with 0 rules and with 10,000 rules over 5,000 identities selecting
// the server, how long importing those rules takes, and how long 1,000 rules take to reach 100 endpoints.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestAgent } from '../test/helpers/agent.ts';
import { round, tcpGbps, udpPps } from './lib.ts';

const SYNTHETIC_IDS = 5_000;
const FIRST_SYNTHETIC_ID = 10_000;
const RULES = 10_000;
const RULES_PER_CNP = 1_000;
const CNPS_PER_PUT = 5; // ~185 bytes a rule: 5,000 rules (~0.9 MB) fit the API's 1 MiB body limit
const TARGETS = 100;
const POD_CONCURRENCY = 8;

type Rule = Record<string, unknown>;
const seconds = (t0: number) => round((performance.now() - t0) / 1000, 2);
const cnp = (name: string, selector: Record<string, string>, specs: Rule[]) => ({
  apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name, namespace: 'default' },
  specs: specs.map((r) => ({ endpointSelector: { matchLabels: selector }, ingress: [r] })),
});
const allowFrom = (labels: Record<string, string>, port?: number): Rule => ({
  fromEndpoints: [{ matchLabels: labels }],
  ...(port === undefined ? {} : { toPorts: [{ ports: [{ port: String(port), protocol: 'TCP' }] }] }),
});

async function call(agent: TestAgent, method: string, path: string, body?: unknown): Promise<any> {
  const r = await agent.api(method, path, body);
  if (r.status !== 200) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body).slice(0, 500)}`);
  return r.body;
}

/** Writes SYNTHETIC_IDS identities `k8s:bench=iN` into the (stopped) agent's kvstore. */
function addSyntheticIdentities(stateDir: string): void {
  const path = join(stateDir, 'kvstore.json');
  const kv = JSON.parse(readFileSync(path, 'utf8'));
  for (let id = FIRST_SYNTHETIC_ID; id < FIRST_SYNTHETIC_ID + SYNTHETIC_IDS; id++) {
    const labels = `k8s:bench=i${id};k8s:io.kubernetes.pod.namespace=default`;
    kv[`cilium/state/identities/v1/id/${id}`] = labels;
    kv[`cilium/state/identities/v1/value/${labels}`] = String(id);
  }
  writeFileSync(path, JSON.stringify(kv));
}

/** 10,000 rules on the server: each synthetic identity on port 80 and on 8000+k, and the client on all ports. */
function tenThousandRules(): object[] {
  const rules: Rule[] = [allowFrom({ app: 'bench-client' })];
  for (let r = 0; rules.length < RULES; r++) {
    const k = r % SYNTHETIC_IDS;
    rules.push(allowFrom({ bench: `i${FIRST_SYNTHETIC_ID + k}` }, r < SYNTHETIC_IDS ? 80 : 8000 + k));
  }
  const cnps = [];
  for (let i = 0; i < rules.length; i += RULES_PER_CNP) cnps.push(cnp(`bench-10k-${i / RULES_PER_CNP}`, { app: 'bench-server' }, rules.slice(i, i + RULES_PER_CNP)));
  return cnps;
}

/** Entries in an endpoint's policy map. */
async function policyEntries(agent: TestAgent, endpointId: number): Promise<number> {
  const maps: Array<{ name: string; count: number }> = await call(agent, 'GET', '/v1/map');
  const m = maps.find((x) => x.name === `cilium_policy_${endpointId}`);
  if (!m) throw new Error(`no map cilium_policy_${endpointId}`);
  return m.count;
}

/** Median of an even or odd count. */
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return (s[Math.floor((s.length - 1) / 2)] + s[Math.ceil((s.length - 1) / 2)]) / 2;
}

async function pool(n: number, limit: number, f: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => { while (next < n) await f(next++); };
  await Promise.all(Array.from({ length: limit }, worker));
}

export async function benchPolicy() {
  const agent = new TestAgent();
  try {
    await agent.start();
    await agent.createPod('bench-client', { app: 'bench-client' });
    await agent.createPod('bench-server', { app: 'bench-server' });
    await agent.kill();
    addSyntheticIdentities(agent.stateDir);
    await agent.start();
    const server = await call(agent, 'GET', '/v1/pods/default/bench-server');
    const clientNs = agent.podNetns('bench-client');
    const serverNs = agent.podNetns('bench-server');
    const measure = async () => ({ tcp: await tcpGbps(clientNs, serverNs, server.podIP), udp: await udpPps(clientNs, serverNs, server.podIP) });

    // Part 1: 0 rules (A) and 10k rules (B) in the order ABBAABBA, so drift weighs on both alike.
    const cnps = tenThousandRules();
    const runs: Record<'a' | 'b', Array<{ tcp: number; udp: number }>> = { a: [], b: [] };
    const importSeconds: number[] = [];
    let entries = 0;
    let imported = false;
    for (const phase of ['a', 'b', 'b', 'a', 'a', 'b', 'b', 'a'] as const) {
      if (phase === 'a' && imported) await call(agent, 'DELETE', '/v1/policy?all=true');
      if (phase === 'b' && !imported) {
        const t0 = performance.now();
        for (let i = 0; i < cnps.length; i += CNPS_PER_PUT) await call(agent, 'PUT', '/v1/policy', cnps.slice(i, i + CNPS_PER_PUT));
        importSeconds.push(seconds(t0));
        console.error(`policy: 10k rules imported in ${importSeconds.at(-1)} s`);
        entries = await policyEntries(agent, server.endpointID);
        if (entries < RULES) throw new Error(`server policy map holds ${entries} entries, expected ≥ ${RULES}`);
      }
      imported = phase === 'b';
      runs[phase].push(await measure());
      console.error(`policy: ${phase === 'a' ? '0 rules' : '10k rules'}: ${JSON.stringify(runs[phase].at(-1))}`);
    }
    const tcp0 = median(runs.a.map((r) => r.tcp));
    const tcp10k = median(runs.b.map((r) => r.tcp));
    const udp0 = median(runs.a.map((r) => r.udp));
    const udp10k = median(runs.b.map((r) => r.udp));
    await call(agent, 'DELETE', '/v1/policy?all=true');

    // Part 2: one PUT of 1,000 rules selecting 100 idle endpoints.
    const targets: number[] = [];
    await pool(TARGETS, POD_CONCURRENCY, async (i) => {
      targets.push((await agent.createPod(`bench-target-${i}`, { role: 'bench-target' })).endpointID);
    });
    const specs = Array.from({ length: 1_000 }, (_, i) => allowFrom({ app: 'bench-client' }, 10_000 + i));
    const t0 = performance.now();
    await call(agent, 'PUT', '/v1/policy', [cnp('bench-1000', { role: 'bench-target' }, specs)]);
    const applySeconds = seconds(t0);
    const targetEntries = await policyEntries(agent, targets[TARGETS - 1]);
    if (targetEntries < 1_000) throw new Error(`target policy map holds ${targetEntries} entries, expected ≥ 1000`);

    return {
      tcp_gbps_0_rules: round(tcp0),
      tcp_gbps_10k_rules: round(tcp10k),
      ratio_policy_10k_rules_tcp: round(tcp10k / tcp0),
      udp_pps_0_rules: Math.round(udp0),
      udp_pps_10k_rules: Math.round(udp10k),
      ratio_policy_10k_rules_udp_pps: round(udp10k / udp0),
      policy_map_entries: entries,
      policy_10k_import_seconds: Math.min(...importSeconds),
      policy_1000_rules_100_endpoints_seconds: applySeconds,
      policy_1000_rules_target_map_entries: targetEntries,
    };
  } finally {
    await agent.destroy();
  }
}
