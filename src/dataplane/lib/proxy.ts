// L7 redirection in the datapath. A connection whose policy entry carries a proxy port is sent to
// the in-process proxy on the router IP (destination rewritten, original kept in cilium_proxy4);
// the proxy's answers get the original destination back as their source; the proxy's upstream
// leg gets the client's address and port as its source, and the server's replies to that leg go
// back to the proxy.
import type { HashMap, MapRegistry } from '../../maps/index.ts';
import type { PacketContext } from '../context.ts';
import { native } from '../../native/index.ts';
import { M_FLAGS, F_NEEDS_CSUM } from '../../native/meta.ts';
import * as X from '../../maps/cilium/proxy.ts';
import type { Datapath } from '../datapath.ts';
import { DROP_PROXY_SET_FAILED } from '../drop-reasons.ts';
import { TRACE_TO_PROXY } from '../events.ts';
import { IPPROTO_TCP } from '../../wire/proto.ts';
import { PX_REDIRECT, PX_RESTORE_ANSWER, PX_RESTORE_CLIENT, PX_TO_UPSTREAM, RW_DNAT, RW_SNAT, type PacketTracer } from '../../observe/trace/tracer.ts';

/**
 * Sends the packet to the proxy on `proxyPort` for `endpoint`'s policy. The to-proxy trace goes out
 * first, so it shows where the packet was going rather than the proxy's own address.
 * Returns 0, or a drop reason; the caller then hands the packet to the host (cil_to_host).
 */
export function redirectToProxy(ctx: PacketContext, dp: Datapath, proxyPort: number, endpoint: number): number {
  dp.trace(ctx, TRACE_TO_PROXY);
  if (!dp.proxy.redirect(ctx, proxyPort, endpoint)) return DROP_PROXY_SET_FAILED;
  ctx.toProxy = true;
  return 0;
}

export class ProxyRedirects {
  readonly connections: HashMap;
  readonly upstreams: HashMap;
  /** Ports with a listening proxy (1) — only packets from these are proxy answers. */
  readonly active = new Uint8Array(65536);
  routerIP = 0;
  /** `ciliary trace` (set by Datapath.setTracer); used only for packets with ctx.traced. */
  tracer: PacketTracer | null = null;
  private readonly key = new Uint8Array(X.PROXY_KEY_SIZE);
  private readonly kv = new DataView(this.key.buffer);
  private readonly ukey = new Uint8Array(4);
  private readonly ukv = new DataView(this.ukey.buffer);

  constructor(registry: MapRegistry, maxEntries: number) {
    this.connections = registry.open({ name: X.PROXY_MAP, type: 'lru_hash', keySize: X.PROXY_KEY_SIZE, valueSize: X.PROXY_VALUE_SIZE, maxEntries });
    this.upstreams = registry.open({ name: X.PROXY_UPSTREAM_MAP, type: 'lru_hash', keySize: 4, valueSize: X.UPSTREAM_VALUE_SIZE, maxEntries });
  }

  private setKey(client: number, port: number, proto: number): void {
    this.kv.setUint32(X.PK_CLIENT, client);
    this.kv.setUint16(X.PK_PORT, port);
    this.key[X.PK_PROTO] = proto;
  }

  /** The cilium_proxy4 entry of a client connection, -1 if none. */
  lookup(client: number, port: number, proto: number): number {
    this.setKey(client, port, proto);
    return this.connections.lookup(this.key, 0);
  }

  private partial(ctx: PacketContext): boolean {
    return (ctx.meta[ctx.m + M_FLAGS] & F_NEEDS_CSUM) !== 0;
  }

  /** Sends the packet to the proxy on `proxyPort`, remembering where it was going. False if the map refuses. */
  redirect(ctx: PacketContext, proxyPort: number, endpoint: number): boolean {
    this.setKey(ctx.saddr, ctx.sport, ctx.proto);
    const off = this.connections.reserve(this.key, 0, 0);
    if (ctx.traced) {
      this.tracer!.proxy(PX_REDIRECT, ctx.saddr, ctx.sport, off >= 0, ctx.daddr, ctx.dport);
      if (off >= 0) this.tracer!.rewrite(RW_DNAT, ctx.daddr, ctx.dport, this.routerIP, proxyPort);
    }
    if (off < 0) return false;
    const v = this.connections.view;
    v.setUint32(off + X.PV_ORIG_ADDR, ctx.daddr);
    v.setUint16(off + X.PV_ORIG_PORT, ctx.dport);
    v.setUint16(off + X.PV_PROXY_PORT, proxyPort, true);
    v.setUint32(off + X.PV_ENDPOINT, endpoint, true);
    const partial = this.partial(ctx);
    if (!native.rewriteAddr(ctx.buf, ctx.l3, ctx.end, true, this.routerIP, partial)) return false;
    if (!native.rewritePort(ctx.buf, ctx.l3, ctx.end, true, proxyPort, partial)) return false;
    ctx.daddr = this.routerIP;
    ctx.dport = proxyPort;
    return true;
  }

