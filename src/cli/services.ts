// Service verbs: kubectl-like `create service`, `expose`, `get svc`, `delete svc`; cilium-dbg-like `service list`.
import type { Pod, Service, ServicePort, ServiceSpec } from '../control/types.ts';
import { bool, checkFlags, str, strs, type ParsedArgs } from './args.ts';
import type { AgentClient } from './client.ts';
import { CliError, UsageError } from './errors.ts';
import { humanAge, parseLabels, type Out } from './pods.ts';
import { formatTable } from './table.ts';

export const SERVICE_KINDS = ['svc', 'service', 'services'];
const SERVICE_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer'] as const;
type ServiceType = (typeof SERVICE_TYPES)[number];
type ApplyResult = { service: Service; result: 'created' | 'configured' | 'unchanged' };

/** `KIND/NAME` or `KIND NAME...` → kind and names (kubectl accepts both). */
export function splitKind(positionals: string[]): { kind: string | undefined; names: string[] } {
  const [first, ...rest] = positionals;
  if (first?.includes('/')) return { kind: first.slice(0, first.indexOf('/')), names: [first.slice(first.indexOf('/') + 1), ...rest] };
  return { kind: first, names: rest };
}

function protocolOf(s: string, what: string): 'TCP' | 'UDP' {
  const p = s.toUpperCase();
  if (p !== 'TCP' && p !== 'UDP') throw new UsageError(`${what}: protocol must be TCP or UDP, not "${s}"`);
  return p;
}

function portNumber(s: string, what: string): number {
  if (!/^\d{1,5}$/.test(s) || Number(s) < 1 || Number(s) > 65535) throw new UsageError(`${what}: "${s}" is not a port number (1-65535)`);
  return Number(s);
}

/** A target port: a number, or a container port's name (the agent checks the name's form). */
function targetOf(s: string): number | string {
  return /^\d+$/.test(s) ? portNumber(s, 'target port') : s;
}

/** `--port PORT[:TARGET][/TCP|UDP]` → a service port. */
export function parsePortSpec(s: string, defaultProtocol: 'TCP' | 'UDP' = 'TCP'): ServicePort {
  const m = /^([^:/]+)(?::([^:/]+))?(?:\/([A-Za-z]+))?$/.exec(s);
  if (!m) throw new UsageError(`--port: "${s}" is not PORT[:TARGET][/TCP|UDP]`);
  const port: ServicePort = { port: portNumber(m[1], '--port'), protocol: m[3] ? protocolOf(m[3], '--port') : defaultProtocol };
  if (m[2] !== undefined) port.targetPort = targetOf(m[2]);
  return port;
}

/** Several ports must be named: `80-8080` as kubectl create service names them (protocol added on a clash). */
export function namePorts(ports: ServicePort[]): ServicePort[] {
  if (ports.length < 2) return ports;
  const seen = new Set<string>();
  return ports.map((p) => {
    if (p.name) return p;
    let name = `${p.port}-${p.targetPort ?? p.port}`.toLowerCase();
    if (seen.has(name)) name = `${name}-${(p.protocol ?? 'TCP').toLowerCase()}`;
    seen.add(name);
    return { ...p, name };
  });
}

function serviceType(args: ParsedArgs): ServiceType | undefined {
  const t = str(args, 'type');
  if (t === undefined) return undefined;
  const found = SERVICE_TYPES.find((x) => x.toLowerCase() === t.toLowerCase());
  if (!found) throw new UsageError(`--type must be ${SERVICE_TYPES.join(', ')}, not "${t}"`);
  return found;
}

/** The spec fields create service and expose share: type, cluster IP, affinity, external IPs. */
function commonSpec(args: ParsedArgs, spec: ServiceSpec): ServiceSpec {
  const type = serviceType(args);
  if (type) spec.type = type;
  const clusterIP = str(args, 'cluster-ip');
  if (clusterIP) spec.clusterIP = clusterIP;
  const affinity = str(args, 'session-affinity');
  if (affinity !== undefined) {
    if (affinity !== 'ClientIP' && affinity !== 'None') throw new UsageError(`--session-affinity must be ClientIP or None, not "${affinity}"`);
    spec.sessionAffinity = affinity;
  }
  const timeout = str(args, 'session-affinity-timeout');
  if (timeout !== undefined) {
    if (!/^\d+$/.test(timeout)) throw new UsageError(`--session-affinity-timeout: "${timeout}" is not a number of seconds`);
    spec.sessionAffinityTimeoutSeconds = Number(timeout);
    spec.sessionAffinity ??= 'ClientIP';
  }
  const external = strs(args, 'external-ip').flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
  if (external.length) spec.externalIPs = external;
  return spec;
}

