// cilium-dbg-like `identity list [--endpoints]` and `ip list [-n]`.
import type { Endpoint } from '../control/types.ts';
import { bool, checkFlags, str, type ParsedArgs } from './args.ts';
import type { AgentClient } from './client.ts';
import { UsageError } from './errors.ts';
import type { Out } from './pods.ts';
import { addressOrder, formatTable } from './table.ts';

export interface IdentityView {
  id: number;
  labels: string[];
}

export interface IpEntry {
  prefix: string;
  identity: number;
  labels: string[];
  source: string;
}

/** A header cell widened so its column is at least `width` (padding included), as cilium's fixed layouts. */
const atLeast = (title: string, width: number) => title.padEnd(width - 3);

/** Rows for one item whose labels go one per line: the first label beside the item's cells, the rest under it. */
function labelRows(first: string[], labels: string[], after: string[] = []): string[][] {
  const ls = labels.length ? [...labels].sort() : ['<none>'];
  return [[...first, ls[0], ...after], ...ls.slice(1).map((l) => [...first.map(() => ''), l, ...after.map(() => '')])];
}

/** `identity list`: `ID         LABELS`, one label per line. */
export function formatIdentityList(ids: IdentityView[]): string {
  const rows: string[][] = [[atLeast('ID', 11), 'LABELS']];
  for (const i of [...ids].sort((a, b) => a.id - b.id)) rows.push(...labelRows([String(i.id)], i.labels));
  return formatTable(rows);
}

/** `identity list --endpoints`: the identities endpoints use, REFCOUNT the number of endpoints with each. */
export function formatIdentityEndpoints(ids: IdentityView[], endpoints: Endpoint[]): string {
  const rows: string[][] = [['ID', 'LABELS', 'REFCOUNT']];
  for (const i of identityRefcounts(ids, endpoints)) rows.push(...labelRows([String(i.id)], i.labels, [String(i.refcount)]));
  return formatTable(rows);
}

/** The identities endpoints have, with how many endpoints have each. */
export function identityRefcounts(ids: IdentityView[], endpoints: Endpoint[]): Array<IdentityView & { refcount: number }> {
  const refs = new Map<number, number>();
  for (const ep of endpoints) refs.set(ep.identity, (refs.get(ep.identity) ?? 0) + 1);
  const known = new Map(ids.map((i) => [i.id, i.labels]));
  return [...refs.keys()].sort((a, b) => a - b).map((id) => ({
    id, labels: known.get(id) ?? endpoints.find((e) => e.identity === id)?.labels ?? [], refcount: refs.get(id)!,
  }));
}

/** `ip list`: prefix, its identity's labels (or the number with -n), the entry's source. */
export function formatIpList(entries: IpEntry[], numeric = false): string {
  const rows: string[][] = [[atLeast('IP', 20), atLeast('IDENTITY', 43), 'SOURCE']];
  for (const e of [...entries].sort((a, b) => addressOrder(a.prefix, b.prefix))) {
    if (numeric || !e.labels.length) rows.push([e.prefix, String(e.identity), e.source]);
    else {
      const [first, ...more] = e.labels;
      rows.push([e.prefix, first, e.source], ...more.map((l) => ['', l, '']));
    }
  }
  return formatTable(rows);
}

function jsonOr(args: ParsedArgs, io: Out, json: unknown, text: () => string): void {
  const output = str(args, 'output');
  if (output === 'json') io.out(JSON.stringify(json, null, 2) + '\n');
  else if (output !== undefined) throw new UsageError(`--output must be json, not "${output}"`);
  else io.out(text());
}

export async function identityCommand(args: ParsedArgs, client: AgentClient, io: Out): Promise<number> {
  const [verb, ...extra] = args.positionals;
  if (verb !== 'list' || extra.length) throw new UsageError('identity supports: ciliary identity list [--endpoints] [-o json]');
  checkFlags(args, 'identity list', ['endpoints', 'output']);
  const ids = await client.get<IdentityView[]>('/v1/identity');
  if (bool(args, 'endpoints')) {
    const eps = await client.get<Endpoint[]>('/v1/endpoint');
    jsonOr(args, io, identityRefcounts(ids, eps), () => formatIdentityEndpoints(ids, eps));
  } else {
    jsonOr(args, io, ids, () => formatIdentityList(ids));
  }
  return 0;
}

export async function ipCommand(args: ParsedArgs, client: AgentClient, io: Out): Promise<number> {
  const [verb, ...extra] = args.positionals;
  if (verb !== 'list' || extra.length) throw new UsageError('ip supports: ciliary ip list [-n] [-o json]');
  checkFlags(args, 'ip list', ['numeric', 'output']);
  const entries = await client.get<IpEntry[]>('/v1/ip');
  jsonOr(args, io, entries, () => formatIpList(entries, bool(args, 'numeric')));
  return 0;
}
