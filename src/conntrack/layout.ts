// cilium_ct4_global / cilium_ct_any4_global: key and value layouts (after Cilium's ipv4_ct_tuple
// and ct_entry), with counters as f64 so JS never needs a BigInt.

export const CT_TCP_MAP = 'cilium_ct4_global';
export const CT_ANY_MAP = 'cilium_ct_any4_global';

/** Key: the tuple in the direction of the packet that created the entry. */
export const K_DADDR = 0; // u32 BE
export const K_SADDR = 4; // u32 BE
export const K_DPORT = 8; // u16 BE
export const K_SPORT = 10; // u16 BE
export const K_NEXTHDR = 12; // u8
export const K_FLAGS = 13; // u8 TUPLE_F_*
export const CT_KEY_SIZE = 16;

export const TUPLE_F_OUT = 0;
export const TUPLE_F_IN = 1;
export const TUPLE_F_RELATED = 2;
export const TUPLE_F_SERVICE = 4;

/** Value (all little-endian). "Tx" counts the entry's own direction, "Rx" its replies. */
export const V_LIFETIME = 0; // u32 monotonic seconds at which the entry expires
export const V_FLAGS = 4; // u16 CT_F_*
export const V_REV_NAT = 6; // u16 reverse-NAT (service) index
export const V_BACKEND = 8; // u32 backend id (service entries)
export const V_SRC_SEC_ID = 12; // u32 source identity
export const V_TX_FLAGS_SEEN = 16; // u8 TCP flags seen in the entry's direction
export const V_RX_FLAGS_SEEN = 17; // u8 TCP flags seen on replies
export const V_IFINDEX = 18; // u16
export const V_LAST_TX_REPORT = 20; // u32
export const V_LAST_RX_REPORT = 24; // u32
export const V_TX_PACKETS = 32; // f64
export const V_TX_BYTES = 40; // f64
export const V_RX_PACKETS = 48; // f64
export const V_RX_BYTES = 56; // f64
export const CT_VALUE_SIZE = 64;

/** ct_entry flag bits, in the order Cilium's Go side prints them. */
export const CT_F_RX_CLOSING = 1 << 0;
export const CT_F_TX_CLOSING = 1 << 1;
export const CT_F_NAT64 = 1 << 2;
export const CT_F_LB_LOOPBACK = 1 << 3;
export const CT_F_SEEN_NON_SYN = 1 << 4;
export const CT_F_NODE_PORT = 1 << 5;
export const CT_F_PROXY_REDIRECT = 1 << 6;
export const CT_F_DSR = 1 << 7;

export const CT_FLAG_NAMES: Array<[number, string]> = [
  [CT_F_RX_CLOSING, 'RxClosing'], [CT_F_TX_CLOSING, 'TxClosing'], [CT_F_NAT64, 'Nat64'], [CT_F_LB_LOOPBACK, 'LBLoopback'],
  [CT_F_SEEN_NON_SYN, 'SeenNonSyn'], [CT_F_NODE_PORT, 'NodePort'], [CT_F_PROXY_REDIRECT, 'ProxyRedirect'], [CT_F_DSR, 'DSR'],
];

/** Lookup results, as Cilium's CT_NEW / CT_ESTABLISHED / CT_REPLY / CT_RELATED. */
export const CT_NEW = 0;
export const CT_ESTABLISHED = 1;
export const CT_REPLY = 2;
export const CT_RELATED = 3;

/** Seconds between two trace reports of one connection when nothing new is seen (monitor aggregation). */
export const CT_REPORT_INTERVAL = 5;
