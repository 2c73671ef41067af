// The exporter's flow filters (`hubble-export-allowlist` / `-denylist`): JSON flow.FlowFilter lists
// matched by Hubble's one filter engine.
export { applyFilters, compileFilterLists as compileFilters, type CompiledFilters as FilterSet } from '../hubble/filter-match.ts';

/** Parses Cilium's flag value: a JSON array of filters, or filter objects separated by commas/newlines. */
export function parseFilterList(s: string, key = 'filter'): Array<Record<string, unknown>> {
  const t = s.trim();
  if (t === '') return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(t.startsWith('[') ? t : `[${t.replace(/}\s*\n\s*{/g, '},{')}]`);
  } catch (e) {
    throw new Error(`${key}: not a JSON flow filter list: ${(e as Error).message}`);
  }
  if (!Array.isArray(parsed) || parsed.some((x) => x === null || typeof x !== 'object' || Array.isArray(x))) {
    throw new Error(`${key}: expected flow filter objects such as {"verdict":["DROPPED"]}`);
  }
  return parsed as Array<Record<string, unknown>>;
}

