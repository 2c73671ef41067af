// Policy verbs: cilium-dbg-like `policy import|get|delete`, kubectl-like `get cnp|ccnp|netpol` and `delete cnp NAME`.
import { readFileSync } from 'node:fs';
import { LineCounter, parseAllDocuments, stringify, isMap, isSeq, type Document } from 'yaml';
import type { PolicyImportResult, PolicySummary } from '../control/types.ts';
import { yamlLineMapper } from '../policy/yaml-lines.ts';
import { bool, checkFlags, str, type ParsedArgs } from './args.ts';
import type { AgentClient } from './client.ts';
import { AgentError, CliError, UsageError } from './errors.ts';
import { humanAge, type Out } from './pods.ts';
import { jsonPath } from './resources.ts';
import { splitKind } from './services.ts';
import { formatTable } from './table.ts';

export type PolicyKind = 'CiliumNetworkPolicy' | 'CiliumClusterwideNetworkPolicy' | 'NetworkPolicy';

/** kubectl's names for the policy kinds (short, singular, plural, and the kind itself). */
export const POLICY_KIND_NAMES: Record<string, PolicyKind> = {
  cnp: 'CiliumNetworkPolicy',
  ciliumnetworkpolicy: 'CiliumNetworkPolicy',
  ciliumnetworkpolicies: 'CiliumNetworkPolicy',
  ccnp: 'CiliumClusterwideNetworkPolicy',
  ciliumclusterwidenetworkpolicy: 'CiliumClusterwideNetworkPolicy',
  ciliumclusterwidenetworkpolicies: 'CiliumClusterwideNetworkPolicy',
  netpol: 'NetworkPolicy',
  networkpolicy: 'NetworkPolicy',
  networkpolicies: 'NetworkPolicy',
};
export const POLICY_KINDS = Object.keys(POLICY_KIND_NAMES);

/** `cnp`, `CiliumNetworkPolicy`, ... → the kind; undefined when it is none of them. */
export function policyKindOf(word: string | undefined): PolicyKind | undefined {
  return word === undefined ? undefined : POLICY_KIND_NAMES[word.toLowerCase()];
}

/** The resource kubectl names in its messages: `ciliumnetworkpolicy.cilium.io` (plural: `ciliumnetworkpolicies.cilium.io`). */
export function resourceName(kind: string, plural = false): string {
  const group = kind === 'NetworkPolicy' ? 'networking.k8s.io' : 'cilium.io';
  const lower = kind.toLowerCase();
  return `${plural ? lower.replace(/y$/, 'ies') : lower}.${group}`;
}

// ---------- policy import: YAML documents, and agent errors mapped back to their line ----------

/** Where each object sent to the agent came from: its document (1-based) and the path prefix inside it. */
export interface PolicySource {
  document: number;
  line?: number;
  /** Maps a field path of the object to its line. */
  lineOf: (path: string) => number | undefined;
}

export interface PolicyFile {
  objects: unknown[];
  sources: PolicySource[];
}

/** A file's problem, placed: `document N, line L: message`. */
export class PolicyFileError extends Error {
  constructor(readonly reason: string, readonly document?: number, readonly line?: number) {
    super(placed(reason, document, line));
  }
}

function placed(reason: string, document?: number, line?: number): string {
  const at = [document !== undefined ? `document ${document}` : '', line !== undefined ? `line ${line}` : ''].filter(Boolean).join(', ');
  return at ? `${at}: ${reason}` : reason;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Multi-document YAML (or JSON) → the policy objects, in order. A document holding a sequence, or a
 * `kind: List` with `items`, contributes each element. Empty documents are skipped but still counted.
 */
export function parsePolicyFile(text: string): PolicyFile {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter });
  if (!Array.isArray(docs)) return { objects: [], sources: [] }; // an empty stream
  const objects: unknown[] = [];
  const sources: PolicySource[] = [];
  docs.forEach((doc: Document, i) => {
    const document = i + 1;
    const err = doc.errors[0];
    if (err) {
      const line = err.linePos?.[0]?.line;
      throw new PolicyFileError(err.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, ''), document, line);
    }
    const value: unknown = doc.contents === null ? null : doc.toJS();
    if (value === null || value === undefined) return; // an empty document (or only comments)
    const mapper = yamlLineMapper(doc, lineCounter);
    const add = (o: unknown, prefix: string) => {
      const lineOf = (path: string) => mapper(prefix === '' ? path : path.startsWith('[') ? prefix + path : `${prefix}.${path}`);
      const line = lineOf('');
      if (!isPlainObject(o)) throw new PolicyFileError(`a policy must be a mapping, not ${o === null ? 'null' : Array.isArray(o) ? 'a list' : typeof o}`, document, line);
      objects.push(o);
      sources.push({ document, line, lineOf });
    };
    const contents = doc.contents;
    if (Array.isArray(value) && isSeq(contents)) value.forEach((o, k) => add(o, `[${k}]`));
    else if (isPlainObject(value) && value.kind === 'List' && Array.isArray(value.items) && isMap(contents)) value.items.forEach((o, k) => add(o, `items[${k}]`));
    else add(value, '');
  });
  return { objects, sources };
}

