// The DNS proxy for one redirect (a policy entry with `rules: dns`): UDP and TCP on the router IP and
// its proxy port. Each query's original destination (the DNS server the service chose) comes from
// cilium_proxy4; a query no rule allows is answered REFUSED, as Cilium's proxy answers it; the others
// go on to that server from an upstream socket the datapath presents as the client pod, and every
// answer passes through the response hooks (toFQDNs) before it goes back to the pod.
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { DnsRule } from '../../policy/types.ts';
import type { ProxyRedirects } from '../../dataplane/lib/proxy.ts';
import { formatIPv4, parseIPv4 } from '../../wire/ip-text.ts';
import { IPPROTO_TCP, IPPROTO_UDP } from '../../wire/proto.ts';
import type { UpstreamPorts } from '../http/upstream-ports.ts';
import { canonical } from './names.ts';
import { compileDnsRules, type DnsMatcher } from './rules.ts';
import { answerDetails, buildResponse, EDNS_UDP_SIZE, msgId, parseQuery, RCODE, typeName, type AnswerDetails, type Query } from './wire.ts';
import type { DnsResponseHooks } from './hooks.ts';

/** A DNS access-log record (Cilium's LogRecordDNS), for monitor, Hubble and metrics. */
export interface DnsL7Event {
  type: 'request' | 'response';
  verdict: 'Forwarded' | 'Denied' | 'Error';
  dns: { query: string; qtypes: string[]; ips?: string[]; ttl?: number; cnames?: string[]; rcode?: number; rrtypes?: string[] };
  transport: 'UDP' | 'TCP';
  latencyMs?: number;
  client: { ip: string; port: number };
  server: { ip: string; port: number };
  /** The endpoint whose policy redirected the query. */
  endpoint: number;
  proxyPort: number;
}

export interface DnsListenerDeps {
  routerIP: string;
  redirects: ProxyRedirects;
  upstreamPorts: UpstreamPorts;
  onEvent: (e: DnsL7Event) => void;
  hooks: DnsResponseHooks;
  identityOf: (endpointId: number) => number;
  log: Logger;
}

interface Flow {
  client: { ip: string; port: number };
  server: { ip: string; port: number };
  endpoint: number;
  transport: 'UDP' | 'TCP';
}

interface Pending { q: Query; name: string; started: number; timer: NodeJS.Timeout }

const QUERY_TIMEOUT_MS = 5000;
/** A client socket's upstream stays this long after its last answer (A and AAAA come in pairs). */
const UDP_IDLE_MS = 2000;

/** One upstream socket per client socket, so A and AAAA sent together from one port both come back. */
interface UdpSession { sock: UdpSocket; port: number; pending: Map<number, Pending>; idle?: NodeJS.Timeout }

export class DnsProxyListener {
  private matcher: DnsMatcher;
  private udp?: UdpSocket;
  private tcp?: Server;
  private readonly sessions = new Map<string, UdpSession>();
  private readonly conns = new Set<Socket>();

  constructor(readonly port: number, rules: DnsRule[], private readonly d: DnsListenerDeps) {
    this.matcher = compileDnsRules(rules);
  }

  setRules(rules: DnsRule[]): void {
    this.matcher = compileDnsRules(rules);
  }