function defaultProtocol(args: ParsedArgs): 'TCP' | 'UDP' {
  const p = str(args, 'protocol');
  return p === undefined ? 'TCP' : protocolOf(p, '--protocol');
}

/** `ciliary create service NAME --selector k=v --port 80[:8080][/TCP] ...` (also `create service clusterip NAME`). */
export async function createCommand(args: ParsedArgs, client: AgentClient, io: Out): Promise<number> {
  checkFlags(args, 'create service', ['namespace', 'selector', 'port', 'type', 'protocol', 'cluster-ip', 'session-affinity', 'session-affinity-timeout', 'external-ip']);
  const [kind, ...afterKind] = args.positionals;
  let [name, ...extra] = afterKind;
  if (!kind || !SERVICE_KINDS.includes(kind)) throw new UsageError(`create supports services: ciliary create service NAME --port PORT[:TARGET][/PROTO] [--selector k=v]${kind ? ` (not "${kind}")` : ''}`);
  // kubectl's form: create service clusterip|nodeport|loadbalancer NAME
  const typeWord = SERVICE_TYPES.find((t) => t.toLowerCase() === name);
  if (typeWord && extra.length) {
    if (str(args, 'type') && serviceType(args) !== typeWord) throw new UsageError(`--type ${str(args, 'type')} contradicts "${name}"`);
    args = { ...args, flags: { ...args.flags, type: typeWord } };
    [name, ...extra] = extra;
  }
  if (!name) throw new UsageError('create service needs a name: ciliary create service NAME --port PORT[:TARGET][/PROTO] [--selector k=v]');
  if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const portSpecs = strs(args, 'port');
  if (!portSpecs.length) throw new UsageError('create service needs at least one --port PORT[:TARGET][/TCP|UDP]');
  const proto = defaultProtocol(args);
  const spec = commonSpec(args, {
    name,
    namespace: str(args, 'namespace') ?? 'default',
    ports: namePorts(portSpecs.map((p) => parsePortSpec(p, proto))),
  });
  const selector = str(args, 'selector');
  if (selector !== undefined) spec.selector = parseLabels(selector, '--selector');
  const { result } = await client.call<ApplyResult>('POST', '/v1/services', spec);
  io.out(`service/${name} ${result}\n`);
  return 0;
}

const POD_KINDS = ['pod', 'pods', 'po'];
const DEPLOYMENT_KINDS = ['deployment', 'deployments', 'deploy'];

/** Labels every pod has with the same value (a deployment's pods share their template's labels). */
export function commonLabels(pods: Pod[]): Record<string, string> {
  if (!pods.length) return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(pods[0].labels)) {
    if (k === 'pod-template-hash') continue;
    if (pods.every((p) => p.labels[k] === v)) out[k] = v;
  }
  return out;
}

