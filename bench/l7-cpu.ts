// npx tsx bench/l7-cpu.ts: where the CPU goes per request, L4 vs L7 (`http: [{}]`), at full load —
// (or at L7_CPU_RATE requests/s, the same wake-ups for every variant) — user+system time of each
// thread of the agent (datapath thread, proxy worker, the rest), of the
// load generator and of the server, from /proc, divided by the requests answered.
import { readdirSync, readFileSync } from 'node:fs';
import { TestAgent } from '../test/helpers/agent.ts';
import { sh, waitListening } from '../test/helpers/sys.ts';
import { load, rule, SERVER } from './l7.ts';

const TICK_US = 1e6 / 100; // USER_HZ
const RATE = Number(process.env.L7_CPU_RATE ?? 0);

/** utime+stime (or only stime) in µs of every thread of `pid`, by tid. */
function threads(pid: number, sysOnly = false): Map<number, number> {
  const out = new Map<number, number>();
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    const f = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    out.set(Number(t), ((sysOnly ? 0 : Number(rest[11])) + Number(rest[12])) * TICK_US);
  }
  return out;
}

/** All of the machine's CPU time (jiffies → µs) spent in softirq: work not charged to a thread of ours. */
function softirq(): number {
  return Number(readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/)[7]) * TICK_US;
}

const pidsIn = (ns: string) => sh('ip', ['netns', 'pids', ns]).split('\n').filter(Boolean).map(Number);

async function main(): Promise<void> {
  const agent = new TestAgent();
  try {
    await agent.start();
    await agent.createPod('bench-client', { app: 'bench-client' });
    const server = await agent.createPod('bench-server', { app: 'bench-server' }, ['node', '-e', SERVER]);
    await waitListening(agent.podNetns('bench-server'), 8080);
    const client = agent.podNetns('bench-client');
    // The agent's node process: bash exec'd nsenter exec'd node, so the pid is the same.
    const agentPid = agent.proc!.pid!;
    const serverPid = pidsIn(agent.podNetns('bench-server'))[0];
    for (const mode of ['l4', 'l7', 'l4', 'l7']) {
      await agent.api('PUT', '/v1/policy', [rule(mode === 'l7')]);
      await load(client, server.podIP, RATE); // warm-up and the policy in place
      const a0 = threads(agentPid);
      const k0 = threads(agentPid, true);
      const s0 = threads(serverPid);
      const q0 = softirq();
      const before = process.hrtime.bigint();
      const r = await load(client, server.podIP, RATE);
      const wall = Number(process.hrtime.bigint() - before) / 1e3;
      const a1 = threads(agentPid);
      const k1 = threads(agentPid, true);
      const s1 = threads(serverPid);
      const n = r.rps * (wall / 1e6);
      const per = (us: number) => (us / n).toFixed(1);
      const byThread = [...a1].map(([tid, us]) => [tid, us - (a0.get(tid) ?? 0)] as const).sort((x, y) => y[1] - x[1]);
      const main = byThread.find(([tid]) => tid === agentPid)?.[1] ?? 0;
      const others = byThread.filter(([tid]) => tid !== agentPid);
      const worker = mode === 'l7' ? others[0]?.[1] ?? 0 : 0;
      const sys = (tid: number) => (k1.get(tid) ?? 0) - (k0.get(tid) ?? 0);
      const rest = others.reduce((s, [, us]) => s + us, 0) - worker;
      const srv = [...s1].reduce((s, [tid, us]) => s + us - (s0.get(tid) ?? 0), 0);
      console.log(JSON.stringify({
        mode, rps: Math.round(r.rps), us_per_req: {
          agent_main: per(main), agent_main_kernel: per(sys(agentPid)), agent_proxy_worker: per(worker), agent_proxy_worker_kernel: per(mode === 'l7' && others[0] ? sys(others[0][0]) : 0), agent_other_threads: per(rest), server: per(srv), client: per(r.cpuUs),
          softirq_machine: per(softirq() - q0),
        }, threads: others.slice(0, 6).map(([tid, us]) => `${readFileSync(`/proc/${agentPid}/task/${tid}/comm`, 'utf8').trim()}:${per(us)}`).join(' '), load: readFileSync('/proc/loadavg', 'utf8').trim(),
      }));
    }
  } finally {
    await agent.destroy();
  }
}

void main();