  async listen(): Promise<void> {
    const udp = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind({ address: this.d.routerIP, port: this.port }, () => { udp.off('error', reject); resolve(); });
    });
    udp.on('error', (err) => this.d.log.warn({ err: err.message, port: this.port }, 'DNS proxy UDP socket error'));
    udp.on('message', (m, r) => this.onDatagram(m, r));
    this.udp = udp;
    const tcp = createServer((c) => this.onConnection(c));
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen({ host: this.d.routerIP, port: this.port }, () => { tcp.off('error', reject); resolve(); });
    });
    this.tcp = tcp;
  }

  close(): void {
    try { this.udp?.close(); } catch { /* not bound */ }
    this.tcp?.close();
    for (const c of this.conns) c.destroy();
    for (const key of [...this.sessions.keys()]) this.endSession(key);
  }

  /** The query's verdict: the request record goes out either way; a denied one gets REFUSED back. */
  private admit(msg: Uint8Array, f: Flow): { q: Query; name: string } | Uint8Array | undefined {
    const q = parseQuery(msg);
    if (!q.ok) {
      // As the server answers garbage: FORMERR/NOTIMP when there is a header to answer, else nothing.
      this.d.log.debug({ client: f.client.ip, action: q.action }, 'DNS proxy: malformed query');
      return q.action === 'drop' ? undefined : buildResponse({ id: q.id, rd: q.rd, opcode: q.opcode, rcode: q.action === 'formerr' ? RCODE.FORMERR : RCODE.NOTIMP });
    }
    const name = canonical(q.qname);
    const allowed = this.matcher(name);
    this.event(f, 'request', allowed ? 'Forwarded' : 'Denied', { query: `${name}.`, qtypes: [typeName(q.qtype)] });
    if (allowed) return { q, name };
    return buildResponse({ id: q.id, rd: q.rd, rcode: RCODE.REFUSED, question: { wire: q.qnameWire, type: q.qtype, cls: q.qclass }, ednsUdpSize: q.edns ? EDNS_UDP_SIZE : undefined });
  }

  private event(f: Flow, type: DnsL7Event['type'], verdict: DnsL7Event['verdict'], dns: DnsL7Event['dns'], latencyMs?: number): void {
    this.d.onEvent({ type, verdict, dns, transport: f.transport, client: f.client, server: f.server, endpoint: f.endpoint, proxyPort: this.port, ...(latencyMs !== undefined ? { latencyMs } : {}) });
  }

  /** A server's answer to a pending query: recorded, then the hooks; resolves when the pod may have it. */
  private answered(f: Flow, p: Pending, d: AnswerDetails): Promise<void> {
    clearTimeout(p.timer);
    const query = `${p.name}.`;
    const qtype = typeName(p.q.qtype);
    this.event(f, 'response', 'Forwarded', {
      query, qtypes: [qtype], ips: d.ips, ttl: d.ttl, cnames: d.cnames, rcode: d.rcode, rrtypes: d.rrtypes.map(typeName),
    }, performance.now() - p.started);
    return this.d.hooks.emit({ endpointId: f.endpoint, sourceIdentity: this.d.identityOf(f.endpoint), name: query, qtype, ips: d.ips, ttl: d.ttl, rcode: d.rcode });
  }

  // ---- UDP ---------------------------------------------------------------------------------------

  private onDatagram(m: Buffer, r: RemoteInfo): void {
    const orig = this.d.redirects.originalDestination(parseIPv4(r.address), r.port, IPPROTO_UDP);
    if (!orig) {
      this.d.log.warn({ client: r.address, clientPort: r.port }, 'DNS proxy: datagram without a redirect entry');
      return;
    }
    const f: Flow = { client: { ip: r.address, port: r.port }, server: { ip: formatIPv4(orig.addr), port: orig.port }, endpoint: orig.endpoint, transport: 'UDP' };
    const verdict = this.admit(new Uint8Array(m), f);
    if (verdict instanceof Uint8Array) return this.toClient(verdict, f);
    if (!verdict) return;
    const key = `${r.address}:${r.port}`;
    const s = this.sessions.get(key) ?? this.openSession(key, f);
    if (!s) return this.toClient(servfail(verdict.q), f);
    clearTimeout(s.idle);
    const p: Pending = { ...verdict, started: performance.now(), timer: setTimeout(() => this.expire(key, s, p), QUERY_TIMEOUT_MS) };
    s.pending.set(verdict.q.id, p);
    s.sock.send(m, f.server.port, f.server.ip, (err) => { if (err) this.d.log.debug({ err: err.message }, 'DNS proxy: upstream send failed'); });
  }

  private toClient(reply: Uint8Array, f: Flow): void {
    this.udp?.send(reply, f.client.port, f.client.ip, (err) => { if (err) this.d.log.debug({ err: err.message }, 'DNS proxy: reply to the pod failed'); });
  }

  private openSession(key: string, f: Flow): UdpSession | undefined {
    const port = this.takePort();
    if (port === undefined) return undefined;
    if (!this.d.redirects.registerUpstream(parseIPv4(f.client.ip), f.client.port, port, IPPROTO_UDP)) {
      this.d.upstreamPorts.give(port);
      return undefined;
    }
    const sock = createSocket('udp4');
    const s: UdpSession = { sock, port, pending: new Map() };
    sock.on('error', (err) => { this.d.log.debug({ err: err.message }, 'DNS proxy: upstream socket error'); this.endSession(key); });
    sock.on('message', (reply, from) => {
      if (from.address !== f.server.ip || from.port !== f.server.port) return; // only the server it asked
      const p = s.pending.get(msgId(reply));
      const d = p && answerDetails(new Uint8Array(reply));
      if (!p || !d) return;
      s.pending.delete(p.q.id);
      void this.answered(f, p, d).then(() => {
        this.toClient(reply, f);
        this.idleLater(key, s);
      });
    });
    sock.bind({ address: this.d.routerIP, port });
    this.sessions.set(key, s);
    return s;
  }

  /** An upstream port, or undefined (logged) when every one is in use. */
  private takePort(): number | undefined {
    try {
      return this.d.upstreamPorts.take();
    } catch (err) {
      this.d.log.warn({ err: (err as Error).message }, 'DNS proxy: no upstream port; answering SERVFAIL');
      return undefined;
    }
  }

  /** No answer in time: the pod's resolver retries on its own; the record says so. */
  private expire(key: string, s: UdpSession, p: Pending): void {
    if (s.pending.get(p.q.id) !== p) return;
    s.pending.delete(p.q.id);
    this.d.log.debug({ name: p.name }, 'DNS proxy: upstream did not answer');
    this.idleLater(key, s);
  }

  private idleLater(key: string, s: UdpSession): void {
    if (s.pending.size > 0) return;
    clearTimeout(s.idle);
    s.idle = setTimeout(() => this.endSession(key), UDP_IDLE_MS);
  }

  private endSession(key: string): void {
    const s = this.sessions.get(key);
    if (!s) return;
    this.sessions.delete(key);
    clearTimeout(s.idle);
    for (const p of s.pending.values()) clearTimeout(p.timer);
    try { s.sock.close(); } catch { /* already closed */ }
    this.d.redirects.releaseUpstream(s.port);
    this.d.upstreamPorts.give(s.port);
  }

  // ---- TCP (RFC 7766 framing; one upstream connection per client connection) --------------------

  private onConnection(c: Socket): void {
    const orig = this.d.redirects.originalDestination(parseIPv4(c.remoteAddress ?? ''), c.remotePort ?? 0, IPPROTO_TCP);
    if (!orig) {
      this.d.log.warn({ client: c.remoteAddress, clientPort: c.remotePort }, 'DNS proxy: connection without a redirect entry');
      c.destroy();
      return;
    }
    this.conns.add(c);
    const f: Flow = { client: { ip: c.remoteAddress ?? '', port: c.remotePort ?? 0 }, server: { ip: formatIPv4(orig.addr), port: orig.port }, endpoint: orig.endpoint, transport: 'TCP' };
    const pending = new Map<number, Pending>();
    let up: Socket | undefined;
    let upPort = 0;
    const end = () => {
      c.destroy();
      up?.destroy();
      for (const p of pending.values()) clearTimeout(p.timer);
    };
    c.on('close', () => { this.conns.delete(c); end(); });
    c.on('error', end);
    c.setTimeout(30_000, end);
    const upstream = (): Socket | undefined => {
      if (up) return up;
      const port = this.takePort();
      if (port === undefined) return undefined;
      upPort = port;
      if (!this.d.redirects.registerUpstream(parseIPv4(f.client.ip), f.client.port, upPort, IPPROTO_TCP)) {
        this.d.upstreamPorts.give(upPort);
        end();
        return undefined;
      }
      const sock = (up = connect({ host: f.server.ip, port: f.server.port, localAddress: this.d.routerIP, localPort: upPort }));
      sock.on('error', end);
      sock.on('close', () => {
        this.d.redirects.releaseUpstream(upPort);
        this.d.upstreamPorts.give(upPort);
        end();
      });
      readFrames(sock, (reply) => {
        const p = pending.get(msgId(reply));
        const d = p && answerDetails(reply);
        if (!p || !d) return;
        pending.delete(p.q.id);
        void this.answered(f, p, d).then(() => { if (!c.destroyed) c.write(frame(reply)); });
      });
      return sock;
    };
    readFrames(c, (msg) => {
      const verdict = this.admit(msg, f);
      if (verdict instanceof Uint8Array) return void c.write(frame(verdict));
      if (!verdict) return;
      const sock = upstream();
      if (!sock) return void (c.destroyed || c.write(frame(servfail(verdict.q))));
      pending.set(verdict.q.id, { ...verdict, started: performance.now(), timer: setTimeout(() => pending.delete(verdict.q.id), QUERY_TIMEOUT_MS) });
      sock.write(frame(msg));
    });
  }
}

function servfail(q: Query): Uint8Array {
  return buildResponse({ id: q.id, rd: q.rd, rcode: RCODE.SERVFAIL, question: { wire: q.qnameWire, type: q.qtype, cls: q.qclass }, ednsUdpSize: q.edns ? EDNS_UDP_SIZE : undefined });
}

/** Calls `onMessage` for every length-prefixed message on the stream; an empty frame ends it. */
function readFrames(s: Socket, onMessage: (m: Uint8Array) => void): void {
  let buf: Buffer = Buffer.alloc(0);
  s.on('data', (d: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    while (buf.length >= 2) {
      const len = buf.readUInt16BE(0);
      if (len === 0) return void s.destroy();
      if (buf.length < 2 + len) break;
      onMessage(new Uint8Array(buf.subarray(2, 2 + len)));
      buf = buf.subarray(2 + len);
    }
  });
}

function frame(m: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(2 + m.length);
  out.writeUInt16BE(m.length, 0);
  out.set(m, 2);
  return out;
}
