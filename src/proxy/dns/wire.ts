// DNS messages (RFC 1035, EDNS RFC 6891): accessor functions over bytes, query parsing, response building.
import { encodeName, readName } from './names.ts';
import { parseIPv4 } from '../../wire/ip-text.ts';

export const HEADER_LEN = 12;
export const TYPE = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, OPT: 41, ANY: 255 } as const;
export const CLASS_IN = 1;
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export const RCODE_NAMES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];
/** UDP limit without EDNS, and the payload size we advertise with it (DNS flag day 2020). */
export const UDP_PLAIN_MAX = 512;
export const EDNS_UDP_SIZE = 1232;

const TYPE_NAMES = new Map<number, string>(Object.entries(TYPE).map(([k, v]) => [v, k]));
export const typeName = (t: number): string => TYPE_NAMES.get(t) ?? `TYPE${t}`;
export const rcodeName = (r: number): string => RCODE_NAMES[r] ?? `RCODE${r}`;

// Header accessors; callers check length >= HEADER_LEN first.
const u16 = (b: Uint8Array, o: number): number => (b[o] << 8) | b[o + 1];
const u32 = (b: Uint8Array, o: number): number => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
export const msgId = (b: Uint8Array): number => u16(b, 0);
export const isResponse = (b: Uint8Array): boolean => (b[2] & 0x80) !== 0;
export const opcodeOf = (b: Uint8Array): number => (b[2] >> 3) & 0x0f;
export const isTruncated = (b: Uint8Array): boolean => (b[2] & 0x02) !== 0;
export const rdOf = (b: Uint8Array): boolean => (b[2] & 0x01) !== 0;
export const rcodeOf = (b: Uint8Array): number => b[3] & 0x0f;
export const qdCount = (b: Uint8Array): number => u16(b, 4);
export const anCount = (b: Uint8Array): number => u16(b, 6);
export const nsCount = (b: Uint8Array): number => u16(b, 8);
export const arCount = (b: Uint8Array): number => u16(b, 10);

/** A copy of `b` carrying another message id (forwarding swaps ids both ways). */
export function withId(b: Uint8Array, id: number): Uint8Array {
  const c = Uint8Array.from(b);
  c[0] = id >> 8; c[1] = id & 0xff;
  return c;
}

export interface Edns { udpSize: number; version: number; dnssecOk: boolean }

export interface Query {
  ok: true;
  id: number; rd: boolean; opcode: number;
  qname: string; qnameWire: Uint8Array; qtype: number; qclass: number;
  /** Offset past the question: header + question is what a truncated reply keeps. */
  questionEnd: number;
  edns?: Edns;
}
/** drop: not even a header to answer to (or a response); the others carry what a reply must echo. */
export type QueryError =
  | { ok: false; action: 'drop' }
  | { ok: false; action: 'formerr' | 'notimp'; id: number; rd: boolean; opcode: number };

/** Parses a query; never throws: malformed input gives FORMERR (or drop when there is no header). */
export function parseQuery(b: Uint8Array): Query | QueryError {
  if (b.length < HEADER_LEN || isResponse(b)) return { ok: false, action: 'drop' };
  const id = msgId(b), rd = rdOf(b), opcode = opcodeOf(b);
  if (opcode !== 0) return { ok: false, action: 'notimp', id, rd, opcode };
  const formerr = { ok: false, action: 'formerr', id, rd, opcode } as const;
  if (qdCount(b) !== 1) return formerr;
  const q = readName(b, HEADER_LEN);
  if (!q || q.end + 4 > b.length) return formerr;
  const qtype = u16(b, q.end), qclass = u16(b, q.end + 2);
  const questionEnd = q.end + 4;
  // Queries carry no answers; skip whatever is there, then look for the OPT record.
  let off = questionEnd;
  let edns: Edns | undefined;
  const records = anCount(b) + nsCount(b) + arCount(b);
  const firstAdditional = anCount(b) + nsCount(b);
  for (let i = 0; i < records; i++) {
    const rr = readRecordHeader(b, off);
    if (!rr) return formerr;
    if (rr.type === TYPE.OPT) {
      // One OPT, owned by the root, in the additional section (RFC 6891 6.1.1).
      if (i < firstAdditional || edns || rr.nameLen !== 1) return formerr;
      edns = { udpSize: rr.cls, version: (rr.ttl >>> 16) & 0xff, dnssecOk: (rr.ttl & 0x8000) !== 0 };
    }
    off = rr.end;
  }
  return { ok: true, id, rd, opcode, qname: q.name, qnameWire: q.wire, qtype, qclass, questionEnd, edns };
}

