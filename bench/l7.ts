// L7: small HTTP requests over keep-alive connections to a pod, first with an L4 rule only, then
// with an L7 rule (`http: [{}]`) sending them through the proxy worker — requests/s at full load,
// the latency the proxy adds at p50 and p99 at a fixed moderate rate, the agent's memory with the
// proxy busy, and what a 1 GiB upload through the proxy leaves of a pod → pod iperf3 — all
// measured in the same run.
import { TestAgent } from '../test/helpers/agent.ts';
import { spawnTracked, waitListening } from '../test/helpers/sys.ts';
import { DURATION, REPEAT, round, runAsync, tcpGbps } from './lib.ts';
import { rssKiB } from './pipeline.ts';

// argv: host port concurrency durationMs [rate] → {rps, p50, p99, cpuUs} (latencies and its own CPU time in microseconds). Without a
// rate each connection sends its next request when the last one is answered; with one, requests
// start on a fixed schedule (rate per second) whatever the answers do.
const CLIENT = `const http = require('http');
const [host, port, conc, dur, rate] = process.argv.slice(1).map((x, i) => i ? Number(x) : x);
const agent = new http.Agent({ keepAlive: true, maxSockets: conc });
const lat = []; let done = false;
function one(again) {
  if (done) return;
  const t = process.hrtime.bigint();
  http.get({ host, port, path: '/', agent }, (r) => { r.resume(); r.on('end', () => { lat.push(Number(process.hrtime.bigint() - t) / 1000); if (again) one(true); }); })
    .on('error', () => again && setTimeout(() => one(true), 10));
}
const t0 = performance.now();
if (rate) { let sent = 0; setInterval(() => { for (const due = (performance.now() - t0) * rate / 1000; sent < due; sent++) one(false); }, 1); }
else for (let i = 0; i < conc; i++) one(true);
setTimeout(() => {
  done = true;
  lat.sort((a, b) => a - b);
  const q = (p) => lat[Math.min(lat.length - 1, Math.floor(lat.length * p))];
  const cpu = process.cpuUsage();
  console.log(JSON.stringify({ rps: lat.length / ((performance.now() - t0) / 1000), p50: q(0.5), p99: q(0.99), cpuUs: cpu.user + cpu.system }));
  process.exit(0);
}, dur);`;

export const SERVER = `require('http').createServer((q, s) => { q.resume(); q.on('end', () => s.end('ok')); }).listen(8080, '0.0.0.0')`;
const CONCURRENCY = 8;
/** The fixed moderate rate of the latency test (requests/s over up to 4 connections). */
const RATE = 200;
const GIB = 1 << 30;

interface Load { rps: number; p50: number; p99: number; cpuUs: number }

export function load(ns: string, ip: string, rate = 0): Promise<Load> {
  return new Promise((resolve, reject) => {
    const c = spawnTracked('ip', ['netns', 'exec', ns, 'node', '-e', CLIENT, ip, '8080', String(rate ? 4 : CONCURRENCY), String(DURATION * 1000), String(rate)]);
    let out = '';
    c.stdout!.on('data', (d) => (out += d));
    c.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`load generator exited ${code}`))));
  });
}

export const rule = (http: boolean) => ({
  apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'bench-l7', namespace: 'default' },
  spec: {
    endpointSelector: { matchLabels: { app: 'bench-server' } },
    ingress: [{ fromEndpoints: [{ matchLabels: { app: 'bench-client' } }], toPorts: [{ ports: [{ port: '8080', protocol: 'TCP' }], ...(http ? { rules: { http: [{}] } } : {}) }] }],
  },
});

/** The agent's RSS (its resident map pages included: they are mappings of the process) in MiB while `busy` runs: the highest sample. */
async function peakMemory<T>(agent: TestAgent, busy: Promise<T>): Promise<[T, number]> {
  const pid = agent.proc!.pid!;
  let peak = 0;
  const sample = () => (peak = Math.max(peak, rssKiB(pid) / 1024));
  const t = setInterval(sample, 200);
  try {
    return [await busy, peak];
  } finally {
    clearInterval(t);
    sample();
  }
}

