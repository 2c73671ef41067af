// ClusterDnsServer: what the CoreDNS pods run — cluster names answered locally, the rest forwarded upstream.
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { createServer, isIP, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { answerLocal, type Zone } from './local.ts';
import { canonical, encodeName, inZone } from './names.ts';
import { exchangeTcp, exchangeUdp, parseUpstream, readResolvConf, upstreamsFromResolvConf, upstreamText, type Upstream } from './upstream.ts';
import {
  buildResponse, EDNS_UDP_SIZE, inspectResponse, isTruncated, parseQuery, RCODE, rcodeName, rcodeOf, truncatedCopy,
  typeName, UDP_PLAIN_MAX, withId, type Query, type ResponseSpec,
} from './wire.ts';

export interface DnsQueryEvent {
  name: string; type: string; rcode: string; answers: string[];
  client: string; latencyMs: number; transport: Transport; forwarded: boolean;
}

/** The slice of pino the server uses. */
export interface DnsLogger { debug(obj: object, msg?: string): void; warn(obj: object, msg?: string): void }

export interface ClusterDnsOptions {
  /** Canonical names (lower case, no trailing dot) → IPv4s; undefined = NXDOMAIN, [] = exists without A. */
  resolve: (fqdn: string) => string[] | undefined;
  /** Called before a cluster name `resolve` does not know is answered NXDOMAIN (the names may be stale). */
  refresh?: () => Promise<void>;
  clusterDomain?: string;
  /** 'ip', 'ip:port' or '[v6]:port'; default: resolv.conf nameservers that are not loopback or us. */
  upstreams?: string[];
  ttl?: number;
  /** TTL of negative answers (SOA minimum), kept small as CoreDNS does. */
  negativeTtl?: number;
  upstreamTimeoutMs?: number;
  logger?: DnsLogger;
  onQuery?: (e: DnsQueryEvent) => void;
}

export interface DnsStats {
  queries: number; dropped: number; local: number; forwarded: number; upstreamFailures: number; truncated: number;
  /** Responses sent, by rcode name. */
  responses: Record<string, number>;
}

type Transport = 'udp' | 'tcp';

const TCP_IDLE_MS = 30_000;

export class ClusterDnsServer {
  readonly stats: DnsStats = { queries: 0, dropped: 0, local: 0, forwarded: 0, upstreamFailures: 0, truncated: 0, responses: {} };
  private readonly zone: Zone;
  private upstreams: Upstream[] | undefined;
  private readonly timeoutMs: number;
  private udp?: UdpSocket;
  private tcp?: Server;
  private readonly conns = new Set<Socket>();
  private abort = new AbortController();
  private boundPort = 0;

  constructor(private readonly opts: ClusterDnsOptions) {
    const domain = canonical(opts.clusterDomain ?? 'cluster.local');
    encodeName(domain); // fail fast on a bad domain rather than on the first negative answer
    this.zone = { domain, resolve: opts.resolve, ttl: opts.ttl ?? 30, negativeTtl: opts.negativeTtl ?? 5, serial: Math.floor(Date.now() / 1000) >>> 0 };
    this.timeoutMs = opts.upstreamTimeoutMs ?? 2000;
    if (opts.upstreams) {
      this.upstreams = opts.upstreams.map((s) => {
        const up = parseUpstream(s);
        if (!up) throw new Error(`invalid DNS upstream: ${s}`);
        return up;
      });
    }
  }

  /** The bound port (useful after listening on port 0). */
  get port(): number { return this.boundPort; }

  async listen(address: string, port = 53): Promise<void> {
    if (isIP(address) === 0) throw new Error(`listen address must be an IP: ${address}`);
    this.abort = new AbortController();
    this.upstreams ??= upstreamsFromResolvConf(readResolvConf(), [address]);
    // Port 0: take the kernel's UDP pick and try TCP on it; retry if TCP is taken there.
    for (let attempt = 0; ; attempt++) {
      const udp = await this.bindUdp(address, port);
      const bound = udp.address().port;
      try {
        this.tcp = await this.bindTcp(address, bound);
        this.udp = udp;
        this.boundPort = bound;
        return;
      } catch (err) {
        udp.close();
        if (port !== 0 || attempt >= 8) throw err;
      }
    }
  }

  async close(): Promise<void> {
    this.abort.abort();
    const udp = this.udp, tcp = this.tcp;
    this.udp = this.tcp = undefined;
    for (const c of this.conns) c.destroy();
    this.conns.clear();
    await Promise.all([
      udp && new Promise<void>((r) => udp.close(() => r())),
      tcp && new Promise<void>((r) => tcp.close(() => r())),
    ]);
  }

  /** Answers one message (undefined = drop); never rejects. Public so a DNS proxy can reuse it. */
  async answer(msg: Uint8Array, client: string, transport: Transport): Promise<Uint8Array | undefined> {
    const started = performance.now();
    this.stats.queries++;
    const q = parseQuery(msg);
    if (!q.ok) {
      if (q.action === 'drop') { this.stats.dropped++; return undefined; }
      const rcode = q.action === 'formerr' ? RCODE.FORMERR : RCODE.NOTIMP;
      return this.done(buildResponse({ id: q.id, rd: q.rd, opcode: q.opcode, rcode }), '', '', client, transport, false, started);
    }
    const name = canonical(q.qname);
    const local = inZone(name, this.zone.domain);
    let reply: Uint8Array;
    try {
      if (local && this.opts.refresh && this.zone.resolve(name) === undefined) await this.opts.refresh();
      reply = local ? this.answerLocal(q, name, transport) : await this.forward(q, msg, name, transport);
    } catch (err) {
      this.opts.logger?.warn({ err, name }, 'DNS query failed');
      reply = buildResponse(this.servfail(q));
    }
    return this.done(reply, name, typeName(q.qtype), client, transport, !local, started);
  }

  private answerLocal(q: Query, name: string, transport: Transport): Uint8Array {
    this.stats.local++;
    const spec = answerLocal(q, name, this.zone);
    const reply = buildResponse(spec);
    const limit = this.udpLimit(q, transport);
    if (reply.length <= limit) return reply;
    // Keep the A records that fit (16 bytes each), flag TC so the client retries over TCP.
    this.stats.truncated++;
    const a = spec.a ?? [];
    const fit = Math.max(0, Math.floor((limit - (reply.length - a.length * 16)) / 16));
    return buildResponse({ ...spec, a: a.slice(0, fit), tc: true });
  }

  private async forward(q: Query, msg: Uint8Array, name: string, transport: Transport): Promise<Uint8Array> {
    this.upstreams ??= upstreamsFromResolvConf(readResolvConf(), []);
    for (const up of this.upstreams) {
      // A fresh random id per exchange: replies to other queries (or spoofs) do not match.
      const id = (Math.random() * 0x10000) >>> 0;
      const out = withId(msg, id);
      const accept = (r: Uint8Array): boolean => {
        const s = inspectResponse(r);
        return !!s && s.id === id && canonical(s.qname) === name && s.qtype === q.qtype && s.qclass === q.qclass;
      };
      const signal = this.abort.signal;
      let r = await exchangeUdp(up, out, this.timeoutMs, signal, accept);
      // A TCP client can take the full answer: fetch it over TCP instead of relaying TC.
      if (r && isTruncated(r) && transport === 'tcp') r = (await exchangeTcp(up, out, this.timeoutMs, signal, accept)) ?? r;
      if (!r) {
        this.opts.logger?.debug({ upstream: upstreamText(up), name }, 'DNS upstream did not answer');
        continue;
      }
      this.stats.forwarded++;
      const reply = withId(r, q.id);
      const limit = this.udpLimit(q, transport);
      if (reply.length <= limit) return reply;
      this.stats.truncated++;
      return truncatedCopy(reply, inspectResponse(reply)?.questionEnd ?? q.questionEnd);
    }
    this.stats.upstreamFailures++;
    return buildResponse(this.servfail(q));
  }

  private servfail(q: Query): ResponseSpec {
    return { id: q.id, rd: q.rd, rcode: RCODE.SERVFAIL, question: { wire: q.qnameWire, type: q.qtype, cls: q.qclass }, ednsUdpSize: q.edns ? EDNS_UDP_SIZE : undefined };
  }

  /** Largest reply for this query: 512 without EDNS, the client's size (capped at ours) with it. */
  private udpLimit(q: Query, transport: Transport): number {
    if (transport === 'tcp') return 0xffff;
    return q.edns ? Math.max(UDP_PLAIN_MAX, Math.min(q.edns.udpSize, EDNS_UDP_SIZE)) : UDP_PLAIN_MAX;
  }

  private done(reply: Uint8Array, name: string, type: string, client: string, transport: Transport, forwarded: boolean, started: number): Uint8Array {
    const rcode = rcodeName(rcodeOf(reply));
    this.stats.responses[rcode] = (this.stats.responses[rcode] ?? 0) + 1;
    if (this.opts.onQuery) {
      try {
        const answers = inspectResponse(reply)?.answers ?? [];
        this.opts.onQuery({ name, type, rcode, answers, client, latencyMs: performance.now() - started, transport, forwarded });
      } catch (err) {
        this.opts.logger?.warn({ err }, 'DNS onQuery callback threw');
      }
    }
    return reply;
  }

  private bindUdp(address: string, port: number): Promise<UdpSocket> {
    return new Promise((resolve, reject) => {
      const sock = createSocket(isIP(address) === 6 ? 'udp6' : 'udp4');
      sock.once('error', reject);
      sock.bind({ address, port }, () => {
        sock.off('error', reject);
        sock.on('error', (err) => this.opts.logger?.warn({ err }, 'DNS UDP socket error'));
        sock.on('message', (m, rinfo) => this.onDatagram(sock, m, rinfo));
        resolve(sock);
      });
    });
  }

  private onDatagram(sock: UdpSocket, m: Buffer, rinfo: RemoteInfo): void {
    void this.answer(new Uint8Array(m), rinfo.address, 'udp').then((reply) => {
      if (!reply || this.udp !== sock) return;
      sock.send(reply, rinfo.port, rinfo.address, (err) => { if (err) this.opts.logger?.debug({ err }, 'DNS UDP send failed'); });
    });
  }

  private bindTcp(address: string, port: number): Promise<Server> {
    return new Promise((resolve, reject) => {
      const srv = createServer((c) => this.onConnection(c));
      srv.once('error', reject);
      srv.listen({ host: address, port, exclusive: true }, () => {
        srv.off('error', reject);
        srv.on('error', (err) => this.opts.logger?.warn({ err }, 'DNS TCP server error'));
        resolve(srv);
      });
    });
  }

  /** RFC 7766: 2-byte length framing, several (pipelined) queries per connection, replies as they finish. */
  private onConnection(c: Socket): void {
    this.conns.add(c);
    const client = c.remoteAddress ?? '';
    let buf = Buffer.alloc(0);
    c.setTimeout(TCP_IDLE_MS, () => c.destroy());
    c.on('error', () => c.destroy());
    c.on('close', () => this.conns.delete(c));
    c.on('data', (d) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (len === 0) { c.destroy(); return; } // nothing sensible follows an empty frame
        if (buf.length < 2 + len) break;
        const msg = new Uint8Array(buf.subarray(2, 2 + len));
        buf = buf.subarray(2 + len);
        void this.answer(msg, client, 'tcp').then((reply) => {
          if (!reply || c.destroyed) return;
          const frame = Buffer.allocUnsafe(2 + reply.length);
          frame.writeUInt16BE(reply.length, 0);
          frame.set(reply, 2);
          c.write(frame);
        });
      }
    });
  }
}
