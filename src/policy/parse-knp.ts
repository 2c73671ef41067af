// Translate a Kubernetes NetworkPolicy into the Cilium rule model, as Cilium's k8s watcher does.
import type { Fields, Obj } from './fields.ts';
import { derivedLabels, parseMetadata } from './metadata.ts';
import { parsePortSpec } from './parse-l4.ts';
import { EndpointSelector, NAMESPACE_LABELS_PREFIX, POD_NAMESPACE_KEY, scopeSubject } from './selector.ts';
import type { Peer, PeerRule, PolicyRules, Rule } from './types.ts';

/** A rule with no peers and no ports: puts the direction into default deny and allows nothing. */
const DENY_ALL: PeerRule = { peers: [], toPorts: [], icmps: [] };

export function parseKubernetesPolicy(f: Fields, o: Obj): PolicyRules {
  f.fields(o, '(document)', ['apiVersion', 'kind', 'metadata', 'spec', 'status']);
  const { name, namespace } = parseMetadata(f, o, true);
  const ns = namespace!;
  if (o.spec == null) f.fail('spec', 'required');
  const spec = f.fields(o.spec, 'spec', ['podSelector', 'policyTypes', 'ingress', 'egress']);
  if (spec.podSelector == null) f.fail('spec.podSelector', 'required (use {} to select every pod of the namespace)');
  const subject = scopeSubject(f.selector(spec.podSelector, 'spec.podSelector', 'k8s'), ns).selector;
  const types = f.optList(spec.policyTypes, 'spec.policyTypes')?.map((t, i) => {
    const s = f.string(t, `spec.policyTypes[${i}]`);
    if (s !== 'Ingress' && s !== 'Egress') f.fail(`spec.policyTypes[${i}]`, `unknown policy type ${JSON.stringify(s)} (expected Ingress or Egress)`);
    return s;
  });
  const ingress = f.optList(spec.ingress, 'spec.ingress')?.map((r, i) => parseRule(f, r, `spec.ingress[${i}]`, 'from', ns));
  const egress = f.optList(spec.egress, 'spec.egress')?.map((r, i) => parseRule(f, r, `spec.egress[${i}]`, 'to', ns));
  // Without policyTypes, Kubernetes implies Ingress always and Egress when egress rules exist.
  const hasIngress = types ? types.includes('Ingress') : true;
  const hasEgress = types ? types.includes('Egress') : (egress?.length ?? 0) > 0;
  const rule: Rule = { subject, enableDefaultDeny: {}, labels: derivedLabels('NetworkPolicy', ns, name) };
  if (hasIngress) rule.ingress = ingress?.length ? ingress : [DENY_ALL];
  if (hasEgress) rule.egress = egress?.length ? egress : [DENY_ALL];
  return { kind: 'NetworkPolicy', namespace: ns, name, rules: [rule], original: o, warnings: [] };
}

function parseRule(f: Fields, v: unknown, path: string, dir: 'from' | 'to', ns: string): PeerRule {
  const o = f.fields(v ?? {}, path, [dir, 'ports']);
  const list = f.optList(o[dir], `${path}.${dir}`) ?? [];
  // An empty or missing from/to matches every peer, inside the cluster or not.
  const peers: Peer[] = list.length === 0 ? [{ kind: 'entity', entity: 'all' }] : list.map((p, i) => parsePeer(f, p, `${path}.${dir}[${i}]`, ns));
  const ports = (f.optList(o.ports, `${path}.ports`) ?? []).map((p, i) => parsePortSpec(f, p, `${path}.ports[${i}]`, 'TCP', ['TCP', 'UDP', 'SCTP']));
  return { peers, toPorts: ports.length ? [{ ports }] : [], icmps: [] };
}

function parsePeer(f: Fields, v: unknown, path: string, ns: string): Peer {
  const o = f.fields(v, path, ['podSelector', 'namespaceSelector', 'ipBlock']);
  if (o.ipBlock != null) {
    if (o.podSelector != null || o.namespaceSelector != null) f.fail(`${path}.ipBlock`, 'ipBlock cannot be combined with podSelector or namespaceSelector');
    return { kind: 'cidr', ...f.cidrSet('cidr', o.ipBlock, `${path}.ipBlock`) };
  }
  const pods = o.podSelector != null ? f.selector(o.podSelector, `${path}.podSelector`, 'k8s') : undefined;
  if (o.namespaceSelector != null) {
    // Namespace labels appear on pods under Cilium's namespace-labels prefix; {} means "any namespace".
    const nsSel = f.selector(o.namespaceSelector, `${path}.namespaceSelector`, 'k8s');
    const reqs = nsSel.requirements.map((r) => ({ ...r, source: 'k8s', key: `${NAMESPACE_LABELS_PREFIX}.${r.key}` }));
    if (reqs.length === 0) reqs.push({ source: 'k8s', key: POD_NAMESPACE_KEY, op: 'Exists', values: [] });
    return { kind: 'endpoints', selector: new EndpointSelector([...reqs, ...(pods?.requirements ?? [])]) };
  }
  if (pods) return { kind: 'endpoints', selector: pods.withoutKey(POD_NAMESPACE_KEY).with({ source: 'k8s', key: POD_NAMESPACE_KEY, op: 'In', values: [ns] }) };
  return f.fail(path, 'a peer needs podSelector, namespaceSelector or ipBlock');
}
