// Label selector text as `kubectl -l` and `hubble observe --label` take it: "k=v", "k==v", "k!=v",
// "k", "!k", "k in (a,b)", "k notin (a)", joined by commas outside parentheses.

export interface SelectorRequirement {
  key: string;
  op: 'exists' | '!exists' | '=' | '!=' | 'in' | 'notin';
  values: string[];
}

export class SelectorError extends Error {}

/** Splits at commas outside parentheses; empty terms are dropped. */
export function selectorTerms(s: string): string[] {
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
  out.push(cur);
  return out.map((t) => t.trim()).filter(Boolean);
}

export function parseLabelSelector(s: string): SelectorRequirement[] {
  return selectorTerms(s).map((t): SelectorRequirement => {
    let m = /^([^\s!=(),]+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(t);
    if (m) return { key: m[1], op: m[2] as 'in' | 'notin', values: m[3].split(',').map((v) => v.trim()) };
    m = /^([^\s!=(),]+)\s*(==|=|!=)\s*([^\s,()]*)$/.exec(t);
    if (m) return { key: m[1], op: m[2] === '!=' ? '!=' : '=', values: [m[3]] };
    m = /^!\s*([^\s!=(),]+)$/.exec(t);
    if (m) return { key: m[1], op: '!exists', values: [] };
    if (/^[^\s!=(),]+$/.test(t)) return { key: t, op: 'exists', values: [] };
    throw new SelectorError(`unable to parse requirement: found '${t}', expected: in, notin, =, ==, !=`);
  });
}

/** Whether a key → value label map satisfies one requirement (Kubernetes' labels.Selector semantics). */
export function requirementMatches(r: SelectorRequirement, labels: Record<string, string>): boolean {
  const has = Object.prototype.hasOwnProperty.call(labels, r.key);
  switch (r.op) {
    case 'exists': return has;
    case '!exists': return !has;
    case '=': return has && labels[r.key] === r.values[0];
    case '!=': return !has || labels[r.key] !== r.values[0];
    case 'in': return has && r.values.includes(labels[r.key]);
    case 'notin': return !has || !r.values.includes(labels[r.key]);
  }
}
