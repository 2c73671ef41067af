// L7: small HTTP requests over keep-alive connections to a pod, first with an L4 rule only, then
// with an L7 rule (`http: [{}]`) sending them through the in-process proxy — requests/s and the
// latency the proxy adds at p50 and p99, measured in the same run.
import { TestAgent } from '../test/helpers/agent.ts';
import { spawnTracked, waitListening } from '../test/helpers/sys.ts';
import { DURATION, REPEAT, round } from './lib.ts';

// argv: host port concurrency durationMs → {rps, p50, p99} (latencies in microseconds)
const CLIENT = `const http = require('http');
const [host, port, conc, dur] = process.argv.slice(1);
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(conc) });
const lat = []; let done = false;
function one() {
  if (done) return;
  const t = process.hrtime.bigint();
  http.get({ host, port: Number(port), path: '/', agent }, (r) => { r.resume(); r.on('end', () => { lat.push(Number(process.hrtime.bigint() - t) / 1000); one(); }); })
    .on('error', () => setTimeout(one, 10));
}
const t0 = performance.now();
for (let i = 0; i < Number(conc); i++) one();
setTimeout(() => {
  done = true;
  lat.sort((a, b) => a - b);
  const q = (p) => lat[Math.min(lat.length - 1, Math.floor(lat.length * p))];
  console.log(JSON.stringify({ rps: lat.length / ((performance.now() - t0) / 1000), p50: q(0.5), p99: q(0.99) }));
  process.exit(0);
}, Number(dur));`;

const SERVER = `require('http').createServer((q, s) => { q.resume(); s.end('ok'); }).listen(8080, '0.0.0.0')`;
const CONCURRENCY = 8;

function load(ns: string, ip: string): Promise<{ rps: number; p50: number; p99: number }> {
  return new Promise((resolve, reject) => {
    const c = spawnTracked('ip', ['netns', 'exec', ns, 'node', '-e', CLIENT, ip, '8080', String(CONCURRENCY), String(DURATION * 1000)]);
    let out = '';
    c.stdout!.on('data', (d) => (out += d));
    c.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`load generator exited ${code}`))));
  });
}

const rule = (http: boolean) => ({
  apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: 'bench-l7', namespace: 'default' },
  spec: {
    endpointSelector: { matchLabels: { app: 'bench-server' } },
    ingress: [{ fromEndpoints: [{ matchLabels: { app: 'bench-client' } }], toPorts: [{ ports: [{ port: '8080', protocol: 'TCP' }], ...(http ? { rules: { http: [{}] } } : {}) }] }],
  },
});

export async function benchL7() {
  const agent = new TestAgent();
  try {
    await agent.start();
    await agent.createPod('bench-client', { app: 'bench-client' });
    const server = await agent.createPod('bench-server', { app: 'bench-server' }, ['node', '-e', SERVER]);
    await waitListening(agent.podNetns('bench-server'), 8080);
    const l4: Array<{ rps: number; p50: number; p99: number }> = [];
    const l7: typeof l4 = [];
    // Alternate the two so a busy moment on the machine hits both alike.
    for (let i = 0; i < REPEAT; i++) {
      await agent.api('PUT', '/v1/policy', [rule(false)]);
      l4.push(await load(agent.podNetns('bench-client'), server.podIP));
      await agent.api('PUT', '/v1/policy', [rule(true)]);
      l7.push(await load(agent.podNetns('bench-client'), server.podIP));
    }
    const med = (xs: typeof l4, k: 'rps' | 'p50' | 'p99') => xs.map((x) => x[k]).sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    return {
      l4_rps: Math.round(med(l4, 'rps')),
      l7_rps: Math.round(med(l7, 'rps')),
      ratio_l7_vs_l4_rps: round(med(l7, 'rps') / med(l4, 'rps')),
      l4_p50_us: Math.round(med(l4, 'p50')),
      l7_p50_us: Math.round(med(l7, 'p50')),
      l7_added_p50_us: Math.round(med(l7, 'p50') - med(l4, 'p50')),
      l7_added_p99_us: Math.round(med(l7, 'p99') - med(l4, 'p99')),
    };
  } finally {
    await agent.destroy();
  }
}
