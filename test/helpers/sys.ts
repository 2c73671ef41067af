// Shell helpers for real-traffic tests: run commands, make throw-away namespaces, track the
// processes a test starts, wait for events with deadlines, and clean up always.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const isRoot = process.getuid?.() === 0;

/** Tests that need root say so loudly when skipped; CI runs as root and never skips them. */
export function requireRoot(): boolean {
  if (!isRoot) console.warn('\n*** SKIPPING real-traffic tests: they need root (network namespaces, /dev/net/tun) ***\n');
  return isRoot;
}

export function sh(cmd: string, args: string[], opts: { allowFail?: boolean; input?: string; timeoutMs?: number } = {}): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', input: opts.input, timeout: opts.timeoutMs ?? 30_000, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (e) {
    if (opts.allowFail) return (e as { stdout?: string }).stdout ?? '';
    const err = e as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${err.stderr || err.message}`);
  }
}

/** Runs CMD inside a namespace and returns stdout. */
export function nsExec(ns: string, args: string[], opts: { allowFail?: boolean; timeoutMs?: number } = {}): string {
  return sh('ip', ['netns', 'exec', ns, ...args], opts);
}

// ---- processes a test starts: tracked by pid, killed by pid -------------------------------------

const children = new Set<ChildProcess>();

/** Spawns a tracked child (stdout and stderr piped; stdin too with `stdin`): killed when the test process exits, if the test has not stopped it. */
export function spawnTracked(cmd: string, args: string[], { stdin = false } = {}): ChildProcess {
  const c = spawn(cmd, args, { stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  children.add(c);
  c.once('exit', () => children.delete(c));
  return c;
}

/** Starts a long-running command inside a namespace (`ip netns exec` execs it: the pid is the command's). */
export function nsSpawn(ns: string, args: string[]): ChildProcess {
  return spawnTracked('ip', ['netns', 'exec', ns, ...args]);
}

/** Kills a child we started, by pid, and waits for it to go. */
export async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 2000);
  await done;
  clearTimeout(t);
}

/** Every tracked child still running: SIGKILL by pid (synchronous, for the exit hook). */
export function killTracked(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

/** Runs a command asynchronously (so the event loop keeps forwarding packets) and collects its output. */
export function run(cmd: string, args: string[], timeoutMs = 60_000, signal?: AbortSignal): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawnTracked(cmd, args);
    if (signal?.aborted) c.kill('SIGKILL');
    signal?.addEventListener('abort', () => c.kill('SIGKILL'), { once: true });
    let stdout = '';
    let stderr = '';
    c.stdout!.on('data', (d) => (stdout += d));
    c.stderr!.on('data', (d) => (stderr += d));
    const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('exit', (code, sig) => {
      clearTimeout(t);
      resolve({ code: code ?? (sig ? 128 : 1), stdout, stderr });
    });
  });
}

// ---- waiting: for an event, or polling a condition, always with a deadline -------------------------

/** Polls `probe` every `everyMs` until it returns something other than undefined/false; throws after `timeoutMs`. */
export async function poll<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A promise that rejects after `timeoutMs` unless `p` settles first. */
export function within<T>(what: string, p: Promise<T>, timeoutMs: number): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}

/** Resolves with the first line of a child's stdout or stderr matching `re` (the child announcing it is ready). */
export function waitForOutput(child: ChildProcess, re: RegExp, what: string, timeoutMs = 10_000): Promise<string> {
  return within(what, new Promise<string>((resolve, reject) => {
    let seen = '';
    const onData = (d: Buffer) => {
      seen += d;
      const m = seen.split('\n').find((l) => re.test(l));
      if (m !== undefined) resolve(m);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${what}: process exited (${code}) first; output:\n${seen}`)));
  }), timeoutMs);
}

/** Waits until something in namespace `ns` listens on `port` (a server a pod or test started is up). */
export function waitListening(ns: string, port: number, proto: 'tcp' | 'udp' = 'tcp', timeoutMs = 10_000): Promise<true> {
  const flags = proto === 'tcp' ? '-Hltn' : '-Hlun';
  return poll(`${proto} port ${port} listening in ${ns}`, () => nsExec(ns, ['ss', flags, `sport = :${port}`], { allowFail: true }).trim() !== '', timeoutMs);
}

// ---- namespaces ----------------------------------------------------------------------------------

let counter = 0;
const created = new Set<string>();

/** The run's leak registry (set by test/global-setup.ts): namespaces and node names tests make. */
const registry = process.env.CILIARY_TEST_RUN_DIR;

/** Records a namespace (by name and by inode, so it is found after deletion) or a node-name prefix. */
export function register(kind: 'netns' | 'prefix', name: string): void {
  if (!registry) return;
  const ino = kind === 'netns' && existsSync(nsPath(name)) ? statSync(nsPath(name)).ino : 0;
  appendFileSync(join(registry, 'created'), `${kind} ${name} ${ino}\n`);
}

/** Creates a namespace with a unique name (cil<tag>-<pid>-<n>) and loopback up. */
export function makeNetns(tag = 't'): string {
  const name = `cil${tag}-${process.pid}-${counter++}`;
  sh('ip', ['netns', 'add', name]);
  created.add(name);
  register('netns', name);
  sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return name;
}

/** The pids running in a named namespace. */
export function netnsPids(name: string): number[] {
  return sh('ip', ['netns', 'pids', name], { allowFail: true }).split('\n').filter(Boolean).map(Number).filter((p) => p !== process.pid);
}

/** SIGKILLs every process in the namespace, by pid, until none is left (5 s at most); returns the survivors. */
export function killNetnsPids(name: string): number[] {
  const deadline = Date.now() + 5000;
  let left = netnsPids(name);
  while (left.length && Date.now() < deadline) {
    for (const pid of left) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20); // synchronous: also runs in the exit hook
    left = netnsPids(name);
  }
  return left;
}

/** Deletes a namespace after killing whatever still runs in it. */
export function removeNetns(name: string): void {
  const left = existsSync(nsPath(name)) ? killNetnsPids(name) : [];
  if (left.length) console.error(`namespace ${name}: pids ${left.join(' ')} survived SIGKILL`);
  sh('ip', ['netns', 'del', name], { allowFail: true });
  // A pod namespace's resolv.conf (`ip netns exec` reads /etc/netns/<name>) goes with it.
  if (/^[A-Za-z0-9_.-]+$/.test(name)) rmSync(`/etc/netns/${name}`, { recursive: true, force: true });
  created.delete(name);
}

export function removeAllNetns(): void {
  killTracked();
  for (const n of [...created]) removeNetns(n);
}

process.on('exit', removeAllNetns);

export function nsPath(name: string): string {
  return `/var/run/netns/${name}`;
}

/** A fixed pause. Only for what has no event to wait for (a timer the agent runs, a deliberate idle period). */
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
