// Bandwidth manager: a netperf server pod annotated kubernetes.io/egress-bandwidth, changed live to
// 5M, 10M, 20M and 100M, measured by TCP_MAERTS (iperf3 -R) from a client pod on the same node —
// measured/limit per rate; an unlimited neighbour's throughput beside a paced 10M flow against its
// solo run; the agent's CPU while it paces one 10M flow (it must sleep on timers, not spin); and the
// same rates across two nodes of a lab over etcd (server on k8s-w1, client on k8s-ctr), as the seed.
import { readdirSync, readFileSync } from 'node:fs';
import { TestAgent } from '../test/helpers/agent.ts';
import { Lab, until } from '../test/helpers/lab.ts';
import { DURATION, REPEAT, round, runAsync } from './lib.ts';

const RATES_MBIT = (process.env.BENCH_BANDWIDTH_RATES ?? '5,10,20,100').split(',').map(Number);
const DROP_EDT_HORIZON = 162;
const CLK_TCK = 100;

const pod = (name: string, annotations: Record<string, string>, args?: string[], nodeName?: string) => ({
  apiVersion: 'v1', kind: 'Pod',
  metadata: { name, namespace: 'default', annotations, labels: { 'app.kubernetes.io/name': name } },
  spec: { ...(nodeName ? { nodeName } : {}), containers: [{ name: 'netperf', image: 'cilium/netperf', ...(args ? { args } : {}) }] },
});

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** The agent's node process: the one started with this agent's state directory. */
function agentPid(stateDir: string): number {
  for (const d of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (argv[0].endsWith('node') && argv.includes(stateDir)) return Number(d);
    } catch {
      /* exited meanwhile */
    }
  }
  throw new Error('agent process not found');
}

