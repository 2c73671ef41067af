// `ciliary observe` (hubble observe), `ciliary hubble status` and `hubble list nodes`: flows from the
// agent's Hubble ring, or every node's through the relay when the agent runs one, filtered with hubble's
// flags in their order (--not negates the next one), printed as hubble prints them.
import type { HubbleStatus } from '../control/types.ts';
import type { Flow } from '../observe/flow.ts';
import { buildFilters, FILTER_FLAGS, FilterError } from '../observe/hubble/filter.ts';
import { FlowPrinter, goJson, nodeStatusText, OUTPUT_FORMATS, statusText, type OutputFormat } from '../observe/hubble/printer.ts';
import type { NodeStatusNote } from '../observe/hubble/grpc/relay-client.ts';
import { parseTime } from '../observe/hubble/query.ts';
import { AgentClient, resolveTarget } from './client.ts';
import { CliError, UsageError } from './errors.ts';
import { listNodesCommand } from './hubble-nodes.ts';
import type { Out } from './pods.ts';

/** Hubble's default number of flows for a plain `hubble observe`. */
export const DEFAULT_LAST = 20;

const GLOBAL_VALUE_FLAGS = ['socket', 'node', 'state-dir'];
/** Filter flags that take no value (hubble's NoOptDefVal ones). */
const NO_VALUE: Record<string, string> = { not: '', 'all-namespaces': 'true' };
const SHORTS: Record<string, string> = { n: 'namespace', A: 'all-namespaces', l: 'label', t: 'type', f: 'follow', o: 'output', h: 'help' };
const SELECT_VALUE = ['last', 'first', 'since', 'until', 'output'];
const SELECT_BOOL = ['follow', 'all', 'print-node-name', 'help'];

/** Whether this command line is for observe/hubble (they parse their own flags, hubble's way). */
export function isHubbleCommand(argv: string[]): boolean {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--')) {
      const name = a.slice(2).split('=')[0];
      if (GLOBAL_VALUE_FLAGS.includes(name) && !a.includes('=')) i++;
      continue;
    }
    if (a.startsWith('-') && a.length > 1) continue;
    return a === 'observe' || a === 'hubble';
  }
  return false;
}

interface ObserveArgs {
  global: Record<string, string>;
  verb: string[];
  filters: Array<[string, string]>;
  select: Record<string, string>;
  bools: Set<string>;
}

function parse(argv: string[]): ObserveArgs {
  const out: ObserveArgs = { global: {}, verb: [], filters: [], select: {}, bools: new Set() };
  const isFilter = (n: string) => (FILTER_FLAGS as readonly string[]).includes(n);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    let name: string;
    let value: string | undefined;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      value = eq < 0 ? undefined : a.slice(eq + 1);
    } else if (a.startsWith('-') && a.length > 1) {
      const long = SHORTS[a[1]];
      if (!long) throw new UsageError(`unknown shorthand flag: '${a[1]}' in ${a}`);
      name = long;
      value = a.length > 2 ? a.slice(2).replace(/^=/, '') : undefined;
    } else {
      out.verb.push(a);
      continue;
    }
    const takeValue = () => {
      if (value !== undefined) return value;
      if (i + 1 >= argv.length) throw new UsageError(`flag needs an argument: --${name}`);
      return argv[++i];
    };
    if (GLOBAL_VALUE_FLAGS.includes(name)) out.global[name] = takeValue();
    else if (name in NO_VALUE) out.filters.push([name, value ?? NO_VALUE[name]]);
    else if (isFilter(name)) out.filters.push([name, takeValue()]);
    else if (SELECT_VALUE.includes(name)) out.select[name] = takeValue();
    else if (SELECT_BOOL.includes(name)) {
      if (value !== undefined && value !== 'true' && value !== 'false') throw new UsageError(`invalid argument "${value}" for "--${name}" flag`);
      if (value === 'false') out.bools.delete(name);
      else out.bools.add(name);
    } else throw new UsageError(`unknown flag: --${name}`);
  }
  return out;
}

