// Service load-balancer maps, laid out after Cilium's lb4_key / lb4_service / lb4_backend /
// lb4_reverse_nat / lb4_affinity, and the Maglev lookup table.
import type { BpfMap } from '../types.ts';
import { specOf, viewOf, type MapDef } from './types.ts';
import { ipv4String } from './text.ts';
import { parseIPv4 } from '../../wire/ip-text.ts';

export const LB_SERVICES_MAP = 'cilium_lb4_services_v2';
export const LB_BACKENDS_MAP = 'cilium_lb4_backends_v3';
export const LB_REVNAT_MAP = 'cilium_lb4_reverse_nat';
export const LB_AFFINITY_MAP = 'cilium_lb4_affinity';
export const LB_MAGLEV_MAP = 'cilium_lb4_maglev';

/** lb4_key: frontend address + port + slot (0 = the service itself, 1..count = its backends). */
export const SK_ADDRESS = 0; // u32 BE
export const SK_DPORT = 4; // u16 BE
export const SK_SLOT = 6; // u16 LE
export const SK_PROTO = 8; // u8
export const SK_SCOPE = 9; // u8
export const SVC_KEY_SIZE = 12;

/** lb4_service: slot 0 holds count, rev-NAT index, flags and the affinity timeout; slots > 0 a backend id. */
export const SV_BACKEND_ID = 0; // u32 (slot > 0), affinity timeout seconds (slot 0)
export const SV_COUNT = 4; // u16
export const SV_REV_NAT = 6; // u16
export const SV_FLAGS = 8; // u8
export const SV_FLAGS2 = 9; // u8
export const SVC_VALUE_SIZE = 12;

export const SVC_FLAG_EXTERNAL_IP = 1 << 0;
export const SVC_FLAG_NODEPORT = 1 << 1;
export const SVC_FLAG_EXT_LOCAL_SCOPE = 1 << 2; // externalTrafficPolicy: Local
export const SVC_FLAG_HOSTPORT = 1 << 3;
export const SVC_FLAG_AFFINITY = 1 << 4;
export const SVC_FLAG_LOADBALANCER = 1 << 5;
export const SVC_FLAG_ROUTABLE = 1 << 6;
export const SVC_FLAG2_MAGLEV = 1 << 7; // ciliary: this service selects through cilium_lb4_maglev

/** lb4_backend */
export const BE_ADDRESS = 0; // u32 BE
export const BE_PORT = 4; // u16 BE
export const BE_PROTO = 6; // u8
export const BE_FLAGS = 7; // u8 state
export const BACKEND_VALUE_SIZE = 12;
export const BE_STATE_ACTIVE = 0;
export const BE_STATE_TERMINATING = 1;

/** lb4_reverse_nat (key: u32 index) */
export const RN_ADDRESS = 0; // u32 BE
export const RN_PORT = 4; // u16 BE
export const REVNAT_VALUE_SIZE = 8;

/** lb4_affinity: key {client u32 BE, rev-NAT u16 LE}, value {last used f64 seconds, backend id u32} */
export const AK_CLIENT = 0;
export const AK_REV_NAT = 4;
export const AFFINITY_KEY_SIZE = 8;
export const AV_LAST_USED = 0;
export const AV_BACKEND = 8;
export const AFFINITY_VALUE_SIZE = 16;

export const PROTO_TCP = 6;
export const PROTO_UDP = 17;
export const protoNumber = (p: string) => (p.toUpperCase() === 'UDP' ? PROTO_UDP : p.toUpperCase() === 'SCTP' ? 132 : PROTO_TCP);
export const protoName = (n: number) => (n === PROTO_UDP ? 'UDP' : n === 132 ? 'SCTP' : n === PROTO_TCP ? 'TCP' : 'ANY');

export interface LbServiceKey {
  address: string;
  port: number;
  /** 0 = the service itself, 1..count = its backends. */
  slot: number;
  proto: number;
  scope: number;
}

export interface LbServiceValue {
  /** Slot > 0: the backend id; slot 0: the affinity timeout in seconds. */
  backendId: number;
  count: number;
  revNat: number;
  flags: number;
  flags2: number;
}

export interface LbBackendValue {
  address: string;
  port: number;
  proto: number;
  state: number;
}

export interface LbAddress {
  address: string;
  port: number;
}

export interface LbAffinityKey {
  client: string;
  revNat: number;
}

export interface LbAffinityValue {
  lastUsed: number;
  backendId: number;
}

/** Keys of the maps indexed by a u32 id (backends, rev-NAT, Maglev rows). */
export interface LbIdKey {
  id: number;
}

const idKey = {
  keySize: 4,
  decodeKey: (b: Uint8Array): LbIdKey => ({ id: viewOf(b).getUint32(0, true) }),
  encodeKey: (k: LbIdKey, out: Uint8Array) => viewOf(out).setUint32(0, k.id, true),
};

/** `10.96.0.10:53` for TCP, with the protocol otherwise (Cilium's older `ip:port` for TCP). */
export function frontendText(k: LbServiceKey): string {
  return `${k.address}:${k.port}${k.proto === PROTO_TCP ? '' : `/${protoName(k.proto)}`}`;
}