interface RecordHeader { type: number; cls: number; ttl: number; rdata: number; rdlen: number; end: number; nameLen: number }

/** Reads one resource record's fixed part; undefined if it runs past the message. */
function readRecordHeader(b: Uint8Array, off: number): RecordHeader | undefined {
  const name = readName(b, off);
  if (!name || name.end + 10 > b.length) return undefined;
  const o = name.end;
  const rdlen = u16(b, o + 8);
  if (o + 10 + rdlen > b.length) return undefined;
  return { type: u16(b, o), cls: u16(b, o + 2), ttl: u32(b, o + 4), rdata: o + 10, rdlen, end: o + 10 + rdlen, nameLen: o - off };
}

export interface ResponseSummary { id: number; rcode: number; tc: boolean; qname: string; qtype: number; qclass: number; questionEnd: number; answers: string[] }

/** Question and answer values (A, AAAA, CNAME) of a response, to validate upstream replies and report them. */
export function inspectResponse(b: Uint8Array): ResponseSummary | undefined {
  if (b.length < HEADER_LEN || !isResponse(b) || qdCount(b) !== 1) return undefined;
  const q = readName(b, HEADER_LEN);
  if (!q || q.end + 4 > b.length) return undefined;
  const answers: string[] = [];
  let off = q.end + 4;
  for (let i = 0; i < anCount(b); i++) {
    const rr = readRecordHeader(b, off);
    if (!rr) break; // A truncated answer section still tells us the rcode and what came through.
    if (rr.type === TYPE.A && rr.rdlen === 4) answers.push(Array.from(b.subarray(rr.rdata, rr.end)).join('.'));
    else if (rr.type === TYPE.AAAA && rr.rdlen === 16) answers.push(ipv6Text(b.subarray(rr.rdata, rr.end)));
    else if (rr.type === TYPE.CNAME) { const t = readName(b, rr.rdata); if (t) answers.push(t.name + '.'); }
    off = rr.end;
  }
  return { id: msgId(b), rcode: rcodeOf(b), tc: isTruncated(b), qname: q.name, qtype: u16(b, q.end), qclass: u16(b, q.end + 2), questionEnd: q.end + 4, answers };
}

export interface AnswerDetails { rcode: number; ips: string[]; cnames: string[]; rrtypes: number[]; ttl: number }

/** What Cilium's proxy records of a response: addresses, CNAME targets, record types and the lowest TTL (2^32-1 with none). */
export function answerDetails(b: Uint8Array): AnswerDetails | undefined {
  if (b.length < HEADER_LEN || !isResponse(b) || qdCount(b) !== 1) return undefined;
  const q = readName(b, HEADER_LEN);
  if (!q || q.end + 4 > b.length) return undefined;
  const d: AnswerDetails = { rcode: rcodeOf(b), ips: [], cnames: [], rrtypes: [], ttl: 0xffffffff };
  let off = q.end + 4;
  for (let i = 0; i < anCount(b); i++) {
    const rr = readRecordHeader(b, off);
    if (!rr) break;
    if (rr.type === TYPE.A && rr.rdlen === 4) d.ips.push(Array.from(b.subarray(rr.rdata, rr.end)).join('.'));
    else if (rr.type === TYPE.AAAA && rr.rdlen === 16) d.ips.push(ipv6Text(b.subarray(rr.rdata, rr.end)));
    else if (rr.type === TYPE.CNAME) { const t = readName(b, rr.rdata); if (t) d.cnames.push(t.name + '.'); }
    if (rr.type === TYPE.A || rr.type === TYPE.AAAA || rr.type === TYPE.CNAME) d.ttl = Math.min(d.ttl, rr.ttl);
    d.rrtypes.push(rr.type);
    off = rr.end;
  }
  return d;
}