const count = (name: string, v: string | undefined): number | undefined => {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`invalid argument "${v}" for "--${name}" flag: not a number`);
  return Number(v);
};

/** The /v1/flows query for these flags (hubble's getFlowsRequest, with its default of the last 20). */
export function flowsQuery(a: Pick<ObserveArgs, 'filters' | 'select' | 'bools'>, now = Date.now()): URLSearchParams {
  try {
    buildFilters(a.filters); // usage errors here, before asking the agent
  } catch (e) {
    if (e instanceof FilterError) throw new UsageError(e.message);
    throw e;
  }
  const follow = a.bools.has('follow');
  const first = count('first', a.select.first) ?? 0;
  const last = count('last', a.select.last) ?? 0;
  if (first && last) throw new UsageError('cannot set both --first and --last');
  if (first && follow) throw new UsageError('cannot set both --first and --follow');
  if (first && a.bools.has('all')) throw new UsageError('cannot set both --first and --all');
  if (last && a.bools.has('all')) throw new UsageError('cannot set both --last and --all');
  const q = new URLSearchParams();
  for (const [k, v] of a.filters) q.append(k, v);
  const time = (name: 'since' | 'until') => {
    try {
      return new Date(parseTime(a.select[name]!, now)).toISOString();
    } catch (e) {
      throw new UsageError(`failed to parse the ${name} time: ${(e as Error).message}`);
    }
  };
  const since = a.select.since !== undefined ? time('since') : undefined;
  const until = a.select.until !== undefined && !follow ? time('until') : undefined;
  if (since) q.set('since', since);
  if (until) q.set('until', until);
  if (first) q.set('first', String(first));
  else if (last) q.set('last', String(last));
  else if (!since && !until && !follow && !a.bools.has('all')) q.set('last', String(DEFAULT_LAST));
  if (follow) q.set('follow', 'true');
  return q;
}

export const OBSERVE_USAGE = `Usage: ciliary observe [FILTERS] [--last N | --first N | --all] [--since T] [--until T] [-f]
                       [-o compact|dict|json|jsonpb|table] [--print-node-name]
Filters (hubble's: one flag's values OR, different flags AND; --not negates the next filter):
  --pod, --from-pod, --to-pod [NS/]NAME-PREFIX   (namespace default when omitted)
  -n/--namespace, --from-namespace, --to-namespace NS, -A/--all-namespaces
  --ip, --from-ip, --to-ip IP|CIDR    --port, --from-port, --to-port PORT
  -l/--label, --from-label, --to-label SELECTOR (k=v,k2 in (a,b))
  --identity, --from-identity, --to-identity ID|reserved-name
  --verdict FORWARDED|DROPPED|TRACED|TRANSLATED|ERROR|AUDIT|REDIRECTED   --drop-reason-desc NAME
  -t/--type drop|trace[:to-endpoint|to-stack|...]|policy-verdict|trace-sock|l7
  --protocol tcp|udp|icmp|http|dns   --http-method M  --http-path REGEX  --http-url REGEX  --http-status 200|4+
  --traffic-direction ingress|egress  --tcp-flags SYN,ACK  --node-name NAME  --uuid ID
Times: RFC 3339 or a duration ago (5m, 1h30m). Without --last/--first/--since/--until/-f: the last 20 flows.
`;

