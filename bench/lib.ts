// Shared pieces of the benchmarks: namespace pairs joined by veth or by TUN devices, and iperf3 runs.
import { execFileSync, spawn } from 'node:child_process';
import { native, type TunDevice } from '../src/native/index.ts';
import { killNetnsPids, waitListening } from '../test/helpers/sys.ts';

let seq = 0;
const made: string[] = [];

export function sh(cmd: string, ...args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export function netns(tag: string): string {
  const name = `cilb${tag}-${process.pid}-${seq++}`;
  sh('ip', 'netns', 'add', name);
  made.push(name);
  sh('ip', '-n', name, 'link', 'set', 'lo', 'up');
  return name;
}

/** Deletes the benchmark's namespaces, killing (by pid) whatever still runs in them first. */
export function cleanup(): void {
  while (made.length) {
    const ns = made.pop()!;
    killNetnsPids(ns);
    try { sh('ip', 'netns', 'del', ns); } catch { /* already gone */ }
  }
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => { cleanup(); process.exit(130); });

export const IP_A = '10.203.0.1';
export const IP_B = '10.203.0.2';

/** Two namespaces joined by a kernel veth pair: the baseline. */
export function vethPair(): { a: string; b: string } {
  const a = netns('va');
  const b = netns('vb');
  sh('ip', 'link', 'add', 'eth0', 'netns', a, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', b);
  for (const [ns, ip, peer] of [[a, IP_A, IP_B], [b, IP_B, IP_A]]) {
    sh('ip', '-n', ns, 'addr', 'add', `${ip}/32`, 'dev', 'eth0');
    sh('ip', '-n', ns, 'link', 'set', 'eth0', 'up');
    sh('ip', '-n', ns, 'route', 'add', `${peer}/32`, 'dev', 'eth0');
  }
  return { a, b };
}

/** Two namespaces, each with a TUN eth0 whose fd this process holds. */
export function tunPair(offloads = true): { a: string; b: string; devA: TunDevice; devB: TunDevice; close(): void } {
  const a = netns('ta');
  const b = netns('tb');
  const devA = native.tunOpen('eth0', `/var/run/netns/${a}`, true, offloads, false, true);
  const devB = native.tunOpen('eth0', `/var/run/netns/${b}`, true, offloads, false, true);
  for (const [ns, ip, peer] of [[a, IP_A, IP_B], [b, IP_B, IP_A]]) {
    sh('ip', '-n', ns, 'addr', 'add', `${ip}/32`, 'dev', 'eth0');
    sh('ip', '-n', ns, 'link', 'set', 'eth0', 'up');
    sh('ip', '-n', ns, 'route', 'add', `${peer}/32`, 'dev', 'eth0');
  }
  return { a, b, devA, devB, close: () => { native.closeFd(devA.fd); native.closeFd(devB.fd); } };
}

/** Runs a command without blocking the event loop; rejects with its stderr when it fails. */
export function runAsync(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(args[0], args.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (err += d));
    c.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${args.join(' ')}: ${err || out}`))));
  });
}

/** Runs an iperf3 server in `server` and a client in `client`; the event loop stays free meanwhile. */
async function iperf(client: string, server: string, serverIp: string, clientArgs: string[]): Promise<any> {
  const port = String(5201 + (seq++ % 50));
  const srv = spawn('ip', ['netns', 'exec', server, 'iperf3', '-s', '-1', '-B', serverIp, '-p', port], { stdio: 'ignore' });
  try {
    await waitListening(server, Number(port));
    return JSON.parse(await runAsync(['ip', 'netns', 'exec', client, 'iperf3', '-c', serverIp, '-p', port, '-J', ...clientArgs]));
  } finally {
    if (srv.exitCode === null && srv.signalCode === null) {
      const gone = new Promise((r) => srv.once('exit', r));
      srv.kill('SIGKILL');
      await gone;
    }
  }
}

export const DURATION = Number(process.env.BENCH_SECONDS ?? 3);
export const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);

/** Median of `repeat` runs: two cores shared by sender, receiver and forwarder make single runs noisy. */
async function median(measure: () => Promise<number>, repeat = REPEAT): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < repeat; i++) xs.push(await measure());
  return xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
}

/** One TCP run's throughput in Gbit/s, received side. */
export async function tcpGbpsOnce(client: string, server: string, serverIp = IP_B): Promise<number> {
  const j = await iperf(client, server, serverIp, ['-t', String(DURATION), '-O', '1']);
  return j.end.sum_received.bits_per_second / 1e9;
}

/** TCP throughput in Gbit/s, received side (the median of `repeat` runs). */
export function tcpGbps(client: string, server: string, serverIp = IP_B, repeat = REPEAT): Promise<number> {
  return median(() => tcpGbpsOnce(client, server, serverIp), repeat);
}

/** 64-byte IPv4 UDP packets (36 bytes of payload) delivered per second. */
export function udpPps(client: string, server: string, serverIp = IP_B): Promise<number> {
  return median(async () => {
    const j = await iperf(client, server, serverIp, ['-u', '-b', '0', '-l', '36', '-t', String(DURATION)]);
    const s = j.end.sum;
    return (s.packets - s.lost_packets) / s.seconds;
  });
}

export const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
