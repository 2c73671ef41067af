// A tagged lab (scripts/netns/cluster.sh) for one test file or bench run: its own name prefix, node
// network, internet link and state root, the CLI in process against its agents, and cleanup of the
// pod namespaces an agent could not delete.
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { removeNetns, run, sh, sleep } from './sys.ts';
import { main } from '../../src/cli/main.ts';

export const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const script = join(repo, 'scripts/netns/cluster.sh');
const cliBin = join(repo, 'bin/ciliary');

/** First three octets of a /24 (from 192.168.<base>..) that nothing on this machine uses yet. */
function freeNet(base: number): string {
  const used = sh('ip', ['-4', '-o', 'addr', 'show']) + sh('ip', ['-4', 'route', 'show']);
  for (let i = 0; i < 50; i++) {
    const net = `192.168.${base + ((process.pid + i) % 50)}`;
    if (!used.includes(`${net}.`)) return net;
  }
  throw new Error(`no free 192.168.${base}-${base + 49}.0/24 for the lab`);
}

export interface Lab {
  tag: string;
  net: string;
  /** First three octets of the internet link beyond the router. */
  inet: string;
  stateRoot: string;
  nodeIP(i: number): string;
  /** The internet host's and testpc's addresses. */
  internetIP: string;
  testpcIP: string;
  /** Namespace names of the lab's hosts (nodes and outside hosts). */
  ns(host: string): string;
  /** A pod name carrying the tag (the agent names pod namespaces cil-<node>-<ns>-<pod>, with no lab prefix). */
  pod(name: string): string;
  /** cluster.sh with the lab's env (extra env entries as KEY=VALUE). */
  sh(args: string[], env?: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  cli(node: string, ...argv: string[]): Promise<{ code: number; out: string; err: string }>;
  ok(node: string, ...argv: string[]): Promise<string>;
  /** `ciliary exec POD -- CMD` as a process. */
  exec(node: string, name: string, ...cmd: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Removes what is left: the lab (cluster.sh down), pod namespaces with the tag, the state root. */
  cleanup(): Promise<void>;
}

export function makeLab(tagPrefix: string, netBase = 150): Lab {
  const tag = `${tagPrefix}${process.pid % 100000}`;
  const net = freeNet(netBase);
  // The internet link lives only between the lab's router and internet namespaces: no clash between labs.
  const inet = '203.0.113';
  const stateRoot = mkdtempSync(join(tmpdir(), `ciliary-${tagPrefix}-`));
  const env = [`CILIARY_LAB_PREFIX=${tag}-`, `CILIARY_LAB_NET=${net}`, `CILIARY_LAB_INTERNET_NET=${inet}`];
  const sock = (node: string) => join(stateRoot, node, 'agent.sock');
  const cli = async (node: string, ...argv: string[]) => {
    let out = '';
    let err = '';
    const code = await main(['--socket', sock(node), ...argv], { out: (s) => (out += s), err: (s) => (err += s) }, {});
    return { code, out, err };
  };
  const lab: Lab = {
    tag, net, inet, stateRoot,
    nodeIP: (i) => `${net}.${100 + i}`,
    internetIP: `${inet}.10`,
    testpcIP: `${net}.200`,
    ns: (host) => `${tag}-${host}`,
    pod: (name) => `${tag}-${name}`,
    sh: (args, extra = []) => run('env', [...env, ...extra, script, '--state-root', stateRoot, ...args], 240_000),
    cli,
    ok: async (node, ...argv) => {
      const r = await cli(node, ...argv);
      if (r.code !== 0) throw new Error(`ciliary ${argv.join(' ')} on ${node}: ${r.err}`);
      return r.out;
    },
    exec: (node, name, ...cmd) => run(cliBin, ['--socket', sock(node), 'exec', name, '--', ...cmd], 30_000),
    cleanup: async () => {
      const down = await lab.sh(['down']);
      if (down.code !== 0) console.warn(`cluster.sh down: ${down.stderr}`);
      for (const ns of sh('ip', ['netns', 'list']).split('\n').map((l) => l.split(' ')[0])) {
        if (ns.startsWith('cil-') && ns.includes(`-${tag}-`)) removeNetns(ns);
      }
      for (const d of existsSync('/etc/netns') ? readdirSync('/etc/netns', { withFileTypes: true }) : []) {
        if (d.name.startsWith('cil-') && d.name.includes(`-${tag}-`)) rmSync(join('/etc/netns', d.name), { recursive: true, force: true });
      }
      rmSync(stateRoot, { recursive: true, force: true });
    },
  };
  return lab;
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
