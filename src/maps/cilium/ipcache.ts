// cilium_ipcache: LPM prefix → identity and tunnel endpoint (Cilium's ipcache_key → remote_endpoint_info).
import { specOf, viewOf, type MapDef, type MapEntryText } from './types.ts';
import { ipv4String } from './text.ts';
import { parseIPv4 } from '../../wire/ip-text.ts';

export const IPCACHE_MAP = 'cilium_ipcache';

/** Key: {prefixlen u32 LE, IPv4 BE}. */
export const IPCACHE_KEY = 8;
/** Value: {identity u32 LE, tunnel endpoint u32 BE, encrypt key u8, flags u8}. */
export const IPC_SEC_ID = 0;
export const IPC_TUNNEL = 4;
export const IPC_KEY_ID = 8;
export const IPC_FLAGS = 9;
export const IPCACHE_VALUE = 12;
export const IPCACHE_MAX_ENTRIES = 512000;

export interface IpcacheKey {
  ip: string;
  prefixLen: number;
}

export interface IpcacheValue {
  identity: number;
  tunnelEndpoint: string;
  encryptKey: number;
  flags: number;
}

/** `bpf ipcache list` columns. */
export function formatIpcacheEntry(k: IpcacheKey, v: IpcacheValue): MapEntryText {
  return { key: `${k.ip}/${k.prefixLen}`, value: `identity=${v.identity} encryptkey=${v.encryptKey} tunnelendpoint=${v.tunnelEndpoint}` };
}

export const ipcacheDef: MapDef<IpcacheKey, IpcacheValue> = {
  name: IPCACHE_MAP,
  matches: (n) => n === IPCACHE_MAP,
  type: 'lpm_trie',
  keySize: IPCACHE_KEY,
  valueSize: IPCACHE_VALUE,
  maxEntries: IPCACHE_MAX_ENTRIES,
  decodeKey: (b) => ({ ip: ipv4String(b, 4), prefixLen: viewOf(b).getUint32(0, true) }),
  decodeValue(b) {
    const v = viewOf(b);
    return { identity: v.getUint32(IPC_SEC_ID, true), tunnelEndpoint: ipv4String(b, IPC_TUNNEL), encryptKey: b[IPC_KEY_ID], flags: b[IPC_FLAGS] };
  },
  encodeKey(k, out) {
    const v = viewOf(out);
    v.setUint32(0, k.prefixLen, true);
    v.setUint32(4, parseIPv4(k.ip));
  },
  encodeValue(x, out) {
    const v = viewOf(out);
    v.setUint32(IPC_SEC_ID, x.identity, true);
    v.setUint32(IPC_TUNNEL, parseIPv4(x.tunnelEndpoint));
    out[IPC_KEY_ID] = x.encryptKey;
    out[IPC_FLAGS] = x.flags;
  },
  format: formatIpcacheEntry,
};

export const ipcacheSpec = () => specOf(ipcacheDef, IPCACHE_MAX_ENTRIES);
