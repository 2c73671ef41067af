// Ports, protocols, ICMP types and L7 rules, shared by the Cilium and Kubernetes parsers.
import type { Fields } from './fields.ts';
import { matchNameError, matchPatternError } from '../fqdn/pattern.ts';
import type { DnsRule, HttpRule, IcmpField, PortRule, PortSpec, Protocol } from './types.ts';

const PROTOCOLS: readonly Protocol[] = ['TCP', 'UDP', 'SCTP', 'ANY'];
/** IANA service name, as Kubernetes validates a named container port. */
const PORT_NAME = /^(?=.*[a-z])[a-z0-9](?:[a-z0-9-]{0,13}[a-z0-9])?$/;

export function parseProtocol(f: Fields, v: unknown, path: string, dflt: Protocol, allowed: readonly Protocol[] = PROTOCOLS): Protocol {
  if (v === undefined || v === null) return dflt;
  const s = f.string(v, path);
  const up = s.toUpperCase();
  if (allowed.includes(up as Protocol)) return up as Protocol;
  const hint = up === 'ICMP' || up === 'ICMPV6' ? '; use icmps for ICMP' : '';
  return f.fail(path, `unknown protocol ${JSON.stringify(s)} (expected ${allowed.join(', ')})${hint}`);
}

function portNumber(f: Fields, v: unknown, path: string, what: string): number {
  const n = typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n)) return f.fail(path, `${what} ${JSON.stringify(v)} is not an integer`);
  if (n < 0 || n > 65535) return f.fail(path, `${n} is out of range 0-65535`);
  return n;
}

/** {port, endPort, protocol}: port is a number, a numeric string or a named port; missing = all ports. */
export function parsePortSpec(f: Fields, v: unknown, path: string, dfltProto: Protocol, allowed: readonly Protocol[] = PROTOCOLS): PortSpec {
  const o = f.fields(v, path, ['port', 'endPort', 'protocol']);
  const protocol = parseProtocol(f, o.protocol, `${path}.protocol`, dfltProto, allowed);
  let port = 0;
  let name: string | undefined;
  if (o.port !== undefined && o.port !== null) {
    if (typeof o.port === 'string' && !/^\s*\d+\s*$/.test(o.port)) {
      if (!PORT_NAME.test(o.port) || o.port.includes('--')) f.fail(`${path}.port`, `${JSON.stringify(o.port)} is neither a port number nor a valid port name`);
      name = o.port;
    } else port = portNumber(f, o.port, `${path}.port`, 'port');
  }
  const spec: PortSpec = { port, protocol, ...(name ? { name } : {}) };
  if (o.endPort !== undefined && o.endPort !== null) {
    const end = portNumber(f, o.endPort, `${path}.endPort`, 'endPort');
    if (name) f.fail(`${path}.endPort`, 'endPort cannot be used with a named port');
    if (port === 0) f.fail(`${path}.endPort`, 'endPort needs a port');
    if (end < port) f.fail(`${path}.endPort`, `endPort ${end} is less than port ${port}`);
    if (end > port) spec.endPort = end;
  }
  return spec;
}

function parseHttpRule(f: Fields, v: unknown, path: string): HttpRule {
  const o = f.fields(v ?? {}, path, ['method', 'path', 'host', 'headers', 'headerMatches']);
  const rule: HttpRule = {};
  const method = f.regex(o.method, `${path}.method`);
  const p = f.regex(o.path, `${path}.path`);
  const host = f.regex(o.host, `${path}.host`);
  if (method !== undefined) rule.method = method;
  if (p !== undefined) rule.path = p;
  if (host !== undefined) rule.host = host;
  if (o.headers !== undefined && o.headers !== null) rule.headers = f.stringList(o.headers, `${path}.headers`);
  if (o.headerMatches !== undefined && o.headerMatches !== null) {
    rule.headerMatches = f.list(o.headerMatches, `${path}.headerMatches`).map((h, i) => {
      const hp = `${path}.headerMatches[${i}]`;
      const ho = f.fields(h, hp, ['name', 'value', 'mismatch'], ['secret']);
      const name = f.string(ho.name, `${hp}.name`);
      const value = f.optString(ho.value, `${hp}.value`);
      const mismatch = f.optString(ho.mismatch, `${hp}.mismatch`);
      if (mismatch !== undefined && !['LOG', 'ADD', 'DELETE', 'REPLACE'].includes(mismatch)) f.fail(`${hp}.mismatch`, `unknown mismatch action ${JSON.stringify(mismatch)} (expected LOG, ADD, DELETE or REPLACE)`);
      return { name, ...(value !== undefined ? { value } : {}), ...(mismatch ? { mismatch: mismatch as 'LOG' } : {}) };
    });
  }
  return rule;
}

