// A private etcd member (Debian's /usr/bin/etcd) on free loopback ports with a temp data dir, and a
// TCP relay in front of it that a test can cut to take one client off etcd while others stay on.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ETCD_BIN = '/usr/bin/etcd';
const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;
const LOG_TAIL_CHARS = 4000;

/** Every member not stopped yet: killed on process exit, so a crashed test run leaves none behind. */
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => srv.once('error', reject).listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** Files of a test CA, a server certificate for 127.0.0.1 and a client certificate (openssl, EC keys). */
export interface TlsFiles {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

export function makeTlsFiles(dir: string): TlsFiles {
  const ssl = (...args: string[]) => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
  };
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ssl('req', '-x509', ...key, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=ciliary-test-ca');
  for (const [name, usage] of [['server', 'serverAuth'], ['client', 'clientAuth']]) {
    writeFileSync(join(dir, `${name}.ext`), `subjectAltName=IP:127.0.0.1\nextendedKeyUsage=${usage}\n`);
    ssl('req', ...key, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '1', '-extfile', `${name}.ext`);
  }
  const f = (n: string) => join(dir, n);
  return { ca: f('ca.pem'), serverCert: f('server.crt'), serverKey: f('server.key'), clientCert: f('client.crt'), clientKey: f('client.key') };
}

export class EtcdMember {
  private proc?: ChildProcess;
  private log = '';

  private constructor(readonly dataDir: string, readonly clientPort: number, readonly peerPort: number, readonly tls?: TlsFiles) {}

  get url(): string {
    return `${this.tls ? 'https' : 'http'}://127.0.0.1:${this.clientPort}`;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** Starts a one-member cluster and waits until it answers /health; with tls, clients need a certificate. */
  static async start(tls?: TlsFiles): Promise<EtcdMember> {
    const m = new EtcdMember(mkdtempSync(join(tmpdir(), 'ciliary-etcd-')), await freePort(), await freePort(), tls);
    try {
      await m.restart();
    } catch (e) {
      await m.remove();
      throw e;
    }
    return m;
  }

  /** Starts the member (again) on the same ports and data dir. */
  async restart(): Promise<void> {
    if (this.proc) throw new Error(`etcd already running (pid ${this.proc.pid})`);
    const peer = `http://127.0.0.1:${this.peerPort}`;
    const proc = spawn(ETCD_BIN, [
      '--name', 'test', '--data-dir', this.dataDir, '--logger', 'zap', '--log-outputs', 'stderr',
      '--listen-client-urls', this.url, '--advertise-client-urls', this.url,
      '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
      '--initial-cluster', `test=${peer}`, '--initial-cluster-state', 'new',
      ...(this.tls ? ['--cert-file', this.tls.serverCert, '--key-file', this.tls.serverKey, '--trusted-ca-file', this.tls.ca, '--client-cert-auth'] : []),
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    running.add(proc);
    const keep = (b: Buffer) => { this.log = (this.log + b.toString()).slice(-LOG_TAIL_CHARS); };
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    proc.once('exit', () => {
      running.delete(proc);
      if (this.proc === proc) this.proc = undefined;
    });
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!(await this.healthy())) {
      if (!this.proc) throw new Error(`etcd exited during start:\n${this.log}`);
      if (Date.now() > deadline) {
        await this.stop();
        throw new Error(`etcd did not answer on ${this.url} within ${START_TIMEOUT_MS} ms:\n${this.log}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** SIGTERM by pid and wait for the exit (SIGKILL if it does not come). */
  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }

  /** Stops the member and removes its data dir. */
  async remove(): Promise<void> {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  private healthy(): Promise<boolean> {
    const tls = this.tls && { ca: readFileSync(this.tls.ca), cert: readFileSync(this.tls.clientCert), key: readFileSync(this.tls.clientKey) };
    return new Promise((resolve) => {
      const req = (tls ? httpsGet : httpGet)(`${this.url}/health`, { timeout: 1000, ...tls }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve(res.statusCode === 200 && body.includes('"health":"true"')));
      });
      req.on('error', () => resolve(false));
      req.on('timeout', () => req.destroy());
    });
  }
}

/** Forwards a loopback port to etcd; cut() drops every connection and refuses new ones until restore(). */
export class TcpRelay {
  private server?: Server;
  private readonly sockets = new Set<Socket>();

  private constructor(readonly port: number, private readonly targetPort: number) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(targetPort: number): Promise<TcpRelay> {
    const r = new TcpRelay(await freePort(), targetPort);
    await r.restore();
    return r;
  }

  async restore(): Promise<void> {
    const srv = createServer((client) => {
      const upstream = connect(this.targetPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => { client.destroy(); upstream.destroy(); });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => srv.once('error', reject).listen(this.port, '127.0.0.1', resolve));
    this.server = srv;
  }

  async cut(): Promise<void> {
    const srv = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (srv) await new Promise<void>((resolve) => srv.close(() => resolve()));
  }
}
