// Hubble flow filters (flow.FlowFilter as JSON): `hubble-export-allowlist` / `-denylist`.
// Within a filter every set field must match; within a field any listed value may match. A flow
// passes when the allowlist is empty or any allow filter matches, and no deny filter matches.
import type { Flow, FlowEndpoint } from '../flow.ts';

export type FlowPredicate = (f: Flow) => boolean;

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

function strings(key: string, v: unknown): string[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new Error(`flow filter: ${key} must be a list of strings`);
  return v as string[];
}

function ipv4ToInt(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const o = m.slice(1).map(Number);
  if (o.some((x) => x > 255)) return undefined;
  return ((o[0] << 24) >>> 0) + (o[1] << 16) + (o[2] << 8) + o[3];
}

function ipMatcher(key: string, values: string[]): (ip: string | undefined) => boolean {
  const tests = values.map((v) => {
    const slash = v.indexOf('/');
    if (slash < 0) return (ip: string) => ip === v;
    const base = ipv4ToInt(v.slice(0, slash));
    const bits = Number(v.slice(slash + 1));
    if (base === undefined || !Number.isInteger(bits) || bits < 0 || bits > 32) throw new Error(`flow filter: ${key}: invalid CIDR ${v}`);
    const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    return (ip: string) => {
      const n = ipv4ToInt(ip);
      return n !== undefined && ((n & mask) >>> 0) === ((base & mask) >>> 0);
    };
  });
  return (ip) => ip !== undefined && tests.some((t) => t(ip));
}

/** "ns/prefix", "ns/" (whole namespace) or "prefix" (any namespace). */
function nameMatcher(values: string[]): (ns: string | undefined, name: string | undefined) => boolean {
  const pats = values.map((v) => {
    const slash = v.indexOf('/');
    return slash < 0 ? { ns: undefined, prefix: v } : { ns: v.slice(0, slash), prefix: v.slice(slash + 1) };
  });
  return (ns, name) => {
    if (!name && !ns) return false;
    return pats.some((p) => (p.ns === undefined || p.ns === (ns ?? '')) && (name ?? '').startsWith(p.prefix) && (p.prefix === '' || !!name));
  };
}

function globToRegExp(pattern: string): RegExp {
  return new RegExp(`^${pattern.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^.]*')}$`);
}

/** Label selector subset: "key=value", "key==value", "key!=value", "key", "!key", comma = AND. */
function labelMatcher(values: string[]): (labels: string[] | undefined) => boolean {
  const selectors = values.map((sel) => sel.split(',').map((r) => r.trim()).filter(Boolean).map((req) => {
    const m = /^(!?)([^=!]+?)(?:\s*(==|=|!=)\s*(.*))?$/.exec(req);
    if (!m) throw new Error(`flow filter: invalid label selector ${req}`);
    const [, not, rawKey, op, value] = m;
    return { not: not === '!', key: rawKey.trim(), op, value: value?.trim() };
  }));
  const lookup = (labels: string[], key: string): string | undefined => {
    // "k8s:app" matches that source only; "app" matches any source.
    for (const l of labels) {
      const eq = l.indexOf('=');
      const k = eq < 0 ? l : l.slice(0, eq);
      const v = eq < 0 ? '' : l.slice(eq + 1);
      if (k === key || (!key.includes(':') && k.slice(k.indexOf(':') + 1) === key)) return v;
    }
    return undefined;
  };
  return (labels) => selectors.some((reqs) => reqs.every((r) => {
    const v = lookup(labels ?? [], r.key);
    if (r.op === undefined) return r.not ? v === undefined : v !== undefined;
    if (r.op === '!=') return v !== r.value;
    return v === r.value;
  }));
}

function workloadMatcher(key: string, v: unknown): (ep: FlowEndpoint | undefined) => boolean {
  if (!Array.isArray(v)) throw new Error(`flow filter: ${key} must be a list of {name, kind}`);
  const ws = v as Array<{ name?: string; kind?: string }>;
  return (ep) => (ep?.workloads ?? []).some((w) => ws.some((f) => (!f.name || f.name === w.name) && (!f.kind || f.kind === w.kind)));
}

