// `ciliary trace`: what pwru does for the kernel, for this datapath. Each matching packet's path
// through hooks, tail calls, map lookups, rewrites and events, with its verdict, as a block.
// "Tracing started" goes to stderr once the agent has installed the tracer (scripts wait for it).
import type { TraceStartedRecord } from '../observe/trace/session.ts';
import type { PacketTraceRecord } from '../observe/trace/types.ts';
import { checkFlags, str, type ParsedArgs } from './args.ts';
import type { AgentClient } from './client.ts';
import { UsageError } from './errors.ts';
import type { Out } from './pods.ts';

const IP = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

/** One packet: the header line, then the steps and the verdict indented. */
export function formatTraceBlock(t: PacketTraceRecord): string {
  return `${t.header}\n${t.steps.map((s) => `    ${s}\n`).join('')}    ${t.verdict}\n`;
}

/** The /v1/trace query of a command line (usage errors for malformed filters). */
export function traceQuery(args: ParsedArgs): URLSearchParams {
  const q = new URLSearchParams();
  const pod = str(args, 'pod') ?? args.positionals[0];
  if (args.positionals.length > (str(args, 'pod') === undefined ? 1 : 0)) throw new UsageError(`unexpected argument "${args.positionals[args.positionals.length - 1]}"`);
  if (pod !== undefined) q.set('pod', pod);
  const ns = str(args, 'namespace');
  if (ns !== undefined) {
    if (pod === undefined) throw new UsageError('-n/--namespace needs --pod');
    q.set('namespace', ns);
  }
  for (const name of ['ip', 'src-ip', 'dst-ip']) {
    const v = str(args, name);
    if (v === undefined) continue;
    if (!IP.test(v)) throw new UsageError(`--${name} takes an IPv4 address, not "${v}"`);
    q.set(name, v);
  }
  const port = str(args, 'port');
  if (port !== undefined) {
    if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535) throw new UsageError(`--port takes a port from 1 to 65535, not "${port}"`);
    q.set('port', port);
  }
  const proto = str(args, 'proto');
  if (proto !== undefined) {
    if (!['tcp', 'udp', 'icmp'].includes(proto.toLowerCase())) throw new UsageError(`--proto must be tcp, udp or icmp, not "${proto}"`);
    q.set('proto', proto.toLowerCase());
  }
  const count = str(args, 'count') ?? '10';
  if (!/^\d+$/.test(count) || Number(count) < 1 || Number(count) > 100000) throw new UsageError(`--count takes a number of packets from 1 to 100000, not "${count}"`);
  q.set('count', count);
  const timeout = str(args, 'timeout');
  if (timeout !== undefined) {
    if (!/^\d+(\.\d+)?$/.test(timeout)) throw new UsageError(`--timeout takes seconds, not "${timeout}"`);
    q.set('timeout', timeout);
  }
  return q;
}

export async function traceCommand(args: ParsedArgs, client: AgentClient, io: Out): Promise<number> {
  checkFlags(args, 'trace', ['pod', 'namespace', 'ip', 'src-ip', 'dst-ip', 'port', 'proto', 'count', 'timeout', 'output']);
  const output = str(args, 'output');
  if (output !== undefined && output !== 'json') throw new UsageError(`--output must be json, not "${output}"`);
  const q = traceQuery(args);
  let n = 0;
  await client.stream(`/v1/trace?${q.toString()}`, (o) => {
    if (typeof o === 'object' && o !== null && 'started' in o) {
      const { count, timeoutSeconds } = (o as TraceStartedRecord).started;
      io.err(`Tracing started: up to ${count} packet${count === 1 ? '' : 's'}${timeoutSeconds ? ` for ${timeoutSeconds} s` : ''}; press Ctrl-C to stop\n`);
      return;
    }
    n++;
    io.out(output === 'json' ? JSON.stringify(o) + '\n' : formatTraceBlock(o as PacketTraceRecord) + '\n');
  });
  if (output !== 'json') io.out(`${n} packet${n === 1 ? '' : 's'} traced\n`);
  return 0;
}