/** `ciliary expose pod|deployment NAME [--port P] [--target-port T] [--name SVC] [--protocol UDP]`, as kubectl expose. */
export async function exposeCommand(args: ParsedArgs, client: AgentClient, io: Out): Promise<number> {
  checkFlags(args, 'expose', ['namespace', 'port', 'target-port', 'name', 'protocol', 'selector', 'type', 'cluster-ip', 'session-affinity', 'session-affinity-timeout', 'external-ip']);
  const { kind, names } = splitKind(args.positionals);
  const usage = 'ciliary expose pod|deployment NAME [--port PORT] [--target-port PORT] [--name SVC] [--protocol TCP|UDP]';
  if (!kind || ![...POD_KINDS, ...DEPLOYMENT_KINDS].includes(kind)) throw new UsageError(`expose supports pods and deployments: ${usage}${kind ? ` (not "${kind}")` : ''}`);
  const [name, ...extra] = names;
  if (!name) throw new UsageError(`expose needs a name: ${usage}`);
  if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const ns = str(args, 'namespace') ?? 'default';

  let pods: Pod[];
  if (POD_KINDS.includes(kind)) {
    pods = [await client.get<Pod>(`/v1/pods/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`)];
  } else {
    // No deployment objects: its pods are NAME or NAME-<hash>-<suffix>.
    pods = (await client.get<Pod[]>('/v1/pods')).filter((p) => p.namespace === ns && (p.name === name || p.name.startsWith(`${name}-`)));
    if (!pods.length) throw new CliError(`deployments "${name}" not found (no pod named ${name} or ${name}-... in namespace ${ns})`);
  }
  const selectorFlag = str(args, 'selector');
  const selector = selectorFlag !== undefined ? parseLabels(selectorFlag, '--selector') : commonLabels(pods);
  if (!Object.keys(selector).length) throw new CliError("couldn't retrieve selectors via --selector flag or introspection (the pod has no labels)");

  const proto = str(args, 'protocol') === undefined ? undefined : defaultProtocol(args);
  const target = str(args, 'target-port');
  let ports: ServicePort[];
  const portFlags = strs(args, 'port');
  if (portFlags.length) {
    ports = portFlags.map((p) => {
      const sp = parsePortSpec(p, proto ?? 'TCP');
      if (target !== undefined) sp.targetPort = targetOf(target);
      return sp;
    });
  } else {
    // kubectl takes the container ports when --port is absent.
    const cports = pods[0].ports ?? [];
    if (!cports.length) throw new UsageError("couldn't find port via --port flag or introspection: give --port");
    ports = cports.map((c) => ({
      ...(c.name && cports.length > 1 ? { name: c.name } : {}),
      port: c.containerPort,
      targetPort: target !== undefined ? targetOf(target) : c.containerPort,
      protocol: proto ?? c.protocol ?? 'TCP',
    }));
  }
  const svcName = str(args, 'name') ?? name;
  const spec = commonSpec(args, { name: svcName, namespace: ns, selector, ports: namePorts(ports) });
  const { result } = await client.call<ApplyResult>('POST', '/v1/services', spec);
  io.out(`service/${svcName} ${result === 'created' ? 'exposed' : result}\n`);
  return 0;
}

/** PORT(S) as kubectl prints it: `80/TCP`, `80:31234/TCP`, comma-separated. */
export function formatPorts(svc: Service): string {
  if (!svc.ports.length) return '<none>';
  const nodePortFrontends = svc.frontends.filter((f) => f.type === 'NodePort');
  return svc.ports.map((p) => {
    // The agent fills nodePort in; a single-port service can also take it from its NodePort frontend.
    const nodePort = p.nodePort ?? (svc.type !== undefined && svc.type !== 'ClusterIP' && svc.ports.length === 1 ? nodePortFrontends[0]?.port : undefined);
    return `${p.port}${nodePort ? `:${nodePort}` : ''}/${p.protocol ?? 'TCP'}`;
  }).join(',');
}

/** EXTERNAL-IP: external IPs (and a LoadBalancer's address), `<pending>` for a LoadBalancer without one, else `<none>`. */
export function formatExternalIP(svc: Service): string {
  const lbIPs = svc.type === 'LoadBalancer' ? [...(svc.loadBalancerIngress ?? []), ...svc.frontends.filter((f) => f.type === 'LoadBalancer').map((f) => f.address)] : [];
  const ips = [...lbIPs, ...(svc.externalIPs ?? [])];
  const unique = [...new Set(ips)];
  if (unique.length) return unique.join(',');
  return svc.type === 'LoadBalancer' ? '<pending>' : '<none>';
}

/** SELECTOR: `k=v,k2=v2` with sorted keys, or `<none>`. */
export function formatSelector(sel: Record<string, string> | undefined): string {
  const keys = Object.keys(sel ?? {}).sort();
  return keys.length ? keys.map((k) => `${k}=${sel![k]}`).join(',') : '<none>';
}

function sortServices(svcs: Service[]): Service[] {
  return [...svcs].sort((a, b) => (a.namespace === b.namespace ? (a.name < b.name ? -1 : 1) : a.namespace < b.namespace ? -1 : 1));
}

