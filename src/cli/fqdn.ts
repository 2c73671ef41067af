// cilium-dbg-like `fqdn cache list` and `fqdn cache clean`.
import type { FqdnCacheRow } from '../fqdn/cache.ts';
import { checkFlags, str, type ParsedArgs } from './args.ts';
import type { AgentClient } from './client.ts';
import { UsageError } from './errors.ts';
import type { Out } from './pods.ts';
import { formatTable } from './table.ts';

const USAGE = 'fqdn supports: ciliary fqdn cache list [-o json] | ciliary fqdn cache clean';

/** Cilium's columns (tabwriter minwidth 5, padding 3); the expiration time in RFC 3339 with milliseconds. */
export function formatFqdnCache(rows: FqdnCacheRow[]): string {
  const out: string[][] = [['Endpoint', 'Source', 'FQDN', 'TTL', 'ExpirationTime', 'IPs']];
  for (const r of rows) out.push([String(r.endpointId), r.source, r.fqdn, String(r.ttl), new Date(r.expiresAt).toISOString(), r.ips.join(',')]);
  return formatTable(out, { minWidth: 5 });
}

export async function fqdnCommand(args: ParsedArgs, client: AgentClient, io: Out): Promise<number> {
  const [noun, verb, ...extra] = args.positionals;
  if (noun !== 'cache' || extra.length) throw new UsageError(USAGE);
  if (verb === 'list') {
    checkFlags(args, 'fqdn cache list', ['output']);
    const rows = await client.get<FqdnCacheRow[]>('/v1/fqdn/cache');
    const output = str(args, 'output');
    if (output === 'json') io.out(JSON.stringify(rows, null, 2) + '\n');
    else if (output !== undefined) throw new UsageError(`--output must be json, not "${output}"`);
    else io.out(formatFqdnCache(rows));
    return 0;
  }
  if (verb === 'clean') {
    checkFlags(args, 'fqdn cache clean', []);
    const { removed } = await client.call<{ removed: number }>('DELETE', '/v1/fqdn/cache');
    io.out(`removed ${removed} entries\n`);
    return 0;
  }
  throw new UsageError(USAGE);
}
