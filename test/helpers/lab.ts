// A private multi-node lab for one test file (scripts/netns/cluster.sh with a per-run prefix, net
// and temp state root), the CLI against any node's agent, pods with tagged names, and its removal
// (agents, etcd, pod namespaces and their /etc/netns directories) even when the suite failed.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { register, removeNetns, run, sh, sleep } from './sys.ts';
import { main } from '../../src/cli/main.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const NODES = ['k8s-ctr', 'k8s-w1', 'k8s-w2'] as const;
export type NodeName = (typeof NODES)[number];
/** Answers with its hostname (the pod's name) and the client's address. */
export const HTTP_SERVER = ['node', '-e', "require('http').createServer((q,s)=>s.end(require('os').hostname()+' '+q.socket.remoteAddress+'\\n')).listen(80,'0.0.0.0')"];

/** A /24 for the lab (first three octets) that nothing on this machine uses yet. */
function freeNet(): string {
  const used = sh('ip', ['-4', '-o', 'addr', 'show']) + sh('ip', ['-4', 'route', 'show']);
  for (let i = 0; i < 50; i++) {
    const net = `192.168.${150 + ((process.pid * 7 + i) % 50)}`;
    if (!used.includes(`${net}.`)) return net;
  }
  throw new Error('no free 192.168.150-199.0/24 for the lab');
}

/** Polls `probe` until it returns a value (not undefined) or the deadline passes. */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(200);
  }
}

export class Lab {
  readonly tag: string;
  readonly prefix: string;
  readonly net = freeNet();
  /** First three octets of the internet link beyond the lab's router: only its router and host see it. */
  readonly inet = '203.0.113';
  readonly internetIP = `${this.inet}.10`;
  readonly testpcIP = `${this.net}.200`;
  readonly stateRoot: string;
  /** Kubernetes namespaces a test made with namespace(): down() removes their pods' namespaces too. */
  private readonly namespaces: string[] = ['default'];

  /** `letter` keeps tags of labs running side by side apart (t for tunnel, f for faults…). */
  constructor(letter: string, private readonly env: string[] = []) {
    this.tag = `${letter}${process.pid % 100000}`;
    this.prefix = `${this.tag}-`;
    // Made by up(): a suite filtered out (vitest -t) constructs its lab but never brings it up or down.
    this.stateRoot = join(tmpdir(), `ciliary-lab-${this.tag}-${Math.random().toString(36).slice(2, 8)}`);
  }

  /** Pod names carry the tag: the agent names pod namespaces cil-<node>-<ns>-<pod>, with no lab prefix. */
  pod(name: string): string {
    return `${this.tag}-${name}`;
  }

  /** A Kubernetes namespace name carrying the tag, whose pods' namespaces down() removes. */
  namespace(name: string): string {
    const ns = `${name}-${this.tag}`;
    this.namespaces.push(ns);
    return ns;
  }

  nodeIP(i: number): string {
    return `${this.net}.${100 + i}`;
  }

  /** The namespace of a lab host: a node, testpc, router or internet. */
  ns(host: NodeName | 'testpc' | 'router' | 'internet'): string {
    return `${this.prefix}${host}`;
  }

  nodeNs(node: NodeName): string {
    return this.ns(node);
  }

  /** cluster.sh's bridge name for the prefix (the long form when it fits in 15 characters). */
  get bridge(): string {
    return `${this.prefix}cil-lab-br`.length <= 15 ? `${this.prefix}cil-lab-br` : `${this.prefix}br`;
  }

  /** The kubeconfig the node's agent wrote for its kube API. */
  kubeconfig(node: NodeName): string {
    return join(this.stateRoot, node, 'kube', 'admin.conf');
  }

  sock(node: NodeName): string {
    return join(this.stateRoot, node, 'agent.sock');
  }

  /** The agent's pid, from its pid file. */
  agentPid(node: NodeName): number {
    return Number(readFileSync(join(this.stateRoot, node, 'agent.pid'), 'utf8').trim());
  }

  /** SIGTERM to a node's agent, waiting until it has exited (its pods and devices stay). */
  async stopAgent(node: NodeName): Promise<void> {
    const pid = this.agentPid(node);
    process.kill(pid, 'SIGTERM');
    await until(`the ${node} agent to stop`, async () => {
      try {
        process.kill(pid, 0);
        return undefined;
      } catch {
        return true;
      }
    }, 30_000);
  }

  /** Restarts a node's agent of an n-node lab with extra agent arguments (cluster.sh up starts the missing one). */
  async restartAgent(node: NodeName, n: number, agentArgs: string): Promise<void> {
    await this.stopAgent(node);
    const up = await this.sh(['up', String(n)], [`CILIARY_AGENT_ARGS=${agentArgs}`]);
    if (up.code !== 0) throw new Error(`cluster.sh up ${n} (restart of ${node}) failed: ${up.stderr}`);
  }

  /** `ip netns exec` in a lab host: stdout, or undefined when the command failed. */
  async inHost(host: NodeName | 'testpc' | 'router' | 'internet', cmd: string[], timeoutMs = 15_000): Promise<string | undefined> {
    const r = await run('ip', ['netns', 'exec', this.ns(host), ...cmd], timeoutMs);
    return r.code === 0 ? r.stdout : undefined;
  }

  /** cluster.sh, asynchronously: a blocked event loop would miss the agents closing idle API connections. */
  script(...args: string[]) {
    return this.sh(args);
  }

