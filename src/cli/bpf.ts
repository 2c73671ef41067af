// `bpf … list|get`, `map list`, `map get`: through the API, or (--from-file, or when the agent does not
// answer) from the pinned files; both decode with the map catalog, so they print the same.
import type { Endpoint, MapEntryView, MapSummary } from '../control/types.ts';
import { bool, checkFlags, count, str, type ParsedArgs } from './args.ts';
import type { AgentClient } from './client.ts';
import { AgentUnreachableError, CliError, UsageError } from './errors.ts';
import { PinnedMaps } from './local-maps.ts';
import type { DecodedMapEntry } from '../maps/cilium/index.ts';
import { CT_ANY_MAP, CT_TCP_MAP } from '../maps/cilium/ct.ts';
import { ENDPOINTS_MAP } from '../maps/cilium/lxc.ts';
import { IPCACHE_MAP } from '../maps/cilium/ipcache.ts';
import { formatMetricsList, METRICS_MAP, type MetricsKey, type MetricsValue } from '../maps/cilium/metrics.ts';
import { PROXY_MAP } from '../maps/cilium/proxy.ts';
import { NAT_MAP } from '../maps/cilium/nat.ts';
import { TUNNEL_MAP } from '../maps/cilium/tunnel.ts';
import { THROTTLE_MAP } from '../maps/cilium/throttle.ts';
import type { Out } from './pods.ts';
import { addressOrder, formatTable } from './table.ts';

/** `cilium bpf ... list` subcommands: map name and the two column titles. */
export const BPF_LISTS: Record<string, { map: string; titles: [string, string] }> = {
  endpoint: { map: ENDPOINTS_MAP, titles: ['IP ADDRESS', 'LOCAL ENDPOINT INFO'] },
  ipcache: { map: IPCACHE_MAP, titles: ['IP PREFIX/ADDRESS', 'IDENTITY'] },
  proxy: { map: PROXY_MAP, titles: ['CLIENT', 'REDIRECT'] },
  tunnel: { map: TUNNEL_MAP, titles: ['TUNNEL', 'VALUE'] },
  bandwidth: { map: THROTTLE_MAP, titles: ['IDENTITY', 'EGRESS BANDWIDTH (BitsPerSec)'] },
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
export const CT_GLOBAL_MAPS = [CT_TCP_MAP, CT_ANY_MAP];

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

type FileReader<T> = (maps: PinnedMaps) => T | Promise<T>;

/** Through the agent unless --from-file; falls back to the files when the agent does not answer. */
async function withFallback<T>(args: ParsedArgs, client: AgentClient, io: Out, viaApi: () => Promise<T>, viaFiles: FileReader<T>): Promise<T> {
  const fromFiles = async () => viaFiles(await PinnedMaps.open(client.target.stateDir));
  if (bool(args, 'from-file')) return fromFiles();
  try {
    return await viaApi();
  } catch (e) {
    if (!(e instanceof AgentUnreachableError)) throw e;
    io.err(`(agent not reachable at ${e.socketPath}: reading pinned maps in ${client.target.stateDir}/maps)\n`);
    return fromFiles();
  }
}

async function entriesOf(args: ParsedArgs, client: AgentClient, io: Out, name: string): Promise<DecodedMapEntry[]> {
  return withFallback(args, client, io,
    async () => (await client.get<{ entries: DecodedMapEntry[] }>(`/v1/map/${encodeURIComponent(name)}`)).entries,
    (maps) => maps.entries(name));
}

function printEntries(args: ParsedArgs, io: Out, entries: MapEntryView[], text: () => string): void {
  const output = str(args, 'output');
  if (output === 'json') io.out(JSON.stringify(entries, null, 2) + '\n');
  else if (output !== undefined) throw new UsageError(`--output must be json, not "${output}"`);
  else if (!entries.length) io.err('No entries found.\n');
  else io.out(text());
}

const BPF_USAGE = `bpf supports: ${[...Object.keys(BPF_LISTS), 'metrics'].map((k) => `bpf ${k} list`).join(', ')}, bpf lb list [--revnat], bpf ct list global, bpf ct flush global, bpf nat list, bpf nat flush, bpf policy get ID|--all (each also --from-file)`;

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
  const usage = 'bpf policy supports: bpf policy get ID | bpf policy get --all [--from-file]';
  if (verb !== 'get' || extra.length) throw new UsageError(usage);
  checkFlags(args, 'bpf policy get', ['all', 'from-file']);
  const table = (epID: number) => client.get<{ table: string }>(`/v1/bpf/policy/${epID}`).then((r) => r.table);
  if (bool(args, 'all')) {
    if (id !== undefined) throw new UsageError('bpf policy get --all takes no endpoint ID');
    const tables = await withFallback(args, client, io, async () => {
      const eps = (await client.get<Endpoint[]>('/v1/endpoint')).filter((e) => !e.isHost).sort((a, b) => a.id - b.id);
      const out: Array<{ id: number; table: string }> = [];
      for (const ep of eps) out.push({ id: ep.id, table: await table(ep.id) });
      return out;
    }, async (maps) => {
      const labels = await maps.identityLabels();
      const out: Array<{ id: number; table: string }> = [];
      for (const epID of maps.policyEndpoints()) out.push({ id: epID, table: await maps.policyTable(epID, labels) });
      return out;
    });
    io.out(formatPolicyGetAll(tables));
    return 0;
  }
  if (id === undefined || !/^\d{1,5}$/.test(id)) throw new UsageError(`bpf policy get needs a numeric endpoint ID${id ? ` (not "${id}")` : ''}: ${usage}`);
  const t = await withFallback(args, client, io, () => table(Number(id)), (maps) => maps.policyTable(Number(id)));
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
  if (rest[0] !== 'list' || rest.length > 1) throw new UsageError('bpf lb supports: bpf lb list [--revnat] [--from-file] [-o json]');
  checkFlags(args, 'bpf lb list', ['revnat', 'from-file', 'output']);
  const revnat = bool(args, 'revnat');
  const rows = await withFallback(args, client, io,
    async () => (await client.get<{ rows: Array<[string, string]> }>(`/v1/lb?revnat=${revnat}`)).rows,
    (maps) => maps.lbRows(revnat));
  if (!rows.length && str(args, 'output') === undefined) {
    io.err('No entries found.\n');
    return 0;
  }
  jsonOrText(args, io, rows, () => formatLbList(rows, revnat));
  return 0;
}

