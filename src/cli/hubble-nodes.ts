// `ciliary hubble list nodes` (hubble list nodes): every node the relay knows with its state, age, rate
// and ring fill, in hubble's table (NAME STATUS AGE FLOWS/S CURRENT/MAX-FLOWS; -o wide adds VERSION
// ADDRESS TLS), or its JSON.
import type { NodeMessage } from '../observe/hubble/grpc/proto.ts';
import { tabwrite } from '../observe/hubble/printer.ts';
import type { AgentClient } from './client.ts';
import { UsageError } from './errors.ts';
import type { Out } from './pods.ts';

const NOT_AVAILABLE = 'N/A';
const STATES: Record<string, string> = { NODE_CONNECTED: 'Connected', NODE_UNAVAILABLE: 'Unavailable', NODE_GONE: 'Gone', NODE_ERROR: 'Error' };

/** Go's time.Duration.String() of whole seconds: "0s", "45s", "2m22s", "1h0m5s". */
export function goDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (h) return `${h}h${m}m${s % 60}s`;
  if (m) return `${m}m${s % 60}s`;
  return `${s}s`;
}

/** hubble's nodeTableOutput. */
export function nodeTable(nodes: NodeMessage[], wide = false): string {
  const rows = [['NAME', 'STATUS', 'AGE', 'FLOWS/S', 'CURRENT/MAX-FLOWS', ...(wide ? ['VERSION', 'ADDRESS', 'TLS'] : [])]];
  for (const n of nodes) {
    const uptime = Math.round(Number(n.uptime_ns ?? 0) / 1e9);
    const num = Number(n.num_flows ?? 0);
    const max = Number(n.max_flows ?? 0);
    const row = [
      n.name ?? '', STATES[n.state ?? ''] ?? 'Unknown',
      uptime > 0 ? goDuration(uptime) : NOT_AVAILABLE,
      uptime > 0 ? (Number(n.seen_flows ?? 0) / uptime).toFixed(2) : NOT_AVAILABLE,
      max > 0 ? `${num}/${max} (${((num / max) * 100).toFixed(2).padStart(6)}%)` : NOT_AVAILABLE,
    ];
    if (wide) row.push(n.version || NOT_AVAILABLE, n.address ?? '', n.tls ? (n.tls.enabled ? 'Enabled' : 'Disabled') : NOT_AVAILABLE);
    rows.push(row);
  }
  return tabwrite(rows);
}

export async function listNodesCommand(client: AgentClient, output: string, io: Out): Promise<number> {
  if (!['table', 'wide', 'json'].includes(output)) throw new UsageError(`unknown output format: ${output}`);
  const { nodes = [] } = await client.get<{ nodes?: NodeMessage[] }>('/v1/hubble/nodes');
  nodes.sort((a, b) => (a.name ?? '').localeCompare(b.name ?? ''));
  io.out(output === 'json' ? JSON.stringify(nodes, null, 2) + '\n' : nodeTable(nodes, output === 'wide'));
  return 0;
}