/** `NodePort, Local, non-routable`: the service type and scope its flags say, as Cilium's ServiceFlags.String. */
export function serviceTypeText(flags: number): string {
  const kinds: string[] = [];
  if (flags & SVC_FLAG_NODEPORT) kinds.push('NodePort');
  else if (flags & SVC_FLAG_EXTERNAL_IP) kinds.push('ExternalIPs');
  else if (flags & SVC_FLAG_LOADBALANCER) kinds.push('LoadBalancer');
  else if (flags & SVC_FLAG_HOSTPORT) kinds.push('HostPort');
  else kinds.push('ClusterIP');
  if (flags & SVC_FLAG_EXT_LOCAL_SCOPE) kinds.push('Local');
  if (!(flags & SVC_FLAG_ROUTABLE)) kinds.push('non-routable');
  return kinds.join(', ');
}

export const lbServicesDef: MapDef<LbServiceKey, LbServiceValue> = {
  name: LB_SERVICES_MAP,
  matches: (n) => n === LB_SERVICES_MAP,
  type: 'hash',
  keySize: SVC_KEY_SIZE,
  valueSize: SVC_VALUE_SIZE,
  maxEntries: 'bpf-lb-map-max',
  decodeKey(b) {
    const k = viewOf(b);
    return { address: ipv4String(b, SK_ADDRESS), port: k.getUint16(SK_DPORT), slot: k.getUint16(SK_SLOT, true), proto: b[SK_PROTO], scope: b[SK_SCOPE] };
  },
  decodeValue(b) {
    const v = viewOf(b);
    return { backendId: v.getUint32(SV_BACKEND_ID, true), count: v.getUint16(SV_COUNT, true), revNat: v.getUint16(SV_REV_NAT, true), flags: b[SV_FLAGS], flags2: b[SV_FLAGS2] };
  },
  encodeKey(x, out) {
    const k = viewOf(out);
    k.setUint32(SK_ADDRESS, parseIPv4(x.address));
    k.setUint16(SK_DPORT, x.port);
    k.setUint16(SK_SLOT, x.slot, true);
    out[SK_PROTO] = x.proto;
    out[SK_SCOPE] = x.scope;
  },
  encodeValue(x, out) {
    const v = viewOf(out);
    v.setUint32(SV_BACKEND_ID, x.backendId, true);
    v.setUint16(SV_COUNT, x.count, true);
    v.setUint16(SV_REV_NAT, x.revNat, true);
    out[SV_FLAGS] = x.flags;
    out[SV_FLAGS2] = x.flags2;
  },
  format: (k, v) => ({
    key: `${frontendText(k)} (${k.slot})`,
    value: k.slot === 0
      ? `count=${v.count} revnat=${v.revNat} [${serviceTypeText(v.flags)}]${v.flags & SVC_FLAG_AFFINITY ? ` affinity-timeout=${v.backendId}s` : ''}${v.flags2 & SVC_FLAG2_MAGLEV ? ' maglev' : ''}`
      : `backend=${v.backendId} revnat=${v.revNat}`,
  }),
};

export const lbBackendsDef: MapDef<LbIdKey, LbBackendValue> = {
  name: LB_BACKENDS_MAP,
  matches: (n) => n === LB_BACKENDS_MAP,
  type: 'hash',
  ...idKey,
  valueSize: BACKEND_VALUE_SIZE,
  maxEntries: 'bpf-lb-map-max',
  decodeValue(b) {
    const v = viewOf(b);
    return { address: ipv4String(b, BE_ADDRESS), port: v.getUint16(BE_PORT), proto: b[BE_PROTO], state: b[BE_FLAGS] };
  },
  encodeValue(x, out) {
    const v = viewOf(out);
    v.setUint32(BE_ADDRESS, parseIPv4(x.address));
    v.setUint16(BE_PORT, x.port);
    out[BE_PROTO] = x.proto;
    out[BE_FLAGS] = x.state;
  },
  format: (k, v) => ({ key: String(k.id), value: `${v.address}:${v.port}/${protoName(v.proto)} ${v.state === BE_STATE_TERMINATING ? 'terminating' : 'active'}` }),
};

export const lbRevNatDef: MapDef<LbIdKey, LbAddress> = {
  name: LB_REVNAT_MAP,
  matches: (n) => n === LB_REVNAT_MAP,
  type: 'hash',
  ...idKey,
  valueSize: REVNAT_VALUE_SIZE,
  maxEntries: 'bpf-lb-map-max',
  decodeValue: (b) => ({ address: ipv4String(b, RN_ADDRESS), port: viewOf(b).getUint16(RN_PORT) }),
  encodeValue(x, out) {
    const v = viewOf(out);
    v.setUint32(RN_ADDRESS, parseIPv4(x.address));
    v.setUint16(RN_PORT, x.port);
  },
  format: (k, v) => ({ key: String(k.id), value: `${v.address}:${v.port}` }),
};

