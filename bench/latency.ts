// Latency: UDP round-trip p50/p99, 1-byte TCP request/response transactions per second over one
// connection (netperf TCP_RR) and new TCP connections per second (connect, exchange, close; several
// loops in parallel) over (a) a kernel veth, (b) a C TUN-to-TUN forwarder — the floor of any TUN
// design —, (c) ciliary pod → pod and (d) pod → ClusterIP with one backend, all with the same pod
// addresses and the same C client and server, and the ratios of (c) and (d) against (b). Hubble's
// cost: (c) again on a second agent with enable-hubble=false, plus pod → pod iperf3 TCP on both.
import { TestAgent } from '../test/helpers/agent.ts';
import { iperfServer, tcpGbpsOnceTo, type Server } from './conn-rate.ts';
import { paired } from './paired.ts';
import { PROFILE_DIR, profiled, startAgent } from './baseline/profile.ts';
import { buildBaselines, pingpongClient, startReady, stopAll, type Baselines } from './baseline/tools.ts';
import { DURATION, REPEAT, netns, round, sh } from './lib.ts';

const PORT = 7777;
// The ClusterIP's TCP and UDP frontends share port 80 and the backend is the pod path's own server:
// connections through the VIP reuse the source ports of the direct ones (a closed CT entry reopens).
const SERVICE_PORT = 80;
const PROBES_PER_SECOND = 500;
const PROBE_GAP_US = 1000;
const CONN_LOOPS = 8;
const IPERF_PORT = 5201;

type Metrics = Record<'rtt_p50_us' | 'rtt_p99_us' | 'tcp_rr_tps' | 'tcp_rr_p50_us' | 'tcp_rr_p99_us' | 'conn_per_s', number>;

/** Where a path's client runs and what it talks to; a pingpong server answers behind `ip`. */
interface Path { name: string; client: string; ip: string; tcpPort: number; udpPort: number }

/** Gives a namespace its pod-like eth0 setup: a /32 address and the default route through eth0. */
function podAddress(ns: string, ip: string): void {
  sh('ip', '-n', ns, 'addr', 'add', `${ip}/32`, 'dev', 'eth0');
  sh('ip', '-n', ns, 'link', 'set', 'eth0', 'up');
  sh('ip', '-n', ns, 'route', 'add', 'default', 'dev', 'eth0');
}

const fail = (where: string, what: string) => (e: Error): never => {
  throw new Error(`latency bench: ${where} carries no traffic (${what}): ${e.message}`);
};

type Kind = 'udp' | 'rr' | 'crr';
const KINDS: Kind[] = ['udp', 'rr', 'crr'];

/** One `seconds`-long measurement of `kind` over `p`, as the metrics it gives. */
async function measure(bin: Baselines, p: Path, kind: Kind, seconds: number): Promise<Partial<Metrics>> {
  const where = `${p.name} (${p.ip})`;
  const ms = Math.round(seconds * 1000);
  if (kind === 'udp') {
    const udp = await pingpongClient(bin.pingpong, p.client, ['udp', p.ip, p.udpPort, Math.round(PROBES_PER_SECOND * seconds), PROBE_GAP_US]).catch(fail(where, 'UDP round trips'));
    return { rtt_p50_us: udp.p50_us, rtt_p99_us: udp.p99_us };
  }
  if (kind === 'rr') {
    const rr = await pingpongClient(bin.pingpong, p.client, ['rr', p.ip, p.tcpPort, ms]).catch(fail(where, 'TCP request/response'));
    return { tcp_rr_tps: Math.round(rr.tps), tcp_rr_p50_us: rr.p50_us, tcp_rr_p99_us: rr.p99_us };
  }
  const crr = await pingpongClient(bin.pingpong, p.client, ['crr', p.ip, p.tcpPort, ms, CONN_LOOPS]).catch(fail(where, 'TCP connect loop'));
  const attempts = crr.cps * seconds + crr.failed;
  if (crr.failed > attempts * 0.01) throw new Error(`latency bench: ${where}: ${crr.failed} of ${Math.round(attempts)} connections failed`);
  return { conn_per_s: Math.round(crr.cps) };
}