/** `kubectl get svc` table (NAMESPACE with -A, SELECTOR with -o wide). */
export function formatServicesTable(svcs: Service[], o: { allNamespaces?: boolean; wide?: boolean; now?: number } = {}): string {
  const now = o.now ?? Date.now();
  const header = [...(o.allNamespaces ? ['NAMESPACE'] : []), 'NAME', 'TYPE', 'CLUSTER-IP', 'EXTERNAL-IP', 'PORT(S)', 'AGE', ...(o.wide ? ['SELECTOR'] : [])];
  const rows = sortServices(svcs).map((s) => [
    ...(o.allNamespaces ? [s.namespace] : []),
    s.name, s.type ?? 'ClusterIP', s.clusterIP || '<none>', formatExternalIP(s), formatPorts(s), humanAge((now - Date.parse(s.createdAt)) / 1000),
    ...(o.wide ? [formatSelector(s.selector)] : []),
  ]);
  return formatTable([header, ...rows]);
}

export async function getServicesCommand(args: ParsedArgs, client: AgentClient, io: Out): Promise<number> {
  checkFlags(args, 'get services', ['namespace', 'all-namespaces', 'output']);
  const { names } = splitKind(args.positionals);
  const output = str(args, 'output');
  if (output !== undefined && output !== 'wide' && output !== 'json') throw new UsageError(`--output must be wide or json, not "${output}"`);
  const all = bool(args, 'all-namespaces');
  const ns = str(args, 'namespace') ?? 'default';
  let svcs = (await client.get<Service[]>('/v1/services')).filter((s) => all || s.namespace === ns);
  if (names.length) svcs = svcs.filter((s) => names.includes(s.name));
  for (const name of names) {
    if (!svcs.some((s) => s.name === name)) throw new CliError(`services "${name}" not found`);
  }
  if (output === 'json') {
    io.out(JSON.stringify(sortServices(svcs), null, 2) + '\n');
    return 0;
  }
  if (!svcs.length) {
    io.err(all ? 'No resources found\n' : `No resources found in ${ns} namespace.\n`);
    return 0;
  }
  io.out(formatServicesTable(svcs, { allNamespaces: all, wide: output === 'wide' }));
  return 0;
}

export async function deleteServicesCommand(args: ParsedArgs, client: AgentClient, io: Out): Promise<number> {
  checkFlags(args, 'delete service', ['namespace']);
  const { names } = splitKind(args.positionals);
  if (!names.length) throw new UsageError('delete service needs a service name: ciliary delete svc NAME [-n NS]');
  const ns = str(args, 'namespace') ?? 'default';
  for (const name of names) {
    await client.call('DELETE', `/v1/services/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`);
    io.out(`service "${name}" deleted\n`);
  }
  return 0;
}

/** cilium-dbg `service list`: one row per frontend by ID, backends numbered from 1 under the Backend column. */
export function formatServiceList(svcs: Service[]): string {
  const rows: string[][] = [['ID', 'Frontend', 'Service Type', 'Backend']];
  const frontends = svcs.flatMap((s) => s.frontends).sort((a, b) => a.id - b.id);
  for (const f of frontends) {
    const backends = f.backends.map((b, i) => `${i + 1} => ${b.ip}:${b.port}${b.state === 'terminating' ? ' (terminating)' : ''}`);
    rows.push([String(f.id), `${f.address}:${f.port}`, f.type, backends[0] ?? '']);
    for (const b of backends.slice(1)) rows.push(['', '', '', b]);
  }
  return formatTable(rows, { padding: 3, minWidth: 5 });
}

export async function serviceCommand(args: ParsedArgs, client: AgentClient, io: Out): Promise<number> {
  const [verb, ...extra] = args.positionals;
  if (verb !== 'list' || extra.length) throw new UsageError('service supports: ciliary service list [-o json]');
  checkFlags(args, 'service list', ['output']);
  const output = str(args, 'output');
  if (output !== undefined && output !== 'json') throw new UsageError(`--output must be json, not "${output}"`);
  const svcs = await client.get<Service[]>('/v1/service');
  if (output === 'json') io.out(JSON.stringify(svcs, null, 2) + '\n');
  else io.out(formatServiceList(svcs));
  return 0;
}
