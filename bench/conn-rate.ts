// Connection-rate and throughput helpers for the services suite: a tiny HTTP server, a load generator
// that opens a fresh TCP connection per request, and an iperf3 run against any address and port.
import { spawn, type ChildProcess } from 'node:child_process';
import { DURATION, REPEAT, runAsync as run } from './lib.ts';

// Raw `net` on both ends keeps the userspace cost per request small: one request per connection,
// the server answers and closes, like `http.createServer(...)` with `connection: close`.
const HTTP_SERVER = `require('net').createServer((s) => {
  s.on('error', () => {});
  s.once('data', () => s.end('HTTP/1.1 200 OK\\r\\ncontent-length: 2\\r\\nconnection: close\\r\\n\\r\\nok'));
}).listen(Number(process.argv[1]), '0.0.0.0', () => console.log('ready'));`;

// argv: host port concurrency warmupMs durationMs. Prints {rate, errors}: requests completed per second
// (counted after the warm-up) and failed ones.
const LOADGEN = `const net = require('net');
const [host, port, conc, warm, dur] = process.argv.slice(1);
const req = 'GET / HTTP/1.1\\r\\nhost: bench\\r\\nconnection: close\\r\\n\\r\\n';
let n = 0, errors = 0, counting = false, done = false, t0 = 0;
function loop() {
  if (done) return;
  let ok = false;
  const s = net.connect(Number(port), host, () => s.write(req));
  s.once('data', (d) => { ok = d.toString('latin1', 0, 12) === 'HTTP/1.1 200'; });
  s.on('error', () => {});
  s.on('close', () => { if (counting) ok ? n++ : errors++; loop(); });
}
for (let i = 0; i < Number(conc); i++) loop();
setTimeout(() => { counting = true; t0 = performance.now(); }, Number(warm));
setTimeout(() => {
  done = true;
  console.log(JSON.stringify({ rate: n / ((performance.now() - t0) / 1000), errors }));
  process.exit(0);
}, Number(warm) + Number(dur));`;

const CONCURRENCY = 16;
const WARMUP_MS = 500;


async function median(measure: () => Promise<number>): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < REPEAT; i++) xs.push(await measure());
  return xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
}

/** A long-running server in `ns`; `ip netns exec` execs the command, so the child's pid is the server's. */
export interface Server { proc: ChildProcess; stop(): void }

function startServer(ns: string, args: string[], readyLine?: string): Promise<Server> {
  const proc = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const server = { proc, stop: () => { if (proc.exitCode === null) proc.kill('SIGKILL'); } };
  return new Promise((resolve, reject) => {
    let err = '';
    proc.stderr!.on('data', (d) => (err += d));
    proc.once('exit', (code) => reject(new Error(`${args[0]} in ${ns} exited (${code}): ${err}`)));
    if (readyLine) proc.stdout!.on('data', (d) => String(d).includes(readyLine) && resolve(server));
    else setTimeout(() => resolve(server), 300);
  });
}

/** The HTTP server, listening on 0.0.0.0:`port` in `ns`. */
export const httpServer = (ns: string, port = 8080) => startServer(ns, ['node', '-e', HTTP_SERVER, String(port)], 'ready');

/** An iperf3 server on all addresses of `ns`, serving any number of runs. */
export const iperfServer = (ns: string, port = 5201) => startServer(ns, ['iperf3', '-s', '-p', String(port)]);

/** New HTTP connections per second from `ns` to `ip`:`port` (median of REPEAT runs of DURATION seconds). */
export function connRate(ns: string, ip: string, port: number): Promise<number> {
  return median(async () => {
    const out = await run(['ip', 'netns', 'exec', ns, 'node', '-e', LOADGEN, ip, String(port),
      String(CONCURRENCY), String(WARMUP_MS), String(DURATION * 1000)]);
    const { rate, errors } = JSON.parse(out);
    if (errors > rate * DURATION * 0.01) throw new Error(`conn rate to ${ip}:${port}: ${errors} failed requests (rate ${rate}/s)`);
    return rate;
  });
}

/** One DURATION-long iperf3 run's TCP throughput in Gbit/s from `ns` to the server at `ip`:`port`, received side. */
export async function tcpGbpsOnceTo(ns: string, ip: string, port: number): Promise<number> {
  const j = JSON.parse(await run(['ip', 'netns', 'exec', ns, 'iperf3', '-c', ip, '-p', String(port), '-J', '-t', String(DURATION), '-O', '1']));
  return j.end.sum_received.bits_per_second / 1e9;
}

/** TCP throughput in Gbit/s from each `[ns, ip, port]`'s client namespace to its server, received side:
 *  the median of REPEAT runs per target, the targets taking turns so that drift in the machine's load
 *  hits them alike. */
export async function tcpGbpsTo(targets: [string, string, number][]): Promise<number[]> {
  const runs: number[][] = targets.map(() => []);
  for (let r = 0; r < REPEAT; r++) {
    for (const [i, [ns, ip, port]] of targets.entries()) runs[i].push(await tcpGbpsOnceTo(ns, ip, port));
  }
  return runs.map((xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]);
}
