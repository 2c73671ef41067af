// cilium_snat_v4_external: BPF masquerade's translations (Cilium's ipv4_ct_tuple → ipv4_nat_entry).
// An OUT entry, keyed by the pod's tuple, gives the address and port the packet leaves with; its IN
// twin, keyed by the reply's tuple, gives the pod's address and port back. A plain hash (not LRU):
// a full map is a counted drop, never a silently evicted live connection; GC follows conntrack.
// cilium_ipmasq_v4: the ip-masq-agent's non-masquerade CIDRs (LPM prefix → 1).
import { specOf, viewOf, type MapDef, type MapEntryText } from './types.ts';
import { IP_PROTO_NAMES, ipv4String } from './text.ts';
import { parseIPv4 } from '../../wire/ip-text.ts';
import { CT_KEY_SIZE, TUPLE_F_IN, ctDef, type CtKey } from './ct.ts';
import { monoSeconds } from '../../conntrack/clock.ts';

export const NAT_MAP = 'cilium_snat_v4_external';
export const IPMASQ_MAP = 'cilium_ipmasq_v4';

/** The key is conntrack's tuple layout (ct.ts K_*), so an OUT key is also the pod's CT key. */
export const NAT_KEY_SIZE = CT_KEY_SIZE;

/** Value (LE except the translated address and port, which are BE as on the wire). */
export const NV_CREATED = 0; // u32 monotonic seconds
export const NV_NEEDS_CT = 4; // u32
export const NV_TO_ADDR = 8; // u32 BE: to_saddr on OUT entries, to_daddr on IN entries
export const NV_TO_PORT = 12; // u16 BE: to_sport / to_dport (the echo id for ICMP)
export const NAT_VALUE_SIZE = 16;

/** cilium_ipmasq_v4 key: {prefixlen u32 LE, IPv4 BE} as the ipcache; value u8 (1). */
export const IPMASQ_KEY_SIZE = 8;
export const IPMASQ_VALUE_SIZE = 1;
export const IPMASQ_MAX_ENTRIES = 16384;

/** The key is conntrack's tuple, decoded and encoded by the CT map's own codec. */
export type NatKey = CtKey;

export interface NatValue {
  created: number;
  needsCt: number;
  toAddr: string;
  toPort: number;
}

/**
 * A `bpf nat list` line, as Cilium's DumpEntriesWithTimeDiff:
 * `ICMP OUT 10.5.2.101:65204 -> 10.4.6.9:0 XLATE_SRC 10.5.2.101:65204 Created=1987884sec ago NeedsCT=1`.
 */
export function formatNatLine(k: NatKey, v: NatValue, now = monoSeconds()): string {
  const proto = IP_PROTO_NAMES[k.proto] ?? `proto${k.proto}`;
  const dir = k.flags & TUPLE_F_IN ? 'IN' : 'OUT';
  const xlate = dir === 'IN' ? 'XLATE_DST' : 'XLATE_SRC';
  return `${proto} ${dir} ${k.saddr}:${k.sport} -> ${k.daddr}:${k.dport} ${xlate} ${v.toAddr}:${v.toPort} Created=${Math.max(0, now - v.created)}sec ago NeedsCT=${v.needsCt}`;
}

export const natDef: MapDef<NatKey, NatValue> = {
  name: NAT_MAP,
  matches: (n) => n === NAT_MAP,
  type: 'hash',
  keySize: NAT_KEY_SIZE,
  valueSize: NAT_VALUE_SIZE,
  maxEntries: 'bpf-nat-global-max',
  decodeKey: (b) => ctDef.decodeKey(b),
  decodeValue(b) {
    const v = viewOf(b);
    return { created: v.getUint32(NV_CREATED, true), needsCt: v.getUint32(NV_NEEDS_CT, true), toAddr: ipv4String(b, NV_TO_ADDR), toPort: v.getUint16(NV_TO_PORT) };
  },
  encodeKey: (x, out) => ctDef.encodeKey(x, out),
  encodeValue(x, out) {
    const v = viewOf(out);
    v.setUint32(NV_CREATED, x.created, true);
    v.setUint32(NV_NEEDS_CT, x.needsCt, true);
    v.setUint32(NV_TO_ADDR, parseIPv4(x.toAddr));
    v.setUint16(NV_TO_PORT, x.toPort);
  },
  format: (k, v): MapEntryText => {
    const line = formatNatLine(k, v);
    const cut = line.indexOf(k.flags & TUPLE_F_IN ? ' XLATE_DST' : ' XLATE_SRC');
    return { key: line.slice(0, cut), value: line.slice(cut + 1) };
  },
};

export const natSpec = (maxEntries: number) => specOf(natDef, maxEntries);

/** `bpf nat list`: one line per entry, OUT entries before their IN twins' order is the map's. */
export function natListLines(map: { dump(): Array<{ key: Uint8Array; value: Uint8Array }> }, now = monoSeconds()): string[] {
  return map.dump().map((e) => formatNatLine(natDef.decodeKey(e.key), natDef.decodeValue(e.value), now));
}

export interface IpMasqKey {
  ip: string;
  prefixLen: number;
}

export const ipMasqDef: MapDef<IpMasqKey, { value: number }> = {
  name: IPMASQ_MAP,
  matches: (n) => n === IPMASQ_MAP,
  type: 'lpm_trie',
  keySize: IPMASQ_KEY_SIZE,
  valueSize: IPMASQ_VALUE_SIZE,
  maxEntries: IPMASQ_MAX_ENTRIES,
  decodeKey: (b) => ({ ip: ipv4String(b, 4), prefixLen: viewOf(b).getUint32(0, true) }),
  decodeValue: (b) => ({ value: b[0] }),
  encodeKey(k, out) {
    const v = viewOf(out);
    v.setUint32(0, k.prefixLen, true);
    v.setUint32(4, parseIPv4(k.ip));
  },
  encodeValue(x, out) {
    out[0] = x.value;
  },
  format: (k) => ({ key: `${k.ip}/${k.prefixLen}`, value: '' }),
};

export const ipMasqSpec = () => specOf(ipMasqDef, IPMASQ_MAX_ENTRIES);
