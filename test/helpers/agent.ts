// Runs a real ciliary-agent in a throw-away node namespace for tests, and talks to its API.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, readFileSync } from 'node:fs';
import { request, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killNetnsPids, makeNetns, poll, register, removeNetns, sh, within } from './sys.ts';

const repo = join(import.meta.dirname, '..', '..');
let seq = 0;

export interface ApiResponse {
  status: number;
  body: any;
}

/** An NDJSON stream from the agent (monitor, flows, trace), collected as it arrives. */
export class EventStream {
  readonly events: any[] = [];
  private waiters = new Set<() => void>();
  private closed = false;
  readonly ended: Promise<void>;

  constructor(private readonly res: IncomingMessage) {
    let buf = '';
    res.setEncoding('utf8');
    res.on('data', (d: string) => {
      buf += d;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.trim()) this.events.push(JSON.parse(line));
      }
      for (const w of this.waiters) w();
    });
    this.ended = new Promise((resolve) => {
      const end = () => {
        this.closed = true;
        for (const w of this.waiters) w();
        resolve();
      };
      res.on('end', end);
      res.on('close', end);
      res.on('error', end);
    });
  }

  /** The first event (already received or still to come) that `match` accepts; throws after `timeoutMs` or when the stream ends first. */
  waitFor(what: string, match: (e: any) => boolean, timeoutMs = 5000): Promise<any> {
    let check: () => void = () => undefined;
    const found = new Promise<any>((resolve, reject) => {
      check = () => {
        const e = this.events.find(match);
        if (e !== undefined) resolve(e);
        else if (this.closed) reject(new Error(`stream ended without ${what}; got:\n${this.events.map((x) => JSON.stringify(x)).join('\n')}`));
      };
      this.waiters.add(check);
      check();
    });
    return within(`${what}; got:\n${this.events.map((x) => JSON.stringify(x)).join('\n')}`, found, timeoutMs).finally(() => this.waiters.delete(check));
  }

  close(): void {
    this.res.destroy();
  }
}

export class TestAgent {
  readonly node: string;
  private ns = '';
  private dir = '';
  proc?: ChildProcess;

  constructor(readonly extraArgs: string[] = []) {
    this.node = `t${process.pid % 100000}x${seq++}`;
    register('prefix', `cil-${this.node}-`);
  }

  // Made on first use, so a suite that is filtered out leaves nothing behind.
  get nodeNetns(): string {
    return (this.ns ||= makeNetns('n'));
  }

  get stateDir(): string {
    return (this.dir ||= mkdtempSync(join(tmpdir(), 'ciliary-agent-')));
  }

  get socket(): string {
    return join(this.stateDir, 'agent.sock');
  }

  private get logFile(): string {
    return join(this.stateDir, 'agent.log');
  }

  /** Starts the agent inside the node namespace (network only: it must share our mount namespace). */
  async start(): Promise<void> {
    rmSync(this.socket, { force: true });
    const args = ['--net=/var/run/netns/' + this.nodeNetns, join(repo, 'bin', 'ciliary-agent'),
      '--node-name', this.node, '--state-dir', this.stateDir, '--kvstore', 'local', '--log-format', 'json', ...this.extraArgs];
    const cmd = `exec nsenter ${args.map((a) => `'${a}'`).join(' ')} >> '${this.logFile}' 2>&1`;
    const proc = (this.proc = spawn('bash', ['-c', cmd], { stdio: 'ignore' }));
    const healthy = async () => {
      if (proc.exitCode !== null) throw new Error(`agent exited (${proc.exitCode}):\n${this.log().slice(-3000)}`);
      return existsSync(this.socket) && (await this.api('GET', '/v1/healthz').then((r) => r.status === 200, () => false));
    };
    await poll('the agent to answer /v1/healthz', healthy, 20_000, 100).catch((e: Error) => {
      throw new Error(`agent did not come up: ${e.message}\n${this.log().slice(-3000)}`);
    });
  }

  log(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
  }

  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const done = new Promise((r) => p.once('exit', r));
    p.kill(signal);
    // An agent that does not finish its shutdown in time is killed: a test never hangs on it.
    const t = setTimeout(() => p.kill('SIGKILL'), 15_000);
    await done;
    clearTimeout(t);
  }

  api(method: string, path: string, body?: unknown): Promise<ApiResponse> {
    return new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : JSON.stringify(body);
      const req = request({ socketPath: this.socket, method, path, headers: data ? { 'content-type': 'application/json' } : {} }, (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => {
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            /* plain text */
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      });
      req.on('error', reject);
      req.end(data);
    });
  }

  /** Opens an NDJSON stream; resolves once the agent has answered (monitor and flows?follow subscribe before answering). */
  openStream(path: string): Promise<EventStream> {
    return new Promise((resolve, reject) => {
      const req = request({ socketPath: this.socket, path }, (res) => {
        if (res.statusCode !== 200) {
          let text = '';
          res.on('data', (d) => (text += d));
          res.on('end', () => reject(new Error(`GET ${path}: ${res.statusCode} ${text}`)));
          return;
        }
        resolve(new EventStream(res));
      });
      req.on('error', reject);
      req.end();
    });
  }

  /**
   * Watches /v1/monitor`query` while `action` runs and resolves with the first event `match` accepts
   * (within `timeoutMs`) and the action's result. With `stopAction` the action is aborted once the
   * event is there (a denied connection need not run into its own timeout).
   */
  async expectEvent<T>(query: string, what: string, match: (e: any) => boolean, action: (signal: AbortSignal) => Promise<T>,
    { timeoutMs = 5000, stopAction = false } = {}): Promise<{ event: any; result: T | undefined }> {
    const stream = await this.openStream(`/v1/monitor${query}`);
    const abort = new AbortController();
    const acting = action(abort.signal);
    try {
      const event = await stream.waitFor(what, match, timeoutMs);
      if (stopAction) abort.abort();
      return { event, result: await acting };
    } finally {
      abort.abort();
      stream.close();
      await acting.catch(() => undefined);
    }
  }

  async createPod(name: string, labels: Record<string, string> = {}, command?: string[]): Promise<any> {
    const r = await this.api('POST', '/v1/pods', { name, namespace: 'default', labels, ...(command ? { command } : {}) });
    if (r.status !== 200 && r.status !== 201) throw new Error(`create pod ${name}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }

  podNetns(name: string, namespace = 'default'): string {
    return `cil-${this.node}-${namespace}-${name}`;
  }

  /** Stops the agent and removes everything it and its pods made (also after a SIGKILL, when pods outlive the agent). */
  async destroy(): Promise<void> {
    if (!this.ns) return;
    await this.kill('SIGTERM');
    const survivors: string[] = [];
    for (const ns of readdirSync('/var/run/netns').filter((n) => n.startsWith(`cil-${this.node}-`))) {
      const left = killNetnsPids(ns);
      if (left.length) survivors.push(`${ns}: ${left.join(' ')}`);
      sh('ip', ['netns', 'del', ns], { allowFail: true });
      rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
    }
    removeNetns(this.ns);
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    if (survivors.length) throw new Error(`pod processes survived SIGKILL: ${survivors.join('; ')}`);
  }
}
