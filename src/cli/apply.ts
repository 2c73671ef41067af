// kubectl-like `apply -f` and `delete -f`: files, directories or stdin of multi-document YAML (or JSON),
// sent to the agent as one request; the agent's errors name an object and a field, mapped here to a line.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LineCounter, parseAllDocuments, isMap, isSeq, type Document } from 'yaml';
import type { ManifestResult } from '../control/types.ts';
import { yamlLineMapper } from '../policy/yaml-lines.ts';
import { bool, checkFlags, str, strs, type ParsedArgs } from './args.ts';
import type { AgentClient } from './client.ts';
import { AgentError, CliError, UsageError } from './errors.ts';
import type { Out } from './pods.ts';

/** Where an object came from: file, document (1-based) and its fields' lines. */
export interface ManifestSource {
  file: string;
  document: number;
  line?: number;
  lineOf: (path: string) => number | undefined;
}

export interface ManifestSet {
  objects: Array<Record<string, unknown>>;
  sources: ManifestSource[];
}

/** A file's own problem (YAML syntax, not a mapping), placed. */
export class ManifestFileError extends CliError {
  constructor(readonly file: string, readonly reason: string, readonly document?: number, readonly line?: number) {
    super(`${file}: ${placed(reason, document, line)}`);
  }
}

export function placed(reason: string, document?: number, line?: number): string {
  const at = [document !== undefined ? `document ${document}` : '', line !== undefined ? `line ${line}` : ''].filter(Boolean).join(', ');
  return at ? `${at}: ${reason}` : reason;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Multi-document YAML → objects; a `kind: List` (or a top-level sequence) contributes its items. */
export function parseManifests(text: string, file: string, into: ManifestSet = { objects: [], sources: [] }): ManifestSet {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter });
  if (!Array.isArray(docs)) return into;
  docs.forEach((doc: Document, i) => {
    const document = i + 1;
    const err = doc.errors[0];
    if (err) throw new ManifestFileError(file, err.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, ''), document, err.linePos?.[0]?.line);
    const value: unknown = doc.contents === null ? null : doc.toJS();
    if (value === null || value === undefined) return;
    const mapper = yamlLineMapper(doc, lineCounter);
    const add = (o: unknown, prefix: string) => {
      const lineOf = (path: string) => mapper(prefix === '' ? path : path === '' ? prefix : path.startsWith('[') ? prefix + path : `${prefix}.${path}`);
      const line = lineOf('');
      if (!isPlainObject(o)) throw new ManifestFileError(file, `an object must be a mapping, not ${o === null ? 'null' : Array.isArray(o) ? 'a list' : typeof o}`, document, line);
      into.objects.push(o);
      into.sources.push({ file, document, line, lineOf });
    };
    if (Array.isArray(value) && isSeq(doc.contents)) value.forEach((o, k) => add(o, `[${k}]`));
    else if (isPlainObject(value) && value.kind === 'List' && Array.isArray(value.items) && isMap(doc.contents)) value.items.forEach((o, k) => add(o, `items[${k}]`));
    else add(value, '');
  });
  return into;
}

