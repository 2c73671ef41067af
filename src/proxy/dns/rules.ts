// `rules: dns` of a policy entry, compiled once: matchName is the exact name (case-insensitive);
// matchPattern is a name whose `*` stands for any run of label characters within one label, and
// a lone `*` allows every name, as Cilium's matchpattern package reads them.
import type { DnsRule } from '../../policy/types.ts';

export type DnsMatcher = (canonicalName: string) => boolean;

const escape = (s: string) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&');

function patternRegex(pattern: string): RegExp {
  const p = pattern.toLowerCase().replace(/\.$/, '');
  return new RegExp(`^${p.split('*').map(escape).join('[-a-z0-9_]*')}$`);
}

/** A matcher over canonical names (lower case, no trailing dot); no rules allows nothing. */
export function compileDnsRules(rules: readonly DnsRule[]): DnsMatcher {
  const names = new Set<string>();
  const patterns: RegExp[] = [];
  for (const r of rules) {
    if (r.matchPattern === '*') return () => true;
    if (r.matchName !== undefined) names.add(r.matchName.toLowerCase().replace(/\.$/, ''));
    if (r.matchPattern !== undefined) patterns.push(patternRegex(r.matchPattern));
  }
  return (name) => names.has(name) || patterns.some((re) => re.test(name));
}
