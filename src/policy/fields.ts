// Field readers for validation: each names the path of what it rejects and maps it to a line.
import { PolicyError } from './errors.ts';
import { normalizeCidr, parsePrefix, prefixContains } from './cidr.ts';
import { EndpointSelector, SELECTOR_OPS } from './selector.ts';

export interface SourceInfo {
  document?: number;
  lines?: (path: string) => number | undefined;
}

export type Obj = Record<string, unknown>;

export class Fields {
  constructor(private readonly source: SourceInfo = {}) {}

  fail(path: string, reason: string): never {
    throw new PolicyError(path, reason, { line: this.source.lines?.(path), document: this.source.document });
  }

  object(v: unknown, path: string): Obj {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) this.fail(path, `expected an object, got ${describe(v)}`);
    return v as Obj;
  }

  /** An object whose fields are all in `allowed`; `unsupported` names fields that exist in Cilium but not here. */
  fields(v: unknown, path: string, allowed: readonly string[], unsupported: readonly string[] = []): Obj {
    const o = this.object(v, path);
    for (const k of Object.keys(o)) {
      if (allowed.includes(k)) continue;
      if (unsupported.includes(k)) this.fail(join(path, k), `${k} is not supported by ciliary`);
      this.fail(join(path, k), `unknown field (expected one of: ${allowed.join(', ')})`);
    }
    return o;
  }

  list(v: unknown, path: string): unknown[] {
    if (!Array.isArray(v)) this.fail(path, `expected a list, got ${describe(v)}`);
    return v;
  }

  optList(v: unknown, path: string): unknown[] | undefined {
    return v === undefined || v === null ? undefined : this.list(v, path);
  }

  string(v: unknown, path: string): string {
    if (typeof v !== 'string') this.fail(path, `expected a string, got ${describe(v)}`);
    return v;
  }

  optString(v: unknown, path: string): string | undefined {
    return v === undefined || v === null ? undefined : this.string(v, path);
  }

  optBool(v: unknown, path: string): boolean | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') this.fail(path, `expected true or false, got ${describe(v)}`);
    return v;
  }

  stringList(v: unknown, path: string): string[] {
    return this.list(v, path).map((s, i) => this.string(s, `${path}[${i}]`));
  }

  /** A regular expression as HTTP rules use them. */
  regex(v: unknown, path: string): string | undefined {
    const s = this.optString(v, path);
    if (s === undefined) return undefined;
    try {
      new RegExp(s);
    } catch (e) {
      this.fail(path, `invalid regular expression ${JSON.stringify(s)}: ${(e as Error).message}`);
    }
    return s;
  }

  /** matchLabels/matchExpressions → EndpointSelector (keys without a source get `defaultSource`). */
  selector(v: unknown, path: string, defaultSource = 'any'): EndpointSelector {
    const o = this.fields(v ?? {}, path, ['matchLabels', 'matchExpressions']);
    const matchLabels: Record<string, string> = {};
    if (o.matchLabels !== undefined && o.matchLabels !== null) {
      for (const [k, val] of Object.entries(this.object(o.matchLabels, join(path, 'matchLabels')))) {
        const p = `${path}.matchLabels[${JSON.stringify(k)}]`;
        if (typeof val !== 'string' && typeof val !== 'number' && typeof val !== 'boolean' && val !== null) this.fail(p, `expected a string value, got ${describe(val)}`);
        matchLabels[k] = val === null ? '' : String(val);
      }
    }
    const exprs = (this.optList(o.matchExpressions, join(path, 'matchExpressions')) ?? []).map((e, i) => {
      const p = `${path}.matchExpressions[${i}]`;
      const eo = this.fields(e, p, ['key', 'operator', 'values']);
      const key = this.string(eo.key, `${p}.key`);
      const operator = this.string(eo.operator, `${p}.operator`);
      if (!SELECTOR_OPS.includes(operator as never)) this.fail(`${p}.operator`, `unknown operator ${JSON.stringify(operator)} (expected In, NotIn, Exists or DoesNotExist)`);
      const values = eo.values === undefined || eo.values === null ? [] : this.stringList(eo.values, `${p}.values`);
      if ((operator === 'In' || operator === 'NotIn') && values.length === 0) this.fail(`${p}.values`, `operator ${operator} needs at least one value`);
      if ((operator === 'Exists' || operator === 'DoesNotExist') && values.length > 0) this.fail(`${p}.values`, `operator ${operator} takes no values`);
      return { key, operator, values };
    });
    return EndpointSelector.fromSpec({ matchLabels, matchExpressions: exprs }, defaultSource);
  }

  /** A CIDR (or bare address), normalised. */
  cidr(v: unknown, path: string): string {
    const s = this.string(v, path);
    if (s.includes(':')) this.fail(path, `IPv6 CIDR ${s} is not supported by ciliary`);
    const n = normalizeCidr(s);
    if (n === undefined) this.fail(path, `invalid CIDR ${JSON.stringify(s)}`);
    return n;
  }

  /** {cidr, except[]}: every except must lie inside cidr. */
  cidrSet(cidrKey: string, v: unknown, path: string, unsupported: readonly string[] = []): { cidr: string; except: string[] } {
    const o = this.fields(v, path, [cidrKey, 'except'], unsupported);
    if (o[cidrKey] === undefined) this.fail(join(path, cidrKey), 'required');
    const cidr = this.cidr(o[cidrKey], join(path, cidrKey));
    const except = (this.optList(o.except, join(path, 'except')) ?? []).map((e, i) => {
      const p = `${path}.except[${i}]`;
      const ex = this.cidr(e, p);
      if (!prefixContains(parsePrefix(cidr)!, parsePrefix(ex)!)) this.fail(p, `${ex} is not inside ${cidr}`);
      return ex;
    });
    return { cidr, except };
  }
}

export function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${JSON.stringify(v)}`;
}