export const lbAffinityDef: MapDef<LbAffinityKey, LbAffinityValue> = {
  name: LB_AFFINITY_MAP,
  matches: (n) => n === LB_AFFINITY_MAP,
  type: 'lru_hash',
  keySize: AFFINITY_KEY_SIZE,
  valueSize: AFFINITY_VALUE_SIZE,
  maxEntries: 'bpf-lb-map-max',
  decodeKey: (b) => ({ client: ipv4String(b, AK_CLIENT), revNat: viewOf(b).getUint16(AK_REV_NAT, true) }),
  decodeValue(b) {
    const v = viewOf(b);
    return { lastUsed: v.getFloat64(AV_LAST_USED, true), backendId: v.getUint32(AV_BACKEND, true) };
  },
  encodeKey(x, out) {
    const k = viewOf(out);
    k.setUint32(AK_CLIENT, parseIPv4(x.client));
    k.setUint16(AK_REV_NAT, x.revNat, true);
  },
  encodeValue(x, out) {
    const v = viewOf(out);
    v.setFloat64(AV_LAST_USED, x.lastUsed, true);
    v.setUint32(AV_BACKEND, x.backendId, true);
  },
  format: (k, v) => ({ key: `client=${k.client} revnat=${k.revNat}`, value: `backend=${v.backendId} last-used=${v.lastUsed}` }),
};

/** A Maglev row: the service's lookup table, one backend id per position. */
export interface LbMaglevValue {
  backendIds: number[];
}

export const lbMaglevDef: MapDef<LbIdKey, LbMaglevValue> = {
  name: LB_MAGLEV_MAP,
  matches: (n) => n === LB_MAGLEV_MAP,
  type: 'array',
  ...idKey,
  valueSize: 0,
  maxEntries: 'services using Maglev (value: 4 × bpf-lb-maglev-table-size)',
  decodeValue: (b) => ({ backendIds: Array.from({ length: b.length >> 2 }, (_, i) => viewOf(b).getUint32(4 * i, true)) }),
  encodeValue(x, out) {
    const v = viewOf(out);
    x.backendIds.forEach((id, i) => v.setUint32(4 * i, id, true));
  },
  format(k, v) {
    const share = new Map<number, number>();
    for (const id of v.backendIds) share.set(id, (share.get(id) ?? 0) + 1);
    const parts = [...share].sort((a, b) => a[0] - b[0]).map(([id, n]) => `${id}×${n}`);
    return { key: `revnat=${k.id}`, value: `table of ${v.backendIds.length}: backend×positions ${parts.join(' ')}` };
  },
};

export const lbSpecs = (sizes: { services: number; backends: number; maglevTableSize: number; maglevServices: number }) => [
  specOf(lbServicesDef, sizes.services),
  specOf(lbBackendsDef, sizes.backends),
  specOf(lbRevNatDef, sizes.services),
  specOf(lbAffinityDef, sizes.services),
  specOf(lbMaglevDef, sizes.maglevServices, LB_MAGLEV_MAP, 4 * sizes.maglevTableSize),
];

type Dumpable = Pick<BpfMap, 'dump'>;
const decodeAll = <K, V>(def: MapDef<K, V>, m: Dumpable) => m.dump().map((e) => ({ key: def.decodeKey(e.key), value: def.decodeValue(e.value) }));

/** `cilium bpf lb list [--revnat]` rows; a continuation row has an empty first cell (agent API and --from-file). */
export function lbListRows(services: Dumpable, backends: Dumpable, revNat: Dumpable, showRevNat: boolean): Array<[string, string]> {
  if (showRevNat) {
    return decodeAll(lbRevNatDef, revNat).sort((a, b) => a.key.id - b.key.id).map(({ key, value }) => [String(key.id), `${value.address}:${value.port}`]);
  }
  const backendById = new Map(decodeAll(lbBackendsDef, backends).map((e) => [e.key.id, e.value]));
  const groups = new Map<string, Array<[number, string]>>();
  for (const { key, value } of decodeAll(lbServicesDef, services)) {
    const frontend = frontendText(key);
    let text: string;
    if (key.slot === 0) {
      text = `0.0.0.0:0 (${value.revNat}) [${serviceTypeText(value.flags)}]`;
    } else {
      const be = backendById.get(value.backendId);
      text = be ? `${be.address}:${be.port} (${value.revNat})` : `<missing backend> (${value.revNat})`;
    }
    const list = groups.get(frontend) ?? [];
    list.push([key.slot, text]);
    groups.set(frontend, list);
  }
  const rows: Array<[string, string]> = [];
  const order = [...groups.keys()].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  for (const fe of order) {
    const list = groups.get(fe)!.sort((a, b) => a[0] - b[0]);
    const [first, ...rest] = [list[0], ...list.slice(1).sort((a, b) => a[1].localeCompare(b[1], undefined, { numeric: true }))];
    rows.push([fe, first[1]]);
    for (const r of rest) rows.push(['', r[1]]);
  }
  return rows;
}
