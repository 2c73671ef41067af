// cilium_ct4_global / cilium_ct_any4_global: key and value layouts (after Cilium's ipv4_ct_tuple
// and ct_entry), with counters as f64 so JS never needs a BigInt.
import { specOf, viewOf, type MapDef, type MapEntryText } from './types.ts';
import { IP_PROTO_NAMES } from './text.ts';
import { formatIPv4, parseIPv4 } from '../../wire/ip-text.ts';

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

export interface CtKey {
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  /** IP protocol (Cilium's nexthdr). */
  proto: number;
  /** TUPLE_F_* bits. */
  flags: number;
}

export interface CtValue {
  lifetime: number;
  flags: number;
  revNat: number;
  backendId: number;
  sourceSecurityId: number;
  txFlagsSeen: number;
  rxFlagsSeen: number;
  ifindex: number;
  lastTxReport: number;
  lastRxReport: number;
  txPackets: number;
  txBytes: number;
  rxPackets: number;
  rxBytes: number;
}

const hex2 = (n: number) => `0x${n.toString(16).padStart(2, '0')}`;

/** `TCP OUT 10.96.43.209:80 -> 10.0.1.90:59668 service`: the tuple as `bpf ct list` starts a line. */
export function formatCtTuple(k: CtKey): string {
  const src = `${k.saddr}:${k.sport}`;
  const dst = `${k.daddr}:${k.dport}`;
  const dir = k.flags & TUPLE_F_IN ? 'IN' : 'OUT';
  // Cilium prints egress tuples from the far end, ingress tuples from the near one.
  const tuple = dir === 'OUT' ? `${dst} -> ${src}` : `${src} -> ${dst}`;
  const kind = [k.flags & TUPLE_F_SERVICE ? ' service' : '', k.flags & TUPLE_F_RELATED ? ' related' : ''].join('');
  const proto = k.proto === 0 ? 'proto0' : (IP_PROTO_NAMES[k.proto] ?? `proto${k.proto}`);
  return `${proto} ${dir} ${tuple}${kind}`;
}

/** The rest of a `bpf ct list global` line: lifetime, counters, flags, service and identity. */
export function formatCtState(k: CtKey, v: CtValue): string {
  const names = CT_FLAG_NAMES.filter(([b]) => v.flags & b).map(([, n]) => n);
  return `expires=${v.lifetime}` +
    ` RxPackets=${v.rxPackets} RxBytes=${v.rxBytes} RxFlagsSeen=${hex2(v.rxFlagsSeen)} LastRxReport=${v.lastRxReport}` +
    ` TxPackets=${v.txPackets} TxBytes=${v.txBytes} TxFlagsSeen=${hex2(v.txFlagsSeen)} LastTxReport=${v.lastTxReport}` +
    ` Flags=0x${v.flags.toString(16).padStart(4, '0')} [ ${names.join(' ')}${names.length ? ' ' : ''}] RevNAT=${v.revNat}` +
    ` SourceSecurityID=${v.sourceSecurityId} IfIndex=${v.ifindex}` +
    (k.flags & TUPLE_F_SERVICE ? ` BackendID=${v.backendId}` : '');
}

export const ctDef: MapDef<CtKey, CtValue> = {
  name: `${CT_TCP_MAP}, ${CT_ANY_MAP}`,
  matches: (n) => n === CT_TCP_MAP || n === CT_ANY_MAP,
  type: 'lru_hash',
  keySize: CT_KEY_SIZE,
  valueSize: CT_VALUE_SIZE,
  maxEntries: 'bpf-ct-global-tcp-max, bpf-ct-global-any-max',
  decodeKey(b) {
    const k = viewOf(b);
    return {
      daddr: formatIPv4(k.getUint32(K_DADDR)), saddr: formatIPv4(k.getUint32(K_SADDR)), dport: k.getUint16(K_DPORT), sport: k.getUint16(K_SPORT),
      proto: b[K_NEXTHDR], flags: b[K_FLAGS],
    };
  },
  decodeValue(b) {
    const v = viewOf(b);
    return {
      lifetime: v.getUint32(V_LIFETIME, true), flags: v.getUint16(V_FLAGS, true), revNat: v.getUint16(V_REV_NAT, true),
      backendId: v.getUint32(V_BACKEND, true), sourceSecurityId: v.getUint32(V_SRC_SEC_ID, true),
      txFlagsSeen: b[V_TX_FLAGS_SEEN], rxFlagsSeen: b[V_RX_FLAGS_SEEN], ifindex: v.getUint16(V_IFINDEX, true),
      lastTxReport: v.getUint32(V_LAST_TX_REPORT, true), lastRxReport: v.getUint32(V_LAST_RX_REPORT, true),
      txPackets: v.getFloat64(V_TX_PACKETS, true), txBytes: v.getFloat64(V_TX_BYTES, true),
      rxPackets: v.getFloat64(V_RX_PACKETS, true), rxBytes: v.getFloat64(V_RX_BYTES, true),
    };
  },
  encodeKey(x, out) {
    const k = viewOf(out);
    k.setUint32(K_DADDR, parseIPv4(x.daddr));
    k.setUint32(K_SADDR, parseIPv4(x.saddr));
    k.setUint16(K_DPORT, x.dport);
    k.setUint16(K_SPORT, x.sport);
    out[K_NEXTHDR] = x.proto;
    out[K_FLAGS] = x.flags;
  },
  encodeValue(x, out) {
    const v = viewOf(out);
    v.setUint32(V_LIFETIME, x.lifetime, true);
    v.setUint16(V_FLAGS, x.flags, true);
    v.setUint16(V_REV_NAT, x.revNat, true);
    v.setUint32(V_BACKEND, x.backendId, true);
    v.setUint32(V_SRC_SEC_ID, x.sourceSecurityId, true);
    out[V_TX_FLAGS_SEEN] = x.txFlagsSeen;
    out[V_RX_FLAGS_SEEN] = x.rxFlagsSeen;
    v.setUint16(V_IFINDEX, x.ifindex, true);
    v.setUint32(V_LAST_TX_REPORT, x.lastTxReport, true);
    v.setUint32(V_LAST_RX_REPORT, x.lastRxReport, true);
    v.setFloat64(V_TX_PACKETS, x.txPackets, true);
    v.setFloat64(V_TX_BYTES, x.txBytes, true);
    v.setFloat64(V_RX_PACKETS, x.rxPackets, true);
    v.setFloat64(V_RX_BYTES, x.rxBytes, true);
  },
  format: (k, v): MapEntryText => ({ key: formatCtTuple(k), value: formatCtState(k, v) }),
};

export const ctSpecs = (sizes: { tcp: number; any: number }) => [specOf(ctDef, sizes.tcp, CT_TCP_MAP), specOf(ctDef, sizes.any, CT_ANY_MAP)];

/** `bpf ct list global` line for one entry's bytes (agent API and --from-file). */
export function formatCtEntry(key: Uint8Array, value: Uint8Array): string {
  const k = ctDef.decodeKey(key);
  return `${formatCtTuple(k)} ${formatCtState(k, ctDef.decodeValue(value))}`;
}

/** `bpf ct list global`: every entry of both CT maps, TCP first. */
export function ctListLines(maps: ReadonlyArray<{ dump(): Array<{ key: Uint8Array; value: Uint8Array }> }>): string[] {
  return maps.flatMap((m) => m.dump().map((e) => formatCtEntry(e.key, e.value)));
}