/** Writes map files directly (CT, NAT): only while no agent answers, since two writers would corrupt them. */
async function flushFiles(client: AgentClient, flush: (maps: PinnedMaps) => number): Promise<number> {
  try {
    await client.get('/v1/healthz');
  } catch (e) {
    if (!(e instanceof AgentUnreachableError)) throw e;
    return flush(await PinnedMaps.open(client.target.stateDir, true));
  }
  throw new CliError(`the agent at ${client.target.socketPath} is running: flush through it (without --from-file)`);
}

async function ctCommand(args: ParsedArgs, client: AgentClient, io: Out, rest: string[]): Promise<number> {
  const [verb, scope, ...extra] = rest;
  if ((verb !== 'list' && verb !== 'flush') || extra.length) throw new UsageError('bpf ct supports: bpf ct list global, bpf ct flush global');
  if (scope !== 'global') throw new UsageError(`bpf ct ${verb} supports the global table only: bpf ct ${verb} global${scope ? ` (not "${scope}")` : ''}`);
  if (verb === 'list') {
    checkFlags(args, 'bpf ct list', ['from-file', 'output']);
    const lines = await withFallback(args, client, io, async () => (await client.get<{ lines: string[] }>('/v1/ct')).lines, (maps) => maps.ctLines());
    jsonOrText(args, io, lines, () => lines.map((l) => l + '\n').join(''));
    return 0;
  }
  checkFlags(args, 'bpf ct flush', ['from-file']);
  const flushed = bool(args, 'from-file') ? await flushFiles(client, (maps) => maps.ctFlush()) : (await client.call<{ flushed: number }>('DELETE', '/v1/ct')).flushed;
  io.out(`Flushed ${flushed} entries from ${CT_GLOBAL_MAPS.join(' and ')}\n`);
  return 0;
}

/** `bpf nat list|flush`: cilium_snat_v4_external, one line per entry as Cilium's. */
async function natCommand(args: ParsedArgs, client: AgentClient, io: Out, rest: string[]): Promise<number> {
  const [verb, ...extra] = rest;
  if ((verb !== 'list' && verb !== 'flush') || extra.length) throw new UsageError('bpf nat supports: bpf nat list, bpf nat flush');
  if (verb === 'list') {
    checkFlags(args, 'bpf nat list', ['from-file', 'output']);
    const lines = await withFallback(args, client, io, async () => (await client.get<{ lines: string[] }>('/v1/nat')).lines, (maps) => maps.natLines());
    jsonOrText(args, io, lines, () => lines.map((l) => l + '\n').join(''));
    return 0;
  }
  checkFlags(args, 'bpf nat flush', ['from-file']);
  const flushed = bool(args, 'from-file') ? await flushFiles(client, (maps) => maps.natFlush()) : (await client.call<{ flushed: number }>('DELETE', '/v1/nat')).flushed;
  io.out(`Flushed ${flushed} entries from ${NAT_MAP}\n`);
  return 0;
}

/** `bpf metrics list`: the counters of cilium_metrics that moved, from their decoded entries. */
async function metricsCommand(args: ParsedArgs, client: AgentClient, io: Out): Promise<number> {
  checkFlags(args, 'bpf metrics list', ['from-file', 'output']);
  const entries = await entriesOf(args, client, io, METRICS_MAP);
  const decoded = entries.map((e) => e.decoded as { key: MetricsKey; value: MetricsValue } | undefined);
  if (decoded.some((d) => d === undefined)) throw new CliError(`${METRICS_MAP} entries came back undecoded (agent older than this CLI?)`);
  jsonOrText(args, io, entries, () => formatMetricsList(decoded as Array<{ key: MetricsKey; value: MetricsValue }>));
  return 0;
}

export async function bpfCommand(args: ParsedArgs, client: AgentClient, io: Out): Promise<number> {
  const [what, verb, ...extra] = args.positionals;
  if (what === 'lb') return lbCommand(args, client, io, args.positionals.slice(1));
  if (what === 'ct') return ctCommand(args, client, io, args.positionals.slice(1));
  if (what === 'nat') return natCommand(args, client, io, args.positionals.slice(1));
  if (what === 'policy') return policyGetCommand(args, client, io, args.positionals.slice(1));
  if (what === 'metrics' && verb === 'list' && !extra.length) return metricsCommand(args, client, io);
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
    const maps = await withFallback(args, client, io, () => client.get<MapSummary[]>('/v1/map'), (pinned) => pinned.list());
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