/** TCP_MAERTS from the client namespace: the server at `ip` sends; Mbit/s as the client received it. */
async function maertsMbps(client: string, ip: string, seconds = DURATION): Promise<number> {
  for (let i = 0; ; i++) {
    try {
      const out = await runAsync(['ip', 'netns', 'exec', client, 'iperf3', '-c', ip, '-R', '-t', String(seconds), '-J']);
      const j = JSON.parse(out) as { error?: string; end: { sum_received?: { bits_per_second: number } } };
      if (!j.end.sum_received) throw new Error(`iperf3 to ${ip}: ${j.error ?? 'no result'}`);
      return j.end.sum_received.bits_per_second / 1e6;
    } catch (e) {
      if (i > 30) throw e; // the pod's iperf3 -s is still starting
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Median of REPEAT runs: the machine's two cores are shared, single runs are noisy. */
async function median(measure: () => Promise<number>): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < REPEAT; i++) xs.push(await measure());
  return xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
}

/** The seed's layout on two nodes: the limited server on k8s-w1, the client on k8s-ctr; measured/limit per rate. */
async function benchTwoNodes(out: Record<string, number>): Promise<void> {
  const lab = new Lab('bw', ['CILIARY_AGENT_ARGS=--enable-bandwidth-manager']);
  try {
    await lab.up(2);
    const server = lab.pod('netperf-server');
    const client = lab.pod('netperf-client');
    await lab.ok('k8s-ctr', 'run', client, '--node', 'k8s-ctr', '--', 'sleep', 'infinity');
    for (const mbit of RATES_MBIT) {
      const file = lab.file(`server-${mbit}.yaml`, JSON.stringify(pod(server, { 'kubernetes.io/egress-bandwidth': `${mbit}M` }, undefined, 'k8s-w1')));
      await lab.ok('k8s-ctr', 'apply', '-f', file);
      // The same pod throughout: a new limit applies in place, its address stays.
      const ip = await until('the server pod\'s address', async () => {
        const a = await lab.podIP('k8s-w1', server);
        return /^\d+\.\d+\.\d+\.\d+$/.test(a) ? a : undefined;
      }, 60_000);
      const measured = await median(() => maertsMbps(lab.podNs('k8s-ctr', client), ip));
      out[`two_node_bandwidth_${mbit}m_mbps`] = round(measured, 2);
      out[`ratio_two_node_bandwidth_${mbit}m`] = round(measured / mbit);
    }
  } finally {
    await lab.down();
  }
}

async function benchOneNode(): Promise<Record<string, number>> {
  const agent = new TestAgent(['--enable-bandwidth-manager']);
  try {
    await agent.start();
    const apply = async (objects: unknown[]) => {
      const r = await agent.api('POST', '/v1/apply', { objects });
      if (r.status !== 200) throw new Error(`apply: ${r.status} ${JSON.stringify(r.body)}`);
    };
    await apply([pod('netperf-server', { 'kubernetes.io/egress-bandwidth': '10M' }), pod('neighbour-server', {}), pod('netperf-client', {}, ['sleep', 'infinity'])]);
    const ips = new Map<string, string>();
    for (const p of (await agent.api('GET', '/v1/pods')).body as Array<{ name: string; podIP: string }>) ips.set(p.name, p.podIP);
    const client = agent.podNetns('netperf-client');
    const maerts = (server: string, seconds = DURATION) => maertsMbps(client, ips.get(server)!, seconds);
    /** Packets dropped with 162 so far (queue full or beyond the horizon): TCP backs off on each. */
    const edtDrops = async (): Promise<number> => {
      const { entries } = (await agent.api('GET', '/v1/map/cilium_metrics')).body as { entries: Array<{ decoded?: { key: { reason: number }; value: { packets: number } } }> };
      return entries.reduce((n, e) => n + (e.decoded?.key.reason === DROP_EDT_HORIZON ? e.decoded.value.packets : 0), 0);
    };
    const out: Record<string, number> = {};
    const pid = agentPid(agent.stateDir);
    for (const mbit of RATES_MBIT) {
      await apply([pod('netperf-server', { 'kubernetes.io/egress-bandwidth': `${mbit}M` })]);
      const drops0 = await edtDrops();
      const cpu0 = cpuSeconds(pid);
      const t0 = performance.now();
      const measured = await median(() => maerts('netperf-server'));
      if (mbit === 10) out.agent_cpu_percent_pacing_10m = round((100 * (cpuSeconds(pid) - cpu0)) / ((performance.now() - t0) / 1000), 1);
      out[`bandwidth_${mbit}m_mbps`] = round(measured, 2);
      out[`ratio_bandwidth_${mbit}m`] = round(measured / mbit);
      out[`edt_drops_${mbit}m`] = (await edtDrops()) - drops0;
    }
    await apply([pod('netperf-server', { 'kubernetes.io/egress-bandwidth': '10M' })]);
    // Solo and beside the paced flow take turns, so a busy moment on the machine hits both alike.
    const solos: number[] = [];
    const pairs: number[][] = [];
    for (let i = 0; i < REPEAT; i++) {
      solos.push(await maerts('neighbour-server'));
      pairs.push(await Promise.all([maerts('neighbour-server'), maerts('netperf-server')]));
    }
    const mid = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const solo = mid(solos);
    const beside = mid(pairs.map((p) => p[0]));
    const limited = mid(pairs.map((p) => p[1]));
    out.neighbour_solo_mbps = round(solo, 1);
    out.neighbour_beside_10m_mbps = round(beside, 1);
    out.neighbour_limited_10m_mbps = round(limited, 2);
    out.ratio_unlimited_neighbour_vs_solo = round(beside / solo);
    return out;
  } finally {
    for (const p of ((await agent.api('GET', '/v1/resources/pods').catch(() => ({ body: [] }))).body ?? []) as Array<{ status: { pid?: number } }>) {
      if (p.status?.pid) try { process.kill(-p.status.pid, 'SIGKILL'); } catch { /* gone */ }
    }
    await agent.destroy();
  }
}

export async function benchBandwidth(): Promise<Record<string, number>> {
  const out = await benchOneNode();
  await benchTwoNodes(out);
  return out;
}
