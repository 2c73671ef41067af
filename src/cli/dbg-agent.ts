// cilium-dbg's agent-wide verbs: `config` / `config view`, `version`, `metrics list`, `status --wait`, and the
// eBPF-only ones (`bpf fs show`, `bpf sha`, `bpf prog list`, `cgroups list`, `statedb dump`, `shell`), which
// say in one line what ciliary has instead.
import { request } from 'node:http';
import type { AgentStatus } from '../control/types.ts';
import { bool, checkFlags, str, type ParsedArgs } from './args.ts';
import { bpfCommand } from './bpf.ts';
import type { AgentClient } from './client.ts';
import { CliError, UsageError } from './errors.ts';
import type { Out } from './pods.ts';
import { statusCommand } from './status.ts';
import { formatTable } from './table.ts';

type Verb = (args: ParsedArgs, client: AgentClient, io: Out) => Promise<number>;

const configValue = (v: unknown) => (Array.isArray(v) ? v.join(' ') : String(v));

/** `config view`: cilium config view's two columns; `config [--all]`: cilium-dbg's `Key : Value` list. */
export const configCommand: Verb = async (args, client, io) => {
  const [view, ...extra] = args.positionals;
  if ((view !== undefined && view !== 'view') || extra.length) throw new UsageError('config supports: config, config view');
  // --all adds cilium-dbg's read-only options to its read-write ones: ciliary's are all read-only.
  checkFlags(args, 'config', ['output', 'all']);
  const config = await client.get<Record<string, unknown>>('/v1/config');
  const keys = Object.keys(config).sort();
  if (str(args, 'output') === 'json') io.out(JSON.stringify(config, null, 2) + '\n');
  else if (view) io.out(keys.map((k) => `${k.padEnd(46)} ${configValue(config[k])}\n`).join(''));
  // The agent's options are set at start: none changes at run time, so all are read-only.
  else io.out(`##### Read-only configurations #####\n${keys.map((k) => `${k.padEnd(34)}: ${configValue(config[k])}\n`).join('')}`);
  return 0;
};

export const versionCommand: Verb = async (args, client, io) => {
  checkFlags(args, 'version', []);
  if (args.positionals.length) throw new UsageError(`unexpected argument "${args.positionals[0]}"`);
  const s = await client.get<AgentStatus>('/v1/status');
  const platform = `node ${process.version} ${process.platform}/${process.arch === 'x64' ? 'amd64' : process.arch}`;
  io.out(`Client: ${s.version} ciliary ${platform}\nDaemon: ${s.version} ciliary (agent on ${s.node})\n`);
  return 0;
};

/** The agent's Prometheus text from its metrics address, in this network namespace (the node's). */
function scrape(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path: '/metrics', timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

export interface MetricSample {
  metric: string;
  labels: string;
  value: string;
}

/** Samples of the text exposition format: `name{k="v",…} value`, labels as cilium-dbg prints them (k=v k=v). */
export function parseMetrics(text: string): MetricSample[] {
  const out: MetricSample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = [...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map(([, k, v]) => `${k}=${v}`).join(' ');
    const n = Number(m[3]);
    out.push({ metric: m[1], labels, value: Number.isFinite(n) ? n.toFixed(6) : m[3] });
  }
  return out;
}

export const metricsCommand: Verb = async (args, client, io) => {
  const [verb, ...extra] = args.positionals;
  if (verb !== 'list' || extra.length) throw new UsageError('metrics supports: metrics list [-o json]');
  checkFlags(args, 'metrics list', ['output']);
  const addr = String((await client.get<Record<string, unknown>>('/v1/config'))['prometheus-serve-addr'] ?? '');
  const m = /^(?:\[([^\]]*)\]|([^:]*)):(\d+)$/.exec(addr);
  if (!m) throw new CliError(`the agent serves no metrics (prometheus-serve-addr is "${addr}")`);
  const host = m[1] || m[2] || '127.0.0.1';
  const text = await scrape(host, Number(m[3])).catch((e: Error) => {
    throw new CliError(`cannot read the agent's metrics at ${host}:${m[3]} (${e.message}): run it in the node's network namespace, e.g. kubectl exec -n kube-system ds/cilium -- cilium-dbg metrics list`);
  });
  const samples = parseMetrics(text);
  if (str(args, 'output') === 'json') io.out(JSON.stringify(samples, null, 2) + '\n');
  else io.out(formatTable([['Metric', 'Labels', 'Value'], ...samples.map((s) => [s.metric, s.labels, s.value])]));
  return 0;
};

const WAIT_POLL_MS = 1000;

/** `status --wait [--wait-duration 5m]`: waits until the agent answers healthy, then prints the status. */
export const statusWaitCommand: Verb = async (args, client, io) => {
  if (!bool(args, 'wait')) return statusCommand(args, client, io);
  const limit = durationMs(str(args, 'wait-duration') ?? '5m');
  const { wait: _w, 'wait-duration': _d, ...flags } = args.flags;
  const deadline = Date.now() + limit;
  for (;;) {
    const healthy = await client.get<{ status?: string }>('/v1/healthz').then(() => true, (e: unknown) => {
      if (Date.now() >= deadline) throw e;
      return false;
    });
    if (healthy) break;
    await new Promise((r) => setTimeout(r, WAIT_POLL_MS));
  }
  return statusCommand({ ...args, flags }, client, io);
};

/** 90s, 5m, 1h → milliseconds. */
function durationMs(s: string): number {
  const m = /^(\d+)(ms|s|m|h)$/.exec(s);
  if (!m) throw new UsageError(`--wait-duration must be a duration such as 30s or 5m, not "${s}"`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
}

/** eBPF-only verbs: what ciliary has in their place. */
const INSTEAD: Record<string, string> = {
  'bpf fs': 'ciliary pins no maps in a BPF filesystem: its maps live in the agent and in <state-dir>/maps (see "ciliary map list" and --from-file)',
  'bpf sha': 'ciliary compiles no datapath objects, so there is no datapath SHA: its programs are TypeScript modules the agent runs (see "ciliary map list" for their maps)',
  'bpf prog': 'ciliary loads no eBPF programs: its datapath programs run in the agent, tail-called per packet (see "ciliary bpf metrics list" and "ciliary monitor")',
  cgroups: 'ciliary attaches no cgroup programs: pods are network namespaces and socket LB runs in the agent (see "ciliary endpoint list")',
  statedb: 'ciliary keeps no StateDB: its state is the kvstore and the maps (see "ciliary map list", "ciliary node list", "ciliary service list")',
  shell: 'ciliary has no hive shell: its tables are printed by "ciliary map list", "ciliary service list" and "ciliary status --verbose"',
};

const instead = (what: string): Verb => async (_args, _client, io) => {
  io.out(`${INSTEAD[what]}\n`);
  return 0;
};

export const cgroupsCommand = instead('cgroups');
export const statedbCommand = instead('statedb');
export const shellCommand = instead('shell');

/** `bpf fs show`, `bpf sha list|get`, `bpf prog list`, then every other bpf verb. */
export const bpfDbgCommand: Verb = (args, client, io) => {
  const what = args.positionals[0];
  if (what === 'fs' || what === 'sha' || what === 'prog') return instead(`bpf ${what}`)(args, client, io);
  return bpfCommand(args, client, io);
};