/** `-f` values: files, directories (their .yaml/.yml/.json files, sorted) or `-` for stdin. */
export function readManifests(paths: string[], stdin: () => string = () => readFileSync(0, 'utf8')): ManifestSet {
  const set: ManifestSet = { objects: [], sources: [] };
  for (const p of paths) {
    if (p === '-') {
      parseManifests(stdin(), 'stdin', set);
      continue;
    }
    let files: string[];
    try {
      files = statSync(p).isDirectory()
        ? readdirSync(p).filter((f) => /\.(ya?ml|json)$/.test(f)).sort().map((f) => join(p, f))
        : [p];
    } catch (e) {
      throw new CliError(`the path "${p}" does not exist (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    if (!files.length) throw new CliError(`no manifests (*.yaml, *.yml, *.json) in directory "${p}"`);
    for (const f of files) parseManifests(readFileSync(f, 'utf8'), f, set);
  }
  return set;
}

/** An agent error about object N, field path P → `error: FILE: document D, line L: message`. */
export function locateError(e: AgentError, set: ManifestSet): string {
  const body = e.body ?? {};
  const index = typeof body.document === 'number' ? body.document - 1 : set.objects.length === 1 ? 0 : undefined;
  const src = index !== undefined ? set.sources[index] : undefined;
  if (!src) return e.message;
  const path = typeof body.path === 'string' ? body.path : undefined;
  const line = (path !== undefined ? src.lineOf(path) : undefined) ?? src.line;
  return `${src.file}: ${placed(e.message, src.document, line)}`;
}

/** Fills metadata.namespace from -n for objects that name none (the agent drops it for cluster-scoped kinds). */
function withNamespace(objects: Array<Record<string, unknown>>, ns: string | undefined): unknown[] {
  if (!ns) return objects;
  const clusterScoped = ['Namespace', 'CiliumClusterwideNetworkPolicy', 'CiliumLoadBalancerIPPool'];
  return objects.map((o) => {
    if (clusterScoped.includes(String(o.kind))) return o;
    const meta = isPlainObject(o.metadata) ? o.metadata : undefined;
    if (!meta || meta.namespace !== undefined) return o;
    return { ...o, metadata: { ...meta, namespace: ns } };
  });
}

async function send(client: AgentClient, route: string, set: ManifestSet, ns: string | undefined, dryRun: boolean): Promise<ManifestResult[]> {
  try {
    const r = await client.call<{ results: ManifestResult[] }>('POST', route, { objects: withNamespace(set.objects, ns), ...(dryRun ? { dryRun } : {}) });
    return r.results;
  } catch (e) {
    if (e instanceof AgentError && e.statusCode < 500 && e.statusCode !== 501) throw new CliError(locateError(e, set));
    throw e;
  }
}

function load(args: ParsedArgs, verb: string): ManifestSet {
  const files = strs(args, 'filename');
  if (!files.length) throw new UsageError(`${verb} needs -f FILE|DIR|-`);
  if (args.positionals.length) throw new UsageError(`unexpected argument "${args.positionals[0]}" (with -f, name no objects)`);
  const set = readManifests(files);
  if (!set.objects.length) throw new CliError('no objects passed to ' + verb);
  return set;
}

export async function applyCommand(args: ParsedArgs, client: AgentClient, io: Out): Promise<number> {
  checkFlags(args, 'apply', ['filename', 'namespace', 'dry-run']);
  const dry = str(args, 'dry-run');
  if (dry !== undefined && dry !== 'server' && dry !== 'none') throw new UsageError(`--dry-run must be server or none, not "${dry}"`);
  const set = load(args, 'apply');
  const results = await send(client, '/v1/apply', set, str(args, 'namespace'), dry === 'server');
  for (const r of results) io.out(`${r.resource}/${r.name} ${r.result}${dry === 'server' ? ' (server dry run)' : ''}\n`);
  return 0;
}

/** Lines kubectl prints for a delete: `pod "xwing" deleted`; missing ones are errors unless --ignore-not-found. */
export function printDeleted(results: ManifestResult[], io: Out, ignoreNotFound: boolean): number {
  let rc = 0;
  for (const r of results) {
    if (r.result === 'deleted') io.out(`${r.resource} "${r.name}" deleted\n`);
    else if (!ignoreNotFound) {
      const plural = r.resource.includes('.') ? r.resource.replace(/^([a-z]+?)(y?)\./, (_, w: string, y: string) => `${w}${y ? 'ies' : 's'}.`) : `${r.resource}s`;
      io.err(`Error from server (NotFound): ${plural} "${r.name}" not found\n`);
      rc = 1;
    }
  }
  return rc;
}

export async function deleteFileCommand(args: ParsedArgs, client: AgentClient, io: Out): Promise<number> {
  checkFlags(args, 'delete', ['filename', 'namespace', 'ignore-not-found']);
  const set = load(args, 'delete');
  const results = await send(client, '/v1/delete', set, str(args, 'namespace'), false);
  return printDeleted(results, io, bool(args, 'ignore-not-found'));
}
