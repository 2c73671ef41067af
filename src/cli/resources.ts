// kubectl-like get/describe/delete for the kinds the resource manager keeps (pods, deployments, namespaces,
// services, policies, LB IP pools), and `logs POD [-f]`.
import { stringify } from 'yaml';
import type { ManifestResult, ResourceView, Service } from '../control/types.ts';
import { kindFromName, type KindInfo } from '../control/resources/kinds.ts';
import { bool, checkFlags, str, type ParsedArgs } from './args.ts';
import type { AgentClient } from './client.ts';
import { AgentError, CliError, UsageError } from './errors.ts';
import { printDeleted } from './apply.ts';
import { humanAge, type Out } from './pods.ts';
import { formatPorts, formatSelector, formatServicesTable, splitKind } from './services.ts';
import { formatTable } from './table.ts';

/** The agent has no resource manager (an old agent, or a test fake): callers fall back to the older routes. */
export function noResources(e: unknown): boolean {
  return e instanceof AgentError && (e.statusCode === 501 || (e.statusCode === 404 && e.message.startsWith('no route')));
}

export function resourceKind(word: string | undefined): KindInfo | undefined {
  return word === undefined ? undefined : kindFromName(word);
}

const q = (ns: string | undefined) => (ns ? `?namespace=${encodeURIComponent(ns)}` : '');

// ---- tables ----

const age = (v: ResourceView, now: number) => (v.createdAt ? humanAge((now - Date.parse(v.createdAt)) / 1000) : '<unknown>');

export function formatResourceTable(kind: KindInfo['kind'], views: ResourceView[], o: { allNamespaces?: boolean; wide?: boolean; now?: number } = {}): string {
  const now = o.now ?? Date.now();
  const nsCol = (v: ResourceView) => (o.allNamespaces && kindFromName(kind)?.namespaced ? [v.namespace ?? ''] : []);
  const nsHead = o.allNamespaces && kindFromName(kind)?.namespaced ? ['NAMESPACE'] : [];
  let header: string[];
  let rows: string[][];
  switch (kind) {
    case 'Pod':
      header = [...nsHead, 'NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE', ...(o.wide ? ['IP', 'NODE', 'NOMINATED NODE', 'READINESS GATES'] : [])];
      rows = views.map((v) => {
        const s = v.status as { ready?: string; status?: string; restarts?: number; podIP?: string; node?: string };
        return [...nsCol(v), v.name, s.ready ?? '1/1', s.status ?? 'Running', String(s.restarts ?? 0), age(v, now),
          ...(o.wide ? [s.podIP || '<none>', s.node || '<none>', '<none>', '<none>'] : [])];
      });
      break;
    case 'Deployment':
      header = [...nsHead, 'NAME', 'READY', 'UP-TO-DATE', 'AVAILABLE', 'AGE', ...(o.wide ? ['CONTAINERS', 'IMAGES', 'SELECTOR'] : [])];
      rows = views.map((v) => {
        const s = v.status as { replicas: number; ready: number; upToDate: number; available: number };
        const spec = (v.manifest.spec ?? {}) as { selector?: { matchLabels?: Record<string, string> }; template?: { spec?: { containers?: Array<{ name: string; image: string }> } } };
        const cs = spec.template?.spec?.containers ?? [];
        return [...nsCol(v), v.name, `${s.ready}/${s.replicas}`, String(s.upToDate), String(s.available), age(v, now),
          ...(o.wide ? [cs.map((c) => c.name).join(','), cs.map((c) => c.image).join(','), formatSelector(spec.selector?.matchLabels)] : [])];
      });
      break;
    case 'Namespace':
      header = ['NAME', 'STATUS', 'AGE'];
      rows = views.map((v) => [v.name, String(v.status.phase ?? 'Active'), age(v, now)]);
      break;
    case 'CiliumLoadBalancerIPPool':
      header = ['NAME', 'DISABLED', 'CONFLICTING', 'IPS AVAILABLE', 'AGE'];
      rows = views.map((v) => [v.name, String(v.status.disabled ?? false), v.status.conflicting ? 'True' : 'False', String(v.status.ipsAvailable ?? ''), age(v, now)]);
      break;
    case 'Lease':
      header = [...nsHead, 'NAME', 'HOLDER', 'AGE'];
      rows = views.map((v) => [...nsCol(v), v.name, String(v.status.holder ?? ''), age(v, now)]);
      break;
    case 'Service':
      return formatServicesTable(views.map((v) => (v.status as { service: Service }).service), o);
    default:
      header = [...nsHead, 'NAME', 'AGE'];
      rows = views.map((v) => [...nsCol(v), v.name, age(v, now)]);
  }
  return formatTable([header, ...rows]);
}

