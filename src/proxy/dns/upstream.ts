// Upstream resolvers: address parsing, defaults from resolv.conf, one-shot UDP/TCP exchanges.
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { connect, isIP } from 'node:net';

export interface Upstream { host: string; port: number; family: 4 | 6 }

/** 'ip', 'ip:port', '[v6]' or '[v6]:port'; undefined if it is not an IP literal. */
export function parseUpstream(s: string): Upstream | undefined {
  const t = s.trim();
  let host = t, port = 53;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(t);
  const v4port = /^([\d.]+):(\d+)$/.exec(t);
  if (bracket) { host = bracket[1]; port = bracket[2] ? Number(bracket[2]) : 53; }
  else if (v4port) { host = v4port[1]; port = Number(v4port[2]); }
  const family = isIP(host);
  if (family === 0 || !Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  return { host, port, family: family as 4 | 6 };
}

/** Nameservers of a resolv.conf minus loopback, unspecified and our own address (no forwarding loops). */
export function upstreamsFromResolvConf(text: string, self: string[]): Upstream[] {
  const out: Upstream[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (!m) continue;
    const host = m[1].replace(/%.*$/, ''); // drop a v6 zone id
    const up = parseUpstream(host);
    if (!up || host.startsWith('127.') || host === '::1' || host === '0.0.0.0' || host === '::' || self.includes(host)) continue;
    out.push(up);
  }
  return out;
}

export function readResolvConf(path = '/etc/resolv.conf'): string {
  try { return readFileSync(path, 'utf8'); } catch { return ''; }
}

export const upstreamText = (u: Upstream): string => (u.family === 6 ? `[${u.host}]:${u.port}` : `${u.host}:${u.port}`);

type Accept = (reply: Uint8Array) => boolean;

/** One UDP exchange on a fresh connected socket (random port; ICMP unreachable fails fast). */
export function exchangeUdp(up: Upstream, query: Uint8Array, timeoutMs: number, signal: AbortSignal, accept: Accept): Promise<Uint8Array | undefined> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(undefined);
    const sock = createSocket(up.family === 6 ? 'udp6' : 'udp4');
    const finish = (r: Uint8Array | undefined): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      try { sock.close(); } catch { /* already closed */ }
      resolve(r);
    };
    const onAbort = (): void => finish(undefined);
    const timer = setTimeout(onAbort, timeoutMs);
    signal.addEventListener('abort', onAbort);
    sock.on('error', onAbort);
    // Only replies that match our id and question count; anything else on the socket is ignored.
    sock.on('message', (msg) => { const r = new Uint8Array(msg); if (accept(r)) finish(r); });
    sock.connect(up.port, up.host, () => sock.send(query, (err) => { if (err) finish(undefined); }));
  });
}

/** One TCP exchange (2-byte length framing), used when a UDP reply came back truncated. */
export function exchangeTcp(up: Upstream, query: Uint8Array, timeoutMs: number, signal: AbortSignal, accept: Accept): Promise<Uint8Array | undefined> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(undefined);
    const sock = connect({ host: up.host, port: up.port });
    let buf = Buffer.alloc(0);
    const finish = (r: Uint8Array | undefined): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      sock.destroy();
      resolve(r);
    };
    const onAbort = (): void => finish(undefined);
    const timer = setTimeout(onAbort, timeoutMs);
    signal.addEventListener('abort', onAbort);
    sock.on('error', onAbort);
    sock.on('close', onAbort);
    sock.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(query.length);
      sock.write(Buffer.concat([len, query]));
    });
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length < 2 || buf.length < 2 + buf.readUInt16BE(0)) return;
      const r = new Uint8Array(buf.subarray(2, 2 + buf.readUInt16BE(0)));
      finish(accept(r) ? r : undefined);
    });
  });
}
