// HTTP rules of an L7 policy, compiled once: method, path and host are extended regular
// expressions matched against the whole value; headers must be present (or carry a value);
// headerMatches may also fix a mismatching header instead of denying. `{}` allows everything.
import type { HttpRule } from '../../policy/types.ts';

export interface HeaderFix {
  action: 'ADD' | 'DELETE' | 'REPLACE' | 'LOG';
  name: string;
  value?: string;
}

interface CompiledRule {
  method?: RegExp;
  path?: RegExp;
  host?: RegExp;
  headers: Array<{ name: string; value?: string }>;
  matches: Array<{ name: string; value?: string; mismatch?: HeaderFix['action'] }>;
}

const anchored = (re: string) => new RegExp(`^(?:${re})$`);

export function compileRules(rules: HttpRule[]): CompiledRule[] {
  return rules.map((r) => ({
    method: r.method ? anchored(r.method) : undefined,
    path: r.path ? anchored(r.path) : undefined,
    host: r.host ? new RegExp(`^(?:${r.host})$`, 'i') : undefined,
    headers: (r.headers ?? []).map((h) => {
      const i = h.indexOf(':');
      return i < 0 ? { name: h.trim().toLowerCase() } : { name: h.slice(0, i).trim().toLowerCase(), value: h.slice(i + 1).trim() };
    }),
    matches: (r.headerMatches ?? []).map((m) => ({ name: m.name.toLowerCase(), value: m.value, mismatch: m.mismatch })),
  }));
}

export interface RequestView {
  method: string;
  path: string;
  host: string;
  header(name: string): string | undefined;
}

/** The fixes to apply when the request is allowed; undefined when no rule allows it. */
export function allowed(rules: CompiledRule[], req: RequestView): HeaderFix[] | undefined {
  for (const r of rules) {
    if (r.method && !r.method.test(req.method)) continue;
    if (r.path && !r.path.test(req.path)) continue;
    if (r.host && !r.host.test(req.host)) continue;
    if (r.headers.some((h) => (h.value === undefined ? req.header(h.name) === undefined : req.header(h.name) !== h.value))) continue;
    const fixes: HeaderFix[] = [];
    let ok = true;
    for (const m of r.matches) {
      const have = req.header(m.name);
      if (m.value === undefined ? have !== undefined : have === m.value) continue;
      if (!m.mismatch) {
        ok = false;
        break;
      }
      fixes.push({ action: m.mismatch, name: m.name, value: m.value });
    }
    if (ok) return fixes;
  }
  return undefined;
}