/** Median per metric of REPEAT rounds. In each round the paths take turns per kind of measurement, so
 *  drift in the machine's load hits them alike and every path's round trips follow round trips, not
 *  the aftermath of another path's connect storm (TIME_WAIT sockets, CT entries, the agent's GC). */
async function measureAll(bin: Baselines, paths: Path[]): Promise<Record<string, Metrics>> {
  const rounds: Record<string, Array<Partial<Metrics>>> = Object.fromEntries(paths.map((p) => [p.name, []]));
  for (const p of paths) sh('ip', 'netns', 'exec', p.client, 'sysctl', '-q', '-w', 'net.ipv4.ip_local_port_range=1024 65535');
  for (let r = 0; r < REPEAT; r++) {
    const got: Record<string, Partial<Metrics>> = Object.fromEntries(paths.map((p) => [p.name, {}]));
    for (const kind of KINDS) for (const p of paths) Object.assign(got[p.name], await measure(bin, p, kind, DURATION / REPEAT));
    for (const p of paths) rounds[p.name].push(got[p.name]);
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return Object.fromEntries(paths.map((p) => {
    const ms = rounds[p.name] as Metrics[];
    return [p.name, Object.fromEntries(Object.keys(ms[0]).map((k) => [k, median(ms.map((m) => m[k as keyof Metrics]))])) as Metrics];
  }));
}

/** (a) Two namespaces joined by a kernel veth pair. */
async function vethPath(bin: Baselines, clientIP: string, serverIP: string): Promise<Path> {
  const client = netns('lva');
  const server = netns('lvb');
  sh('ip', 'link', 'add', 'eth0', 'netns', client, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', server);
  podAddress(client, clientIP);
  podAddress(server, serverIP);
  await startReady(['ip', 'netns', 'exec', server, bin.pingpong, 'server', String(PORT)]);
  return { name: 'veth', client, ip: serverIP, tcpPort: PORT, udpPort: PORT };
}

/** (b) Two namespaces with a TUN eth0 each, joined by the C forwarder. */
async function forwarderPath(bin: Baselines, clientIP: string, serverIP: string): Promise<Path> {
  const client = netns('lfa');
  const server = netns('lfb');
  await startReady([bin.tunfwd, client, server]);
  podAddress(client, clientIP);
  podAddress(server, serverIP);
  await startReady(['ip', 'netns', 'exec', server, bin.pingpong, 'server', String(PORT)]);
  return { name: 'tunfwd', client, ip: serverIP, tcpPort: PORT, udpPort: PORT };
}

async function createService(agent: TestAgent): Promise<string> {
  const r = await agent.api('POST', '/v1/services', {
    name: 'bench-latency', namespace: 'default', selector: { app: 'bench-server' },
    ports: [
      { name: 'tcp', port: SERVICE_PORT, targetPort: PORT, protocol: 'TCP' },
      { name: 'udp', port: SERVICE_PORT, targetPort: PORT, protocol: 'UDP' },
    ],
  });
  if (r.status !== 200) throw new Error(`latency bench: create service: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.service.clusterIP;
}

/** Hubble on (the default) over Hubble off, pod → pod on one node: each of the three measurements. */
const ratiosHubbleOnVsOff = (p: Record<string, Metrics>) => ({
  ratio_pod_hubble_on_vs_off_tcp_rr: round(p.pod.tcp_rr_tps / p.pod_hubble_off.tcp_rr_tps),
  ratio_pod_hubble_on_vs_off_conn_rate: round(p.pod.conn_per_s / p.pod_hubble_off.conn_per_s),
  ratio_pod_hubble_on_vs_off_rtt_p50: round(p.pod.rtt_p50_us / p.pod_hubble_off.rtt_p50_us),
});

/** A client and a server pod on `agent`, the pingpong server and an iperf3 server in the latter. */
async function podPair(agent: TestAgent, bin: Baselines, servers: Server[]) {
  const clientPod = await agent.createPod('bench-client', { app: 'bench-client' });
  const serverPod = await agent.createPod('bench-server', { app: 'bench-server' });
  const serverNs = agent.podNetns('bench-server');
  await startReady(['ip', 'netns', 'exec', serverNs, bin.pingpong, 'server', String(PORT)]);
  servers.push(await iperfServer(serverNs, IPERF_PORT));
  return { clientPod, serverPod, client: agent.podNetns('bench-client') };
}

const ratiosVsForwarder = (p: Record<string, Metrics>) => Object.fromEntries(['pod', 'clusterip'].flatMap((k) => [
  [`ratio_${k}_vs_tunfwd_rtt_p50`, round(p[k].rtt_p50_us / p.tunfwd.rtt_p50_us)],
  [`ratio_${k}_vs_tunfwd_tcp_rr`, round(p[k].tcp_rr_tps / p.tunfwd.tcp_rr_tps)],
  [`ratio_${k}_vs_tunfwd_conn_rate`, round(p[k].conn_per_s / p.tunfwd.conn_per_s)],
]));

/** Profiles the agent during one run of each measurement over `p`, to see where its time goes. */
async function profileStages(agent: TestAgent, bin: Baselines, p: Path): Promise<void> {
  const ms = Math.round((DURATION / REPEAT) * 1000);
  await profiled(agent, `${p.name} UDP round trips`, () => pingpongClient(bin.pingpong, p.client, ['udp', p.ip, p.udpPort, PROBES_PER_SECOND, PROBE_GAP_US]));
  await profiled(agent, `${p.name} TCP request/response`, () => pingpongClient(bin.pingpong, p.client, ['rr', p.ip, p.tcpPort, ms]));
  await profiled(agent, `${p.name} TCP connect loop`, () => pingpongClient(bin.pingpong, p.client, ['crr', p.ip, p.tcpPort, ms, CONN_LOOPS]));
}

export async function benchLatency(): Promise<Record<string, number>> {
  const bin = buildBaselines();
  const agent = new TestAgent();
  const quiet = new TestAgent(['--enable-hubble=false']);
  const servers: Server[] = [];
  try {
    await startAgent(agent);
    await quiet.start();
    const { clientPod, serverPod, client } = await podPair(agent, bin, servers);
    const off = await podPair(quiet, bin, servers);
    const vip = await createService(agent);
    const pod: Path = { name: 'pod', client, ip: serverPod.podIP, tcpPort: PORT, udpPort: PORT };
    // First, while both agents are fresh: after the connect loops the Hubble-on agent alone would also
    // carry the ClusterIP's CT entries.
    // Paired runs, alternating which agent goes first, and the median of the pairs' ratios: a single
    // pair of runs moved this ratio by ±0.08 with others' load drifting (0.92 and 1.08 on one commit).
    const hubble = await paired(() => tcpGbpsOnceTo(client, serverPod.podIP, IPERF_PORT), () => tcpGbpsOnceTo(off.client, off.serverPod.podIP, IPERF_PORT), 'Hubble on/off Gbit/s');
    const results = await measureAll(bin, [
      await vethPath(bin, clientPod.podIP, serverPod.podIP),
      await forwarderPath(bin, clientPod.podIP, serverPod.podIP),
      pod,
      { name: 'clusterip', client, ip: vip, tcpPort: SERVICE_PORT, udpPort: SERVICE_PORT },
      { name: 'pod_hubble_off', client: off.client, ip: off.serverPod.podIP, tcpPort: PORT, udpPort: PORT },
    ]);
    if (PROFILE_DIR) await profileStages(agent, bin, pod);
    const raw = Object.entries(results).flatMap(([k, r]) => Object.entries(r).map(([m, v]) => [`latency_${k}_${m}`, v]));
    return {
      ...Object.fromEntries(raw), ...ratiosVsForwarder(results), ...ratiosHubbleOnVsOff(results),
      latency_pod_tcp_gbps: round(hubble.ours), latency_pod_hubble_off_tcp_gbps: round(hubble.baseline), ratio_pod_hubble_on_vs_off_tcp: round(hubble.ratio),
    };
  } finally {
    for (const s of servers) s.stop();
    stopAll();
    await agent.destroy();
    await quiet.destroy();
    bin.remove();
  }
}
