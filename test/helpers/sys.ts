// Shell helpers for real-traffic tests: run commands, make throw-away namespaces, clean up always.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';

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

/** Starts a long-running command inside a namespace; the caller must kill it by pid. */
export function nsSpawn(ns: string, args: string[]): ChildProcess {
  return spawn('ip', ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}

let counter = 0;
const created = new Set<string>();

/** Creates a namespace with a unique name (cilt-<pid>-<n>) and loopback up. */
export function makeNetns(tag = 't'): string {
  const name = `cil${tag}-${process.pid}-${counter++}`;
  sh('ip', ['netns', 'add', name]);
  created.add(name);
  sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return name;
}

export function removeNetns(name: string): void {
  sh('ip', ['netns', 'del', name], { allowFail: true });
  created.delete(name);
}

export function removeAllNetns(): void {
  for (const n of [...created]) removeNetns(n);
}

process.on('exit', removeAllNetns);

export function nsPath(name: string): string {
  return `/var/run/netns/${name}`;
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

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs a command asynchronously (so the event loop keeps forwarding packets) and collects its output. */
export function run(cmd: string, args: string[], timeoutMs = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('exit', (code, sig) => {
      clearTimeout(t);
      resolve({ code: code ?? (sig ? 128 : 1), stdout, stderr });
    });
  });
}
