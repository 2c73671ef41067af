// Parse and validate CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy (and dispatch NetworkPolicy).
import { Fields, join, type Obj, type SourceInfo } from './fields.ts';
import { derivedLabels, parseMetadata } from './metadata.ts';
import { parseIcmpRule, parsePortRule } from './parse-l4.ts';
import { parseKubernetesPolicy } from './parse-knp.ts';
import { scopePeer, scopeSubject, type EndpointSelector } from './selector.ts';
import { matchNameError, matchPatternError, selectorText } from '../fqdn/pattern.ts';
import { ENTITIES, type Entity, type Peer, type PeerRule, type PolicyRules, type Rule } from './types.ts';

export type { SourceInfo } from './fields.ts';

const RULE_FIELDS = ['endpointSelector', 'ingress', 'ingressDeny', 'egress', 'egressDeny', 'labels', 'description', 'enableDefaultDeny'];

/**
 * Parse one Kubernetes object into rules. Throws PolicyError naming the field (and its line, when
 * `source.lines` maps it); nothing partial is returned.
 */
export function parsePolicy(obj: unknown, source: SourceInfo = {}): PolicyRules {
  const f = new Fields(source);
  const o = f.object(obj, '(document)');
  const apiVersion = f.optString(o.apiVersion, 'apiVersion');
  const kind = f.optString(o.kind, 'kind');
  if (kind === undefined) f.fail('kind', 'required');
  if (kind === 'CiliumNetworkPolicy' || kind === 'CiliumClusterwideNetworkPolicy') {
    if (apiVersion !== 'cilium.io/v2') f.fail('apiVersion', `${kind} needs apiVersion cilium.io/v2, got ${JSON.stringify(apiVersion)}`);
    return parseCiliumPolicy(f, o, kind);
  }
  if (kind === 'NetworkPolicy') {
    if (apiVersion !== 'networking.k8s.io/v1') f.fail('apiVersion', `NetworkPolicy needs apiVersion networking.k8s.io/v1, got ${JSON.stringify(apiVersion)}`);
    return parseKubernetesPolicy(f, o);
  }
  return f.fail('kind', `unsupported kind ${JSON.stringify(kind)} (expected CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy or NetworkPolicy)`);
}

function parseCiliumPolicy(f: Fields, o: Obj, kind: 'CiliumNetworkPolicy' | 'CiliumClusterwideNetworkPolicy'): PolicyRules {
  f.fields(o, '(document)', ['apiVersion', 'kind', 'metadata', 'spec', 'specs', 'status']);
  const { name, namespace } = parseMetadata(f, o, kind === 'CiliumNetworkPolicy');
  if (o.spec == null && o.specs == null) f.fail('spec', 'required (spec or specs)');
  const warnings: string[] = [];
  const base = derivedLabels(kind, namespace, name);
  const rules: Rule[] = [];
  if (o.spec != null) rules.push(parseRule(f, o.spec, 'spec', namespace, base, warnings));
  (f.optList(o.specs, 'specs') ?? []).forEach((s, i) => rules.push(parseRule(f, s, `specs[${i}]`, namespace, base, warnings)));
  return { kind, namespace, name, rules, original: o, warnings };
}

function parseRule(f: Fields, v: unknown, path: string, namespace: string | undefined, base: string[], warnings: string[]): Rule {
  const raw = f.object(v, path);
  const o = f.fields(raw, path, [...RULE_FIELDS, 'nodeSelector']);
  const { selector, overridden } = parseSubject(f, o, path, namespace);
  if (overridden !== undefined) warnings.push(`${path}.endpointSelector: namespace ${overridden} replaced by the policy's namespace ${namespace}`);
  const rule: Rule = { subject: selector, enableDefaultDeny: {}, labels: [...base, ...parseRuleLabels(f, o.labels, join(path, 'labels'))] };
  const description = f.optString(o.description, join(path, 'description'));
  if (description !== undefined) rule.description = description;
  for (const section of ['ingress', 'ingressDeny', 'egress', 'egressDeny'] as const) {
    const list = f.optList(o[section], join(path, section));
    if (list === undefined) continue;
    const egress = section.startsWith('egress');
    const deny = section.endsWith('Deny');
    rule[section] = list.map((r, i) => parsePeerRule(f, r, `${path}.${section}[${i}]`, egress, deny, namespace));
  }
  if (o.enableDefaultDeny != null) {
    const d = f.fields(o.enableDefaultDeny, join(path, 'enableDefaultDeny'), ['ingress', 'egress']);
    const ingress = f.optBool(d.ingress, `${path}.enableDefaultDeny.ingress`);
    const egress = f.optBool(d.egress, `${path}.enableDefaultDeny.egress`);
    if (ingress !== undefined) rule.enableDefaultDeny.ingress = ingress;
    if (egress !== undefined) rule.enableDefaultDeny.egress = egress;
  }
  return rule;
}

