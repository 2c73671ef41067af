// `ciliary monitor`: the agent's monitor stream printed as cilium monitor prints it.
import type { MonitorEvent } from '../control/types.ts';
import { bool, checkFlags, count, strs, type ParsedArgs } from './args.ts';
import type { AgentClient } from './client.ts';
import { CliError, UsageError } from './errors.ts';
import type { Out } from './pods.ts';

export const MONITOR_TYPES = ['drop', 'trace', 'policy-verdict', 'l7', 'agent'] as const;
const RULE = '-'.repeat(78);

/** Go's hex.Dump layout: offset, 16 bytes in two groups of 8, ASCII gutter. */
export function hexDump(hex: string): string {
  const bytes = Buffer.from(hex.replace(/[^0-9a-fA-F]/g, ''), 'hex');
  let out = '';
  for (let off = 0; off < bytes.length; off += 16) {
    const row = bytes.subarray(off, off + 16);
    let cols = '';
    for (let i = 0; i < 16; i++) {
      cols += i < row.length ? row[i].toString(16).padStart(2, '0') + ' ' : '   ';
      if (i === 7) cols += ' ';
    }
    const ascii = Array.from(row, (b) => (b >= 0x20 && b <= 0x7e ? String.fromCharCode(b) : '.')).join('');
    out += `${off.toString(16).padStart(8, '0')}  ${cols} |${ascii}|\n`;
  }
  return out;
}

/** One event: summary by default, the verbose form with -v, and a hex dump with -v -v --hex. */
export function formatMonitorEvent(e: MonitorEvent, verbosity = 0, hex = false): string {
  let out = verbosity > 0 && e.verbose ? e.verbose.replace(/\n?$/, '\n') : `${e.summary}\n`;
  if (hex && verbosity > 1 && e.hex) out = `${RULE}\n${out}${hexDump(e.hex)}`;
  return out;
}

export const MONITOR_HEADER = 'Listening for events on 2 CPUs with 64x4096 of shared memory\nPress Ctrl-C to quit\n';

export async function monitorCommand(args: ParsedArgs, client: AgentClient, io: Out): Promise<number> {
  checkFlags(args, 'monitor', ['verbose', 'type', 'related-to', 'hex']);
  if (args.positionals.length) throw new UsageError(`unexpected argument "${args.positionals[0]}"`);
  const types = strs(args, 'type');
  for (const t of types) {
    if (!(MONITOR_TYPES as readonly string[]).includes(t)) throw new UsageError(`--type must be one of ${MONITOR_TYPES.join(', ')}, not "${t}"`);
  }
  const related = strs(args, 'related-to');
  for (const r of related) if (!/^\d+$/.test(r)) throw new UsageError(`--related-to takes an endpoint ID, not "${r}"`);
  // One type or endpoint is filtered by the agent; several are filtered here.
  const q = new URLSearchParams();
  if (types.length === 1) q.set('type', types[0]);
  if (related.length === 1) q.set('related-to', related[0]);
  const verbosity = count(args, 'verbose');
  const hex = bool(args, 'hex');
  const query = q.toString();
  await client.stream(`/v1/monitor${query ? `?${query}` : ''}`, (o) => {
    const e = o as MonitorEvent;
    if (types.length > 1 && !types.includes(e.type) && e.type !== 'agent') return;
    if (related.length > 1 && e.type !== 'agent' && !related.includes(String(e.source))) return;
    io.out(formatMonitorEvent(e, verbosity, hex));
  }, () => io.out(MONITOR_HEADER));
  throw new CliError('the agent closed the monitor stream');
}
