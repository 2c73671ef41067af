// toFQDNs selectors as Cilium reads them: names lower-cased and fully qualified (final dot), `*`
// standing for any DNS characters within one label, a leading `**.` for one or more labels.

/** Characters of a DNS name Cilium accepts in matchName. */
const NAME_CHARS = /^[-a-z0-9_.]+$/;
/** matchPattern adds the wildcard. */
const PATTERN_CHARS = /^[-a-z0-9_.*]+$/;
const LABEL_CHARS = '[-a-z0-9_]';

export interface FqdnSelectorSpec {
  matchName?: string;
  matchPattern?: string;
}

/** Lower case with the final dot: `Cilium.IO` → `cilium.io.`. */
export function toFqdn(name: string): string {
  const n = name.trim().toLowerCase();
  return n.endsWith('.') ? n : `${n}.`;
}

/** Why `name` is not a valid matchName, or undefined. */
export function matchNameError(name: string): string | undefined {
  const n = name.trim().toLowerCase();
  if (n === '') return 'must not be empty';
  if (!NAME_CHARS.test(n)) return `${JSON.stringify(name)} is not a DNS name (allowed: letters, digits, '-', '_', '.')`;
  if (/\.\./.test(toFqdn(n)) || n === '.') return `${JSON.stringify(name)} has an empty label`;
  return undefined;
}

/** Why `pattern` is not a valid matchPattern, or undefined. */
export function matchPatternError(pattern: string): string | undefined {
  const p = pattern.trim().toLowerCase();
  if (p === '') return 'must not be empty';
  if (!PATTERN_CHARS.test(p)) return `${JSON.stringify(pattern)} is not a DNS pattern (allowed: letters, digits, '-', '_', '.', '*')`;
  const rest = p.startsWith('**.') ? p.slice(3) : p;
  if (rest.includes('**')) return `${JSON.stringify(pattern)}: '**' is only allowed as the leading label '**.'`;
  if (rest !== '*' && /\.\./.test(toFqdn(rest))) return `${JSON.stringify(pattern)} has an empty label`;
  return undefined;
}

/** The canonical text of a selector: the key of its `fqdn:` identity label. */
export function selectorText(s: FqdnSelectorSpec): string {
  if (s.matchName !== undefined) return toFqdn(s.matchName);
  const p = s.matchPattern!.trim().toLowerCase();
  return p === '*' ? '*' : toFqdn(p);
}

/** A matcher for a canonical selector text (from selectorText). */
export function compileSelector(text: string): (fqdn: string) => boolean {
  if (text === '*') return (n) => n.length > 0;
  if (!text.includes('*')) return (n) => n === text;
  const multi = text.startsWith('**.');
  const body = (multi ? text.slice(3) : text)
    .split('')
    .map((c) => (c === '*' ? `${LABEL_CHARS}*` : c === '.' ? '[.]' : c))
    .join('');
  const re = new RegExp(`^${multi ? `(?:${LABEL_CHARS}+[.])+` : ''}${body}$`);
  return (n) => re.test(n);
}