/** Uploads 1 GiB through the proxy again and again until `stop` is called; resolves with MB/s. */
function uploads(ns: string, ip: string): { stop: () => Promise<number> } {
  let stopped = false;
  let bytes = 0;
  const t0 = performance.now();
  const loop = (async () => {
    while (!stopped) {
      await runAsync(['ip', 'netns', 'exec', ns, 'sh', '-c', `head -c ${GIB} /dev/zero | curl -s -o /dev/null -T - -H 'content-type: application/octet-stream' http://${ip}:8080/upload`]);
      bytes += GIB;
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      return bytes / 1e6 / ((performance.now() - t0) / 1000);
    },
  };
}

export async function benchL7() {
  const agent = new TestAgent();
  try {
    await agent.start();
    await agent.createPod('bench-client', { app: 'bench-client' });
    const server = await agent.createPod('bench-server', { app: 'bench-server' }, ['node', '-e', SERVER]);
    const iperfServer = await agent.createPod('bench-iperf-b', { app: 'bench-iperf-b' });
    await agent.createPod('bench-iperf-a', { app: 'bench-iperf-a' });
    await waitListening(agent.podNetns('bench-server'), 8080);
    const client = agent.podNetns('bench-client');
    const runs: Record<'l4' | 'l7' | 'l4Rate' | 'l7Rate', Load[]> = { l4: [], l7: [], l4Rate: [], l7Rate: [] };
    const memory: number[] = [];
    // Alternate the two so a busy moment on the machine hits both alike.
    for (let i = 0; i < REPEAT; i++) {
      await agent.api('PUT', '/v1/policy', [rule(false)]);
      runs.l4.push(await load(client, server.podIP));
      runs.l4Rate.push(await load(client, server.podIP, RATE));
      await agent.api('PUT', '/v1/policy', [rule(true)]);
      const [l7, peak] = await peakMemory(agent, load(client, server.podIP));
      runs.l7.push(l7);
      memory.push(peak);
      runs.l7Rate.push(await load(client, server.podIP, RATE));
    }
    const iperf = () => tcpGbps(agent.podNetns('bench-iperf-a'), agent.podNetns('bench-iperf-b'), iperfServer.podIP);
    const solo = await iperf();
    const up = uploads(client, server.podIP);
    const shared = await iperf();
    const uploadMBps = await up.stop();
    const med = (xs: Load[], k: keyof Load) => xs.map((x) => x[k]).sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    return {
      l4_rps: Math.round(med(runs.l4, 'rps')),
      l7_rps: Math.round(med(runs.l7, 'rps')),
      ratio_l7_vs_l4_rps: round(med(runs.l7, 'rps') / med(runs.l4, 'rps')),
      l4_p50_us: Math.round(med(runs.l4, 'p50')),
      l7_p50_us: Math.round(med(runs.l7, 'p50')),
      l7_fixed_rate_rps: RATE,
      l4_fixed_rate_p50_us: Math.round(med(runs.l4Rate, 'p50')),
      l7_fixed_rate_p50_us: Math.round(med(runs.l7Rate, 'p50')),
      l7_added_p50_us: Math.round(med(runs.l7Rate, 'p50') - med(runs.l4Rate, 'p50')),
      l7_added_p99_us: Math.round(med(runs.l7Rate, 'p99') - med(runs.l4Rate, 'p99')),
      l7_busy_agent_plus_maps_mib: round(median(memory), 1),
      iperf_solo_gbps: round(solo),
      iperf_during_l7_upload_gbps: round(shared),
      ratio_iperf_during_l7_upload: round(shared / solo),
      l7_upload_mbytes_per_s: Math.round(uploadMBps),
    };
  } finally {
    await agent.destroy();
  }
}
