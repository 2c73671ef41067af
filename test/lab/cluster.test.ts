// The multi-node lab scripts (scripts/netns/cluster.sh) against stub agents: node namespaces on a
// bridge that reach each other, idempotent up and down, status, clean-up of everything the lab made.
// Names carry a per-run prefix and state lives in a temp dir, so a real lab on this machine is safe.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { register, removeNetns } from '../helpers/sys.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const script = join(repo, 'scripts/netns/cluster.sh');
const root = process.getuid?.() === 0;
if (!root) console.warn('\n*** SKIPPING lab tests (test/lab/cluster.test.ts): they need root (network namespaces, bridges) ***\n');

const prefix = `t${process.pid}-`;
const nodes = ['k8s-ctr', 'k8s-w1'];
const bridge = `${prefix}cil-lab-br`.length <= 15 ? `${prefix}cil-lab-br` : `${prefix}br`;

interface Result { code: number | null; stdout: string; stderr: string }

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 90_000): Result {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env }, timeout: timeoutMs });
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

const netnsNames = (): string[] => run('ip', ['netns', 'list']).stdout.split('\n').map((l) => l.split(' ')[0]).filter(Boolean);
const linkNames = (): string[] => run('ip', ['-o', 'link', 'show']).stdout.split('\n')
  .map((l) => l.split(': ')[1]?.split('@')[0] ?? '').filter(Boolean);
