// The datapath's maps: names, specs and byte layouts as Cilium has them, plus decoders that
// print entries the way `cilium bpf ... list` does (used by the agent API and by the CLI,
// which may read the pinned files directly).
import type { MapSpec } from '../maps/index.ts';

export const ENDPOINTS_MAP = 'cilium_lxc';
export const IPCACHE_MAP = 'cilium_ipcache';
export const METRICS_MAP = 'cilium_metrics';
export const callsMapName = (endpointID: number) => `cilium_calls_${String(endpointID).padStart(5, '0')}`;

/** cilium_lxc: IPv4 (big-endian) → endpoint_info. */
export const LXC_KEY = 4;
export const LXC_IFINDEX = 0; // u32
export const LXC_ID = 4; // u16 endpoint id
export const LXC_FLAGS = 6; // u16, ENDPOINT_F_HOST = 1
export const LXC_MAC = 8; // 6 bytes
export const LXC_NODE_MAC = 16; // 6 bytes
export const LXC_SEC_ID = 24; // u32 security identity
export const LXC_VALUE = 32;
export const ENDPOINT_F_HOST = 1;

/** cilium_ipcache: LPM key {prefixlen u32 LE, IPv4 BE} → {identity u32, tunnel endpoint u32 BE, encrypt key u8, flags u8}. */
export const IPCACHE_KEY = 8;
export const IPC_SEC_ID = 0;
export const IPC_TUNNEL = 4;
export const IPC_KEY_ID = 8;
export const IPC_FLAGS = 9;
export const IPCACHE_VALUE = 12;

/** cilium_metrics: index = reason << 2 | direction (1 ingress, 2 egress) → {packets f64, bytes f64}; reason 0 = forwarded. */
export const METRICS_VALUE = 16;
export const METRICS_ENTRIES = 1024;

/** cilium_calls_<id>: CILIUM_CALL_* index → program id + 1 (0 = empty slot). */
export const CALLS_ENTRIES = 64;

export function mapSpecs(): MapSpec[] {
  return [
    { name: ENDPOINTS_MAP, type: 'hash', keySize: LXC_KEY, valueSize: LXC_VALUE, maxEntries: 65535 },
    { name: IPCACHE_MAP, type: 'lpm_trie', keySize: IPCACHE_KEY, valueSize: IPCACHE_VALUE, maxEntries: 512000 },
    { name: METRICS_MAP, type: 'array', keySize: 4, valueSize: METRICS_VALUE, maxEntries: METRICS_ENTRIES },
  ];
}

export const callsSpec = (endpointID: number): MapSpec => ({ name: callsMapName(endpointID), type: 'array', keySize: 4, valueSize: 4, maxEntries: CALLS_ENTRIES });

// ---- formatting (not hot path) ------------------------------------------------------------------

export function ipv4String(be: Uint8Array, off: number): string {
  return `${be[off]}.${be[off + 1]}.${be[off + 2]}.${be[off + 3]}`;
}

export { formatIPv4 as u32ToIp, parseIPv4 as ipToU32 } from '../wire/ip-text.ts';

function mac(b: Uint8Array, off: number): string {
  return Array.from(b.subarray(off, off + 6), (x) => x.toString(16).padStart(2, '0').toUpperCase()).join(':');
}

/** `bpf endpoint list` columns for one cilium_lxc entry. */
export function formatLxc(key: Uint8Array, value: Uint8Array): { key: string; value: string } {
  const v = new DataView(value.buffer, value.byteOffset, value.byteLength);
  const flags = v.getUint16(LXC_FLAGS, true);
  const info = flags & ENDPOINT_F_HOST
    ? `(localhost)`
    : `id=${String(v.getUint16(LXC_ID, true)).padEnd(5)} sec_id=${String(v.getUint32(LXC_SEC_ID, true)).padEnd(6)} flags=0x${flags.toString(16).padStart(4, '0')} ifindex=${String(v.getUint32(LXC_IFINDEX, true)).padEnd(3)} mac=${mac(value, LXC_MAC)} nodemac=${mac(value, LXC_NODE_MAC)}`;
  return { key: `${ipv4String(key, 0)}:0`, value: info };
}

/** `bpf ipcache list` columns for one cilium_ipcache entry. */
export function formatIpcache(key: Uint8Array, value: Uint8Array): { key: string; value: string } {
  const k = new DataView(key.buffer, key.byteOffset, key.byteLength);
  const v = new DataView(value.buffer, value.byteOffset, value.byteLength);
  return {
    key: `${ipv4String(key, 4)}/${k.getUint32(0, true)}`,
    value: `identity=${v.getUint32(IPC_SEC_ID, true)} encryptkey=${value[IPC_KEY_ID]} tunnelendpoint=${ipv4String(value, IPC_TUNNEL)}`,
  };
}

/** Generic hex form for maps without a dedicated decoder. */
export function formatHex(key: Uint8Array, value: Uint8Array): { key: string; value: string } {
  const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
  return { key: hex(key), value: hex(value) };
}

export function formatterFor(name: string): (key: Uint8Array, value: Uint8Array) => { key: string; value: string } {
  if (name === ENDPOINTS_MAP) return formatLxc;
  if (name === IPCACHE_MAP) return formatIpcache;
  return formatHex;
}
