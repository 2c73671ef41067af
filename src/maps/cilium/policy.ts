// cilium_policy_<id>: an endpoint's LPM policy map (layout, codec) and the `bpf policy get` table.
//
// key   = u32 LE prefix length (48 + portPrefixLen) | identity u32 BE | egress u8 | protocol u8 | dport u16 BE
// value = flags u8 (bit0 deny) | pad u8 | proxyPort u16 LE | authType u8 | pad u8×3 | packets f64 LE | bytes f64 LE
import { blockEnd } from '../../policy/ports.ts';
import { entryOrder } from '../../policy/entries.ts';
import type { PolicyEntry } from '../../policy/types.ts';
import { formatTable } from '../../cli/table.ts';
import { specOf, type MapDef } from './types.ts';
import { IP_PROTO_NAMES } from './text.ts';

export const POLICY_KEY_SIZE = 12;
export const POLICY_VALUE_SIZE = 24;
/** Identity, direction and protocol are always matched exactly: 32 + 8 + 8 bits. */
export const POLICY_STATIC_PREFIX = 48;
export const POLICY_FLAG_DENY = 1;
export const POLICY_VALUE_PACKETS = 8;
export const POLICY_VALUE_BYTES = 16;
/** Value field offsets and flag, under the short names the datapath reads them by. */
export const V_FLAGS = 0;
export const V_PROXY_PORT = 2;
export const V_AUTH_TYPE = 4;
export const V_PACKETS = POLICY_VALUE_PACKETS;
export const V_BYTES = POLICY_VALUE_BYTES;
export const FLAG_DENY = POLICY_FLAG_DENY;

/** Pinned name of an endpoint's policy map. */
export function policyMapName(endpointId: number): string {
  return `cilium_policy_${endpointId}`;
}

const POLICY_NAME_RE = /^cilium_policy_(\d+)$/;

/** The endpoint id in a policy map's name, or undefined for another map. */
export function policyMapEndpoint(name: string): number | undefined {
  const m = POLICY_NAME_RE.exec(name);
  return m ? Number(m[1]) : undefined;
}

type KeyFields = Pick<PolicyEntry, 'identity' | 'egress' | 'protocol' | 'port' | 'portPrefixLen'>;
type PolicyValue = Pick<DecodedPolicyEntry, 'deny' | 'proxyPort' | 'authType' | 'packets' | 'bytes'>;

export function encodeKey(e: KeyFields, buf: Uint8Array, off = 0): void {
  const dv = new DataView(buf.buffer, buf.byteOffset + off, POLICY_KEY_SIZE);
  dv.setUint32(0, POLICY_STATIC_PREFIX + e.portPrefixLen, true);
  dv.setUint32(4, e.identity >>> 0, false);
  dv.setUint8(8, e.egress ? 1 : 0);
  dv.setUint8(9, e.protocol);
  // Host bits below the prefix are cleared, as the LPM map normalises them.
  const mask = e.portPrefixLen === 0 ? 0 : (0xffff << (16 - e.portPrefixLen)) & 0xffff;
  dv.setUint16(10, e.port & mask, false);
}

export function encodeValue(e: Pick<PolicyEntry, 'deny' | 'proxyPort'>, buf: Uint8Array, off = 0, counters: { packets?: number; bytes?: number } = {}): void {
  const dv = new DataView(buf.buffer, buf.byteOffset + off, POLICY_VALUE_SIZE);
  dv.setUint8(0, e.deny ? POLICY_FLAG_DENY : 0);
  dv.setUint8(1, 0);
  dv.setUint16(2, e.deny ? 0 : e.proxyPort, true);
  dv.setUint8(4, 0); // auth type: disabled
  dv.setUint8(5, 0);
  dv.setUint16(6, 0);
  dv.setFloat64(POLICY_VALUE_PACKETS, counters.packets ?? 0, true);
  dv.setFloat64(POLICY_VALUE_BYTES, counters.bytes ?? 0, true);
}

export interface DecodedPolicyEntry extends PolicyEntry {
  packets: number;
  bytes: number;
  authType: number;
}

export function decodeKeyFields(key: Uint8Array, keyOff = 0): KeyFields {
  const k = new DataView(key.buffer, key.byteOffset + keyOff, POLICY_KEY_SIZE);
  return {
    identity: k.getUint32(4, false),
    egress: k.getUint8(8) !== 0,
    protocol: k.getUint8(9),
    port: k.getUint16(10, false),
    portPrefixLen: k.getUint32(0, true) - POLICY_STATIC_PREFIX,
  };
}

