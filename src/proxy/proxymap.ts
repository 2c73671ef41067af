// Maps between the datapath and the L7 proxy. cilium_proxy4 (as Cilium's) remembers where a
// redirected client connection was going; cilium_proxy4_upstream maps the proxy's upstream socket
// (its local port on the router IP) back to the client it speaks for, so the datapath can show the
// server the client's own address and port.

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
