// Service load-balancer maps, laid out after Cilium's lb4_key / lb4_service / lb4_backend /
// lb4_reverse_nat / lb4_affinity, and the Maglev lookup table.

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