function parseDnsRule(f: Fields, v: unknown, path: string): DnsRule {
  const o = f.fields(v ?? {}, path, ['matchName', 'matchPattern']);
  const matchName = f.optString(o.matchName, `${path}.matchName`);
  const matchPattern = f.optString(o.matchPattern, `${path}.matchPattern`);
  if (matchName === undefined && matchPattern === undefined) f.fail(path, 'needs matchName or matchPattern');
  if (matchName !== undefined && matchPattern !== undefined) f.fail(path, 'only one of matchName or matchPattern is allowed');
  // The toFQDNs selector's checks: the DNS proxy matches with the same matcher.
  const err = matchName !== undefined ? matchNameError(matchName) : matchPatternError(matchPattern!);
  if (err) f.fail(`${path}.${matchName !== undefined ? 'matchName' : 'matchPattern'}`, err);
  return { ...(matchName !== undefined ? { matchName } : {}), ...(matchPattern !== undefined ? { matchPattern } : {}) };
}

/** toPorts[i]: ports plus optional L7 rules (refused in deny rules). */
export function parsePortRule(f: Fields, v: unknown, path: string, deny: boolean): PortRule {
  const o = f.fields(v, path, ['ports', 'rules'], ['serverNames', 'terminatingTLS', 'originatingTLS', 'listener']);
  const ports = (f.optList(o.ports, `${path}.ports`) ?? []).map((p, i) => parsePortSpec(f, p, `${path}.ports[${i}]`, 'ANY'));
  const rule: PortRule = { ports };
  if (o.rules === undefined || o.rules === null) return rule;
  if (deny) f.fail(`${path}.rules`, 'L7 rules are not allowed in ingressDeny/egressDeny');
  const r = f.fields(o.rules, `${path}.rules`, ['http', 'dns'], ['kafka', 'l7proto', 'l7']);
  if (r.http !== undefined && r.dns !== undefined) f.fail(`${path}.rules`, 'http and dns rules cannot be mixed on one port rule');
  if (r.http !== undefined && r.http !== null) {
    for (const [i, p] of ports.entries()) {
      if (p.protocol !== 'TCP' && p.protocol !== 'ANY') f.fail(`${path}.ports[${i}].protocol`, `HTTP rules need protocol TCP, not ${p.protocol}`);
    }
    rule.http = f.list(r.http, `${path}.rules.http`).map((h, i) => parseHttpRule(f, h, `${path}.rules.http[${i}]`));
  }
  if (r.dns !== undefined && r.dns !== null) {
    for (const [i, p] of ports.entries()) {
      if (p.protocol === 'SCTP') f.fail(`${path}.ports[${i}].protocol`, 'DNS rules need protocol UDP, TCP or ANY, not SCTP');
    }
    rule.dns = f.list(r.dns, `${path}.rules.dns`).map((d, i) => parseDnsRule(f, d, `${path}.rules.dns[${i}]`));
  }
  return rule;
}

const ICMP4_TYPES: Record<string, number> = {
  EchoReply: 0, DestinationUnreachable: 3, Redirect: 5, Echo: 8, EchoRequest: 8, RouterAdvertisement: 9, RouterSelection: 10,
  TimeExceeded: 11, ParameterProblem: 12, Timestamp: 13, TimestampReply: 14, Photuris: 40, ExtendedEchoRequest: 42, ExtendedEchoReply: 43,
};
const ICMP6_TYPES: Record<string, number> = {
  DestinationUnreachable: 1, PacketTooBig: 2, TimeExceeded: 3, ParameterProblem: 4, EchoRequest: 128, EchoReply: 129,
  MulticastListenerQuery: 130, RouterSolicitation: 133, RouterAdvertisement: 134, NeighborSolicitation: 135, NeighborAdvertisement: 136,
};

/** icmps[i] = {fields: [{type, family}]}: type is 0-255 or a name such as EchoRequest. */
export function parseIcmpRule(f: Fields, v: unknown, path: string): IcmpField[] {
  const o = f.fields(v, path, ['fields']);
  return (f.optList(o.fields, `${path}.fields`) ?? []).map((fv, i) => {
    const p = `${path}.fields[${i}]`;
    const fo = f.fields(fv, p, ['type', 'family']);
    const family = f.optString(fo.family, `${p}.family`) ?? 'IPv4';
    if (family !== 'IPv4' && family !== 'IPv6') f.fail(`${p}.family`, `unknown family ${JSON.stringify(family)} (expected IPv4 or IPv6)`);
    const names = family === 'IPv4' ? ICMP4_TYPES : ICMP6_TYPES;
    let type: number;
    if (typeof fo.type === 'string' && !/^\d+$/.test(fo.type)) {
      if (!(fo.type in names)) f.fail(`${p}.type`, `unknown ${family} ICMP type ${JSON.stringify(fo.type)}`);
      type = names[fo.type];
    } else {
      const n = typeof fo.type === 'string' ? Number(fo.type) : fo.type;
      if (typeof n !== 'number' || !Number.isInteger(n)) f.fail(`${p}.type`, fo.type === undefined ? 'required' : `ICMP type ${JSON.stringify(fo.type)} is not an integer`);
      if (n < 0 || n > 255) f.fail(`${p}.type`, `${n} is out of range 0-255`);
      type = n;
    }
    return { family, type };
  });
}