/** The object kubectl -o yaml/json prints: the manifest with creationTimestamp and status. */
export function toObject(v: ResourceView): Record<string, unknown> {
  const m = structuredClone(v.manifest) as Record<string, unknown> & { metadata?: Record<string, unknown> };
  if (m.metadata && v.createdAt) m.metadata.creationTimestamp = v.createdAt.replace(/\.\d+Z$/, 'Z');
  const status = { ...v.status };
  const svc = status.service as Service | undefined;
  // A service's allocated address belongs in its spec, as the API server writes it back.
  if (svc && m.spec && typeof m.spec === 'object') m.spec = { ...(m.spec as object), clusterIP: svc.clusterIP, clusterIPs: [svc.clusterIP] };
  delete status.service;
  delete status.pods;
  return { ...m, status };
}

/** A small JSONPath: `{.status.podIP}`, `{.items[0].metadata.name}`, `{.items[*].status.podIP}`. */
export function jsonPath(expr: string, data: unknown): string {
  const m = /^\{(.*)\}$/.exec(expr.trim());
  if (!m) throw new UsageError(`jsonpath: "${expr}" must be {.path}`);
  let values: unknown[] = [data];
  for (const seg of m[1].match(/\.[^.[]+|\[[^\]]*\]/g) ?? []) {
    const next: unknown[] = [];
    for (const v of values) {
      if (seg.startsWith('.')) {
        if (v && typeof v === 'object' && !Array.isArray(v)) next.push((v as Record<string, unknown>)[seg.slice(1)]);
      } else if (Array.isArray(v)) {
        const idx = seg.slice(1, -1);
        if (idx === '*') next.push(...v);
        else next.push(v[Number(idx) < 0 ? v.length + Number(idx) : Number(idx)]);
      }
    }
    values = next.filter((x) => x !== undefined);
  }
  return values.map((v) => (typeof v === 'object' ? JSON.stringify(v) : String(v))).join(' ');
}

function printObjects(views: ResourceView[], single: boolean, output: string, io: Out): void {
  const objs = views.map(toObject);
  const data = single ? objs[0] : { apiVersion: 'v1', kind: 'List', items: objs, metadata: { resourceVersion: '' } };
  if (output === 'json') io.out(JSON.stringify(data, null, 4) + '\n');
  else if (output === 'yaml') io.out(stringify(data));
  else io.out(jsonPath(output.slice('jsonpath='.length), data));
}

export async function getResourcesCommand(args: ParsedArgs, client: AgentClient, io: Out): Promise<number> {
  checkFlags(args, 'get', ['namespace', 'all-namespaces', 'output']);
  const { kind: word, names } = splitKind(args.positionals);
  const info = resourceKind(word);
  if (!info) throw new UsageError(`the server doesn't have a resource type "${word ?? ''}"`);
  const output = str(args, 'output');
  if (output !== undefined && !['wide', 'json', 'yaml'].includes(output) && !output.startsWith('jsonpath=')) throw new UsageError(`--output must be wide, json, yaml or jsonpath={...}, not "${output}"`);
  const all = bool(args, 'all-namespaces') || !info.namespaced;
  const ns = str(args, 'namespace') ?? 'default';
  let views: ResourceView[];
  if (names.length) {
    views = [];
    for (const name of names) {
      try {
        views.push(await client.get<ResourceView>(`/v1/resources/${info.plural}/${encodeURIComponent(name)}${q(info.namespaced ? ns : undefined)}`));
      } catch (e) {
        if (e instanceof AgentError && e.statusCode === 404 && !e.message.startsWith('no route')) throw new CliError(`${info.plural} "${name}" not found`);
        throw e;
      }
    }
  } else {
    views = await client.get<ResourceView[]>(`/v1/resources/${info.plural}${all ? '' : q(ns)}`);
  }
  if (output && output !== 'wide') {
    printObjects(views, names.length === 1, output, io);
    return 0;
  }
  if (!views.length) {
    io.err(all ? 'No resources found\n' : `No resources found in ${ns} namespace.\n`);
    return 0;
  }
  io.out(formatResourceTable(info.kind, views, { allNamespaces: bool(args, 'all-namespaces'), wide: output === 'wide' }));
  return 0;
}