/**
 * An agent message for a rejected import → the document and line it is about. Messages name the object
 * (`policy #2: ...`, only when several were sent) and the field path (`spec.ingress[0].toPorts[0].ports[0].port: ...`).
 */
export function locateImportError(message: string, file: PolicyFile): { reason: string; document?: number; line?: number } {
  let reason = message;
  let index: number | undefined;
  const m = /^policy #(\d+): ([\s\S]*)$/.exec(message);
  if (m) {
    index = Number(m[1]) - 1;
    reason = m[2];
  } else if (file.objects.length === 1) {
    index = 0;
  } else {
    // The API's own check of the body: `body/3 must be object`.
    const b = /^body\/(\d+)\b/.exec(message);
    if (b) index = Number(b[1]);
  }
  const src = index !== undefined ? file.sources[index] : undefined;
  if (!src) return { reason };
  const path = /^([^\s:]+): /.exec(reason)?.[1];
  const line = (path !== undefined ? src.lineOf(path) : undefined) ?? src.line;
  return { reason, document: src.document, line };
}

/** Lines kubectl apply prints, then cilium's `Revision: N`. */
export function formatImportResult(r: PolicyImportResult): string {
  return r.policies.map((p) => `${resourceName(p.kind)}/${p.name} ${p.result}\n`).join('') + `Revision: ${r.revision}\n`;
}

