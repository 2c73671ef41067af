// `rules: dns` of a policy entry, compiled once with the toFQDNs selector matcher (src/fqdn/pattern.ts,
// Cilium's matchpattern semantics: one matcher for the DNS proxy and toFQDNs).
import type { DnsRule } from '../../policy/types.ts';
import { compileSelector, selectorText } from '../../fqdn/pattern.ts';

export type DnsMatcher = (canonicalName: string) => boolean;

/** A matcher over canonical names (lower case, no trailing dot); no rules allows nothing. */
export function compileDnsRules(rules: readonly DnsRule[]): DnsMatcher {
  const selectors = [...new Set(rules.map((r) => selectorText(r)))];
  if (selectors.includes('*')) return () => true;
  const matchers = selectors.map(compileSelector);
  return (name) => {
    const fqdn = `${name}.`;
    return matchers.some((m) => m(fqdn));
  };
}
