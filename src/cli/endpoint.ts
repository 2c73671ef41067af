// `endpoint list` / `endpoint get ID` in cilium-dbg's format.
import type { Endpoint } from '../control/types.ts';
import { checkFlags, str, type ParsedArgs } from './args.ts';
import type { AgentClient } from './client.ts';
import { UsageError } from './errors.ts';
import type { Out } from './pods.ts';
import { formatTable } from './table.ts';

/** The table cilium-dbg prints: two header lines, then one line per label with the endpoint's cells on the first. */
export function formatEndpointList(eps: Endpoint[]): string {
  const rows: string[][] = [
    ['ENDPOINT', 'POLICY (ingress)', 'POLICY (egress)', 'IDENTITY', 'LABELS (source:key[=value])', 'IPv6', 'IPv4', 'STATUS'],
    ['', 'ENFORCEMENT', 'ENFORCEMENT', '', '', '', '', ''],
  ];
  for (const ep of [...eps].sort((a, b) => a.id - b.id)) {
    const labels = ep.labels.length ? ep.labels : ['no labels'];
    // As Cilium: an endpoint waiting for its identity has none to print.
    rows.push([String(ep.id), ep.policyIngress, ep.policyEgress, ep.identity ? String(ep.identity) : '<no label id>', labels[0], '', ep.ipv4, ep.state]);
    for (const l of labels.slice(1)) rows.push(['', '', '', '', l, '', '', '']);
  }
  return formatTable(rows, { padding: 3, minWidth: 5 });
}

export async function endpointCommand(args: ParsedArgs, client: AgentClient, io: Out): Promise<number> {
  const [verb, id, ...extra] = args.positionals;
  if (verb === 'list' || verb === 'ls') {
    checkFlags(args, 'endpoint list', ['output']);
    if (id) throw new UsageError(`unexpected argument "${id}"`);
    const eps = await client.get<Endpoint[]>('/v1/endpoint');
    const output = str(args, 'output');
    if (output === 'json') io.out(JSON.stringify(eps, null, 2) + '\n');
    else if (output !== undefined) throw new UsageError(`--output must be json, not "${output}"`);
    else io.out(formatEndpointList(eps));
    return 0;
  }
  if (verb === 'get') {
    checkFlags(args, 'endpoint get', ['output']);
    if (!id || !/^\d+$/.test(id)) throw new UsageError('endpoint get needs a numeric endpoint ID: ciliary endpoint get ID');
    if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
    io.out(JSON.stringify(await client.get<Endpoint>(`/v1/endpoint/${id}`), null, 2) + '\n');
    return 0;
  }
  throw new UsageError(`endpoint ${verb ? `"${verb}" is not a verb` : 'needs a verb'}: ciliary endpoint list | endpoint get ID`);
}