  /** Control plane (the proxy): its upstream socket on `port` speaks for this client connection. */
  registerUpstream(client: number, clientPort: number, port: number, proto = IPPROTO_TCP): boolean {
    const off = this.lookup(client, clientPort, proto);
    if (off < 0) return false;
    this.connections.view.setUint16(off + X.PV_UPSTREAM_PORT, port, true);
    const v = new Uint8Array(X.UPSTREAM_VALUE_SIZE);
    const dv = new DataView(v.buffer);
    dv.setUint32(X.UV_CLIENT, client);
    dv.setUint16(X.UV_PORT, clientPort);
    v[X.UV_PROTO] = proto;
    this.ukv.setUint32(0, port, true);
    return this.upstreams.update(this.ukey, 0, v, 0, 0) >= 0;
  }

  releaseUpstream(port: number): void {
    this.ukv.setUint32(0, port, true);
    this.upstreams.delete(this.ukey, 0);
  }

  /** Control plane: where a redirected client connection was going, and whose policy sent it here. */
  originalDestination(client: number, clientPort: number, proto = IPPROTO_TCP): { addr: number; port: number; endpoint: number } | undefined {
    const off = this.lookup(client, clientPort, proto);
    if (off < 0) return undefined;
    const v = this.connections.view;
    return { addr: v.getUint32(off + X.PV_ORIG_ADDR), port: v.getUint16(off + X.PV_ORIG_PORT), endpoint: v.getUint32(off + X.PV_ENDPOINT, true) };
  }

  /** A proxy answer to a client (router IP, proxy port → client): its source becomes the original destination. */
  restoreAnswer(ctx: PacketContext): boolean {
    const off = this.lookup(ctx.daddr, ctx.dport, ctx.proto);
    if (off < 0) {
      if (ctx.traced) this.tracer!.proxy(PX_RESTORE_ANSWER, ctx.daddr, ctx.dport, false, 0, 0);
      return false;
    }
    const v = this.connections.view;
    const addr = v.getUint32(off + X.PV_ORIG_ADDR);
    const port = v.getUint16(off + X.PV_ORIG_PORT);
    if (ctx.traced) {
      this.tracer!.proxy(PX_RESTORE_ANSWER, ctx.daddr, ctx.dport, true, addr, port);
      this.tracer!.rewrite(RW_SNAT, ctx.saddr, ctx.sport, addr, port);
    }
    const partial = this.partial(ctx);
    if (!native.rewriteAddr(ctx.buf, ctx.l3, ctx.end, false, addr, partial)) return false;
    if (!native.rewritePort(ctx.buf, ctx.l3, ctx.end, false, port, partial)) return false;
    ctx.saddr = addr;
    ctx.sport = port;
    return true;
  }

  /** The proxy's upstream leg (router IP, upstream port → server): its source becomes the client's. */
  restoreClient(ctx: PacketContext): boolean {
    this.ukv.setUint32(0, ctx.sport, true);
    const off = this.upstreams.lookup(this.ukey, 0);
    if (off < 0) {
      if (ctx.traced) this.tracer!.proxy(PX_RESTORE_CLIENT, ctx.saddr, ctx.sport, false, 0, 0);
      return false;
    }
    const v = this.upstreams.view;
    const client = v.getUint32(off + X.UV_CLIENT);
    const port = v.getUint16(off + X.UV_PORT);
    if (ctx.traced) {
      this.tracer!.proxy(PX_RESTORE_CLIENT, ctx.saddr, ctx.sport, true, client, port);
      this.tracer!.rewrite(RW_SNAT, ctx.saddr, ctx.sport, client, port);
    }
    const partial = this.partial(ctx);
    if (!native.rewriteAddr(ctx.buf, ctx.l3, ctx.end, false, client, partial)) return false;
    if (!native.rewritePort(ctx.buf, ctx.l3, ctx.end, false, port, partial)) return false;
    ctx.saddr = client;
    ctx.sport = port;
    return true;
  }

  /** A server's reply on the upstream leg (server → client): its destination becomes the proxy's socket. */
  toUpstream(ctx: PacketContext): boolean {
    const off = this.lookup(ctx.daddr, ctx.dport, ctx.proto);
    if (off < 0) {
      if (ctx.traced) this.tracer!.proxy(PX_TO_UPSTREAM, ctx.daddr, ctx.dport, false, 0, 0);
      return false;
    }
    const up = this.connections.view.getUint16(off + X.PV_UPSTREAM_PORT, true);
    if (ctx.traced) {
      this.tracer!.proxy(PX_TO_UPSTREAM, ctx.daddr, ctx.dport, up !== 0, 0, up);
      if (up !== 0) this.tracer!.rewrite(RW_DNAT, ctx.daddr, ctx.dport, this.routerIP, up);
    }
    if (up === 0) return false;
    const partial = this.partial(ctx);
    if (!native.rewriteAddr(ctx.buf, ctx.l3, ctx.end, true, this.routerIP, partial)) return false;
    if (!native.rewritePort(ctx.buf, ctx.l3, ctx.end, true, up, partial)) return false;
    ctx.daddr = this.routerIP;
    ctx.dport = up;
    return true;
  }
}
