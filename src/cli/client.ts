// HTTP to the agent over its unix socket; which agent: --socket, --node, CILIARY_NODE, the only one, or this host.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { request, type IncomingMessage } from 'node:http';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { AgentError, AgentUnreachableError, CliError } from './errors.ts';

export const RUN_DIR = '/run/ciliary';

export interface AgentTarget {
  node: string;
  socketPath: string;
  /** Where the agent pins its maps (for reading them without the agent). */
  stateDir: string;
  /** Another machine's agent: its cluster API address and the cluster token (instead of the socket). */
  tcp?: { host: string; port: number; token: string };
}

/** The port of the agents' cluster API (cluster-api-address), unless CILIARY_CLUSTER_API_PORT says otherwise. */
export const CLUSTER_API_PORT = 9876;

export interface TargetOptions {
  socket?: string;
  node?: string;
  stateDir?: string;
  env?: NodeJS.ProcessEnv;
  runDir?: string;
  hostname?: string;
}

/** Picks the agent to talk to; pure apart from listing runDir. */
export function resolveTarget(o: TargetOptions = {}): AgentTarget {
  const env = o.env ?? process.env;
  const runDir = o.runDir ?? RUN_DIR;
  const socket = o.socket ?? env.CILIARY_SOCKET;
  if (socket) return { node: o.node ?? env.CILIARY_NODE ?? '', socketPath: socket, stateDir: o.stateDir ?? dirname(socket) };
  const node = o.node ?? env.CILIARY_NODE ?? onlyNode(runDir) ?? o.hostname ?? hostname();
  const stateDir = o.stateDir ?? join(runDir, node);
  return { node, socketPath: join(runDir, node, 'agent.sock'), stateDir };
}

/** The node whose directory is the only one with an agent.sock (a one-node machine). */
function onlyNode(runDir: string): string | undefined {
  if (!existsSync(runDir)) return undefined;
  const nodes = readdirSync(runDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(runDir, d.name, 'agent.sock')))
    .map((d) => d.name);
  return nodes.length === 1 ? nodes[0] : undefined;
}

function unreachable(t: AgentTarget, err: NodeJS.ErrnoException): AgentUnreachableError {
  const code = err.code ?? err.message;
  const hint = code === 'EACCES' || code === 'EPERM'
    ? 'permission denied: the API socket is root-only (mode 0600); run as root'
    : `is ciliary-agent running${t.node ? ` for node "${t.node}"` : ''}? (pick another with --node NAME or --socket PATH)`;
  return new AgentUnreachableError(t.socketPath, code, hint);
}

const CONNECT_ERRORS = new Set(['ENOENT', 'ECONNREFUSED', 'EACCES', 'EPERM', 'ENOTSOCK', 'ENOTDIR']);

export class AgentClient {
  constructor(readonly target: AgentTarget, private readonly timeoutMs = 60_000) {}

