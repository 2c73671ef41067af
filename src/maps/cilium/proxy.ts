// Maps between the datapath and the L7 proxy. cilium_proxy4 (as Cilium's) remembers where a
// redirected client connection was going; cilium_proxy4_upstream maps the proxy's upstream socket
// (its local port on the router IP) back to the client it speaks for, so the datapath can show the
// server the client's own address and port.
import { specOf, viewOf, type MapDef } from './types.ts';
import { IP_PROTO_NAMES, ipv4String } from './text.ts';
import { parseIPv4 } from '../../wire/ip-text.ts';

export const PROXY_MAP = 'cilium_proxy4';
export const PROXY_UPSTREAM_MAP = 'cilium_proxy4_upstream';

/** cilium_proxy4 key: the client side of a redirected connection. */
export const PK_CLIENT = 0; // u32 BE
export const PK_PORT = 4; // u16 BE
export const PK_PROTO = 6; // u8
export const PROXY_KEY_SIZE = 8;

/** cilium_proxy4 value */
export const PV_ORIG_ADDR = 0; // u32 BE: where the client was going
export const PV_ORIG_PORT = 4; // u16 BE
export const PV_PROXY_PORT = 6; // u16 LE
export const PV_UPSTREAM_PORT = 8; // u16 LE: the proxy's upstream socket port (0 until it connects)
export const PV_ENDPOINT = 12; // u32 LE: the endpoint whose policy redirected
export const PROXY_VALUE_SIZE = 16;

/** cilium_proxy4_upstream: key u32 LE upstream port → value {client u32 BE, client port u16 BE, proto u8}. */
export const UV_CLIENT = 0;
export const UV_PORT = 4;
export const UV_PROTO = 6;
export const UPSTREAM_VALUE_SIZE = 8;

/** Proxy ports come from here (Cilium's default range); upstream sockets bind above it. */
export const PROXY_PORT_MIN = 10000;
export const PROXY_PORT_MAX = 20000;
export const UPSTREAM_PORT_MIN = 20001;
export const UPSTREAM_PORT_MAX = 29999;

export interface ProxyKey {
  client: string;
  port: number;
  proto: number;
}

export interface ProxyValue {
  origAddress: string;
  origPort: number;
  proxyPort: number;
  upstreamPort: number;
  endpointId: number;
}

export interface UpstreamKey {
  upstreamPort: number;
}

const protoText = (p: number) => IP_PROTO_NAMES[p] ?? String(p);
export const proxyClientText = (k: ProxyKey) => `${k.client}:${k.port}/${protoText(k.proto)}`;

export const proxyDef: MapDef<ProxyKey, ProxyValue> = {
  name: PROXY_MAP,
  matches: (n) => n === PROXY_MAP,
  type: 'lru_hash',
  keySize: PROXY_KEY_SIZE,
  valueSize: PROXY_VALUE_SIZE,
  maxEntries: 65536,
  decodeKey: (b) => ({ client: ipv4String(b, PK_CLIENT), port: viewOf(b).getUint16(PK_PORT), proto: b[PK_PROTO] }),
  decodeValue(b) {
    const v = viewOf(b);
    return {
      origAddress: ipv4String(b, PV_ORIG_ADDR), origPort: v.getUint16(PV_ORIG_PORT), proxyPort: v.getUint16(PV_PROXY_PORT, true),
      upstreamPort: v.getUint16(PV_UPSTREAM_PORT, true), endpointId: v.getUint32(PV_ENDPOINT, true),
    };
  },
  encodeKey(x, out) {
    const k = viewOf(out);
    k.setUint32(PK_CLIENT, parseIPv4(x.client));
    k.setUint16(PK_PORT, x.port);
    out[PK_PROTO] = x.proto;
  },
  encodeValue(x, out) {
    const v = viewOf(out);
    v.setUint32(PV_ORIG_ADDR, parseIPv4(x.origAddress));
    v.setUint16(PV_ORIG_PORT, x.origPort);
    v.setUint16(PV_PROXY_PORT, x.proxyPort, true);
    v.setUint16(PV_UPSTREAM_PORT, x.upstreamPort, true);
    v.setUint32(PV_ENDPOINT, x.endpointId, true);
  },
  format: (k, v) => ({
    key: proxyClientText(k),
    value: `orig=${v.origAddress}:${v.origPort} proxy-port=${v.proxyPort} upstream-port=${v.upstreamPort} endpoint=${v.endpointId}`,
  }),
};

export const proxyUpstreamDef: MapDef<UpstreamKey, ProxyKey> = {
  name: PROXY_UPSTREAM_MAP,
  matches: (n) => n === PROXY_UPSTREAM_MAP,
  type: 'lru_hash',
  keySize: 4,
  valueSize: UPSTREAM_VALUE_SIZE,
  maxEntries: 65536,
  decodeKey: (b) => ({ upstreamPort: viewOf(b).getUint32(0, true) }),
  decodeValue: (b) => ({ client: ipv4String(b, UV_CLIENT), port: viewOf(b).getUint16(UV_PORT), proto: b[UV_PROTO] }),
  encodeKey: (k, out) => viewOf(out).setUint32(0, k.upstreamPort, true),
  encodeValue(x, out) {
    const v = viewOf(out);
    v.setUint32(UV_CLIENT, parseIPv4(x.client));
    v.setUint16(UV_PORT, x.port);
    out[UV_PROTO] = x.proto;
  },
  format: (k, v) => ({ key: String(k.upstreamPort), value: `client=${proxyClientText(v)}` }),
};

export const proxySpecs = (maxEntries: number) => [specOf(proxyDef, maxEntries), specOf(proxyUpstreamDef, maxEntries)];
