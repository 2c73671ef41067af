// The run's leak check. Before the tests: records the network namespaces that exist (by inode,
// from /proc/*/ns/net and /var/run/netns) and gives the workers a registry directory (the
// CILIARY_TEST_RUN_DIR variable, which every process a test starts inherits). After them: fails
// the run, listing what it finds, when a namespace a test made is still there, or a process of
// the run lives in a namespace that did not exist before; it then removes those, by pid and name.
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const NETNS_DIR = '/var/run/netns';
let before = new Set<number>();
let runDir = '';

/** Inode of every named namespace. */
function namedNetns(): Map<string, number> {
  const m = new Map<string, number>();
  let names: string[];
  try {
    names = readdirSync(NETNS_DIR);
  } catch {
    return m;
  }
  for (const n of names) {
    try {
      m.set(n, statSync(join(NETNS_DIR, n)).ino);
    } catch {
      /* deleted meanwhile, or not a namespace mount */
    }
  }
  return m;
}

interface Proc {
  pid: number;
  netns: number;
  marked: boolean;
  cmd: string;
}

/** Every live (non-zombie) process with its namespace inode and whether it carries this run's marker. */
function processes(marker: string): Proc[] {
  const out: Proc[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (/^\d+ \(.*\) Z/s.test(stat)) continue;
      const netns = Number(/\[(\d+)\]/.exec(readlinkSync(`/proc/${d}/ns/net`))![1]);
      const env = readFileSync(`/proc/${d}/environ`, 'latin1');
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'latin1').split('\0').join(' ').trim().slice(0, 160);
      out.push({ pid: Number(d), netns, marked: env.split('\0').includes(marker), cmd });
    } catch {
      /* exited meanwhile, or a kernel thread */
    }
  }
  return out;
}

export function setup(): void {
  before = new Set([...namedNetns().values(), ...processes('').map((p) => p.netns)]);
  runDir = mkdtempSync(join(tmpdir(), 'ciliary-test-run-'));
  process.env.CILIARY_TEST_RUN_DIR = runDir;
  // The agent's bundle, built once here rather than by the first agents of parallel test files at once.
  execFileSync(process.execPath, [join(import.meta.dirname, '..', 'scripts', 'agent-bundle.mjs')], { stdio: 'ignore' });
}

export function teardown(): void {
  const marker = `CILIARY_TEST_RUN_DIR=${runDir}`;
  let created: string[][] = [];
  try {
    created = readFileSync(join(runDir, 'created'), 'utf8').trim().split('\n').filter(Boolean).map((l) => l.split(' '));
  } catch {
    /* no test made a namespace */
  }
  const names = new Set(created.filter(([k]) => k === 'netns').map(([, n]) => n));
  const prefixes = created.filter(([k]) => k === 'prefix').map(([, p]) => p);
  const inodes = new Set(created.filter(([k]) => k === 'netns').map(([, , ino]) => Number(ino)).filter((i) => i > 0));
  const named = namedNetns();
  const leftNetns = [...named].filter(([n, ino]) => !before.has(ino) && (names.has(n) || prefixes.some((p) => n.startsWith(p))));
  const leftInodes = new Set(leftNetns.map(([, ino]) => ino));
  const namedInodes = new Set(named.values());
  const leftProcs = processes(marker).filter((p) => !before.has(p.netns) && p.pid !== process.pid
    && (leftInodes.has(p.netns) || (!namedInodes.has(p.netns) && (p.marked || inodes.has(p.netns)))));
  rmSync(runDir, { recursive: true, force: true });
  if (!leftNetns.length && !leftProcs.length) return;
  const report = [
    ...leftNetns.map(([n]) => `  namespace ${n}`),
    ...leftProcs.map((p) => `  pid ${p.pid} in ${namedInodes.has(p.netns) ? 'namespace' : 'deleted namespace'} net:[${p.netns}]: ${p.cmd}`),
  ];
  for (const p of leftProcs) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      /* gone by now */
    }
  }
  for (const [n] of leftNetns) {
    try {
      execFileSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
    } catch {
      /* gone by now */
    }
  }
  process.exitCode = 1; // vitest reports a teardown error but would still exit 0
  throw new Error(`the tests left ${leftNetns.length} namespace(s) and ${leftProcs.length} process(es) behind (now removed):\n${report.join('\n')}`);
}
