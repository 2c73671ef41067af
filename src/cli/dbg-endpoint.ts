// cilium-dbg's per-object verbs on top of endpoint.ts / identity.ts / bpf.ts: `endpoint get -l LABEL`,
// `endpoint log ID`, `endpoint config ID`, `identity get ID`, `map events NAME`.
import type { Endpoint } from '../control/types.ts';
import { checkFlags, str, type ParsedArgs } from './args.ts';
import { mapCommand } from './bpf.ts';
import type { AgentClient } from './client.ts';
import { endpointCommand } from './endpoint.ts';
import { CliError, UsageError } from './errors.ts';
import { formatIdentityList, identityCommand, type IdentityView } from './identity.ts';
import type { Out } from './pods.ts';
import { formatTable } from './table.ts';

type Verb = (args: ParsedArgs, client: AgentClient, io: Out) => Promise<number>;

/** `k8s:app=x` matches that label; `app=x` (no source) matches it from any source, as cilium's selector does. */
export function hasLabel(ep: Endpoint, label: string): boolean {
  return ep.labels.some((l) => l === label || (!/^[\w-]+:/.test(label) ? l.slice(l.indexOf(':') + 1) === label : false));
}

async function endpointById(client: AgentClient, id: string | undefined, verb: string): Promise<Endpoint> {
  if (!id || !/^\d+$/.test(id)) throw new UsageError(`endpoint ${verb} needs a numeric endpoint ID: ciliary endpoint ${verb} ID`);
  return client.get<Endpoint>(`/v1/endpoint/${id}`);
}

/** The endpoint options ciliary has, each as it really is: notifications go to `ciliary monitor`. */
function endpointOptions(ep: Endpoint): Array<[string, string]> {
  return [
    ['DropNotification', 'Enabled'],
    ['PolicyAuditMode', 'Disabled'],
    ['PolicyEnforcementIngress', ep.policyIngress],
    ['PolicyEnforcementEgress', ep.policyEgress],
    ['PolicyVerdictNotification', 'Enabled'],
    ['TraceNotification', 'Enabled'],
  ];
}

export const endpointDbgCommand: Verb = async (args, client, io) => {
  const [verb, id, ...extra] = args.positionals;
  if (verb === 'get' && str(args, 'labels') !== undefined) {
    checkFlags(args, 'endpoint get', ['labels', 'output']);
    if (id) throw new UsageError('endpoint get takes an ID or -l LABEL, not both');
    const label = str(args, 'labels')!;
    const eps = (await client.get<Endpoint[]>('/v1/endpoint')).filter((e) => hasLabel(e, label));
    if (!eps.length) throw new CliError(`no endpoint has the label ${label}`);
    io.out(JSON.stringify(eps, null, 2) + '\n');
    return 0;
  }
  if (verb === 'log') {
    checkFlags(args, 'endpoint log', []);
    if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
    const ep = await endpointById(client, id, 'log');
    // ciliary keeps no history of an endpoint's states: the one row is where it is now.
    io.out(formatTable([['Timestamp', 'Status', 'State', 'Message'], [new Date().toISOString(), 'OK', ep.state, 'current state (ciliary keeps no per-endpoint status log)']]));
    return 0;
  }
  if (verb === 'config') {
    checkFlags(args, 'endpoint config', []);
    const ep = await endpointById(client, id, 'config');
    if (extra.length) throw new CliError(`ciliary's endpoint options are fixed at start; cannot set ${extra.join(' ')} on endpoint ${ep.id}`);
    const opts = endpointOptions(ep);
    io.out(opts.map(([k, v]) => `${k.padEnd(34)}: ${v}\n`).join(''));
    return 0;
  }
  return endpointCommand(args, client, io);
};

export const identityDbgCommand: Verb = async (args, client, io) => {
  const [verb, id, ...extra] = args.positionals;
  if (verb !== 'get') return identityCommand(args, client, io);
  checkFlags(args, 'identity get', ['output']);
  if (!id || !/^\d+$/.test(id) || extra.length) throw new UsageError('identity get needs one numeric identity: ciliary identity get ID');
  const found = (await client.get<IdentityView[]>('/v1/identity')).filter((i) => i.id === Number(id));
  if (!found.length) throw new CliError(`identity ${id} not found`);
  io.out(str(args, 'output') === 'json' ? JSON.stringify(found, null, 2) + '\n' : formatIdentityList(found));
  return 0;
};

/** `map events NAME`: ciliary records no map change events; says where the same facts are. */
export const mapDbgCommand: Verb = async (args, client, io) => {
  const [verb, name, ...extra] = args.positionals;
  if (verb !== 'events') return mapCommand(args, client, io);
  if (!name || extra.length) throw new UsageError('map events needs a map name: ciliary map events NAME');
  checkFlags(args, 'map events', []);
  io.out(`ciliary records no change events of ${name}: "ciliary map get ${name}" shows its entries now and "ciliary monitor" the datapath events as they happen\n`);
  return 0;
};
