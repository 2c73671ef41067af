// The datapath thread's side of the HTTP proxy worker: starts it on the first HTTP redirect, answers
// its map questions (cilium_proxy4 lookups, upstream port registrations: the maps have one writer),
// hands its flow records on, and starts it again, listeners and all, if it dies.
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { build, stop as stopEsbuild } from 'esbuild';
import type { Logger } from 'pino';
import type { HttpRule } from '../../policy/types.ts';
import type { ProxyRedirects } from '../../dataplane/lib/proxy.ts';
import { formatIPv4, parseIPv4 } from '../../wire/ip-text.ts';
import type { UpstreamPorts } from './upstream-ports.ts';
import type { Downstream, FromWorker, L7Event, ToWorker } from './messages.ts';

export interface ProxyThreadDeps {
  routerIP: string;
  redirects: ProxyRedirects;
  upstreamPorts: UpstreamPorts;
  onEvent: (e: L7Event) => void;
  log: Logger;
}

// The worker's code: worker.ts bundled into one CommonJS script by esbuild (tsx's), built once off this
// thread. A TypeScript loader in the thread would cost ~20 MiB more than the thread itself.
let bundle: Promise<string> | undefined;
const workerCode = () => (bundle ??= build({
  entryPoints: [fileURLToPath(new URL('./worker.ts', import.meta.url))], bundle: true, platform: 'node', format: 'cjs', target: 'node20', write: false, logLevel: 'silent',
}).then((r) => r.outputFiles[0].text, (err: Error) => {
  bundle = undefined; // the next redirect tries again
  throw err;
}).finally(() => void stopEsbuild()));

export class HttpProxyThread {
  private worker?: Promise<Worker>;
  private stopping = false;
  /** The current worker has answered at least once: a worker that dies before that is not started again. */
  private answered = false;
  /** Open listeners and their rules, to open again in a new worker. */
  private readonly ports = new Map<number, HttpRule[]>();
  private readonly opening = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  /** Upstream ports the worker holds, given back if it dies. */
  private readonly lent = new Set<number>();

  constructor(private readonly d: ProxyThreadDeps) {}

  listen(port: number, rules: HttpRule[]): Promise<void> {
    this.ports.set(port, rules);
    return new Promise((resolve, reject) => {
      this.opening.set(port, { resolve, reject });
      this.send({ t: 'open', port, routerIP: this.d.routerIP, rules });
    });
  }

  setRules(port: number, rules: HttpRule[]): void {
    this.ports.set(port, rules);
    this.send({ t: 'rules', port, rules });
  }

  close(port: number): void {
    if (!this.ports.delete(port)) return;
    this.send({ t: 'close', port });
  }

  /** Ends the worker (agent shutdown); resolves once the thread is gone. */
  async stop(): Promise<void> {
    this.stopping = true;
    const w = this.worker;
    this.worker = undefined;
    if (w) await (await w.catch(() => undefined))?.terminate();
  }

  /** Messages go out in order: each waits on the same worker promise. */
  private send(m: ToWorker): void {
    const w = (this.worker ??= this.start());
    w.then((worker) => worker.postMessage(m), (err: Error) => {
      if (this.worker === w) this.worker = undefined; // the next message tries again
      if (m.t === 'open') this.opening.get(m.port)?.reject(err);
    });
  }

  private async start(): Promise<Worker> {
    // A small young generation: the proxy's garbage is short-lived request state, and the agent's memory budget is shared.
    const w = new Worker(await workerCode(), { eval: true, execArgv: [], resourceLimits: { maxYoungGenerationSizeMb: 8 } });
    this.answered = false;
    w.on('message', (m: FromWorker) => {
      this.answered = true;
      this.receive(w, m);
    });
    w.on('error', (err) => this.d.log.error({ err: err.message }, 'HTTP proxy worker failed'));
    w.on('exit', (code) => this.exited(code));
    return w;
  }

  private exited(code: number): void {
    if (this.stopping) return;
    this.worker = undefined;
    for (const p of this.lent) this.giveBack(p);
    for (const [port, o] of this.opening) o.reject(new Error(`HTTP proxy worker exited (${code}) before port ${port} listened`));
    this.opening.clear();
    if (!this.answered) return void this.d.log.error({ code }, 'HTTP proxy worker exited at start');
    this.d.log.error({ code }, 'HTTP proxy worker exited; starting it again');
    for (const [port, rules] of this.ports) this.send({ t: 'open', port, routerIP: this.d.routerIP, rules });
  }

  private receive(w: Worker, m: FromWorker): void {
    switch (m.t) {
      case 'listening': {
        const p = this.opening.get(m.port);
        this.opening.delete(m.port);
        if (m.error) p?.reject(new Error(m.error));
        else p?.resolve();
        break;
      }
      case 'accept':
        w.postMessage({ t: 'accepted', id: m.id, downstream: this.downstream(m.client, m.clientPort) } satisfies ToWorker);
        break;
      case 'upstream':
        w.postMessage({ t: 'upstream', id: m.id, port: this.upstreamPort(m.client, m.clientPort) } satisfies ToWorker);
        break;
      case 'release':
        for (const p of m.ports) this.giveBack(p);
        break;
      case 'events':
        for (const e of m.events) this.d.onEvent(e);
        break;
      case 'log':
        this.d.log[m.level](m.fields, m.msg);
        break;
    }
  }

  private downstream(client: string, clientPort: number): Downstream | undefined {
    const orig = this.d.redirects.originalDestination(parseIPv4(client), clientPort);
    if (!orig) return undefined;
    return { server: formatIPv4(orig.addr), serverPort: orig.port, endpoint: orig.endpoint, upstreamPort: this.upstreamPort(client, clientPort) };
  }

  /** A local port registered in cilium_proxy4_upstream for this client connection; 0 if none is free or the map refuses. */
  private upstreamPort(client: string, clientPort: number): number {
    let port: number;
    try {
      port = this.d.upstreamPorts.take();
    } catch (err) {
      this.d.log.warn({ err: (err as Error).message }, 'L7 proxy upstream refused');
      return 0;
    }
    if (!this.d.redirects.registerUpstream(parseIPv4(client), clientPort, port)) {
      this.d.upstreamPorts.give(port);
      return 0;
    }
    this.lent.add(port);
    return port;
  }

  private giveBack(port: number): void {
    this.lent.delete(port);
    this.d.redirects.releaseUpstream(port);
    this.d.upstreamPorts.give(port);
  }
}
