// Authoritative answers for the cluster domain, as CoreDNS's kubernetes plugin gives them.
import { isIPv4 } from 'node:net';
import { CLASS_IN, EDNS_UDP_SIZE, RCODE, TYPE, type Query, type ResponseSpec } from './wire.ts';

export interface Zone {
  /** Canonical zone name, e.g. 'cluster.local'. */
  domain: string;
  /** Canonical name (lower case, no trailing dot) → IPv4s; undefined = no such name, [] = name without A. */
  resolve: (fqdn: string) => string[] | undefined;
  ttl: number;
  negativeTtl: number;
  serial: number;
}

/** The response for a query whose canonical name `name` lies in the zone; `resolve` may throw (caller → SERVFAIL). */
export function answerLocal(q: Query, name: string, z: Zone): ResponseSpec {
  const base: ResponseSpec = {
    id: q.id, rd: q.rd, rcode: RCODE.NOERROR, aa: true,
    question: { wire: q.qnameWire, type: q.qtype, cls: q.qclass },
    ednsUdpSize: q.edns ? EDNS_UDP_SIZE : undefined,
  };
  // Only class IN (or ANY) has data here; CHAOS and friends are not ours to answer.
  if (q.qclass !== CLASS_IN && q.qclass !== TYPE.ANY) return { ...base, aa: false, rcode: RCODE.REFUSED };
  const soa = { zone: z.domain, ttl: z.negativeTtl, serial: z.serial };
  // The apex always exists (it owns the SOA); everything below it is up to resolve().
  const ips = name === z.domain ? [] : z.resolve(name)?.filter((ip) => isIPv4(ip));
  if (ips === undefined) return { ...base, rcode: RCODE.NXDOMAIN, soa };
  if (name === z.domain && q.qtype === TYPE.SOA) return { ...base, soa, soaInAnswer: true };
  if (q.qtype === TYPE.A && ips.length > 0) return { ...base, a: ips, ttl: z.ttl };
  return { ...base, soa }; // NODATA: AAAA, SRV, TXT... or a name with no address
}
