// cilium_lxc: the local endpoints (Cilium's endpoint_key → endpoint_info), `bpf endpoint list`.
import { specOf, viewOf, type MapDef, type MapEntryText } from './types.ts';
import { ipv4String, macString, writeMac } from './text.ts';
import { parseIPv4 } from '../../wire/ip-text.ts';

export const ENDPOINTS_MAP = 'cilium_lxc';

/** Key: IPv4 (big-endian). */
export const LXC_KEY = 4;
/** Value fields (little-endian). */
export const LXC_IFINDEX = 0; // u32
export const LXC_ID = 4; // u16 endpoint id
export const LXC_FLAGS = 6; // u16, ENDPOINT_F_HOST = 1
export const LXC_MAC = 8; // 6 bytes
export const LXC_NODE_MAC = 16; // 6 bytes
export const LXC_SEC_ID = 24; // u32 security identity
export const LXC_VALUE = 32;
export const ENDPOINT_F_HOST = 1;
export const LXC_MAX_ENTRIES = 65535;

export interface LxcKey {
  ip: string;
}

export interface LxcValue {
  ifindex: number;
  endpointId: number;
  flags: number;
  mac: string;
  nodeMac: string;
  securityIdentity: number;
}

/** `bpf endpoint list` columns. */
export function formatLxcEntry(k: LxcKey, v: LxcValue): MapEntryText {
  const info = v.flags & ENDPOINT_F_HOST
    ? '(localhost)'
    : `id=${String(v.endpointId).padEnd(5)} sec_id=${String(v.securityIdentity).padEnd(6)} flags=0x${v.flags.toString(16).padStart(4, '0')} ifindex=${String(v.ifindex).padEnd(3)} mac=${v.mac} nodemac=${v.nodeMac}`;
  return { key: `${k.ip}:0`, value: info };
}

export const lxcDef: MapDef<LxcKey, LxcValue> = {
  name: ENDPOINTS_MAP,
  matches: (n) => n === ENDPOINTS_MAP,
  type: 'hash',
  keySize: LXC_KEY,
  valueSize: LXC_VALUE,
  maxEntries: LXC_MAX_ENTRIES,
  decodeKey: (b) => ({ ip: ipv4String(b, 0) }),
  decodeValue(b) {
    const v = viewOf(b);
    return {
      ifindex: v.getUint32(LXC_IFINDEX, true), endpointId: v.getUint16(LXC_ID, true), flags: v.getUint16(LXC_FLAGS, true),
      mac: macString(b, LXC_MAC), nodeMac: macString(b, LXC_NODE_MAC), securityIdentity: v.getUint32(LXC_SEC_ID, true),
    };
  },
  encodeKey: (k, out) => viewOf(out).setUint32(0, parseIPv4(k.ip)),
  encodeValue(x, out) {
    const v = viewOf(out);
    v.setUint32(LXC_IFINDEX, x.ifindex, true);
    v.setUint16(LXC_ID, x.endpointId, true);
    v.setUint16(LXC_FLAGS, x.flags, true);
    writeMac(x.mac, out, LXC_MAC);
    writeMac(x.nodeMac, out, LXC_NODE_MAC);
    v.setUint32(LXC_SEC_ID, x.securityIdentity, true);
  },
  format: formatLxcEntry,
};

export const lxcSpec = () => specOf(lxcDef, LXC_MAX_ENTRIES);
