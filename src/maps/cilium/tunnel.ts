// cilium_tunnel_map: a remote node's pod CIDR → its node IP (Cilium's tunnel_key → tunnel_value), `bpf tunnel list`.
import { specOf, viewOf, type MapDef, type MapEntryText } from './types.ts';
import { ipv4String } from './text.ts';
import { parseIPv4 } from '../../wire/ip-text.ts';

export const TUNNEL_MAP = 'cilium_tunnel_map';

/** Key and value: {address (IPv4 BE in the first 4 of 16 bytes), family u8, key/pad u8, cluster id u16 LE}. */
export const TUNNEL_ENTRY = 20;
export const TUNNEL_FAMILY = 16;
export const TUNNEL_CLUSTER_ID = 18;
/** Cilium's ENDPOINT_KEY_IPV4. */
export const TUNNEL_FAMILY_IPV4 = 1;
export const TUNNEL_MAX_ENTRIES = 65536;

export interface TunnelKey {
  ip: string;
  clusterId: number;
}

export interface TunnelValue {
  ip: string;
  key: number;
}

/** `bpf tunnel list` columns: `172.20.1.0:0   192.168.10.101:0`. */
export function formatTunnelEntry(k: TunnelKey, v: TunnelValue): MapEntryText {
  return { key: `${k.ip}:${k.clusterId}`, value: `${v.ip}:${v.key}` };
}

export const tunnelDef: MapDef<TunnelKey, TunnelValue> = {
  name: TUNNEL_MAP,
  matches: (n) => n === TUNNEL_MAP,
  type: 'hash',
  keySize: TUNNEL_ENTRY,
  valueSize: TUNNEL_ENTRY,
  maxEntries: TUNNEL_MAX_ENTRIES,
  decodeKey: (b) => ({ ip: ipv4String(b, 0), clusterId: viewOf(b).getUint16(TUNNEL_CLUSTER_ID, true) }),
  decodeValue: (b) => ({ ip: ipv4String(b, 0), key: b[TUNNEL_FAMILY + 1] }),
  encodeKey(k, out) {
    out.fill(0);
    const v = viewOf(out);
    v.setUint32(0, parseIPv4(k.ip));
    out[TUNNEL_FAMILY] = TUNNEL_FAMILY_IPV4;
    v.setUint16(TUNNEL_CLUSTER_ID, k.clusterId, true);
  },
  encodeValue(x, out) {
    out.fill(0);
    viewOf(out).setUint32(0, parseIPv4(x.ip));
    out[TUNNEL_FAMILY] = TUNNEL_FAMILY_IPV4;
    out[TUNNEL_FAMILY + 1] = x.key;
  },
  format: formatTunnelEntry,
};

export const tunnelSpec = () => specOf(tunnelDef, TUNNEL_MAX_ENTRIES);