/**
 * endpointSelector, or (host policy, clusterwide only) nodeSelector: the host endpoint of the
 * nodes whose labels match (Cilium adds reserved:host to it).
 */
function parseSubject(f: Fields, o: Obj, path: string, namespace: string | undefined): { selector: EndpointSelector; overridden?: string } {
  const ep = o.endpointSelector ?? undefined;
  const node = o.nodeSelector ?? undefined;
  if (ep !== undefined && node !== undefined) f.fail(join(path, 'nodeSelector'), 'endpointSelector and nodeSelector cannot both be given');
  if (node !== undefined) {
    if (namespace !== undefined) f.fail(join(path, 'nodeSelector'), 'nodeSelector (host policy) is only allowed in a CiliumClusterwideNetworkPolicy');
    return { selector: f.selector(node, join(path, 'nodeSelector')).with({ source: 'reserved', key: 'host', op: 'Exists', values: [] }) };
  }
  if (ep === undefined) f.fail(join(path, 'endpointSelector'), 'required (or nodeSelector in a CiliumClusterwideNetworkPolicy)');
  return scopeSubject(f.selector(ep, join(path, 'endpointSelector')), namespace);
}

/** spec.labels: [{key, value, source}] as the CRD has them, or `source:key=value` strings. */
function parseRuleLabels(f: Fields, v: unknown, path: string): string[] {
  return (f.optList(v, path) ?? []).map((l, i) => {
    const p = `${path}[${i}]`;
    if (typeof l === 'string') return l.includes(':') ? l : `unspec:${l}`;
    const o = f.fields(l, p, ['key', 'value', 'source']);
    const key = f.string(o.key, `${p}.key`);
    const value = f.optString(o.value, `${p}.value`) ?? '';
    const source = f.optString(o.source, `${p}.source`) ?? 'unspec';
    return `${source}:${key}${value ? `=${value}` : ''}`;
  });
}

function parsePeerRule(f: Fields, v: unknown, path: string, egress: boolean, deny: boolean, namespace: string | undefined): PeerRule {
  const dir = egress ? 'to' : 'from';
  const l3 = [`${dir}Endpoints`, `${dir}Entities`, `${dir}CIDR`, `${dir}CIDRSet`, `${dir}Nodes`, ...(egress ? ['toFQDNs', 'toServices'] : [])];
  const unsupported = egress ? ['toRequires', 'toGroups', 'authentication'] : ['fromRequires', 'fromGroups', 'authentication'];
  const o = f.fields(v ?? {}, path, [...l3, 'toPorts', 'icmps'], unsupported);
  const given = l3.filter((k) => o[k] !== undefined && o[k] !== null);
  if (given.length > 1) f.fail(join(path, given[1]), `combining ${given[0]} and ${given[1]} in one rule is not supported; write them as separate rules`);
  // Cilium learns names only for allow rules: a deny by name would depend on what was resolved.
  if (deny && given[0] === 'toFQDNs') f.fail(join(path, 'toFQDNs'), 'toFQDNs is not allowed in egressDeny rules');
  const rule: PeerRule = { toPorts: [], icmps: [] };
  if (given.length === 1) rule.peers = parsePeers(f, given[0], f.list(o[given[0]], join(path, given[0])), path, namespace);
  const toPorts = f.optList(o.toPorts, join(path, 'toPorts'));
  const icmps = f.optList(o.icmps, join(path, 'icmps'));
  if (toPorts?.length && icmps?.length) f.fail(join(path, 'icmps'), 'icmps cannot be combined with toPorts in one rule; write them as separate rules');
  rule.toPorts = (toPorts ?? []).map((p, i) => parsePortRule(f, p, `${path}.toPorts[${i}]`, deny));
  rule.icmps = (icmps ?? []).flatMap((p, i) => parseIcmpRule(f, p, `${path}.icmps[${i}]`));
  return rule;
}

