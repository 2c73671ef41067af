// netperf stand-in: `netperf -t TCP_MAERTS|TCP_STREAM -H HOST [-l SECS] [-- -m BYTES]` runs iperf3 against the
// netserver stand-in (iperf3 -s) and prints netperf's result table, so the seeds' commands run as written.
import { spawnSync } from 'node:child_process';

const HEADER = ['Recv   Send    Send', 'Socket Socket  Message  Elapsed', 'Size   Size    Size     Time     Throughput', 'bytes  bytes   bytes    secs.    10^6bits/sec'];
const IPERF_PORT = 5201;

function usage(why: string): never {
  process.stderr.write(`netperf (ciliary stand-in over iperf3): ${why}\nusage: netperf -t TCP_MAERTS|TCP_STREAM -H HOST [-l SECONDS] [-p PORT] [-- -m BYTES]\n`);
  process.exit(2);
}

/** Global options before `--`, test-specific ones after it (netperf's split). */
function parseArgs(argv: string[]): { test: string; host: string; seconds: number; port: number; message: number } {
  const dashes = argv.indexOf('--');
  const global = dashes >= 0 ? argv.slice(0, dashes) : argv;
  const specific = dashes >= 0 ? argv.slice(dashes + 1) : [];
  const opt = (list: string[], flag: string): string | undefined => {
    let v: string | undefined;
    for (let i = 0; i < list.length; i++) {
      if (list[i] === flag) v = list[++i];
      else if (list[i].startsWith(flag) && list[i].length > flag.length) v = list[i].slice(flag.length);
    }
    return v;
  };
  const num = (v: string | undefined, dflt: number, what: string): number => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) usage(`${what} "${v}" is not a positive number`);
    return n;
  };
  const test = (opt(global, '-t') ?? 'TCP_STREAM').toUpperCase();
  if (test !== 'TCP_STREAM' && test !== 'TCP_MAERTS') usage(`test "${test}" is not supported (TCP_STREAM, TCP_MAERTS)`);
  const host = opt(global, '-H') ?? usage('-H HOST is required');
  return {
    test, host, seconds: num(opt(global, '-l'), 10, '-l'), port: Math.floor(num(opt(global, '-p')?.split(',')[0], IPERF_PORT, '-p')),
    message: Math.floor(num(opt(specific, '-m'), 16384, '-m')),
  };
}

interface IperfResult {
  start: { sndbuf_actual?: number; rcvbuf_actual?: number };
  end: { sum_received: { seconds: number; bits_per_second: number } };
  error?: string;
}

const a = parseArgs(process.argv.slice(2));
const run = spawnSync('iperf3', ['-c', a.host, '-p', String(a.port), '-t', String(a.seconds), '-l', String(a.message), '-J', ...(a.test === 'TCP_MAERTS' ? ['-R'] : [])], { encoding: 'utf8' });
if (run.error) {
  process.stderr.write(`netperf: cannot run iperf3: ${run.error.message}\n`);
  process.exit(1);
}
let r: IperfResult;
try {
  r = JSON.parse(run.stdout) as IperfResult;
} catch {
  process.stderr.write(`netperf: iperf3 gave no result: ${run.stderr.trim() || run.stdout.trim()}\n`);
  process.exit(1);
}
if (r.error || !r.end?.sum_received) {
  process.stderr.write(`establish control: are you sure there is a netserver listening on ${a.host} at port ${a.port}? (${r.error ?? 'no result'})\n`);
  process.exit(1);
}
// MAERTS: this side receives, the netserver side sends; STREAM the other way round. iperf3 reports this side's buffers.
const local = a.test === 'TCP_MAERTS' ? r.start.rcvbuf_actual ?? 0 : r.start.sndbuf_actual ?? 0;
const remote = a.test === 'TCP_MAERTS' ? r.start.sndbuf_actual ?? 0 : r.start.rcvbuf_actual ?? 0;
const [recv, send] = a.test === 'TCP_MAERTS' ? [local, remote] : [remote, local];
const sum = r.end.sum_received;
const cells = [String(recv).padEnd(6), String(send).padEnd(6) + ' ', String(a.message).padEnd(6) + '  ', sum.seconds.toFixed(2).padEnd(6) + '  ', (sum.bits_per_second / 1e6).toFixed(2)];
process.stdout.write(`${HEADER.join('\n')}\n${cells.join(' ')}\n`);
