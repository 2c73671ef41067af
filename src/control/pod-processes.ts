// Pod processes: a pod's command started in its namespace (with its own hostname), restarted after a
// backoff as its restart policy says, adopted by pid after an agent restart, and stopped with the pod.
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { killProcessGroup, pidAlive } from './process.ts';
import type { PodProcessSpec, PodProcessStatus } from './types.ts';

/** Restart backoff: 1 s, 2 s, 4 s, ... at most 30 s; a process that ran this long starts the series again. */
const BACKOFF_MAX_MS = 30_000;
const BACKOFF_RESET_MS = 60_000;
/** How often processes adopted from a previous agent (not our children) are checked. */
const ADOPTED_POLL_MS = 1000;
/** Runs argv with the pod's hostname in a UTS namespace of its own ($0 is the hostname). */
const UTS_WRAPPER = ['unshare', '--uts', 'sh', '-c', 'hostname "$0" && exec "$@"'];

/** The fields of an endpoint record its process is run from, and which it updates. */
export interface SupervisedPod {
  name: string;
  namespace: string;
  netns: string;
  command?: string[];
  process?: PodProcessSpec;
  pid?: number;
  restarts?: number;
  exitCode?: number;
  startedAt?: string;
}

export interface PodProcessHooks {
  /** Whether r is still the pod's record (not deleted or replaced). */
  current(r: SupervisedPod): boolean;
  /** Persists r after its process state changed. */
  save(r: SupervisedPod): Promise<void>;
}

export class PodProcesses {
  /** Per pod: process state the kvstore does not need (backoff timers, consecutive failures). */
  private readonly procs = new Map<string, { timer?: NodeJS.Timeout; failures: number; waiting: boolean; adopted: boolean; pod?: SupervisedPod }>();
  private adoptedTimer?: NodeJS.Timeout;

  constructor(private readonly stateDir: string, private readonly log: Logger, private readonly hooks: PodProcessHooks) {}

  logPath(r: SupervisedPod): string {
    return join(this.stateDir, 'pods', `${r.namespace}_${r.name}.log`);
  }

  /** Forgets a deleted pod's timers and state. */
  forget(key: string): void {
    clearTimeout(this.procs.get(key)?.timer);
    this.procs.delete(key);
  }

  /** Agent shutdown: no timers left running. */
  shutdown(): void {
    clearInterval(this.adoptedTimer);
    for (const p of this.procs.values()) clearTimeout(p.timer);
    this.procs.clear();
  }

  /** The pod's command, in its namespace, in its own session so it outlives an agent restart. */
  start(r: SupervisedPod): number {
    mkdirSync(join(this.stateDir, 'pods'), { recursive: true });
    const out = openSync(this.logPath(r), 'a');
    const key = `${r.namespace}/${r.name}`;
    const hostname = r.process?.hostname ?? r.name;
    try {
      const argv = ['netns', 'exec', r.netns, ...UTS_WRAPPER, hostname, ...r.command!];
      const env = { ...process.env, HOSTNAME: hostname, ...(r.process?.env ?? {}) };
      const child = spawn('ip', argv, { detached: true, stdio: ['ignore', out, out], env });
      child.unref();
      child.on('error', (err) => this.log.warn({ pod: key, err: err.message }, 'pod command failed'));
      const pid = child.pid ?? 0;
      child.on('exit', (code, signal) => this.exited(r, pid, code ?? (signal ? 128 : 1)));
      r.startedAt = new Date().toISOString();
      r.exitCode = undefined;
      const p = this.procState(key);
      p.waiting = false;
      p.adopted = false;
      return pid;
    } finally {
      closeSync(out);
    }
  }

  private procState(key: string) {
    let p = this.procs.get(key);
    if (!p) this.procs.set(key, (p = { failures: 0, waiting: false, adopted: false }));
    return p;
  }

  /** A pod process ended: restart it after the backoff when its restart policy says so. */
  private exited(r: SupervisedPod, pid: number, code: number | undefined): void {
    const key = `${r.namespace}/${r.name}`;
    if (!this.hooks.current(r) || r.pid !== pid) return; // deleted, or already replaced
    r.pid = undefined;
    r.exitCode = code;
    const policy = r.process?.restartPolicy ?? 'Always';
    const restart = policy === 'Always' || (policy === 'OnFailure' && code !== 0);
    this.log.info({ pod: key, pid, exitCode: code, restart }, 'pod process exited');
    const p = this.procState(key);
    if (!restart) {
      void this.hooks.save(r);
      return;
    }
    const ran = r.startedAt ? Date.now() - Date.parse(r.startedAt) : 0;
    if (ran >= BACKOFF_RESET_MS) p.failures = 0;
    const delay = Math.min(BACKOFF_MAX_MS, 1000 * 2 ** p.failures);
    p.failures++;
    p.waiting = true;
    p.timer = setTimeout(() => {
      p.timer = undefined;
      if (!this.hooks.current(r) || !this.procs.has(key)) return;
      try {
        r.restarts = (r.restarts ?? 0) + 1;
        r.pid = this.start(r);
      } catch (e) {
        this.log.warn({ pod: key, err: (e as Error).message }, 'pod restart failed');
      }
      void this.hooks.save(r);
    }, delay);
    p.timer.unref();
    void this.hooks.save(r);
  }

  /** After an agent restart: watch the previous agent's process by pid (or start it again if it is gone). */
  adopt(r: SupervisedPod): void {
    if (!r.command) return;
    const key = `${r.namespace}/${r.name}`;
    const p = this.procState(key);
    if (r.pid && pidAlive(r.pid)) {
      p.adopted = true;
      p.pod = r;
    } else if (r.pid) {
      this.exited(r, r.pid, undefined);
    }
    this.adoptedTimer ??= setInterval(() => {
      for (const [k, st] of this.procs) {
        const rec = st.pod;
        if (!st.adopted || !rec?.pid || !this.hooks.current(rec) || !this.procs.has(k)) continue;
        if (!pidAlive(rec.pid)) {
          st.adopted = false;
          this.exited(rec, rec.pid, undefined);
        }
      }
    }, ADOPTED_POLL_MS);
    this.adoptedTimer.unref();
  }

  status(r: SupervisedPod): PodProcessStatus | undefined {
    if (!r.command) return undefined;
    const p = this.procs.get(`${r.namespace}/${r.name}`);
    const restarts = r.restarts ?? 0;
    let status: string;
    if (r.pid) status = 'Running';
    else if (p?.waiting) status = (p.failures ?? 0) > 1 ? 'CrashLoopBackOff' : r.exitCode === 0 ? 'Completed' : 'Error';
    else status = r.exitCode === 0 ? 'Completed' : 'Error';
    return { status, restarts, ...(r.exitCode !== undefined ? { exitCode: r.exitCode } : {}), ...(r.startedAt ? { startedAt: r.startedAt } : {}) };
  }

  /** Ends the pod's process group: SIGTERM, then SIGKILL after a grace period. */
  async stop(r: SupervisedPod): Promise<void> {
    if (r.pid) await killProcessGroup(r.pid);
  }
}