function readInput(file: string): string {
  try {
    return readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read ${file === '-' ? 'standard input' : file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

async function importCommand(args: ParsedArgs, client: AgentClient, io: Out, rest: string[]): Promise<number> {
  checkFlags(args, 'policy import', []);
  const [file, ...extra] = rest;
  if (!file) throw new UsageError('policy import needs a file: ciliary policy import FILE|-');
  if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const shown = file === '-' ? 'stdin' : file;
  const fail = (reason: string, document?: number, line?: number) => {
    io.err(`error: ${shown}: ${placed(reason, document, line)}\n`);
    return 1;
  };
  let parsed: PolicyFile;
  try {
    parsed = parsePolicyFile(readInput(file));
  } catch (e) {
    if (e instanceof PolicyFileError) return fail(e.reason, e.document, e.line);
    throw e;
  }
  if (!parsed.objects.length) return fail('no policies found');
  let result: PolicyImportResult;
  try {
    result = await client.call<PolicyImportResult>('PUT', '/v1/policy', parsed.objects);
  } catch (e) {
    if (e instanceof AgentError && (e.statusCode === 400 || e.statusCode === 413)) {
      const where = locateImportError(e.message, parsed);
      return fail(where.reason, where.document, where.line);
    }
    throw e;
  }
  io.out(formatImportResult(result));
  return 0;
}

// ---------- policy get / delete ----------

export interface PolicyList {
  revision: number;
  policies: PolicySummary[];
}

/** cilium-dbg `policy get`: the policies' JSON, then `Revision: N`. */
export function formatPolicyGet(list: PolicyList, filter: { name?: string; namespace?: string } = {}): string {
  const objects = list.policies
    .filter((p) => (filter.name === undefined || p.name === filter.name) && (filter.namespace === undefined || p.namespace === undefined || p.namespace === filter.namespace))
    .map((p) => p.object);
  return `${JSON.stringify(objects, null, 2)}\nRevision: ${list.revision}\n`;
}

/**
 * `policy get -o json|jsonpath=…` as cilium-dbg's (its API's Policy model: the rules as one JSON
 * string, and the revision): `cilium connectivity test` reads `-o jsonpath='{.revision}'` before
 * and after applying policies.
 */
export function formatPolicyGetOutput(list: PolicyList, output: string, filter: { name?: string; namespace?: string } = {}): string {
  const text = formatPolicyGet(list, filter);
  const model = { policy: text.slice(0, text.lastIndexOf('\nRevision: ')), revision: list.revision };
  if (output === 'json') return `${JSON.stringify(model, null, 2)}\n`;
  if (output.startsWith('jsonpath=')) return jsonPath(output.slice('jsonpath='.length), model);
  throw new UsageError(`--output must be json or jsonpath={...}, not "${output}"`);
}

async function getCommand(args: ParsedArgs, client: AgentClient, io: Out, rest: string[]): Promise<number> {
  checkFlags(args, 'policy get', ['namespace', 'output']);
  const output = str(args, 'output');
  const [name, ...extra] = rest;
  if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const list = await client.get<PolicyList>('/v1/policy');
  const namespace = str(args, 'namespace');
  if (name !== undefined && !list.policies.some((p) => p.name === name && (namespace === undefined || p.namespace === undefined || p.namespace === namespace))) {
    throw new CliError(`policy "${name}" not found${namespace ? ` in namespace ${namespace}` : ''}`);
  }
  io.out(output === undefined ? formatPolicyGet(list, { name, namespace }) : formatPolicyGetOutput(list, output, { name, namespace }));
  return 0;
}

function deleteQuery(kind: string, namespace: string | undefined, name: string): string {
  const q = new URLSearchParams({ kind, name });
  if (namespace !== undefined && kind !== 'CiliumClusterwideNetworkPolicy') q.set('namespace', namespace);
  return `/v1/policy?${q.toString()}`;
}

async function deleteCommand(args: ParsedArgs, client: AgentClient, io: Out, rest: string[]): Promise<number> {
  checkFlags(args, 'policy delete', ['namespace', 'kind', 'all']);
  if (bool(args, 'all')) {
    if (rest.length) throw new UsageError('policy delete --all takes no name');
    const { revision } = await client.call<{ revision: number }>('DELETE', '/v1/policy?all=true');
    io.out(`Revision: ${revision}\n`);
    return 0;
  }
  const [name, ...extra] = rest;
  if (!name) throw new UsageError('policy delete needs a name or --all: ciliary policy delete NAME [-n NS] [--kind KIND] | policy delete --all');
  if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const kindFlag = str(args, 'kind');
  const kind = kindFlag === undefined ? 'CiliumNetworkPolicy' : policyKindOf(kindFlag);
  if (!kind) throw new UsageError(`--kind must be CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy or NetworkPolicy (or cnp, ccnp, netpol), not "${kindFlag}"`);
  const { revision } = await client.call<{ revision: number }>('DELETE', deleteQuery(kind, str(args, 'namespace') ?? 'default', name));
  io.out(`Revision: ${revision}\n`);
  return 0;
}

export async function policyCommand(args: ParsedArgs, client: AgentClient, io: Out): Promise<number> {
  const [verb, ...rest] = args.positionals;
  if (verb === 'import') return importCommand(args, client, io, rest);
  if (verb === 'get') return getCommand(args, client, io, rest);
  if (verb === 'delete') return deleteCommand(args, client, io, rest);
  throw new UsageError(`policy ${verb ? `"${verb}" is not a verb` : 'needs a verb'}: ciliary policy import FILE | policy get [NAME] | policy delete NAME|--all`);
}

// ---------- kubectl-like get / delete ----------

function metadataOf(o: unknown): Record<string, unknown> {
  const m = isPlainObject(o) ? o.metadata : undefined;
  return isPlainObject(m) ? m : {};
}

function ageOf(p: PolicySummary, now: number): string {
  const ts = metadataOf(p.object).creationTimestamp;
  const t = typeof ts === 'string' ? Date.parse(ts) : NaN;
  return Number.isNaN(t) ? '<unknown>' : humanAge((now - t) / 1000);
}

/** POD-SELECTOR of `kubectl get netpol`: matchLabels `k=v,...`, `<none>` for the empty selector. */
export function formatPodSelector(o: unknown): string {
  const spec = isPlainObject(o) && isPlainObject(o.spec) ? o.spec : {};
  const sel = isPlainObject(spec.podSelector) ? spec.podSelector : {};
  const parts: string[] = [];
  const ml = isPlainObject(sel.matchLabels) ? sel.matchLabels : {};
  for (const k of Object.keys(ml).sort()) parts.push(`${k}=${String(ml[k])}`);
  const exprs = Array.isArray(sel.matchExpressions) ? sel.matchExpressions : [];
  for (const e of exprs) {
    if (!isPlainObject(e)) continue;
    const values = Array.isArray(e.values) ? e.values.map(String) : [];
    const op = String(e.operator);
    if (op === 'In') parts.push(`${String(e.key)} in (${values.join(',')})`);
    else if (op === 'NotIn') parts.push(`${String(e.key)} notin (${values.join(',')})`);
    else if (op === 'Exists') parts.push(String(e.key));
    else if (op === 'DoesNotExist') parts.push(`!${String(e.key)}`);
  }
  return parts.length ? parts.join(',') : '<none>';
}

function sortPolicies(ps: PolicySummary[]): PolicySummary[] {
  return [...ps].sort((a, b) => ((a.namespace ?? '') === (b.namespace ?? '') ? (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) : (a.namespace ?? '') < (b.namespace ?? '') ? -1 : 1));
}

/** `kubectl get cnp|ccnp` (NAME AGE VALID) or `get netpol` (NAME POD-SELECTOR AGE); NAMESPACE first with -A. */
export function formatPoliciesTable(policies: PolicySummary[], kind: PolicyKind, o: { allNamespaces?: boolean; now?: number } = {}): string {
  const now = o.now ?? Date.now();
  const ns = o.allNamespaces === true && kind !== 'CiliumClusterwideNetworkPolicy';
  const header = [...(ns ? ['NAMESPACE'] : []), 'NAME', ...(kind === 'NetworkPolicy' ? ['POD-SELECTOR', 'AGE'] : ['AGE', 'VALID'])];
  const rows = sortPolicies(policies).map((p) => [
    ...(ns ? [p.namespace ?? ''] : []),
    p.name,
    ...(kind === 'NetworkPolicy' ? [formatPodSelector(p.object), ageOf(p, now)] : [ageOf(p, now), 'True']),
  ]);
  return formatTable([header, ...rows]);
}

/** kubectl's output of objects: one object alone when one was named, else a List. */
export function kubectlObjects(objects: unknown[], single: boolean): unknown {
  return single && objects.length === 1 ? objects[0] : { apiVersion: 'v1', items: objects, kind: 'List', metadata: { resourceVersion: '' } };
}

export async function getPoliciesCommand(args: ParsedArgs, client: AgentClient, io: Out): Promise<number> {
  checkFlags(args, 'get policies', ['namespace', 'all-namespaces', 'output']);
  const { kind: word, names } = splitKind(args.positionals);
  const kind = policyKindOf(word)!;
  const output = str(args, 'output');
  if (output !== undefined && output !== 'json' && output !== 'yaml') throw new UsageError(`--output must be json or yaml, not "${output}"`);
  const clusterwide = kind === 'CiliumClusterwideNetworkPolicy';
  const all = bool(args, 'all-namespaces') || clusterwide;
  const ns = str(args, 'namespace') ?? 'default';
  let ps = (await client.get<PolicyList>('/v1/policy')).policies.filter((p) => p.kind === kind && (all || p.namespace === ns));
  if (names.length) ps = ps.filter((p) => names.includes(p.name));
  for (const name of names) {
    if (!ps.some((p) => p.name === name)) throw new CliError(`${resourceName(kind, true)} "${name}" not found`);
  }
  ps = sortPolicies(ps);
  if (output !== undefined) {
    const doc = kubectlObjects(ps.map((p) => p.object), names.length === 1);
    io.out(output === 'json' ? JSON.stringify(doc, null, 2) + '\n' : stringify(doc, { indentSeq: false })); // kubectl does not indent sequences
    return 0;
  }
  if (!ps.length) {
    io.err(all ? 'No resources found\n' : `No resources found in ${ns} namespace.\n`);
    return 0;
  }
  io.out(formatPoliciesTable(ps, kind, { allNamespaces: bool(args, 'all-namespaces') }));
  return 0;
}

/** `ciliary delete cnp NAME... [-n NS]`, as kubectl. */
export async function deletePoliciesCommand(args: ParsedArgs, client: AgentClient, io: Out): Promise<number> {
  checkFlags(args, 'delete policies', ['namespace']);
  const { kind: word, names } = splitKind(args.positionals);
  const kind = policyKindOf(word)!;
  if (!names.length) throw new UsageError(`delete ${word} needs a name: ciliary delete ${word} NAME [-n NS]`);
  const ns = str(args, 'namespace') ?? 'default';
  for (const name of names) {
    await client.call('DELETE', deleteQuery(kind, ns, name));
    io.out(`${resourceName(kind)} "${name}" deleted\n`);
  }
  return 0;
}
