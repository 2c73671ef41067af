// Label selectors (`-l app=x,tier!=db,env in (a,b),!canary`) and the metadata.name/namespace field selectors.
import type { KubeObject } from './backend.ts';
import { parseLabelSelector, requirementMatches, selectorTerms, SelectorError } from '../identity/label-selector.ts';

export { SelectorError };

export function parseFieldSelector(s: string): (o: KubeObject) => boolean {
  const reqs = selectorTerms(s).map((t) => {
    const m = /^([\w.]+)\s*(==|=|!=)\s*(.*)$/.exec(t);
    if (!m || !['metadata.name', 'metadata.namespace'].includes(m[1])) throw new SelectorError(`"${t.split(/[!=]/)[0]}" is not a known field selector: only "metadata.name", "metadata.namespace"`);
    const [, field, op, value] = m;
    const get = (o: KubeObject) => (field === 'metadata.name' ? o.metadata.name : o.metadata.namespace ?? '');
    return op === '!=' ? (o: KubeObject) => get(o) !== value : (o: KubeObject) => get(o) === value;
  });
  return (o) => reqs.every((r) => r(o));
}

export function selectObjects(objects: KubeObject[], labelSelector?: string, fieldSelector?: string): KubeObject[] {
  const labels = labelSelector ? parseLabelSelector(labelSelector) : [];
  const fields = fieldSelector ? parseFieldSelector(fieldSelector) : () => true;
  return objects.filter((o) => labels.every((r) => requirementMatches(r, o.metadata.labels ?? {})) && fields(o));
}