export async function deleteResourcesCommand(args: ParsedArgs, client: AgentClient, io: Out): Promise<number> {
  checkFlags(args, 'delete', ['namespace', 'ignore-not-found']);
  const { kind: word, names } = splitKind(args.positionals);
  const info = resourceKind(word);
  if (!info) throw new UsageError(`the server doesn't have a resource type "${word ?? ''}"`);
  if (!names.length) throw new UsageError(`delete ${word} needs a name`);
  const ns = info.namespaced ? (str(args, 'namespace') ?? 'default') : undefined;
  const results: ManifestResult[] = [];
  for (const name of names) {
    try {
      results.push(await client.call<ManifestResult>('DELETE', `/v1/resources/${info.plural}/${encodeURIComponent(name)}${q(ns)}`));
    } catch (e) {
      if (e instanceof AgentError && e.statusCode === 404 && !e.message.startsWith('no route')) results.push({ kind: info.kind, resource: info.resource, name, result: 'not found' });
      else throw e;
    }
  }
  return printDeleted(results, io, bool(args, 'ignore-not-found'));
}

// ---- describe ----

function labelLines(title: string, m: Record<string, string> | undefined): Array<[string, string]> {
  const entries = Object.entries(m ?? {}).sort(([a], [b]) => a.localeCompare(b));
  if (!entries.length) return [[title, '<none>']];
  return entries.map(([k, v], i) => [i === 0 ? title : '', `${k}=${v}`]);
}

function kv(pairs: Array<[string, string]>, width = 14, indent = ''): string {
  return pairs.map(([k, v]) => `${indent}${(k ? `${k}:` : '').padEnd(width)}${v}`.trimEnd() + '\n').join('');
}

export function describe(v: ResourceView): string {
  const meta = (v.manifest.metadata ?? {}) as { labels?: Record<string, string>; annotations?: Record<string, string> };
  const s = v.status as Record<string, unknown>;
  const head: Array<[string, string]> = [['Name', v.name], ...(v.namespace ? [['Namespace', v.namespace] as [string, string]] : [])];
  const spec = (v.manifest.spec ?? {}) as Record<string, unknown>;
  switch (v.kind) {
    case 'Pod': {
      const c = ((spec.containers ?? []) as Array<{ name: string; image: string; command?: string[]; args?: string[]; ports?: Array<{ containerPort: number; protocol?: string; name?: string }>; env?: Array<{ name: string; value?: string }> }>)[0];
      let out = kv([
        ...head,
        ['Node', String(s.node || '<none>')],
        ['Start Time', String(s.startedAt ?? v.createdAt)],
        ...labelLines('Labels', meta.labels),
        ...labelLines('Annotations', meta.annotations),
        ['Status', String(s.phase ?? 'Running')],
        ...(s.reason ? [['Reason', String(s.reason)] as [string, string]] : []),
        ['IP', String(s.podIP || '')],
        ...(s.owner ? [['Controlled By', `Deployment/${String(s.owner)}`] as [string, string]] : []),
      ]);
      if (c) {
        out += 'Containers:\n';
        out += `  ${c.name}:\n`;
        out += kv([
          ['Image', c.image],
          ...(c.ports?.length ? [['Port', c.ports.map((p) => `${p.containerPort}/${p.protocol ?? 'TCP'}${p.name ? ` (${p.name})` : ''}`).join(', ')] as [string, string]] : []),
          ...(c.command ? [['Command', c.command.join(' ')] as [string, string]] : []),
          ...(c.args ? [['Args', c.args.join(' ')] as [string, string]] : []),
          ...(s.command ? [['Runs', (s.command as string[]).join(' ')] as [string, string]] : []),
          ['State', String(s.status ?? 'Running')],
          ...(s.exitCode !== undefined ? [['Exit Code', String(s.exitCode)] as [string, string]] : []),
          ['Ready', String(s.ready === '1/1')],
          ['Restart Count', String(s.restarts ?? 0)],
          ['Environment', c.env?.length ? '' : '<none>'],
        ], 16, '    ');
        for (const e of c.env ?? []) out += `      ${e.name}:  ${e.value ?? ''}\n`;
      }
      out += kv([['Restart Policy', String(spec.restartPolicy ?? 'Always')], ['Hostname', String(s.hostname ?? v.name)]], 16);
      return out + 'Events:       <none>\n';
    }
    case 'Deployment': {
      const st = s as { replicas: number; ready: number; upToDate: number; available: number; pods?: string[] };
      const tmpl = spec.template as { spec?: { containers?: Array<{ name: string; image: string }> }; metadata?: { labels?: Record<string, string> } };
      let out = kv([
        ...head,
        ['CreationTimestamp', v.createdAt],
        ...labelLines('Labels', meta.labels),
        ['Selector', formatSelector((spec.selector as { matchLabels?: Record<string, string> }).matchLabels)],
        ['Replicas', `${st.replicas} desired | ${st.upToDate} updated | ${st.pods?.length ?? 0} total | ${st.available} available | ${Math.max(0, (st.pods?.length ?? 0) - st.available)} unavailable`],
        ['StrategyType', 'Recreate'],
      ], 24);
      out += 'Pod Template:\n' + kv(labelLines('Labels', tmpl.metadata?.labels), 12, '  ') + '  Containers:\n';
      for (const c of tmpl.spec?.containers ?? []) out += `   ${c.name}:\n    Image:      ${c.image}\n`;
      out += `NewReplicaSet:  ${v.name}-${String(s.templateHash)} (${st.pods?.length ?? 0}/${st.replicas} replicas created)\n`;
      if (st.pods?.length) out += `Pods:           ${st.pods.join(', ')}\n`;
      return out + 'Events:          <none>\n';
    }
    case 'Service': {
      const svc = (s as { service: Service }).service;
      const backends = [...new Set(svc.frontends.flatMap((f) => f.backends.map((b) => `${b.ip}:${b.port}`)))];
      return kv([
        ...head,
        ...labelLines('Labels', meta.labels),
        ['Selector', formatSelector(svc.selector)],
        ['Type', svc.type ?? 'ClusterIP'],
        ['IP', svc.clusterIP],
        ...(svc.externalIPs?.length ? [['External IPs', svc.externalIPs.join(',')] as [string, string]] : []),
        ['Port', formatPorts(svc)],
        ['Endpoints', backends.join(',') || '<none>'],
        ['Session Affinity', svc.sessionAffinity ?? 'None'],
        ['Events', '<none>'],
      ], 19);
    }
    default:
      return kv([...head, ...labelLines('Labels', meta.labels), ...labelLines('Annotations', meta.annotations)])
        + `Spec:\n${stringify(v.manifest.spec ?? v.manifest.specs ?? {}).replace(/^/gm, '  ').trimEnd()}\n`
        + (Object.keys(s).length ? `Status:\n${stringify(s).replace(/^/gm, '  ').trimEnd()}\n` : '')
        + 'Events:       <none>\n';
  }
}

