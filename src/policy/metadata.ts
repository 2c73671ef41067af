// Object metadata and the labels Cilium derives from it for every rule of a policy.
import type { Fields, Obj } from './fields.ts';
import type { PolicyKind } from './types.ts';

/** Labels Cilium attaches to every rule of a policy object (shown as the entry's origin). */
export function derivedLabels(kind: PolicyKind, namespace: string | undefined, name: string): string[] {
  const out = [`k8s:io.cilium.k8s.policy.derived-from=${kind}`, `k8s:io.cilium.k8s.policy.name=${name}`];
  if (namespace !== undefined) out.push(`k8s:io.cilium.k8s.policy.namespace=${namespace}`);
  return out;
}

/** metadata.name (required) and metadata.namespace (default `default`, none for clusterwide kinds). */
export function parseMetadata(f: Fields, o: Obj, namespaced: boolean): { name: string; namespace?: string } {
  if (o.metadata === undefined) f.fail('metadata.name', 'required');
  const m = f.object(o.metadata, 'metadata');
  if (m.name === undefined || m.name === '') f.fail('metadata.name', 'required');
  const name = f.string(m.name, 'metadata.name');
  const ns = f.optString(m.namespace, 'metadata.namespace');
  return namespaced ? { name, namespace: ns || 'default' } : { name };
}