  /** cluster.sh with extra environment entries (KEY=VALUE) for this call. */
  sh(args: string[], extraEnv: string[] = []) {
    mkdirSync(this.stateRoot, { recursive: true });
    const env = [`CILIARY_LAB_PREFIX=${this.prefix}`, `CILIARY_LAB_NET=${this.net}`, `CILIARY_LAB_INTERNET_NET=${this.inet}`, ...this.env, ...extraEnv];
    return run('env', [...env, join(repo, 'scripts/netns/cluster.sh'), '--state-root', this.stateRoot, ...args], 240_000);
  }

  async up(n: number, ...opts: string[]): Promise<void> {
    // The leak check of test/global-setup.ts looks for the lab's namespaces and its pods'.
    register('prefix', this.prefix);
    for (const node of NODES) for (const ns of this.namespaces) register('prefix', ns === 'default' ? `cil-${node}-default-${this.tag}-` : `cil-${node}-${ns}-`);
    const r = await this.script('up', String(n), ...opts);
    if (r.code !== 0) throw new Error(`cluster.sh up ${n} failed: ${r.stderr}`);
  }

  /** One CLI command against a node's agent, in process. */
  async cli(node: NodeName, ...argv: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const code = await main(['--socket', this.sock(node), ...argv], { out: (s) => (out += s), err: (s) => (err += s) }, {});
    return { code, out, err };
  }

  async ok(node: NodeName, ...argv: string[]): Promise<string> {
    const r = await this.cli(node, ...argv);
    if (r.code !== 0) throw new Error(`ciliary ${argv.join(' ')} on ${node}: ${r.err}`);
    return r.out;
  }

  /** `ciliary exec POD -- CMD` as a user runs it (a process: exec hands the terminal to the command). */
  exec(node: NodeName, name: string, cmd: string[], timeoutMs = 30_000, namespace?: string) {
    const ns = namespace === undefined ? [] : ['-n', namespace];
    return run(join(repo, 'bin/ciliary'), ['--socket', this.sock(node), 'exec', name, ...ns, '--', ...cmd], timeoutMs);
  }

  /** curl from a pod: the body, or undefined when it fails. */
  async curl(node: NodeName, from: string, url: string): Promise<string | undefined> {
    const r = await this.exec(node, from, ['curl', '-s', '--max-time', '2', url]);
    return r.code === 0 ? r.stdout : undefined;
  }

  /** `ciliary run NAME --labels LABELS [-- CMD]` on a node; the pod's IP. */
  async runPod(node: NodeName, name: string, labels: string, cmd: string[] = []): Promise<string> {
    await this.ok(node, 'run', name, '--labels', labels, ...(cmd.length ? ['--', ...cmd] : []));
    return this.podIP(node, name);
  }

  /** The pod's IP once it has one (a pod placed on another node is created there after `apply` returns). */
  async podIP(node: NodeName, name: string, timeoutMs = 30_000): Promise<string> {
    return until(`an IP for pod ${name} on ${node}`, async () => {
      const ip = (await this.ok(node, 'get', 'pods', name, '-o', 'wide')).split('\n')[1].split(/\s+/)[5];
      return /^\d+\.\d+\.\d+\.\d+$/.test(ip) ? ip : undefined;
    }, timeoutMs);
  }

  /** The pod's namespace as the agent names it (no lab prefix: the pod name's tag keeps it apart). */
  podNs(node: NodeName, name: string): string {
    return `cil-${node}-default-${name}`;
  }

  /** One metric's value as node's agent serves it on :9962 (prometheus-serve-addr), or undefined. */
  async metric(node: NodeName, name: string): Promise<number | undefined> {
    const r = await run('ip', ['netns', 'exec', this.nodeNs(node), 'curl', '-s', '--max-time', '2', 'http://127.0.0.1:9962/metrics']);
    const line = r.stdout.split('\n').find((l) => l.startsWith(`${name} `));
    return line === undefined ? undefined : Number(line.split(' ')[1]);
  }

  routes(node: NodeName): string {
    return sh('ip', ['-n', this.nodeNs(node), '-4', 'route', 'show']);
  }

  /** The entry of `prefixText` in `bpf ipcache list` output, without its key. */
  static ipcacheEntry(list: string, prefixText: string): string | undefined {
    return list.split('\n').find((l) => l.startsWith(`${prefixText} `))?.replace(/^\S+\s+/, '');
  }

  file(name: string, text: string): string {
    const p = join(this.stateRoot, name);
    writeFileSync(p, text);
    return p;
  }

  /** Removes the lab: cluster.sh down, then the pod namespaces an agent could not delete (it died first). */
  async down(): Promise<void> {
    const down = await this.script('down');
    if (down.code !== 0) console.warn(`cluster.sh down: ${down.stderr}`);
    const ours = (n: string) => n.startsWith('cil-') && this.namespaces.some((ns) => n.includes(ns === 'default' ? `-default-${this.tag}-` : `-${ns}-`));
    for (const ns of sh('ip', ['netns', 'list']).split('\n').map((l) => l.split(' ')[0])) if (ours(ns)) removeNetns(ns);
    for (const d of existsSync('/etc/netns') ? readdirSync('/etc/netns') : []) if (ours(d)) rmSync(join('/etc/netns', d), { recursive: true, force: true });
    rmSync(this.stateRoot, { recursive: true, force: true });
  }
}