function ipv6Text(b: Uint8Array): string {
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push(u16(b, i));
  // RFC 5952: the longest run (2+) of zero groups becomes '::'.
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j === i ? i + 1 : j;
  }
  const hex = (xs: number[]): string => xs.map((x) => x.toString(16)).join(':');
  return best < 0 ? hex(g) : `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

/** A header+question copy of a reply with TC set and no records: what a too-big UDP reply becomes. */
export function truncatedCopy(reply: Uint8Array, questionEnd: number): Uint8Array {
  const c = reply.slice(0, Math.min(questionEnd, reply.length));
  c[2] |= 0x02;
  c[6] = c[7] = c[8] = c[9] = c[10] = c[11] = 0;
  return c;
}

export interface Soa { zone: string; ttl: number; serial: number }

export interface ResponseSpec {
  id: number; rd: boolean; opcode?: number; rcode: number;
  aa?: boolean; tc?: boolean;
  question?: { wire: Uint8Array; type: number; cls: number };
  /** IPv4 A records owned by the question name. */
  a?: string[]; ttl?: number;
  /** SOA of the zone: in authority for negative answers, in answer for an SOA query. */
  soa?: Soa; soaInAnswer?: boolean;
  /** Adds an OPT record advertising this UDP size (only when the query had EDNS). */
  ednsUdpSize?: number;
}

/** Builds a response message; A owners point at the question name (offset 12) to stay small. */
export function buildResponse(s: ResponseSpec): Uint8Array {
  const w = new Writer();
  const a = s.question ? (s.a ?? []) : [];
  const soaRecords = s.soa ? 1 : 0;
  w.u16(s.id);
  w.u8(0x80 | ((s.opcode ?? 0) << 3) | (s.aa ? 0x04 : 0) | (s.tc ? 0x02 : 0) | (s.rd ? 0x01 : 0));
  w.u8(0x80 | (s.rcode & 0x0f)); // RA: we recurse for names outside the cluster domain.
  w.u16(s.question ? 1 : 0);
  w.u16(a.length + (s.soaInAnswer ? soaRecords : 0));
  w.u16(s.soaInAnswer ? 0 : soaRecords);
  w.u16(s.ednsUdpSize ? 1 : 0);
  if (s.question) { w.bytes(s.question.wire); w.u16(s.question.type); w.u16(s.question.cls); }
  for (const ip of a) {
    w.u16(0xc000 | HEADER_LEN); w.u16(TYPE.A); w.u16(CLASS_IN); w.u32(s.ttl ?? 0); w.u16(4);
    w.u32(parseIPv4(ip));
  }
  if (s.soa) writeSoa(w, s.soa);
  if (s.ednsUdpSize) { w.u8(0); w.u16(TYPE.OPT); w.u16(s.ednsUdpSize); w.u32(0); w.u16(0); }
  return w.done();
}

// CoreDNS's kubernetes plugin SOA: ns.dns.<zone> hostmaster.<zone>, minimum = negative TTL.
function writeSoa(w: Writer, soa: Soa): void {
  const mname = encodeName(soa.zone ? `ns.dns.${soa.zone}` : 'ns.dns');
  const rname = encodeName(soa.zone ? `hostmaster.${soa.zone}` : 'hostmaster');
  w.bytes(encodeName(soa.zone)); w.u16(TYPE.SOA); w.u16(CLASS_IN); w.u32(soa.ttl);
  w.u16(mname.length + rname.length + 20);
  w.bytes(mname); w.bytes(rname);
  w.u32(soa.serial); w.u32(7200); w.u32(1800); w.u32(86400); w.u32(soa.ttl);
}

/** Append-only byte buffer that grows by doubling. */
class Writer {
  private buf = new Uint8Array(512);
  private n = 0;
  private room(k: number): void {
    if (this.n + k <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.n + k));
    next.set(this.buf.subarray(0, this.n));
    this.buf = next;
  }
  u8(v: number): void { this.room(1); this.buf[this.n++] = v & 0xff; }
  u16(v: number): void { this.room(2); this.buf[this.n++] = (v >> 8) & 0xff; this.buf[this.n++] = v & 0xff; }
  u32(v: number): void { this.u16((v >>> 16) & 0xffff); this.u16(v & 0xffff); }
  bytes(b: Uint8Array): void { this.room(b.length); this.buf.set(b, this.n); this.n += b.length; }
  done(): Uint8Array { return this.buf.slice(0, this.n); }
}

/** A standard query (RD set), optionally with an OPT record: for forwarders, probes and tests. */
export function buildQuery(name: string, qtype: number, opts: { id?: number; edns?: number; qclass?: number } = {}): Uint8Array {
  const w = new Writer();
  w.u16(opts.id ?? 0); w.u16(0x0100); w.u16(1); w.u16(0); w.u16(0); w.u16(opts.edns ? 1 : 0);
  w.bytes(encodeName(name)); w.u16(qtype); w.u16(opts.qclass ?? CLASS_IN);
  if (opts.edns) { w.u8(0); w.u16(TYPE.OPT); w.u16(opts.edns); w.u32(0); w.u16(0); }
  return w.done();
}
