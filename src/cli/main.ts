// `ciliary`: parses the command line, picks the agent, runs one verb, exits with its status.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { bool, parseArgs, str, type ParsedArgs } from './args.ts';
import { AgentClient, resolveTarget } from './client.ts';
import { bpfDbgCommand, cgroupsCommand, configCommand, metricsCommand, shellCommand, statedbCommand, statusWaitCommand, versionCommand } from './dbg-agent.ts';
import { endpointDbgCommand, identityDbgCommand, mapDbgCommand } from './dbg-endpoint.ts';
import { fqdnCommand } from './fqdn.ts';
import { ipCommand } from './identity.ts';
import { CliError, UsageError } from './errors.ts';
import { USAGE } from './help.ts';
import { monitorCommand } from './monitor.ts';
import { getNodesCommand, NODE_KINDS, nodeCommand } from './nodes.ts';
import { hubbleMain, isHubbleCommand } from './observe.ts';
import { deleteCommand, execCommand, getCommand, runCommand, type Out } from './pods.ts';
import { deletePoliciesCommand, getPoliciesCommand, POLICY_KINDS, policyCommand } from './policy.ts';
import { createCommand, deleteServicesCommand, exposeCommand, getServicesCommand, SERVICE_KINDS, serviceCommand, splitKind } from './services.ts';
import { patchCommand } from './patch.ts';
import { traceCommand } from './trace.ts';
import { applyCommand, deleteFileCommand } from './apply.ts';
import { deleteResourcesCommand, describeCommand, getResourcesCommand, logsCommand, noResources, resourceKind } from './resources.ts';

type Verb = (args: ParsedArgs, client: AgentClient, io: Out) => Promise<number>;

/** get/delete: services by kind (svc, service, services, svc/NAME), policies (cnp, ccnp, netpol, ...), pods otherwise. */
const byKind = (pods: Verb, services: Verb, policies: Verb): Verb => (args, client, io) => {
  const kind = splitKind(args.positionals).kind ?? '';
  if (SERVICE_KINDS.includes(kind)) return services(args, client, io);
  if (POLICY_KINDS.includes(kind.toLowerCase())) return policies(args, client, io);
  return pods(args, client, io);
};

/** The resource manager's route, or the older one on an agent without it. */
const orElse = (first: Verb, fallback: Verb): Verb => async (args, client, io) => {
  try {
    return await first(args, client, io);
  } catch (e) {
    if (noResources(e)) return fallback(args, client, io);
    throw e;
  }
};

/** Pods, deployments, namespaces, pools: the resource manager (pods fall back to /v1/pods); -f: the manifests. */
const deleteVerb: Verb = (args, client, io) => {
  if (args.flags.filename !== undefined) return deleteFileCommand(args, client, io);
  const kind = resourceKind(splitKind(args.positionals).kind)?.kind;
  if (kind === 'Pod') return orElse(deleteResourcesCommand, deleteCommand)(args, client, io);
  if (kind === 'Service') return orElse(deleteResourcesCommand, deleteServicesCommand)(args, client, io);
  if (kind === 'Deployment' || kind === 'Namespace' || kind === 'CiliumLoadBalancerIPPool' || kind === 'CiliumL2AnnouncementPolicy') return deleteResourcesCommand(args, client, io);
  return byKind(deleteCommand, deleteServicesCommand, deletePoliciesCommand)(args, client, io);
};

const getVerb: Verb = (args, client, io) => {
  if (NODE_KINDS.includes(args.positionals[0] ?? '')) return getNodesCommand(args, client, io);
  const kind = resourceKind(splitKind(args.positionals).kind)?.kind;
  const output = str(args, 'output');
  if (kind === 'Pod') return orElse(getResourcesCommand, getCommand)(args, client, io);
  if (kind === 'Service' && (output === 'yaml' || output?.startsWith('jsonpath='))) return getResourcesCommand(args, client, io);
  if (kind === 'Deployment' || kind === 'Namespace' || kind === 'CiliumLoadBalancerIPPool' || kind === 'CiliumL2AnnouncementPolicy' || kind === 'Lease') return getResourcesCommand(args, client, io);
  return byKind(getCommand, getServicesCommand, getPoliciesCommand)(args, client, io);
};

const VERBS: Record<string, Verb> = {
  run: runCommand,
  apply: applyCommand,
  delete: deleteVerb,
  get: getVerb,
  describe: describeCommand,
  logs: logsCommand,
  create: createCommand,
  expose: exposeCommand,
  patch: patchCommand,
  service: serviceCommand,
  exec: (args, client) => execCommand(args, client),
  endpoint: endpointDbgCommand,
  policy: policyCommand,
  identity: identityDbgCommand,
  fqdn: fqdnCommand,
  ip: ipCommand,
  node: nodeCommand,
  bpf: bpfDbgCommand,
  map: mapDbgCommand,
  status: statusWaitCommand,
  config: configCommand,
  version: versionCommand,
  metrics: metricsCommand,
  cgroups: cgroupsCommand,
  statedb: statedbCommand,
  shell: shellCommand,
  monitor: monitorCommand,
  trace: traceCommand,
};

/** Runs one command line; returns the exit status (never calls process.exit, so tests can call it). */
export async function main(argv: string[], io: Out, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  try {
    if (isHubbleCommand(argv)) return await hubbleMain(argv, io, env);
    const args = parseArgs(argv);
    const [verb, ...rest] = args.positionals;
    if (bool(args, 'help') || verb === 'help' || verb === undefined) {
      if (verb === undefined && !bool(args, 'help')) {
        io.err(USAGE);
        return 2;
      }
      io.out(USAGE);
      return 0;
    }
    const run = VERBS[verb];
    if (!run) throw new UsageError(`unknown command "${verb}"`);
    if (args.rest !== undefined && verb !== 'run' && verb !== 'exec' && verb !== 'shell') throw new UsageError(`"${verb}" takes no command after --`);
    const target = resolveTarget({ socket: str(args, 'socket'), node: str(args, 'node'), stateDir: str(args, 'state-dir'), env });
    return await run({ ...args, positionals: rest }, new AgentClient(target), io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`Error: ${e.message}\nRun 'ciliary help' for usage.\n`);
      return e.exitCode;
    }
    if (e instanceof CliError) {
      io.err(`Error: ${e.message}\n`);
      return e.exitCode;
    }
    io.err(`Error: ${(e as Error).stack ?? String(e)}\n`);
    return 1;
  }
}

const stdio: Out = {
  out: (s) => void process.stdout.write(s),
  err: (s) => void process.stderr.write(s),
};

function isEntryPoint(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

// Run when executed (bin/ciliary), not when imported by tests.
if (isEntryPoint()) {
  // A closed pipe (ciliary monitor | head) ends quietly.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => { if (e.code === 'EPIPE') process.exit(0); });
  // Exit at once: a keep-alive socket must not hold the process (stdout to a pipe or file is synchronous on Linux).
  void main(process.argv.slice(2), stdio).then((code) => process.exit(code));
}