function parsePeers(f: Fields, key: string, list: unknown[], path: string, namespace: string | undefined): Peer[] {
  const at = (i: number) => `${path}.${key}[${i}]`;
  if (key.endsWith('Endpoints')) return list.map((s, i) => ({ kind: 'endpoints', selector: scopePeer(f.selector(s, at(i)), namespace) }));
  if (key.endsWith('Entities')) return list.map((s, i) => ({ kind: 'entity', entity: parseEntity(f, s, at(i)) }));
  if (key.endsWith('CIDRSet')) return list.map((s, i) => ({ kind: 'cidr', ...f.cidrSet('cidr', s, at(i), ['cidrGroupRef', 'cidrGroupSelector']) }));
  if (key.endsWith('CIDR')) return list.map((s, i) => ({ kind: 'cidr', cidr: f.cidr(s, at(i)), except: [] }));
  if (key.endsWith('Nodes')) return list.map((s, i) => ({ kind: 'nodes', selector: f.selector(s, at(i)) }));
  if (key === 'toFQDNs') return list.map((s, i) => ({ kind: 'fqdn', text: parseFqdnSelector(f, s, at(i)) }));
  return list.map((s, i) => parseServicePeer(f, s, at(i), namespace));
}

/** toFQDNs[i]: exactly one of matchName, matchPattern. */
function parseFqdnSelector(f: Fields, v: unknown, path: string): string {
  const o = f.fields(v, path, ['matchName', 'matchPattern']);
  const matchName = f.optString(o.matchName, join(path, 'matchName'));
  const matchPattern = f.optString(o.matchPattern, join(path, 'matchPattern'));
  if (matchName === undefined && matchPattern === undefined) f.fail(path, 'needs matchName or matchPattern');
  if (matchName !== undefined && matchPattern !== undefined) f.fail(join(path, 'matchPattern'), 'only one of matchName or matchPattern is allowed');
  const err = matchName !== undefined ? matchNameError(matchName) : matchPatternError(matchPattern!);
  if (err) f.fail(join(path, matchName !== undefined ? 'matchName' : 'matchPattern'), err);
  return selectorText({ matchName, matchPattern });
}

/** toServices[i]: k8sService {serviceName, namespace} or k8sServiceSelector {selector, namespace}. */
function parseServicePeer(f: Fields, v: unknown, path: string, namespace: string | undefined): Peer {
  const o = f.fields(v, path, ['k8sService', 'k8sServiceSelector']);
  if ((o.k8sService == null) === (o.k8sServiceSelector == null)) f.fail(path, 'needs exactly one of k8sService or k8sServiceSelector');
  if (o.k8sService != null) {
    const p = join(path, 'k8sService');
    const s = f.fields(o.k8sService, p, ['serviceName', 'namespace']);
    const name = f.string(s.serviceName, join(p, 'serviceName'));
    return { kind: 'service', name, namespace: f.optString(s.namespace, join(p, 'namespace')) ?? namespace ?? 'default' };
  }
  const p = join(path, 'k8sServiceSelector');
  const s = f.fields(o.k8sServiceSelector, p, ['selector', 'namespace']);
  if (s.selector == null) f.fail(join(p, 'selector'), 'required');
  const ns = f.optString(s.namespace, join(p, 'namespace')) ?? namespace;
  return { kind: 'service', selector: f.selector(s.selector, join(p, 'selector'), 'k8s'), ...(ns !== undefined ? { namespace: ns } : {}) };
}

function parseEntity(f: Fields, v: unknown, path: string): Entity {
  const s = f.string(v, path);
  if (!ENTITIES.includes(s)) f.fail(path, `unknown entity ${JSON.stringify(s)} (expected one of: ${ENTITIES.join(', ')})`);
  return (s === 'world-ipv4' ? 'world' : s) as Entity;
}