async function observe(a: ObserveArgs, client: AgentClient, io: Out): Promise<number> {
  if (a.verb.length) throw new UsageError(`unexpected argument "${a.verb[0]}"`);
  const output = (a.select.output ?? 'compact') as OutputFormat;
  if (!(OUTPUT_FORMATS as readonly string[]).includes(output) && output !== ('tab' as OutputFormat)) throw new UsageError(`invalid output format: ${output}`);
  const format: OutputFormat = output === ('tab' as OutputFormat) ? 'table' : output;
  const follow = a.bools.has('follow');
  if (format === 'table' && follow) throw new UsageError('table output format is not compatible with follow mode');
  const q = flowsQuery(a);
  const printer = new FlowPrinter(format, { nodeName: a.bools.has('print-node-name') });
  await client.stream(`/v1/flows?${q.toString()}`, (o) => {
    const r = o as { flow?: Flow; lost_events?: number; node_status?: Omit<NodeStatusNote, 'node_name' | 'time'>; node_name?: string; time?: string; error?: string };
    if (r.flow) io.out(printer.flow(r.flow));
    else if (r.lost_events !== undefined) io.out(printer.lost(r.lost_events));
    // As hubble: only nodes lost (or failing) are told, on stderr.
    else if (r.node_status && ['NODE_UNAVAILABLE', 'NODE_ERROR'].includes(r.node_status.state)) {
      io.err(format === 'json' || format === 'jsonpb' ? goJson(r) + '\n' : nodeStatusText({ ...r.node_status, node_name: r.node_name ?? '', time: r.time ?? '' }));
    } else if (r.error) throw new CliError(r.error);
  });
  io.out(printer.close());
  if (follow) throw new CliError('the agent closed the flow stream');
  return 0;
}

async function hubbleStatus(a: ObserveArgs, client: AgentClient, io: Out): Promise<number> {
  if (a.verb.length) throw new UsageError(`unexpected argument "${a.verb[0]}"`);
  if (a.filters.length || Object.keys(a.select).some((k) => k !== 'output')) throw new UsageError('"hubble status" takes no filters');
  const s = await client.get<HubbleStatus>('/v1/hubble/status');
  const output = a.select.output ?? 'compact';
  if (output === 'json' || output === 'jsonpb') io.out(JSON.stringify(s, null, 2) + '\n');
  else if (output === 'compact') io.out(statusText(s));
  else throw new UsageError(`invalid output format: ${output}`);
  return 0;
}

const clientOf = (a: ObserveArgs, env: NodeJS.ProcessEnv) =>
  new AgentClient(resolveTarget({ socket: a.global.socket, node: a.global.node, stateDir: a.global['state-dir'], env }));

const HUBBLE_USAGE = 'Usage: ciliary hubble observe [FLAGS] | ciliary hubble status | ciliary hubble list nodes [-o table|wide|json]\n';

/** `ciliary [GLOBALS] observe ...`, `ciliary hubble observe ...`, `ciliary hubble status`, `ciliary hubble list nodes`. */
export async function hubbleMain(argv: string[], io: Out, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const a = parse(argv);
  let [verb, ...rest] = a.verb;
  if (verb === 'hubble') {
    [verb, ...rest] = rest;
    if (verb !== 'observe' && verb !== 'status' && verb !== 'list') {
      if (a.bools.has('help') || verb === undefined) {
        io.out(HUBBLE_USAGE);
        return verb === undefined && !a.bools.has('help') ? 2 : 0;
      }
      throw new UsageError(`unknown command "hubble ${verb}" (observe, status or list nodes)`);
    }
    if (verb === 'list') {
      if (a.bools.has('help')) {
        io.out(HUBBLE_USAGE);
        return 0;
      }
      if (rest[0] !== 'nodes' && rest[0] !== 'node') throw new UsageError(`unknown command "hubble list${rest[0] ? ` ${rest[0]}` : ''}" (list nodes)`);
      if (rest.length > 1 || a.filters.length || Object.keys(a.select).some((k) => k !== 'output')) throw new UsageError('"hubble list nodes" takes only -o');
      return listNodesCommand(clientOf(a, env), a.select.output ?? 'table', io);
    }
  }
  if (a.bools.has('help')) {
    io.out(verb === 'status' ? 'Usage: ciliary hubble status [-o json]\n' : OBSERVE_USAGE);
    return 0;
  }
  const client = clientOf(a, env);
  const args = { ...a, verb: rest };
  return verb === 'status' ? hubbleStatus(args, client, io) : observe(args, client, io);
}
