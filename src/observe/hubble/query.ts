// A GetFlows request from URL query parameters: the filter flags of `hubble observe` in their order
// (`not` negates the next one), plus number/last, first, follow, since, until, allowlist/denylist.
import { buildFilters, compileFlowFilters, FILTER_FLAGS, FilterError, type FlowFilter, type FlowFilters } from './filter.ts';

export interface FlowsRequest {
  filters: FlowFilters;
  /** The last N (or first N with `first`); undefined = every flow held. */
  number?: number;
  first: boolean;
  follow: boolean;
  since?: number;
  until?: number;
}

const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go's time.ParseDuration, in milliseconds; undefined when it is not a duration. */
export function parseDuration(s: string): number | undefined {
  const m = /^([-+]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$/.exec(s);
  if (!m) return s === '0' ? 0 : undefined;
  let total = 0;
  for (const part of s.replace(/^[-+]/, '').matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g)) total += Number(part[1]) * UNITS[part[2]];
  return m[1] === '-' ? -total : total;
}

/** hubtime.FromString: RFC 3339 (with or without fraction/zone) or a duration ago ("5m", "1h30m"). */
export function parseTime(s: string, now = Date.now()): number {
  const d = parseDuration(s);
  if (d !== undefined) return now - Math.abs(d);
  if (/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$/.test(s)) {
    const t = Date.parse(s.replace(' ', 'T'));
    if (!Number.isNaN(t)) return t;
  }
  throw new FilterError(`failed to parse the time "${s}": not RFC 3339 nor a duration (e.g. 5m, 1h30m)`);
}

const CONTROL = ['number', 'last', 'first', 'follow', 'since', 'until', 'allowlist', 'denylist'];

function count(name: string, v: string): number {
  if (!/^\d+$/.test(v)) throw new FilterError(`--${name} takes a number, not "${v}"`);
  return Number(v);
}

const truthy = (v: string) => v === '' || v === 'true' || v === '1';

/** Parses `?from-pod=xwing&not=&verdict=DROPPED&last=20&follow=true` (repeated names allowed). */
export function parseFlowsQuery(search: string | URLSearchParams, now = Date.now()): FlowsRequest {
  const params = typeof search === 'string' ? new URLSearchParams(search.startsWith('?') ? search.slice(1) : search) : search;
  const pairs: Array<[string, string]> = [];
  const extraWhite: FlowFilter[] = [];
  const extraBlack: FlowFilter[] = [];
  const req: Omit<FlowsRequest, 'filters'> = { first: false, follow: false };
  let last: number | undefined;
  let first: number | undefined;
  for (const [name, value] of params) {
    if ((FILTER_FLAGS as readonly string[]).includes(name)) {
      pairs.push([name, value]);
      continue;
    }
    if (!CONTROL.includes(name)) throw new FilterError(`unknown flows parameter "${name}"`);
    switch (name) {
      case 'number':
      case 'last':
        last = count('last', value);
        break;
      case 'first':
        if (truthy(value)) req.first = true;
        else if (value !== 'false') { first = count('first', value); req.first = true; }
        break;
      case 'follow':
        req.follow = truthy(value);
        break;
      case 'since':
        req.since = parseTime(value, now);
        break;
      case 'until':
        req.until = parseTime(value, now);
        break;
      case 'allowlist':
      case 'denylist': {
        let f: unknown;
        try {
          f = JSON.parse(value);
        } catch {
          throw new FilterError(`invalid --${name} flag: not JSON: ${value}`);
        }
        if (!f || typeof f !== 'object' || Array.isArray(f)) throw new FilterError(`invalid --${name} flag: a FlowFilter is a JSON object`);
        (name === 'allowlist' ? extraWhite : extraBlack).push(f as FlowFilter);
        break;
      }
    }
  }
  if (first !== undefined && last !== undefined) throw new FilterError('cannot set both --first and --last');
  if (req.first && req.follow) throw new FilterError('cannot set both --first and --follow');
  req.number = first ?? last;
  const filters = buildFilters(pairs);
  filters.whitelist.push(...extraWhite);
  filters.blacklist.push(...extraBlack);
  compileFlowFilters(filters); // bad allowlist/denylist values fail here, not per flow
  return { filters, ...req };
}
