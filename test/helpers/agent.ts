// Runs a real ciliary-agent in a throw-away node namespace for tests, and talks to its API.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeNetns, removeNetns, sh, sleep } from './sys.ts';

const repo = join(import.meta.dirname, '..', '..');
let seq = 0;

export interface ApiResponse {
  status: number;
  body: any;
}

export class TestAgent {
  readonly node: string;
  private ns = '';
  private dir = '';
  proc?: ChildProcess;

  constructor(readonly extraArgs: string[] = []) {
    this.node = `t${process.pid % 100000}x${seq++}`;
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
    this.proc = spawn('bash', ['-c', cmd], { stdio: 'ignore' });
    for (let i = 0; i < 200; i++) {
      if (existsSync(this.socket)) {
        try {
          if ((await this.api('GET', '/v1/healthz')).status === 200) return;
        } catch {
          /* not listening yet */
        }
      }
      if (this.proc.exitCode !== null) break;
      await sleep(100);
    }
    throw new Error(`agent did not come up:\n${this.log().slice(-3000)}`);
  }

  log(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
  }

  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const done = new Promise((r) => p.once('exit', r));
    p.kill(signal);
    await done;
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

  /** Collects monitor events while `action` runs. */
  async monitor(action: () => Promise<void>, query = ''): Promise<any[]> {
    const events: any[] = [];
    let buf = '';
    const req = request({ socketPath: this.socket, path: `/v1/monitor${query}` }, (res) => {
      res.on('data', (d) => {
        buf += d;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (line.trim()) events.push(JSON.parse(line));
        }
      });
    });
    req.on('error', () => undefined);
    req.end();
    await sleep(200);
    try {
      await action();
      await sleep(300);
    } finally {
      req.destroy();
    }
    return events;
  }

  async createPod(name: string, labels: Record<string, string> = {}, command?: string[]): Promise<any> {
    const r = await this.api('POST', '/v1/pods', { name, namespace: 'default', labels, ...(command ? { command } : {}) });
    if (r.status !== 200 && r.status !== 201) throw new Error(`create pod ${name}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }

  podNetns(name: string, namespace = 'default'): string {
    return `cil-${this.node}-${namespace}-${name}`;
  }

  /** Stops the agent and removes everything it and its pods made. */
  async destroy(): Promise<void> {
    if (!this.ns) return;
    await this.kill('SIGTERM');
    for (const ns of readdirSync('/var/run/netns').filter((n) => n.startsWith(`cil-${this.node}-`))) {
      sh('ip', ['netns', 'del', ns], { allowFail: true });
      rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
    }
    removeNetns(this.ns);
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}