  private open(method: string, path: string, body?: unknown): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const tcp = this.target.tcp;
      const req = request({
        ...(tcp ? { host: tcp.host, port: tcp.port } : { socketPath: this.target.socketPath }),
        method,
        path,
        headers: {
          accept: 'application/json', ...(payload ? { 'content-type': 'application/json' } : {}),
          ...(tcp ? { authorization: `Bearer ${tcp.token}` } : {}),
        },
      }, resolve);
      req.on('error', (err: NodeJS.ErrnoException) => reject(err.code && CONNECT_ERRORS.has(err.code) ? unreachable(this.target, err) : new CliError(`request to the agent failed: ${err.message}`)));
      req.end(payload);
    });
  }

  /** One JSON request; a non-2xx answer becomes a CliError with the agent's message. */
  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await withTimeout(this.open(method, path, body), this.timeoutMs, `${method} ${path}`);
    const text = await readAll(res);
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      throw new CliError(`agent answered ${method} ${path} with ${res.statusCode} and non-JSON: ${text.slice(0, 200)}`);
    }
    if ((res.statusCode ?? 500) >= 400) {
      const msg = (json as { error?: string } | undefined)?.error ?? text;
      const err = new AgentError(msg, res.statusCode ?? 500);
      if (json && typeof json === 'object') err.body = json as Record<string, unknown>;
      throw err;
    }
    return json as T;
  }

  get<T>(path: string): Promise<T> {
    return this.call<T>('GET', path);
  }

  /**
   * The agent of the node running a pod: this one when it runs it, else that node's (its socket sits beside this one,
   * <root>/<node>/agent.sock, as in the lab; on another machine, its cluster API at the pod's hostIP with
   * the cluster token from <root>/cluster-token). A pod this agent does not know is left to this agent to report.
   */
  async forPod(ns: string, name: string, env: NodeJS.ProcessEnv = process.env): Promise<AgentClient> {
    const unknown = (e: unknown) => { if (e instanceof AgentError && e.statusCode === 404) return undefined; throw e; };
    const n = encodeURIComponent(name);
    const s = encodeURIComponent(ns);
    if (await this.get(`/v1/pods/${s}/${n}`).catch(unknown)) return this;
    const view = await this.get<{ status: { node?: string; hostIP?: string } }>(`/v1/resources/pods/${n}?namespace=${s}`).catch(unknown);
    const node = view?.status.node;
    if (!node || node === this.target.node) return this;
    const rootDir = dirname(dirname(this.target.socketPath));
    const socketPath = join(rootDir, node, 'agent.sock');
    if (socketPath === this.target.socketPath) return this;
    if (existsSync(socketPath)) return new AgentClient({ node, socketPath, stateDir: dirname(socketPath) }, this.timeoutMs);
    const host = view?.status.hostIP;
    const tokenFile = env.CILIARY_CLUSTER_TOKEN_FILE ?? join(rootDir, 'cluster-token');
    if (!host || !existsSync(tokenFile)) throw new CliError(`pod "${name}" runs on node ${node}: its agent socket ${socketPath} is not on this machine${host ? ` and there is no cluster token ${tokenFile}` : ''}`);
    const port = Number(env.CILIARY_CLUSTER_API_PORT ?? CLUSTER_API_PORT);
    const tcp = { host, port, token: readFileSync(tokenFile, 'utf8').trim() };
    return new AgentClient({ node, socketPath: `${host}:${port}`, stateDir: dirname(socketPath), tcp }, this.timeoutMs);
  }

  /** A plain-text stream (pod logs): onChunk per piece until the agent ends it. */
  async streamText(path: string, onChunk: (s: string) => void): Promise<void> {
    const res = await this.open('GET', path);
    if ((res.statusCode ?? 500) >= 400) {
      const text = await readAll(res);
      let msg = text;
      try { msg = (JSON.parse(text) as { error?: string }).error ?? text; } catch { /* plain text */ }
      throw new AgentError(msg, res.statusCode ?? 500);
    }
    res.setEncoding('utf8');
    await new Promise<void>((resolve, reject) => {
      res.on('data', onChunk);
      res.on('end', resolve);
      res.on('error', reject);
      res.on('aborted', () => resolve());
    });
  }

  /** NDJSON stream: onLine per parsed object until the agent ends it; resolves then. */
  async stream(path: string, onObject: (o: unknown) => void, onOpen?: () => void): Promise<void> {
    const res = await this.open('GET', path);
    if ((res.statusCode ?? 500) >= 400) {
      const text = await readAll(res);
      let msg = text;
      try { msg = (JSON.parse(text) as { error?: string }).error ?? text; } catch { /* plain text */ }
      throw new CliError(msg);
    }
    onOpen?.();
    res.setEncoding('utf8');
    let buf = '';
    await new Promise<void>((resolve, reject) => {
      res.on('data', (chunk: string) => {
        buf += chunk;
        for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (line.trim()) onObject(JSON.parse(line));
        }
      });
      res.on('end', resolve);
      res.on('error', reject);
      res.on('aborted', () => resolve());
    });
  }
}

function readAll(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    res.setEncoding('utf8');
    res.on('data', (d: string) => (text += d));
    res.on('end', () => resolve(text));
    res.on('error', reject);
  });
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CliError(`agent did not answer ${what} within ${ms / 1000}s`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
