// kubectl-like pod verbs: run, delete pod, get pods, exec.
import { pidAlive } from '../control/process.ts';
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { Pod, PodSpec } from '../control/types.ts';
import { bool, checkFlags, str, type ParsedArgs } from './args.ts';
import type { AgentClient } from './client.ts';
import { CliError, UsageError } from './errors.ts';
import { formatTable } from './table.ts';
import { STANDIN_BIN } from '../workloads/images.ts';

export interface Out {
  out(s: string): void;
  err(s: string): void;
}

/** `a=b,c=d` → { a: 'b', c: 'd' }. */
export function parseLabels(s: string, flag = '--labels'): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of s.split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new UsageError(`${flag}: "${part}" is not key=value`);
    out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}

/** Kubernetes' duration.HumanDuration: 45s, 5m3s, 3h20m, 2d4h, 40d. */
export function humanAge(seconds: number): string {
  const s = Math.floor(seconds);
  if (s < -1) return '<invalid>';
  if (s < 0) return '0s';
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  if (h < 24 * 8) return h % 24 === 0 ? `${d}d` : `${d}d${h % 24}h`;
  if (h < 24 * 365 * 2) return `${d}d`;
  const y = Math.floor(d / 365);
  if (h < 24 * 365 * 8) return d % 365 === 0 ? `${y}y` : `${y}y${d % 365}d`;
  return `${y}y`;
}

/** READY and STATUS as kubectl would show the pod for its endpoint state. */
export function podPhase(state: Pod['state']): { ready: string; status: string } {
  switch (state) {
    case 'ready': return { ready: '1/1', status: 'Running' };
    case 'regenerating': return { ready: '0/1', status: 'ContainerCreating' };
    case 'waiting-for-identity': return { ready: '0/1', status: 'Pending' };
    case 'disconnected': return { ready: '0/1', status: 'Terminating' };
    default: return { ready: '0/1', status: String(state) };
  }
}

export interface PodsTableOptions {
  allNamespaces?: boolean;
  wide?: boolean;
  now?: number;
}

/** `kubectl get pods` table (NAMESPACE column with -A; IP and NODE with -o wide). */
export function formatPodsTable(pods: Pod[], o: PodsTableOptions = {}): string {
  const now = o.now ?? Date.now();
  const header = [...(o.allNamespaces ? ['NAMESPACE'] : []), 'NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE', ...(o.wide ? ['IP', 'NODE'] : [])];
  const rows = sortPods(pods).map((p) => {
    const { ready, status } = podPhase(p.state);
    const age = humanAge((now - Date.parse(p.createdAt)) / 1000);
    return [...(o.allNamespaces ? [p.namespace] : []), p.name, ready, status, '0', age, ...(o.wide ? [p.podIP || '<none>', p.node || '<none>'] : [])];
  });
  return formatTable([header, ...rows]);
}

/** `get pods -o json`: the fields a script needs, in a stable order. */
export function podsJson(pods: Pod[]): string {
  const list = sortPods(pods).map((p) => ({
    name: p.name, namespace: p.namespace, labels: p.labels, node: p.node, podIP: p.podIP, endpointID: p.endpointID, state: p.state,
  }));
  return JSON.stringify(list, null, 2) + '\n';
}

function sortPods(pods: Pod[]): Pod[] {
  return [...pods].sort((a, b) => (a.namespace === b.namespace ? (a.name < b.name ? -1 : 1) : a.namespace < b.namespace ? -1 : 1));
}

function podPath(ns: string, name: string): string {
  return `/v1/pods/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`;
}

export async function runCommand(args: ParsedArgs, client: AgentClient, io: Out): Promise<number> {
  checkFlags(args, 'run', ['namespace', 'labels']);
  const [name, ...extra] = args.positionals;
  if (!name) throw new UsageError('run needs a pod name: ciliary run NAME [-n NS] [--labels k=v,...] [-- COMMAND ARGS...]');
  if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}" (put the pod's command after --)`);
  const spec: Partial<PodSpec> = { name, namespace: str(args, 'namespace') ?? 'default', labels: parseLabels(str(args, 'labels') ?? '') };
  const node = str(args, 'node');
  if (node) spec.node = node;
  if (args.rest?.length) spec.command = args.rest;
  const pod = await client.call<Pod>('POST', '/v1/pods', spec);
  io.out(`pod/${pod.name} created\n`);
  return 0;
}

