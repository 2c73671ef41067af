// Endpoint selectors: Kubernetes label selectors over Cilium labels (keys may carry a source).
import { indexLabels, parseLabelKey, valuesOf, type LabelIndex } from './labels.ts';

export type SelectorOp = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
export const SELECTOR_OPS: readonly SelectorOp[] = ['In', 'NotIn', 'Exists', 'DoesNotExist'];

export interface Requirement {
  source: string;
  key: string;
  op: SelectorOp;
  values: string[];
}

export interface LabelSelectorSpec {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: string; values?: string[] }>;
}

export const POD_NAMESPACE_KEY = 'io.kubernetes.pod.namespace';
/** Namespace labels are mirrored onto pods under this prefix (Cilium's PodNamespaceMetaLabels). */
export const NAMESPACE_LABELS_PREFIX = 'io.cilium.k8s.namespace.labels';

function requirementString(r: Requirement): string {
  return `${r.source}:${r.key} ${r.op}${r.values.length ? ` (${[...r.values].sort().join(',')})` : ''}`;
}

function requirementMatches(r: Requirement, idx: LabelIndex): boolean {
  const have = valuesOf(idx, r.source, r.key);
  switch (r.op) {
    case 'In':
      return have.some((v) => r.values.includes(v));
    case 'NotIn':
      return !have.some((v) => r.values.includes(v));
    case 'Exists':
      return have.length > 0;
    case 'DoesNotExist':
      return have.length === 0;
  }
}

/** An immutable AND of requirements; no requirement selects every label set. */
export class EndpointSelector {
  readonly requirements: readonly Requirement[];
  /** Canonical text: equal selectors share one SelectorCache entry. */
  readonly key: string;

  constructor(requirements: readonly Requirement[]) {
    const strs = requirements.map(requirementString);
    const order = strs.map((_, i) => i).sort((a, b) => (strs[a] < strs[b] ? -1 : strs[a] > strs[b] ? 1 : 0));
    const seen = new Set<string>();
    const reqs: Requirement[] = [];
    for (const i of order) {
      if (seen.has(strs[i])) continue;
      seen.add(strs[i]);
      reqs.push(requirements[i]);
    }
    this.requirements = reqs;
    this.key = [...seen].join(' & ');
  }

  /** From matchLabels/matchExpressions; keys without a known source get `defaultSource`. Throws on a bad operator. */
  static fromSpec(spec: LabelSelectorSpec = {}, defaultSource = 'any'): EndpointSelector {
    const reqs: Requirement[] = [];
    for (const [k, v] of Object.entries(spec.matchLabels ?? {})) {
      const { source, key } = parseLabelKey(k, defaultSource);
      reqs.push({ source, key, op: 'In', values: [String(v ?? '')] });
    }
    for (const e of spec.matchExpressions ?? []) {
      if (!SELECTOR_OPS.includes(e.operator as SelectorOp)) throw new Error(`unknown selector operator ${e.operator}`);
      const { source, key } = parseLabelKey(e.key, defaultSource);
      reqs.push({ source, key, op: e.operator as SelectorOp, values: [...(e.values ?? [])] });
    }
    return new EndpointSelector(reqs);
  }

  isWildcard(): boolean {
    return this.requirements.length === 0;
  }

  /** Whether some requirement names `key` (under any source, or under `source` when given). */
  hasKey(key: string, source?: string): boolean {
    return this.requirements.some((r) => r.key === key && (source === undefined || r.source === source));
  }

  with(...reqs: Requirement[]): EndpointSelector {
    return new EndpointSelector([...this.requirements, ...reqs]);
  }

  withoutKey(key: string): EndpointSelector {
    return new EndpointSelector(this.requirements.filter((r) => r.key !== key));
  }

  matches(labels: readonly string[]): boolean {
    return this.matchesIndex(indexLabels(labels));
  }

  matchesIndex(idx: LabelIndex): boolean {
    return this.requirements.every((r) => requirementMatches(r, idx));
  }

  toString(): string {
    return this.key === '' ? '{}' : this.key;
  }
}

const namespaceIs = (ns: string): Requirement => ({ source: 'k8s', key: POD_NAMESPACE_KEY, op: 'In', values: [ns] });
const namespaceExists: Requirement = { source: 'k8s', key: POD_NAMESPACE_KEY, op: 'Exists', values: [] };

/**
 * Scope a policy's subject selector as Cilium does: a namespaced policy always applies in its own
 * namespace (a namespace named in the selector is replaced); a clusterwide one is left alone.
 * Returns the namespace the user named when it was overridden, for a warning.
 */
export function scopeSubject(sel: EndpointSelector, namespace: string | undefined): { selector: EndpointSelector; overridden?: string } {
  if (namespace === undefined) return { selector: sel };
  const named = sel.requirements.find((r) => r.key === POD_NAMESPACE_KEY && r.op === 'In' && !(r.values.length === 1 && r.values[0] === namespace));
  return { selector: sel.withoutKey(POD_NAMESPACE_KEY).with(namespaceIs(namespace)), overridden: named?.values.join(',') };
}

/**
 * Scope a peer selector (fromEndpoints/toEndpoints): unless it names the pod namespace (or
 * reserved:init, whose pods have no labels yet), a namespaced policy adds its namespace and a
 * clusterwide one requires that some namespace exists, so `{}` means "every pod", never world.
 */
export function scopePeer(sel: EndpointSelector, namespace: string | undefined): EndpointSelector {
  if (sel.hasKey(POD_NAMESPACE_KEY) || sel.hasKey('init', 'reserved')) return sel;
  return sel.with(namespace === undefined ? namespaceExists : namespaceIs(namespace));
}