export function decodeValueFields(value: Uint8Array, valueOff = 0): PolicyValue {
  const v = new DataView(value.buffer, value.byteOffset + valueOff, POLICY_VALUE_SIZE);
  return {
    deny: (v.getUint8(0) & POLICY_FLAG_DENY) !== 0,
    proxyPort: v.getUint16(2, true),
    authType: v.getUint8(4),
    packets: v.getFloat64(POLICY_VALUE_PACKETS, true),
    bytes: v.getFloat64(POLICY_VALUE_BYTES, true),
  };
}

export function decodeEntry(key: Uint8Array, value: Uint8Array, keyOff = 0, valueOff = 0): DecodedPolicyEntry {
  return { ...decodeKeyFields(key, keyOff), ...decodeValueFields(value, valueOff), ruleLabels: [] };
}

export function protoName(p: number): string {
  return IP_PROTO_NAMES[p] ?? String(p);
}

/** `80/TCP`, `8080-8087/TCP`, `ANY/UDP`, or `ANY`. */
export function formatPortProto(e: KeyFields): string {
  const proto = protoName(e.protocol);
  if (e.portPrefixLen === 0) return e.protocol === 0 ? 'ANY' : `ANY/${proto}`;
  if (e.portPrefixLen >= 16) return `${e.port}/${proto}`;
  return `${e.port}-${blockEnd({ port: e.port, prefixLen: e.portPrefixLen })}/${proto}`;
}

export type PolicyRow = KeyFields & Pick<PolicyEntry, 'deny' | 'proxyPort'> & { packets?: number; bytes?: number };

/**
 * `cilium bpf policy get` table. `labelsOf` gives an identity's labels (identity 0 prints ANY); an
 * identity with several labels prints one per line, the other columns on the first line only.
 */
export function formatPolicyEntries(rows: readonly PolicyRow[], labelsOf: (identity: number) => readonly string[] | undefined): string {
  const table: string[][] = [['POLICY', 'DIRECTION', 'LABELS (source:key[=value])', 'PORT/PROTO', 'PROXY PORT', 'AUTH TYPE', 'BYTES', 'PACKETS', 'PREFIX']];
  const sorted = [...rows].sort((a, b) => entryOrder(a as PolicyEntry, b as PolicyEntry));
  for (const r of sorted) {
    const labels = r.identity === 0 ? ['ANY'] : [...(labelsOf(r.identity) ?? [`unknown identity ${r.identity}`])].sort();
    table.push([
      r.deny ? 'Deny' : 'Allow',
      r.egress ? 'Egress' : 'Ingress',
      labels[0] ?? '',
      formatPortProto(r),
      r.proxyPort && !r.deny ? String(r.proxyPort) : 'NONE',
      'disabled',
      String(r.bytes ?? 0),
      String(r.packets ?? 0),
      String((r.protocol !== 0 ? 8 : 0) + r.portPrefixLen),
    ]);
    for (const l of labels.slice(1)) table.push(['', '', l, '', '', '', '', '', '']);
  }
  return formatTable(table, { padding: 3 });
}

export const policyDef: MapDef<KeyFields, PolicyValue> = {
  name: 'cilium_policy_<endpoint id>',
  matches: (n) => POLICY_NAME_RE.test(n),
  type: 'lpm_trie',
  keySize: POLICY_KEY_SIZE,
  valueSize: POLICY_VALUE_SIZE,
  maxEntries: 'bpf-policy-map-max',
  decodeKey: (b) => decodeKeyFields(b),
  decodeValue: (b) => decodeValueFields(b),
  encodeKey: (k, out) => encodeKey(k, out),
  encodeValue(v, out) {
    encodeValue(v, out, 0, v);
    out[V_AUTH_TYPE] = v.authType;
  },
  format: (k, v) => ({
    key: `identity=${k.identity} ${k.egress ? 'egress' : 'ingress'} ${formatPortProto(k)}`,
    value: `${v.deny ? 'deny' : 'allow'} proxy-port=${v.proxyPort} auth-type=${v.authType} packets=${v.packets} bytes=${v.bytes}`,
  }),
};

export const policySpec = (endpointId: number, maxEntries: number) => specOf(policyDef, maxEntries, policyMapName(endpointId));