export async function deleteCommand(args: ParsedArgs, client: AgentClient, io: Out): Promise<number> {
  checkFlags(args, 'delete', ['namespace']);
  let [kind, ...names] = args.positionals;
  // kubectl also takes pod/NAME.
  if (kind?.includes('/')) { names = [kind.slice(kind.indexOf('/') + 1), ...names]; kind = kind.slice(0, kind.indexOf('/')); }
  if (!kind || !['pod', 'pods', 'po'].includes(kind)) throw new UsageError(`delete supports pods and services: ciliary delete pod|svc NAME [-n NS]${kind ? ` (not "${kind}")` : ''}`);
  if (!names.length) throw new UsageError('delete pod needs a pod name');
  const ns = str(args, 'namespace') ?? 'default';
  for (const name of names) {
    await client.call('DELETE', podPath(ns, name));
    io.out(`pod "${name}" deleted\n`);
  }
  return 0;
}

export async function getCommand(args: ParsedArgs, client: AgentClient, io: Out): Promise<number> {
  checkFlags(args, 'get', ['namespace', 'all-namespaces', 'output']);
  const [kind, ...extra] = args.positionals;
  if (!kind || !['pods', 'pod', 'po'].includes(kind)) throw new UsageError(`get supports pods and services: ciliary get pods|svc [-n NS|-A] [-o wide|json]${kind ? ` (not "${kind}")` : ''}`);
  const output = str(args, 'output');
  if (output !== undefined && output !== 'wide' && output !== 'json') throw new UsageError(`--output must be wide or json, not "${output}"`);
  const all = bool(args, 'all-namespaces');
  const ns = str(args, 'namespace') ?? 'default';
  let pods = (await client.get<Pod[]>('/v1/pods')).filter((p) => all || p.namespace === ns);
  if (extra.length) pods = pods.filter((p) => extra.includes(p.name));
  for (const name of extra) {
    if (!pods.some((p) => p.name === name)) throw new CliError(`pods "${name}" not found`);
  }
  if (output === 'json') {
    io.out(podsJson(pods));
    return 0;
  }
  if (!pods.length) {
    io.err(all ? 'No resources found\n' : `No resources found in ${ns} namespace.\n`);
    return 0;
  }
  io.out(formatPodsTable(pods, { allNamespaces: all, wide: output === 'wide' }));
  return 0;
}

/**
 * What puts a command into the pod's UTS namespace: the running process's (nsenter), or a new one with the
 * pod's hostname when no process runs.
 */
export function podHostnameWrapper(pod: Pod, alive: (pid: number) => boolean = pidAlive): string[] {
  if (pod.pid && alive(pod.pid)) return ['nsenter', '-t', String(pod.pid), '-u', '--'];
  return ['unshare', '--uts', 'sh', '-c', 'hostname "$0" && exec "$@"', pod.process?.hostname ?? pod.name];
}


/** Exit status of a child as a shell reports it: its code, or 128 + signal number. */
export function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  if (signal) return 128 + (constants.signals[signal] ?? 0);
  return 1;
}

export async function execCommand(args: ParsedArgs, client: AgentClient): Promise<number> {
  checkFlags(args, 'exec', ['namespace']);
  const [name, ...extra] = args.positionals;
  if (!name) throw new UsageError('exec needs a pod: ciliary exec POD [-n NS] -- COMMAND ARGS...');
  if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}": the command goes after --`);
  if (!args.rest?.length) throw new UsageError('exec needs a command after --: ciliary exec POD -- COMMAND ARGS...');
  const ns = str(args, 'namespace') ?? 'default';
  const pod = await (await client.forPod(ns, name)).get<Pod>(podPath(ns, name));
  // The seeds' tools missing on the host (netperf) resolve to ciliary's stand-ins, after the host's own.
  const env = { ...process.env, PATH: `${process.env.PATH ?? '/usr/bin:/bin'}:${STANDIN_BIN}` };
  const child = spawn('ip', ['netns', 'exec', pod.netns, ...podHostnameWrapper(pod), ...args.rest], { stdio: 'inherit', env });
  // Ctrl-C reaches the child through the terminal; we stay to report its exit status.
  const ignore = () => {};
  const forward = (sig: NodeJS.Signals) => child.kill(sig);
  process.on('SIGINT', ignore);
  process.on('SIGTERM', forward);
  process.on('SIGHUP', forward);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.on('error', (e) => reject(new CliError(`cannot run ip netns exec: ${e.message}`)));
      child.on('exit', (code, signal) => resolve(exitStatus(code, signal)));
    });
  } finally {
    process.off('SIGINT', ignore);
    process.off('SIGTERM', forward);
    process.off('SIGHUP', forward);
  }
}
