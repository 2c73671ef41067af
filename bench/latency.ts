// Latency: UDP round-trip p50/p99, 1-byte TCP request/response transactions per second over one
// connection (netperf TCP_RR) and new TCP connections per second (connect, exchange, close; several
// loops in parallel) over (a) a kernel veth, (b) a C TUN-to-TUN forwarder — the floor of any TUN
// design —, (c) ciliary pod → pod and (d) pod → ClusterIP with one backend, all with the same pod
// addresses and the same C client and server, and the ratios of (c) and (d) against (b).
import { TestAgent } from '../test/helpers/agent.ts';
import { buildBaselines, pingpongClient, startReady, stopAll, type Baselines } from './baseline/tools.ts';
import { DURATION, netns, round, sh } from './lib.ts';

const PORT = 7777;
// The ClusterIP's backend listens on its own port, and the service's UDP port differs from its TCP
// port: ciliary conflates a TCP and a UDP frontend on one port, and a connect loop to the pod whose
// closed entries share the DNATed tuple makes later connections through the VIP hang (issue 16 notes).
const BACKEND_PORT = 7778;
const SERVICE_TCP_PORT = 80;
const SERVICE_UDP_PORT = 81;
const PROBES = 1000;
const PROBE_GAP_US = 1000;
const CONN_LOOPS = 8;

interface PathResult { rtt_p50_us: number; rtt_p99_us: number; tcp_rr_tps: number; tcp_rr_p50_us: number; tcp_rr_p99_us: number; conn_per_s: number }

/** Gives a namespace its pod-like eth0 setup: a /32 address and the default route through eth0. */
function podAddress(ns: string, ip: string): void {
  sh('ip', '-n', ns, 'addr', 'add', `${ip}/32`, 'dev', 'eth0');
  sh('ip', '-n', ns, 'link', 'set', 'eth0', 'up');
  sh('ip', '-n', ns, 'route', 'add', 'default', 'dev', 'eth0');
}

/** Runs the three measurements from `client` to `ip`; a pingpong server must already answer on its ports. */
async function measure(bin: Baselines, path: string, client: string, ip: string, port: number, udpPort = port): Promise<PathResult> {
  // A wide port range so the connect loops never wait for a free port during one run.
  sh('ip', 'netns', 'exec', client, 'sysctl', '-q', '-w', 'net.ipv4.ip_local_port_range=1024 65535');
  const where = `${path} (${ip}:${port})`;
  const udp = await pingpongClient(bin.pingpong, client, ['udp', ip, udpPort, PROBES, PROBE_GAP_US]).catch(fail(where, 'UDP round trips'));
  const rr = await pingpongClient(bin.pingpong, client, ['rr', ip, port, DURATION * 1000]).catch(fail(where, 'TCP request/response'));
  const crr = await pingpongClient(bin.pingpong, client, ['crr', ip, port, DURATION * 1000, CONN_LOOPS]).catch(fail(where, 'TCP connect loop'));
  const attempts = crr.cps * DURATION + crr.failed;
  if (crr.failed > attempts * 0.01) throw new Error(`latency bench: ${where}: ${crr.failed} of ${Math.round(attempts)} connections failed`);
  return {
    rtt_p50_us: udp.p50_us, rtt_p99_us: udp.p99_us,
    tcp_rr_tps: Math.round(rr.tps), tcp_rr_p50_us: rr.p50_us, tcp_rr_p99_us: rr.p99_us,
    conn_per_s: Math.round(crr.cps),
  };
}

const fail = (where: string, what: string) => (e: Error): never => {
  throw new Error(`latency bench: ${where} carries no traffic (${what}): ${e.message}`);
};

/** (a) Two namespaces joined by a kernel veth pair. */
async function measureVeth(bin: Baselines, clientIP: string, serverIP: string): Promise<PathResult> {
  const client = netns('lva');
  const server = netns('lvb');
  sh('ip', 'link', 'add', 'eth0', 'netns', client, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', server);
  podAddress(client, clientIP);
  podAddress(server, serverIP);
  await startReady(['ip', 'netns', 'exec', server, bin.pingpong, 'server', String(PORT)]);
  return measure(bin, 'veth', client, serverIP, PORT);
}

/** (b) Two namespaces with a TUN eth0 each, joined by the C forwarder. */
async function measureForwarder(bin: Baselines, clientIP: string, serverIP: string): Promise<PathResult> {
  const client = netns('lfa');
  const server = netns('lfb');
  await startReady([bin.tunfwd, client, server]);
  podAddress(client, clientIP);
  podAddress(server, serverIP);
  await startReady(['ip', 'netns', 'exec', server, bin.pingpong, 'server', String(PORT)]);
  return measure(bin, 'tunfwd', client, serverIP, PORT);
}

async function createService(agent: TestAgent): Promise<string> {
  const r = await agent.api('POST', '/v1/services', {
    name: 'bench-latency', namespace: 'default', selector: { app: 'bench-server' },
    ports: [
      { name: 'tcp', port: SERVICE_TCP_PORT, targetPort: BACKEND_PORT, protocol: 'TCP' },
      { name: 'udp', port: SERVICE_UDP_PORT, targetPort: BACKEND_PORT, protocol: 'UDP' },
    ],
  });
  if (r.status !== 200) throw new Error(`latency bench: create service: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.service.clusterIP;
}

const RATIOS = (p: Record<string, PathResult>) => Object.fromEntries(['pod', 'clusterip'].flatMap((k) => [
  [`ratio_${k}_vs_tunfwd_rtt_p50`, round(p[k].rtt_p50_us / p.tunfwd.rtt_p50_us)],
  [`ratio_${k}_vs_tunfwd_tcp_rr`, round(p[k].tcp_rr_tps / p.tunfwd.tcp_rr_tps)],
  [`ratio_${k}_vs_tunfwd_conn_rate`, round(p[k].conn_per_s / p.tunfwd.conn_per_s)],
]));

export async function benchLatency(): Promise<Record<string, number>> {
  const bin = buildBaselines();
  const agent = new TestAgent();
  try {
    await agent.start();
    const clientPod = await agent.createPod('bench-client', { app: 'bench-client' });
    const serverPod = await agent.createPod('bench-server', { app: 'bench-server' });
    const client = agent.podNetns('bench-client');
    for (const port of [PORT, BACKEND_PORT]) await startReady(['ip', 'netns', 'exec', agent.podNetns('bench-server'), bin.pingpong, 'server', String(port)]);
    const vip = await createService(agent);
    const paths: Record<string, PathResult> = {
      veth: await measureVeth(bin, clientPod.podIP, serverPod.podIP),
      tunfwd: await measureForwarder(bin, clientPod.podIP, serverPod.podIP),
      pod: await measure(bin, 'ciliary pod → pod', client, serverPod.podIP, PORT),
      clusterip: await measure(bin, 'ciliary pod → ClusterIP', client, vip, SERVICE_TCP_PORT, SERVICE_UDP_PORT),
    };
    const raw = Object.entries(paths).flatMap(([k, r]) => Object.entries(r).map(([m, v]) => [`latency_${k}_${m}`, v]));
    return { ...Object.fromEntries(raw), ...RATIOS(paths) };
  } finally {
    stopAll();
    await agent.destroy();
    bin.remove();
  }
}