function l4Protocol(f: Flow): string[] {
  const l4 = (f.l4 ?? {}) as Record<string, unknown>;
  const out: string[] = [];
  if (l4.TCP) out.push('tcp');
  if (l4.UDP) out.push('udp');
  if (l4.ICMPv4) out.push('icmp', 'icmpv4');
  if (l4.ICMPv6) out.push('icmp', 'icmpv6');
  if (l4.SCTP) out.push('sctp');
  if (f.l7?.http) out.push('http');
  if (f.l7?.dns) out.push('dns');
  if ((f.l7 as { kafka?: unknown } | undefined)?.kafka) out.push('kafka');
  return out;
}

function ports(f: Flow, which: 'source_port' | 'destination_port'): number | undefined {
  const l4 = (f.l4 ?? {}) as Record<string, Record<string, number> | undefined>;
  return (l4.TCP ?? l4.UDP ?? l4.SCTP)?.[which];
}

function statusMatches(code: number | undefined, patterns: string[]): boolean {
  if (code === undefined || code === 0) return false;
  const s = String(code);
  return patterns.some((p) => (p.endsWith('+') ? s.startsWith(p.slice(0, -1)) : s === p));
}

/** Compiles one FlowFilter; unknown fields are an error (as Hubble's JSON decoding). */
export function compileFilter(filter: Record<string, unknown>): FlowPredicate {
  const checks: FlowPredicate[] = [];
  for (const [key, v] of Object.entries(filter)) {
    if (v === undefined || v === null || (Array.isArray(v) && v.length === 0)) continue;
    switch (key) {
      case 'uuid': { const s = new Set(strings(key, v)); checks.push((f) => s.has(f.uuid)); break; }
      case 'source_ip': { const m = ipMatcher(key, strings(key, v)); checks.push((f) => m(f.IP?.source)); break; }
      case 'destination_ip': { const m = ipMatcher(key, strings(key, v)); checks.push((f) => m(f.IP?.destination)); break; }
      case 'source_pod': { const m = nameMatcher(strings(key, v)); checks.push((f) => m(f.source?.namespace, f.source?.pod_name)); break; }
      case 'destination_pod': { const m = nameMatcher(strings(key, v)); checks.push((f) => m(f.destination?.namespace, f.destination?.pod_name)); break; }
      case 'source_service': { const m = nameMatcher(strings(key, v)); checks.push((f) => { const s = (f as { source_service?: { name: string; namespace: string } }).source_service; return m(s?.namespace, s?.name); }); break; }
      case 'destination_service': { const m = nameMatcher(strings(key, v)); checks.push((f) => m(f.destination_service?.namespace, f.destination_service?.name)); break; }
      case 'source_label': { const m = labelMatcher(strings(key, v)); checks.push((f) => m(f.source?.labels)); break; }
      case 'destination_label': { const m = labelMatcher(strings(key, v)); checks.push((f) => m(f.destination?.labels)); break; }
      case 'source_fqdn': { const rs = strings(key, v).map(globToRegExp); checks.push((f) => (f.source_names ?? []).some((n) => rs.some((r) => r.test(n)))); break; }
      case 'destination_fqdn': { const rs = strings(key, v).map(globToRegExp); checks.push((f) => (f.destination_names ?? []).some((n) => rs.some((r) => r.test(n)))); break; }
      case 'source_workload': { const m = workloadMatcher(key, v); checks.push((f) => m(f.source)); break; }
      case 'destination_workload': { const m = workloadMatcher(key, v); checks.push((f) => m(f.destination)); break; }
      case 'source_identity': { const s = new Set((v as unknown[]).map(Number)); checks.push((f) => s.has(f.source?.identity)); break; }
      case 'destination_identity': { const s = new Set((v as unknown[]).map(Number)); checks.push((f) => s.has(f.destination?.identity)); break; }
      case 'traffic_direction': { const s = new Set(strings(key, v).map((x) => x.toUpperCase())); checks.push((f) => s.has(f.traffic_direction ?? 'TRAFFIC_DIRECTION_UNKNOWN')); break; }
      case 'verdict': { const s = new Set(strings(key, v).map((x) => x.toUpperCase())); checks.push((f) => s.has(f.verdict)); break; }
      case 'event_type': {
        if (!Array.isArray(v)) throw new Error('flow filter: event_type must be a list of {type, match_sub_type, sub_type}');
        const ets = v as Array<{ type?: number; match_sub_type?: boolean; sub_type?: number }>;
        checks.push((f) => ets.some((e) => (e.type ?? 0) === f.event_type?.type && (!e.match_sub_type || (e.sub_type ?? 0) === (f.event_type?.sub_type ?? 0))));
        break;
      }
      case 'http_status_code': { const ps = strings(key, v); checks.push((f) => statusMatches(f.l7?.http?.code, ps)); break; }
      case 'http_method': { const s = new Set(strings(key, v).map((x) => x.toUpperCase())); checks.push((f) => !!f.l7?.http && s.has(f.l7.http.method.toUpperCase())); break; }
      case 'http_path': {
        const rs = strings(key, v).map((p) => new RegExp(p));
        checks.push((f) => {
          const url = f.l7?.http?.url;
          if (url === undefined) return false;
          let path = url;
          try { path = new URL(url, 'http://x').pathname; } catch { /* keep raw */ }
          return rs.some((r) => r.test(path));
        });
        break;
      }
      case 'http_url': { const rs = strings(key, v).map((p) => new RegExp(p)); checks.push((f) => f.l7?.http?.url !== undefined && rs.some((r) => r.test(f.l7!.http!.url))); break; }
      case 'protocol': { const s = new Set(strings(key, v).map((x) => x.toLowerCase())); checks.push((f) => l4Protocol(f).some((p) => s.has(p))); break; }
      case 'source_port': { const s = new Set(strings(key, v).map(Number)); checks.push((f) => { const p = ports(f, 'source_port'); return p !== undefined && s.has(p); }); break; }
      case 'destination_port': { const s = new Set(strings(key, v).map(Number)); checks.push((f) => { const p = ports(f, 'destination_port'); return p !== undefined && s.has(p); }); break; }
      case 'reply': { const s = (v as unknown[]).map(Boolean); checks.push((f) => f.is_reply !== undefined && s.includes(f.is_reply)); break; }
      case 'dns_query': { const rs = strings(key, v).map((p) => new RegExp(p)); checks.push((f) => !!f.l7?.dns && rs.some((r) => r.test(f.l7!.dns!.query))); break; }
      case 'tcp_flags': {
        if (!Array.isArray(v)) throw new Error('flow filter: tcp_flags must be a list of flag sets such as {"SYN":true}');
        const sets = v as Array<Record<string, boolean>>;
        checks.push((f) => {
          const fl = f.l4?.TCP?.flags;
          return !!fl && sets.some((set) => Object.entries(set).every(([k, want]) => !want || fl[k] === true));
        });
        break;
      }
      case 'node_name': {
        const rs = strings(key, v).map((p) => globToRegExp(p.includes('/') ? p.slice(p.indexOf('/') + 1) || '*' : p));
        checks.push((f) => rs.some((r) => r.test(f.node_name)));
        break;
      }
      case 'ip_version': { const s = new Set(strings(key, v).map((x) => x.toLowerCase())); checks.push((f) => !!f.IP && s.has(f.IP.ipVersion.toLowerCase())); break; }
      default:
        throw new Error(`flow filter: unknown field "${key}"`);
    }
  }
  return (f) => checks.every((c) => c(f));
}

export interface FilterSet {
  allow: FlowPredicate[];
  deny: FlowPredicate[];
}

export function compileFilters(allow: Array<Record<string, unknown>>, deny: Array<Record<string, unknown>>): FilterSet {
  return { allow: allow.map(compileFilter), deny: deny.map(compileFilter) };
}

/** filters.Apply: allowed by the allowlist (if any) and not denied. */
export function applyFilters(fs: FilterSet, f: Flow): boolean {
  if (fs.allow.length && !fs.allow.some((p) => p(f))) return false;
  return !fs.deny.some((p) => p(f));
}
