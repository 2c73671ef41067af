// `bpf endpoint list`, `bpf ipcache list`, `map list`, `map get`: through the API, or from the pinned files.
import type { Endpoint, MapEntryView, MapSummary } from '../control/types.ts';
import { bool, checkFlags, count, str, type ParsedArgs } from './args.ts';
import type { AgentClient } from './client.ts';
import { AgentUnreachableError, UsageError } from './errors.ts';
import { dumpPinnedMap, listPinnedMaps } from './local-maps.ts';
import type { Out } from './pods.ts';
import { addressOrder, formatTable } from './table.ts';

/** `cilium bpf ... list` subcommands: map name and the two column titles. */
export const BPF_LISTS: Record<string, { map: string; titles: [string, string] }> = {
  endpoint: { map: 'cilium_lxc', titles: ['IP ADDRESS', 'LOCAL ENDPOINT INFO'] },
  ipcache: { map: 'cilium_ipcache', titles: ['IP PREFIX/ADDRESS', 'IDENTITY'] },
};

/** Two-column listing as cilium's TablePrinter: sorted keys, header, one line per entry. */
export function formatBpfList(titles: [string, string], entries: MapEntryView[]): string {
  const sorted = [...entries].sort((a, b) => addressOrder(a.key, b.key));
  return formatTable([titles, ...sorted.map((e) => [e.key, e.value])], { padding: 3, minWidth: 5 });
}

/** `cilium bpf lb list` titles: services and their backends, or with --revnat the rev-NAT entries. */
export const LB_TITLES: [string, string] = ['SERVICE ADDRESS', 'BACKEND ADDRESS'];
export const LB_REVNAT_TITLES: [string, string] = ['ID', 'SERVICE ADDRESS'];

/** `bpf lb list [--revnat]`: rows as the agent gives them (continuation rows have an empty first cell). */
export function formatLbList(rows: Array<[string, string]>, revnat = false): string {
  return formatTable([revnat ? LB_REVNAT_TITLES : LB_TITLES, ...rows], { padding: 3, minWidth: 5 });
}

/** The CT maps `bpf ct flush global` empties. */
export const CT_GLOBAL_MAPS = ['cilium_ct4_global', 'cilium_ct_any4_global'];

/** `cilium map list` columns, plus size and pressure (and type and sizes with --verbose). */
export function formatMapList(maps: MapSummary[], verbose = false): string {
  const header = ['Name', 'Num entries', 'Num errors', 'Cache enabled', 'Max entries', 'Pressure', ...(verbose ? ['Type', 'Key size', 'Value size'] : [])];
  const rows = [...maps].sort((a, b) => (a.name < b.name ? -1 : 1)).map((m) => [
    m.name, String(m.count), '0', 'true', String(m.maxEntries), `${(m.pressure * 100).toFixed(2)}%`,
    ...(verbose ? [m.type, String(m.keySize), String(m.valueSize)] : []),
  ]);
  return formatTable([header, ...rows], { padding: 3, minWidth: 5 });
}

/** `cilium map get NAME`. */
export function formatMapGet(entries: MapEntryView[]): string {
  return formatTable([['Key', 'Value', 'State', 'Error'], ...entries.map((e) => [e.key, e.value, 'sync', ''])], { padding: 3, minWidth: 5 });
}

/** Through the agent unless --from-file; falls back to the files when the agent does not answer. */
async function withFallback<T>(args: ParsedArgs, client: AgentClient, io: Out, viaApi: () => Promise<T>, viaFiles: () => Promise<T>): Promise<T> {
  if (bool(args, 'from-file')) return viaFiles();
  try {
    return await viaApi();
  } catch (e) {
    if (!(e instanceof AgentUnreachableError)) throw e;
    io.err(`(agent not reachable at ${e.socketPath}: reading pinned maps in ${client.target.stateDir}/maps)\n`);
    return viaFiles();
  }
}

async function entriesOf(args: ParsedArgs, client: AgentClient, io: Out, name: string): Promise<MapEntryView[]> {
  return withFallback(args, client, io,
    async () => (await client.get<{ entries: MapEntryView[] }>(`/v1/map/${encodeURIComponent(name)}`)).entries,
    () => dumpPinnedMap(client.target.stateDir, name));
}

function printEntries(args: ParsedArgs, io: Out, entries: MapEntryView[], text: () => string): void {
  const output = str(args, 'output');
  if (output === 'json') io.out(JSON.stringify(entries, null, 2) + '\n');
  else if (output !== undefined) throw new UsageError(`--output must be json, not "${output}"`);
  else if (!entries.length) io.err('No entries found.\n');
  else io.out(text());
}

const BPF_USAGE = `bpf supports: ${Object.keys(BPF_LISTS).map((k) => `bpf ${k} list`).join(', ')}, bpf lb list [--revnat], bpf ct list global, bpf ct flush global, bpf policy get ID|--all`;

/** Where cilium pins an endpoint's policy map: cilium_policy_ + the 5-digit endpoint id. */
export function policyMapPath(endpointID: number): string {
  return `/sys/fs/bpf/tc/globals/cilium_policy_${String(endpointID).padStart(5, '0')}`;
}

/** `bpf policy get --all`: per endpoint its id, map path and table (the agent's, verbatim), a blank line between. */
export function formatPolicyGetAll(tables: Array<{ id: number; table: string }>): string {
  return tables.map((t) => `Endpoint ID: ${t.id}\nPath: ${policyMapPath(t.id)}\n${t.table.endsWith('\n') || t.table === '' ? t.table : t.table + '\n'}`).join('\n');
}

