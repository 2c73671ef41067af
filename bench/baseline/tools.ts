// The latency suite's C programs (tunfwd: the TUN-to-TUN floor; pingpong: the request/response
// client and server), compiled with gcc -O2 per run, and the processes started from them.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runAsync } from '../lib.ts';

export interface Baselines { tunfwd: string; pingpong: string; remove(): void }

/** Compiles both programs into a fresh temp dir; throws with gcc's messages when one does not build. */
export function buildBaselines(): Baselines {
  const dir = mkdtempSync(join(tmpdir(), 'ciliary-latency-'));
  const built: Record<string, string> = {};
  for (const name of ['tunfwd', 'pingpong']) {
    built[name] = join(dir, name);
    try {
      execFileSync('gcc', ['-O2', '-Wall', '-pthread', '-o', built[name], join(import.meta.dirname, `${name}.c`)], { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      const err = e as { stderr?: Buffer; message: string };
      throw new Error(`latency bench: cannot build baseline ${name}.c with gcc: ${err.stderr?.toString() || err.message}`);
    }
  }
  return { tunfwd: built.tunfwd, pingpong: built.pingpong, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

const running = new Set<ChildProcess>();

/** Kills every process this module started, by pid. */
export function stopAll(): void {
  for (const p of running) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  running.clear();
}
process.on('exit', stopAll);

/** Starts a long-running program and resolves once it prints "ready"; rejects with its stderr if it exits first. */
export function startReady(args: string[]): Promise<ChildProcess> {
  const proc = spawn(args[0], args.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  return new Promise((resolve, reject) => {
    let err = '';
    proc.stderr!.on('data', (d) => (err += d));
    proc.once('error', reject);
    proc.once('exit', (code) => reject(new Error(`${args.join(' ')} exited (${code}) before it was ready: ${err}`)));
    proc.stdout!.on('data', (d) => String(d).includes('ready') && resolve(proc));
  });
}

/** Runs a pingpong client in `ns` and parses its one JSON line. */
export async function pingpongClient(bin: string, ns: string, args: (string | number)[]): Promise<Record<string, number>> {
  return JSON.parse(await runAsync(['ip', 'netns', 'exec', ns, bin, ...args.map(String)]));
}