export async function describeCommand(args: ParsedArgs, client: AgentClient, io: Out): Promise<number> {
  checkFlags(args, 'describe', ['namespace', 'all-namespaces']);
  const { kind: word, names } = splitKind(args.positionals);
  const info = resourceKind(word);
  if (!info) throw new UsageError(`describe needs a kind: ciliary describe KIND [NAME] [-n NS]${word ? ` (the server doesn't have a resource type "${word}")` : ''}`);
  const ns = str(args, 'namespace') ?? 'default';
  let views: ResourceView[];
  if (names.length) {
    views = [];
    for (const name of names) {
      try {
        views.push(await client.get<ResourceView>(`/v1/resources/${info.plural}/${encodeURIComponent(name)}${q(info.namespaced ? ns : undefined)}`));
      } catch (e) {
        if (e instanceof AgentError && e.statusCode === 404) throw new CliError(`${info.plural} "${name}" not found`);
        throw e;
      }
    }
  } else {
    views = await client.get<ResourceView[]>(`/v1/resources/${info.plural}${bool(args, 'all-namespaces') || !info.namespaced ? '' : q(ns)}`);
  }
  io.out(views.map(describe).join('\n\n'));
  return 0;
}

export async function logsCommand(args: ParsedArgs, client: AgentClient, io: Out): Promise<number> {
  checkFlags(args, 'logs', ['namespace', 'follow']);
  const [first, ...extra] = args.positionals;
  const name = first?.startsWith('pod/') ? first.slice(4) : first;
  if (!name) throw new UsageError('logs needs a pod: ciliary logs POD [-f] [-n NS]');
  if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const ns = str(args, 'namespace') ?? 'default';
  const path = `/v1/pods/${encodeURIComponent(ns)}/${encodeURIComponent(name)}/logs${bool(args, 'follow') ? '?follow=true' : ''}`;
  try {
    await (await client.forPod(ns, name)).streamText(path, (s) => io.out(s));
  } catch (e) {
    if (e instanceof AgentError && e.statusCode === 404) throw new CliError(e.message.startsWith('no route') ? 'this agent does not serve pod logs' : e.message);
    throw e;
  }
  return 0;
}
