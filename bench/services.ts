// Services: ClusterIP vs direct pod TCP throughput through the agent, and how the new-connection rate
// to one ClusterIP holds up with 10,000 services — for the agent, and for kube-proxy-style iptables.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { TestAgent } from '../test/helpers/agent.ts';
import { connRate, httpServer, iperfServer, tcpGbpsTo, type Server } from './conn-rate.ts';
import { IP_B, round, sh, vethPair } from './lib.ts';

const SERVICES = 10_000;
const API_CONCURRENCY = 48;
const HTTP_PORT = 8080;
const IPERF_PORT = 5201;

const seconds = (t0: number) => round((performance.now() - t0) / 1000, 2);

/** Runs `f(i)` for i in [from, to) with at most `limit` calls in flight. */
async function pool(from: number, to: number, limit: number, f: (i: number) => Promise<void>): Promise<void> {
  let next = from;
  const worker = async () => { while (next < to) await f(next++); };
  await Promise.all(Array.from({ length: limit }, worker));
}

async function createService(agent: TestAgent, name: string, port: number, targetPort: number): Promise<string> {
  const r = await agent.api('POST', '/v1/services', {
    name, namespace: 'default', selector: { app: 'bench-server' }, ports: [{ port, targetPort, protocol: 'TCP' }],
  });
  if (r.status !== 200) throw new Error(`create service ${name}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.service.clusterIP;
}

async function benchAgent() {
  const agent = new TestAgent();
  const servers: Server[] = [];
  try {
    await agent.start();
    await agent.createPod('bench-client', { app: 'bench-client' });
    const pod = await agent.createPod('bench-server', { app: 'bench-server' });
    const client = agent.podNetns('bench-client');
    const server = agent.podNetns('bench-server');
    servers.push(await iperfServer(server, IPERF_PORT), await httpServer(server, HTTP_PORT));

    const iperfVip = await createService(agent, 'bench-iperf', IPERF_PORT, IPERF_PORT);
    const vip = await createService(agent, 's-0000', 80, HTTP_PORT);
    const [podTcp, svcTcp] = await tcpGbpsTo([[client, pod.podIP, IPERF_PORT], [client, iperfVip, IPERF_PORT]]);

    const rate1 = await connRate(client, vip, 80);
    const t0 = performance.now();
    await pool(1, SERVICES, API_CONCURRENCY, async (i) => { await createService(agent, `s-${String(i).padStart(4, '0')}`, 80, HTTP_PORT); });
    const createSeconds = seconds(t0);
    const rate10k = await connRate(client, vip, 80);
    return {
      pod_tcp_gbps: round(podTcp),
      service_tcp_gbps: round(svcTcp),
      ratio_service_vs_pod_tcp: round(svcTcp / podTcp),
      conn_rate_1_service: Math.round(rate1),
      conn_rate_10k_services: Math.round(rate10k),
      ratio_conn_rate_10k_vs_1_services: round(rate10k / rate1),
      services_10k_create_seconds: createSeconds,
    };
  } finally {
    for (const s of servers) s.stop();
    await agent.destroy();
  }
}

/** kube-proxy's nat table for `n` ClusterIPs 10.97.x.y:80, each with the one endpoint IP_B:8080.
 *  kube-proxy writes services in Go map order, so KUBE-SERVICES puts the measured service (0)
 *  in the middle: a new connection to it is matched against n/2 service rules first. */
function kubeProxyRules(n: number): string {
  const hash = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 16).toUpperCase();
  const chains = [':KUBE-SERVICES - [0:0]', ':KUBE-MARK-MASQ - [0:0]'];
  const rules = [
    '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000',
  ];
  for (let k = 0; k < n; k++) {
    const i = (k + Math.ceil(n / 2)) % n;
    const name = `default/s-${String(i).padStart(4, '0')}:http`;
    const svc = `KUBE-SVC-${hash(name)}`;
    const sep = `KUBE-SEP-${hash(name + IP_B)}`;
    const vip = vipAt(i);
    chains.push(`:${svc} - [0:0]`, `:${sep} - [0:0]`);
    rules.push(
      `-A KUBE-SERVICES -d ${vip}/32 -p tcp -m comment --comment "${name} cluster IP" -m tcp --dport 80 -j ${svc}`,
      `-A ${svc} ! -s 10.0.0.0/8 -d ${vip}/32 -p tcp -m comment --comment "${name} cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ`,
      `-A ${svc} -m comment --comment "${name} -> ${IP_B}:${HTTP_PORT}" -j ${sep}`,
      `-A ${sep} -s ${IP_B}/32 -m comment --comment "${name}" -j KUBE-MARK-MASQ`,
      `-A ${sep} -p tcp -m comment --comment "${name}" -m tcp -j DNAT --to-destination ${IP_B}:${HTTP_PORT}`,
    );
  }
  return ['*nat', ...chains, ...rules, 'COMMIT', ''].join('\n');
}

const vipAt = (i: number) => `10.97.${(i + 1) >> 8}.${(i + 1) & 255}`;

async function benchIptables() {
  const { a: client, b: server } = vethPair();
  sh('ip', '-n', client, 'route', 'add', '10.97.0.0/16', 'dev', 'eth0');
  const http = await httpServer(server, HTTP_PORT);
  const restore = (n: number) => {
    const t0 = performance.now();
    execFileSync('ip', ['netns', 'exec', client, 'iptables-restore'], { input: kubeProxyRules(n), stdio: ['pipe', 'ignore', 'pipe'] });
    return seconds(t0);
  };
  try {
    restore(1);
    const rate1 = await connRate(client, vipAt(0), 80);
    const restoreSeconds = restore(SERVICES);
    const rate10k = await connRate(client, vipAt(0), 80);
    return {
      iptables_conn_rate_1_service: Math.round(rate1),
      iptables_conn_rate_10k_services: Math.round(rate10k),
      ratio_iptables_conn_rate_10k_vs_1_services: round(rate10k / rate1),
      iptables_10k_restore_seconds: restoreSeconds,
    };
  } finally {
    http.stop();
  }
}

export async function benchServices() {
  return { ...(await benchAgent()), ...(await benchIptables()) };
}