/** Running and not a zombie (the stub agents are orphans, reaped whenever their adopter gets to it). */
const alive = (pid: number): boolean => {
  try { return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch { return false; }
};
const nsPing = (ns: string, ip: string): number => run('ip', ['netns', 'exec', ns, 'ping', '-c', '1', '-W', '2', ip]).code ?? -1;

/** A /24 for the lab (first three octets) that nothing on this machine uses yet. */
function freeNet(): string {
  const used = run('ip', ['-4', '-o', 'addr', 'show']).stdout + run('ip', ['-4', 'route', 'show']).stdout;
  for (let i = 0; i < 50; i++) {
    const net = `192.168.${200 + ((process.pid + i) % 50)}`;
    if (!used.includes(`${net}.`)) return net;
  }
  throw new Error('no free 192.168.200-249.0/24 for the lab');
}

function healthz(sock: string): Promise<number> {
  return new Promise((ok) => {
    const req = request({ socketPath: sock, path: '/v1/healthz', timeout: 2000 }, (res) => {
      res.resume();
      ok(res.statusCode ?? 0);
    });
    req.on('error', () => ok(0));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

// Serves GET /v1/healthz on --api-socket; exits on SIGTERM, like the agent.
const STUB = `
const argv = process.argv;
const sock = argv[argv.indexOf('--api-socket') + 1];
require('fs').rmSync(sock, { force: true });
require('http').createServer((q, r) => { r.writeHead(q.url === '/v1/healthz' ? 200 : 404); r.end('ok'); }).listen(sock);
console.log(JSON.stringify({ msg: 'stub agent up', argv: argv.slice(2) }));
process.on('SIGTERM', () => process.exit(0));
`;

describe.skipIf(!root)('netns lab: scripts/netns/cluster.sh', () => {
  let tmp = '';
  let stateRoot = '';
  let net = '';
  let env: NodeJS.ProcessEnv = {};
  const lab = (...args: string[]): Result => run('bash', [script, '--state-root', stateRoot, ...args], env);
  const bystander = `${prefix}bystander`;
  const podNs = `cil-${prefix}k8s-ctr-default-p1`;

  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'ciliary-lab-'));
    stateRoot = join(tmp, 'state');
    const stub = join(tmp, 'stub-agent.cjs');
    writeFileSync(stub, STUB);
    net = freeNet();
    // The run's leak check (test/global-setup.ts) looks for namespaces with these prefixes too.
    register('prefix', prefix);
    register('prefix', `cil-${prefix}`);
    env = { CILIARY_LAB_PREFIX: prefix, CILIARY_LAB_NET: net, CILIARY_AGENT_CMD: `${process.execPath} ${stub}`, CILIARY_AGENT_ARGS: '--debug=true' };
  });

  afterAll(() => {
    if (!tmp) return;
    const down = lab('down');
    if (down.code !== 0) console.warn(`cluster.sh down failed in clean-up: ${down.stderr}`);
    // Whatever is still there with this run's prefix was made by this test: its processes go with it.
    for (const ns of netnsNames()) {
      if (ns.startsWith(prefix) || ns.startsWith(`cil-${prefix}`)) removeNetns(ns);
    }
    for (const link of linkNames()) if (link.startsWith(prefix)) run('ip', ['link', 'del', link]);
    rmSync(`/etc/netns/${podNs}`, { recursive: true, force: true });
    rmSync(tmp, { recursive: true, force: true });
  });

  it('up 2 builds two nodes on a bridge, each with a healthy agent', async () => {
    const r = lab('up', '2');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('ciliary --node k8s-ctr status');

    const names = netnsNames();
    for (const n of nodes) expect(names).toContain(`${prefix}${n}`);
    expect(linkNames()).toContain(bridge);
    expect(run('ip', ['-4', '-o', 'addr', 'show', 'dev', bridge]).stdout).toContain(`${net}.1/24`);

    for (const [i, n] of nodes.entries()) {
      const ns = `${prefix}${n}`;
      expect(run('ip', ['-n', ns, '-4', '-o', 'addr', 'show', 'dev', 'eth1']).stdout).toContain(`${net}.${100 + i}/24`);
      expect(run('ip', ['-n', ns, 'route', 'show', 'default']).stdout).toContain(`via ${net}.254`); // the lab's router to the internet host
      const sysctls = run('ip', ['netns', 'exec', ns, 'sysctl', '-n', 'net.ipv4.ip_forward',
        'net.ipv4.conf.all.rp_filter', 'net.ipv4.conf.default.rp_filter']).stdout.split('\n').filter(Boolean);
      expect(sysctls).toEqual(['1', '0', '0']);

      const sock = join(stateRoot, n, 'agent.sock');
      expect(await healthz(sock)).toBe(200);
      const log = readFileSync(join(stateRoot, n, 'agent.log'), 'utf8');
      const started = JSON.parse(log.split('\n').find((l) => l.includes('stub agent up')) ?? '{}') as { argv: string[] };
      // No fixed pod CIDR: each agent claims one from the pool; native routing between the nodes, as the seeds.
      expect(started.argv).toEqual(['--node-name', n, '--node-ip', `${net}.${100 + i}`, '--cluster-pool-ipv4-cidr', '172.20.0.0/16',
        '--kvstore', 'etcd', '--kvstore-opt', `etcd.address=http://${net}.100:2379`,
        '--routing-mode', 'native', '--auto-direct-node-routes=true', '--ipv4-native-routing-cidr', '172.20.0.0/16',
        '--state-dir', join(stateRoot, n), '--api-socket', sock, '--resolv-conf', join(stateRoot, 'outside', 'resolv.conf'), ...(n === 'k8s-ctr' ? ['--node-labels', 'node-role.kubernetes.io/control-plane=', '--kube-apiserver-listen-address', `${net}.100:6443`,
          '--hubble-relay-listen-address', ':4245', '--hubble-relay-peers', nodes.map((_, j) => `${net}.${100 + j}:4244`).join(',')] : []), '--debug=true']);
    }
  });

  it('nodes reach each other and the bridge side', () => {
    expect(nsPing(`${prefix}k8s-ctr`, `${net}.101`)).toBe(0);
    expect(nsPing(`${prefix}k8s-w1`, `${net}.100`)).toBe(0);
    expect(nsPing(`${prefix}k8s-ctr`, `${net}.1`)).toBe(0);
    expect(run('ping', ['-c', '1', '-W', '2', `${net}.101`]).code).toBe(0);
  });

  it('up 2 again leaves the running agents alone', async () => {
    const pids = nodes.map((n) => readFileSync(join(stateRoot, n, 'agent.pid'), 'utf8').trim());
    const r = lab('up', '2');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('already running');
    expect(nodes.map((n) => readFileSync(join(stateRoot, n, 'agent.pid'), 'utf8').trim())).toEqual(pids);
    for (const n of nodes) expect(await healthz(join(stateRoot, n, 'agent.sock'))).toBe(200);
  });

  it('status lists both nodes with their IP, pid and health, then the outside hosts', () => {
    const r = lab('status');
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n').filter(Boolean);
    expect(lines).toHaveLength(5);
    expect(lines.slice(2).map((l) => l.split(/\s+/)[0])).toEqual(['router', 'testpc', 'internet']);
    for (const [i, n] of nodes.entries()) {
      const pid = readFileSync(join(stateRoot, n, 'agent.pid'), 'utf8').trim();
      expect(lines[i]).toMatch(new RegExp(`^${n}\\s+${net.replace(/\./g, '\\.')}\\.${100 + i}/24\\s+pid ${pid}\\s+healthy`));
    }
  });

  it('down removes agents, pods, namespaces, veths, bridge and state, and nothing else', () => {
    const pids = nodes.map((n) => Number(readFileSync(join(stateRoot, n, 'agent.pid'), 'utf8')));
    // A pod namespace as the agent would make it, with its /etc/netns dir, and a namespace that is not the lab's.
    expect(run('ip', ['netns', 'add', podNs]).code).toBe(0);
    mkdirSync(`/etc/netns/${podNs}`, { recursive: true });
    expect(run('ip', ['netns', 'add', bystander]).code).toBe(0);
    try {
      const r = lab('down');
      expect(r.code, r.stderr).toBe(0);
      const names = netnsNames();
      for (const n of nodes) expect(names).not.toContain(`${prefix}${n}`);
      expect(names).not.toContain(podNs);
      expect(names).toContain(bystander);
      expect(existsSync(`/etc/netns/${podNs}`)).toBe(false);
      expect(linkNames().filter((l) => l.startsWith(prefix))).toEqual([]);
      for (const n of nodes) expect(existsSync(join(stateRoot, n))).toBe(false);
      expect(existsSync(join(stateRoot, 'etcd'))).toBe(false);
      for (const pid of pids) expect(alive(pid)).toBe(false);
    } finally {
      run('ip', ['netns', 'del', bystander]);
    }
  });

  it('down again succeeds', () => {
    const r = lab('down');
    expect(r.code, r.stderr).toBe(0);
    expect(lab('status').stdout).toBe('');
  });

  it('up fails fast with the agent log when the agent dies', () => {
    const failing = join(tmp, 'failing-agent.cjs');
    writeFileSync(failing, `console.error('stub agent: cannot start'); process.exit(3);`);
    const r = run('bash', [script, '--state-root', stateRoot, 'up', '1'], { ...env, CILIARY_AGENT_CMD: `${process.execPath} ${failing}` });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('stub agent: cannot start');
    expect(lab('down').code).toBe(0);
    expect(netnsNames()).not.toContain(`${prefix}k8s-ctr`);
  });
});
