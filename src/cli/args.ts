// Command-line parsing: one table of every flag, each command says which it accepts.
import { UsageError } from './errors.ts';

type FlagKind = 'string' | 'bool' | 'count';

interface FlagDef {
  name: string; // long name, the key in ParsedArgs.flags
  short?: string;
  kind: FlagKind;
  /** May repeat (collected into an array); otherwise the last one wins. */
  repeat?: boolean;
}

export const FLAGS: readonly FlagDef[] = [
  { name: 'node', kind: 'string' },
  { name: 'socket', kind: 'string' },
  { name: 'state-dir', kind: 'string' },
  { name: 'help', short: 'h', kind: 'bool' },
  { name: 'namespace', short: 'n', kind: 'string' },
  { name: 'all-namespaces', short: 'A', kind: 'bool' },
  { name: 'labels', short: 'l', kind: 'string' },
  { name: 'output', short: 'o', kind: 'string' },
  { name: 'verbose', short: 'v', kind: 'count' },
  { name: 'type', short: 't', kind: 'string', repeat: true },
  { name: 'related-to', kind: 'string', repeat: true },
  { name: 'hex', kind: 'bool' },
  { name: 'from-file', kind: 'bool' },
  // services
  { name: 'selector', kind: 'string' },
  { name: 'port', kind: 'string', repeat: true },
  { name: 'target-port', kind: 'string' },
  { name: 'name', kind: 'string' },
  { name: 'protocol', kind: 'string' },
  { name: 'cluster-ip', kind: 'string' },
  { name: 'session-affinity', kind: 'string' },
  { name: 'session-affinity-timeout', kind: 'string' },
  { name: 'external-ip', kind: 'string', repeat: true },
  { name: 'revnat', kind: 'bool' },
  // policy, identity, ip
  { name: 'all', kind: 'bool' },
  { name: 'kind', kind: 'string' },
  { name: 'endpoints', kind: 'bool' },
  { name: 'numeric', kind: 'bool' },
  // manifests: apply/delete -f, logs -f
  { name: 'filename', short: 'f', kind: 'string', repeat: true },
  { name: 'follow', kind: 'bool' },
  { name: 'ignore-not-found', kind: 'bool' },
  { name: 'dry-run', kind: 'string' },
  // trace
  { name: 'pod', kind: 'string' },
  { name: 'ip', kind: 'string' },
  { name: 'src-ip', kind: 'string' },
  { name: 'dst-ip', kind: 'string' },
  { name: 'proto', kind: 'string' },
  { name: 'count', kind: 'string' },
  { name: 'timeout', kind: 'string' },
  // status --wait
  { name: 'wait', kind: 'bool' },
  { name: 'wait-duration', kind: 'string' },
];

/** Short flags that mean something else after a given verb: `ip list -n` is numeric, not a namespace (as cilium's). */
const VERB_SHORTS: Record<string, Record<string, string>> = {
  ip: { n: 'numeric' },
  logs: { f: 'follow' },
};

/** Flags every command accepts. */
export const GLOBAL_FLAGS = ['node', 'socket', 'state-dir', 'help'];

export interface ParsedArgs {
  positionals: string[];
  flags: Record<string, string | string[] | boolean | number>;
  /** Everything after `--` (a command to run), or undefined when there was no `--`. */
  rest?: string[];
}

const byLong = new Map(FLAGS.map((f) => [f.name, f]));
const byShort = new Map(FLAGS.filter((f) => f.short).map((f) => [f.short!, f]));

export function parseArgs(argv: string[]): ParsedArgs {
  const out: ParsedArgs = { positionals: [], flags: {} };
  const set = (f: FlagDef, value: string | undefined, shown: string) => {
    if (f.kind === 'count') {
      if (value !== undefined) throw new UsageError(`flag ${shown} takes no value`);
      out.flags[f.name] = ((out.flags[f.name] as number | undefined) ?? 0) + 1;
    } else if (f.kind === 'bool') {
      if (value !== undefined && value !== 'true' && value !== 'false') throw new UsageError(`flag ${shown} is true or false, not "${value}"`);
      out.flags[f.name] = value !== 'false';
    } else {
      if (value === undefined) throw new UsageError(`flag ${shown} needs a value`);
      if (f.repeat) out.flags[f.name] = [...((out.flags[f.name] as string[] | undefined) ?? []), value];
      else out.flags[f.name] = value;
    }
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      out.rest = argv.slice(i + 1);
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      const f = byLong.get(name);
      if (!f) throw new UsageError(`unknown flag --${name}`);
      let value = eq < 0 ? undefined : a.slice(eq + 1);
      if (value === undefined && f.kind === 'string') value = argv[++i];
      set(f, value, `--${name}`);
    } else if (a.startsWith('-') && a.length > 1) {
      // -n NS, -nNS, -A, -vv (short bool/count flags combine)
      const local = VERB_SHORTS[out.positionals[0] ?? ''] ?? {};
      const shortFlag = (ch: string) => (local[ch] !== undefined ? byLong.get(local[ch]) : byShort.get(ch));
      const f = shortFlag(a[1]);
      if (!f) throw new UsageError(`unknown flag -${a[1]}`);
      if (f.kind === 'string') {
        set(f, a.length > 2 ? a.slice(2) : argv[++i], `-${a[1]}`);
      } else {
        for (const ch of a.slice(1)) {
          const g = shortFlag(ch);
          if (!g || g.kind === 'string') throw new UsageError(`unknown flag -${ch} in ${a}`);
          set(g, undefined, `-${ch}`);
        }
      }
    } else {
      out.positionals.push(a);
    }
  }
  return out;
}

/** Usage error unless every given flag is global or in `allowed`. */
export function checkFlags(args: ParsedArgs, command: string, allowed: string[]): void {
  for (const name of Object.keys(args.flags)) {
    if (!GLOBAL_FLAGS.includes(name) && !allowed.includes(name)) {
      const f = byLong.get(name)!;
      throw new UsageError(`flag --${name}${f.short ? ` (-${f.short})` : ''} is not accepted by "ciliary ${command}"`);
    }
  }
}

export function str(args: ParsedArgs, name: string): string | undefined {
  const v = args.flags[name];
  return Array.isArray(v) ? v[v.length - 1] : typeof v === 'string' ? v : undefined;
}

export function strs(args: ParsedArgs, name: string): string[] {
  const v = args.flags[name];
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
}

export function bool(args: ParsedArgs, name: string): boolean {
  return args.flags[name] === true;
}

export function count(args: ParsedArgs, name: string): number {
  const v = args.flags[name];
  return typeof v === 'number' ? v : 0;
}
