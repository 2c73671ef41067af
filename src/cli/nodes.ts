// `node list` (Cilium's columns) and `get nodes [-o wide]` (kubectl's), from the agent's node registry.
import type { NodeView } from '../control/nodes.ts';
import { checkFlags, str, type ParsedArgs } from './args.ts';
import type { AgentClient } from './client.ts';
import { CliError, UsageError } from './errors.ts';
import { humanAge, type Out } from './pods.ts';
import { formatTable } from './table.ts';

export const NODE_KINDS = ['nodes', 'node', 'no'];
const ROLE_PREFIX = 'node-role.kubernetes.io/';

/** `cilium node list`. */
export function formatNodeList(nodes: NodeView[]): string {
  const header = ['Name', 'IPv4 Address', 'Endpoint CIDR', 'IPv6 Address', 'Endpoint CIDR', 'Source'];
  // Cilium's list holds the nodes in the kvstore: a NotReady one has left it.
  return formatTable([header, ...nodes.filter((n) => n.ready !== false).map((n) => [n.name, n.nodeIP, n.podCIDR, '', '', n.source])], { padding: 3, minWidth: 2 });
}

/** kubectl's ROLES: the node-role.kubernetes.io/<role> labels, `<none>` without one. */
export function nodeRoles(labels: Record<string, string>): string {
  const roles = Object.keys(labels).filter((k) => k.startsWith(ROLE_PREFIX)).map((k) => k.slice(ROLE_PREFIX.length)).sort();
  return roles.length ? roles.join(',') : '<none>';
}

/** `kubectl get nodes [-o wide]`. */
export function formatGetNodes(nodes: NodeView[], wide: boolean, now = Date.now()): string {
  const header = ['NAME', 'STATUS', 'ROLES', 'AGE', 'VERSION', ...(wide ? ['INTERNAL-IP', 'EXTERNAL-IP', 'OS-IMAGE', 'KERNEL-VERSION', 'CONTAINER-RUNTIME'] : [])];
  const rows = nodes.map((n) => [
    n.name, n.ready === false ? 'NotReady' : 'Ready', nodeRoles(n.labels ?? {}), n.createdAt ? humanAge((now - Date.parse(n.createdAt)) / 1000) : '<unknown>', `v${n.version}`,
    ...(wide ? [n.nodeIP, '<none>', n.osImage ?? '<unknown>', n.kernelVersion ?? '<unknown>', `ciliary://${n.version}`] : []),
  ]);
  return formatTable([header, ...rows], { padding: 3 });
}

export async function nodeCommand(args: ParsedArgs, client: AgentClient, io: Out): Promise<number> {
  checkFlags(args, 'node', []);
  if (args.positionals[0] !== 'list' || args.positionals.length > 1) throw new UsageError('usage: ciliary node list');
  io.out(formatNodeList(await client.get<NodeView[]>('/v1/nodes')));
  return 0;
}

export async function getNodesCommand(args: ParsedArgs, client: AgentClient, io: Out): Promise<number> {
  checkFlags(args, 'get', ['output']);
  const output = str(args, 'output');
  if (output !== undefined && output !== 'wide') throw new UsageError(`get nodes: --output must be wide, not "${output}"`);
  const [, ...names] = args.positionals;
  const nodes = (await client.get<NodeView[]>('/v1/nodes')).filter((n) => names.length === 0 || names.includes(n.name));
  for (const name of names) if (!nodes.some((n) => n.name === name)) throw new CliError(`nodes "${name}" not found`);
  io.out(formatGetNodes(nodes, output === 'wide'));
  return 0;
}
