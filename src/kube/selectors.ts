// Label selectors (`-l app=x,tier!=db,env in (a,b),!canary`) and the metadata.name/namespace field selectors.
import type { KubeObject } from './backend.ts';

type Requirement = (labels: Record<string, string>) => boolean;

export class SelectorError extends Error {}

/** Splits at commas outside parentheses. */
function terms(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur.trim()) out.push(cur);
  return out.map((t) => t.trim()).filter(Boolean);
}

export function parseLabelSelector(s: string): Requirement[] {
  return terms(s).map((t): Requirement => {
    let m: RegExpExecArray | null;
    if ((m = /^([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(t))) {
      const [, key, op, list] = m;
      const values = list.split(',').map((v) => v.trim());
      return op === 'in' ? (l) => key in l && values.includes(l[key]) : (l) => !(key in l) || !values.includes(l[key]);
    }
    if ((m = /^([^\s!=]+)\s*(==|=|!=)\s*([^\s,]*)$/.exec(t))) {
      const [, key, op, value] = m;
      return op === '!=' ? (l) => l[key] !== value : (l) => l[key] === value;
    }
    if ((m = /^!\s*([^\s!=]+)$/.exec(t))) return (l) => !(m![1] in l);
    if (/^[^\s!=(),]+$/.test(t)) return (l) => t in l;
    throw new SelectorError(`unable to parse requirement: found '${t}', expected: in, notin, =, ==, !=, gt, lt`);
  });
}

export function parseFieldSelector(s: string): (o: KubeObject) => boolean {
  const reqs = terms(s).map((t) => {
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
  return objects.filter((o) => labels.every((r) => r(o.metadata.labels ?? {})) && fields(o));
}