async function policyGetCommand(args: ParsedArgs, client: AgentClient, io: Out, rest: string[]): Promise<number> {
  const [verb, id, ...extra] = rest;
  const usage = 'bpf policy supports: bpf policy get ID | bpf policy get --all';
  if (verb !== 'get' || extra.length) throw new UsageError(usage);
  checkFlags(args, 'bpf policy get', ['all']);
  const table = (epID: number) => client.get<{ table: string }>(`/v1/bpf/policy/${epID}`).then((r) => r.table);
  if (bool(args, 'all')) {
    if (id !== undefined) throw new UsageError('bpf policy get --all takes no endpoint ID');
    const eps = (await client.get<Endpoint[]>('/v1/endpoint')).filter((e) => !e.isHost).sort((a, b) => a.id - b.id);
    const tables: Array<{ id: number; table: string }> = [];
    for (const ep of eps) tables.push({ id: ep.id, table: await table(ep.id) });
    io.out(formatPolicyGetAll(tables));
    return 0;
  }
  if (id === undefined || !/^\d{1,5}$/.test(id)) throw new UsageError(`bpf policy get needs a numeric endpoint ID${id ? ` (not "${id}")` : ''}: ${usage}`);
  const t = await table(Number(id));
  io.out(t.endsWith('\n') || t === '' ? t : t + '\n');
  return 0;
}

function jsonOrText(args: ParsedArgs, io: Out, json: unknown, text: () => string): void {
  const output = str(args, 'output');
  if (output === 'json') io.out(JSON.stringify(json, null, 2) + '\n');
  else if (output !== undefined) throw new UsageError(`--output must be json, not "${output}"`);
  else io.out(text());
}

async function lbCommand(args: ParsedArgs, client: AgentClient, io: Out, rest: string[]): Promise<number> {
  if (rest[0] !== 'list' || rest.length > 1) throw new UsageError('bpf lb supports: bpf lb list [--revnat] [-o json]');
  checkFlags(args, 'bpf lb list', ['revnat', 'output']);
  const revnat = bool(args, 'revnat');
  const { rows } = await client.get<{ rows: Array<[string, string]> }>(`/v1/lb?revnat=${revnat}`);
  if (!rows.length && str(args, 'output') === undefined) {
    io.err('No entries found.\n');
    return 0;
  }
  jsonOrText(args, io, rows, () => formatLbList(rows, revnat));
  return 0;
}

async function ctCommand(args: ParsedArgs, client: AgentClient, io: Out, rest: string[]): Promise<number> {
  const [verb, scope, ...extra] = rest;
  if ((verb !== 'list' && verb !== 'flush') || extra.length) throw new UsageError('bpf ct supports: bpf ct list global, bpf ct flush global');
  if (scope !== 'global') throw new UsageError(`bpf ct ${verb} supports the global table only: bpf ct ${verb} global${scope ? ` (not "${scope}")` : ''}`);
  if (verb === 'list') {
    checkFlags(args, 'bpf ct list', ['output']);
    const { lines } = await client.get<{ lines: string[] }>('/v1/ct');
    jsonOrText(args, io, lines, () => lines.map((l) => l + '\n').join(''));
    return 0;
  }
  checkFlags(args, 'bpf ct flush', []);
  const { flushed } = await client.call<{ flushed: number }>('DELETE', '/v1/ct');
  io.out(`Flushed ${flushed} entries from ${CT_GLOBAL_MAPS.join(' and ')}\n`);
  return 0;
}

export async function bpfCommand(args: ParsedArgs, client: AgentClient, io: Out): Promise<number> {
  const [what, verb, ...extra] = args.positionals;
  if (what === 'lb') return lbCommand(args, client, io, args.positionals.slice(1));
  if (what === 'ct') return ctCommand(args, client, io, args.positionals.slice(1));
  if (what === 'policy') return policyGetCommand(args, client, io, args.positionals.slice(1));
  const def = what ? BPF_LISTS[what] : undefined;
  if (!def || verb !== 'list' || extra.length) throw new UsageError(BPF_USAGE);
  checkFlags(args, `bpf ${what} list`, ['from-file', 'output']);
  const entries = await entriesOf(args, client, io, def.map);
  printEntries(args, io, entries, () => formatBpfList(def.titles, entries));
  return 0;
}

export async function mapCommand(args: ParsedArgs, client: AgentClient, io: Out): Promise<number> {
  const [verb, name, ...extra] = args.positionals;
  if (verb === 'list' && !name) {
    checkFlags(args, 'map list', ['verbose', 'from-file', 'output']);
    const maps = await withFallback(args, client, io, () => client.get<MapSummary[]>('/v1/map'), () => listPinnedMaps(client.target.stateDir));
    if (str(args, 'output') === 'json') io.out(JSON.stringify(maps, null, 2) + '\n');
    else io.out(formatMapList(maps, count(args, 'verbose') > 0));
    return 0;
  }
  if (verb === 'get' && name && !extra.length) {
    checkFlags(args, 'map get', ['from-file', 'output']);
    const entries = await entriesOf(args, client, io, name);
    printEntries(args, io, entries, () => formatMapGet(entries));
    return 0;
  }
  throw new UsageError('map supports: map list [--verbose], map get NAME');
}
