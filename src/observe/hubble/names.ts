// Names and numbers Hubble shares with Cilium's monitor API (pkg/monitor/api) and flow.proto.

/** Cilium's monitor message types (api.MessageType*), as flows carry them in event_type.type. */
export const MSG_DROP = 1;
export const MSG_DEBUG = 2;
export const MSG_CAPTURE = 3;
export const MSG_TRACE = 4;
export const MSG_POLICY_VERDICT = 5;
export const MSG_RECORDER = 6;
export const MSG_TRACE_SOCK = 7;
export const MSG_ACCESS_LOG = 129;
export const MSG_AGENT = 130;

/** `--type NAME[:SUB]` names (api.MessageTypeNames). */
export const MESSAGE_TYPE_NAMES: Record<string, number> = {
  drop: MSG_DROP, debug: MSG_DEBUG, capture: MSG_CAPTURE, trace: MSG_TRACE, 'policy-verdict': MSG_POLICY_VERDICT,
  recorder: MSG_RECORDER, 'trace-sock': MSG_TRACE_SOCK, l7: MSG_ACCESS_LOG, agent: MSG_AGENT,
};

/** Trace observation points by sub-type (api.TraceObservationPoints). */
export const TRACE_POINTS = ['to-endpoint', 'to-proxy', 'to-host', 'to-stack', 'to-overlay', 'from-endpoint', 'from-proxy', 'from-host', 'from-stack', 'from-overlay', 'from-network', 'to-network'];

/** flow.TraceObservationPoint enum names by sub-type (sub-type 0 is TO_ENDPOINT in flows). */
export const TRACE_POINT_ENUM = ['TO_ENDPOINT', 'TO_PROXY', 'TO_HOST', 'TO_STACK', 'TO_OVERLAY', 'FROM_ENDPOINT', 'FROM_PROXY', 'FROM_HOST', 'FROM_STACK', 'FROM_OVERLAY', 'FROM_NETWORK', 'TO_NETWORK'];

/** Socket translation points: sub-type → printed name and flow enum name. */
export const XLATE_POINTS: Record<string, { sub: number; enum: string }> = {
  'pre-xlate-fwd': { sub: 1, enum: 'SOCK_XLATE_POINT_PRE_DIRECTION_FWD' },
  'post-xlate-fwd': { sub: 2, enum: 'SOCK_XLATE_POINT_POST_DIRECTION_FWD' },
  'pre-xlate-rev': { sub: 3, enum: 'SOCK_XLATE_POINT_PRE_DIRECTION_REV' },
  'post-xlate-rev': { sub: 4, enum: 'SOCK_XLATE_POINT_POST_DIRECTION_REV' },
};
export const XLATE_BY_ENUM: Record<string, string> = Object.fromEntries(Object.entries(XLATE_POINTS).map(([name, v]) => [v.enum, name]));

/** api.PolicyMatchType numbers and their String() forms. */
export const POLICY_MATCH: Record<string, number> = { none: 0, 'L3-Only': 1, 'L3-L4': 2, 'L4-Only': 3, all: 4, 'L3-Proto': 5, 'L4-Proto': 6 };
export const POLICY_MATCH_NAMES = Object.fromEntries(Object.entries(POLICY_MATCH).map(([k, v]) => [v, k])) as Record<number, string>;

export const VERDICTS = ['VERDICT_UNKNOWN', 'FORWARDED', 'DROPPED', 'ERROR', 'AUDIT', 'REDIRECTED', 'TRACED', 'TRANSLATED'];

/** Reserved identities and their names (identity.NumericIdentity.String()). */
export const RESERVED_IDENTITIES: Record<number, string> = {
  0: 'unknown', 1: 'host', 2: 'world', 3: 'unmanaged', 4: 'health', 5: 'init', 6: 'remote-node', 7: 'kube-apiserver', 8: 'ingress', 9: 'world-ipv4', 10: 'world-ipv6',
};
export const RESERVED_BY_NAME: Record<string, number> = Object.fromEntries(Object.entries(RESERVED_IDENTITIES).map(([k, v]) => [v, Number(k)]));

/** flow.DropReason enum names (drop_reason_desc). */
export const DROP_REASON_ENUM: Record<number, string> = {
  130: 'INVALID_SOURCE_MAC', 131: 'INVALID_DESTINATION_MAC', 132: 'INVALID_SOURCE_IP', 133: 'POLICY_DENIED', 134: 'INVALID_PACKET_DROPPED',
  135: 'CT_TRUNCATED_OR_INVALID_HEADER', 136: 'CT_MISSING_TCP_ACK_FLAG', 137: 'CT_UNKNOWN_L4_PROTOCOL', 138: 'CT_CANNOT_CREATE_ENTRY_FROM_PACKET',
  139: 'UNSUPPORTED_L3_PROTOCOL', 140: 'MISSED_TAIL_CALL', 141: 'ERROR_WRITING_TO_PACKET', 142: 'UNKNOWN_L4_PROTOCOL', 143: 'UNKNOWN_ICMPV4_CODE',
  144: 'UNKNOWN_ICMPV4_TYPE', 145: 'UNKNOWN_ICMPV6_CODE', 146: 'UNKNOWN_ICMPV6_TYPE', 147: 'ERROR_RETRIEVING_TUNNEL_KEY', 148: 'ERROR_RETRIEVING_TUNNEL_OPTIONS',
  149: 'INVALID_GENEVE_OPTION', 150: 'UNKNOWN_L3_TARGET_ADDRESS', 151: 'STALE_OR_UNROUTABLE_IP', 152: 'NO_MATCHING_LOCAL_CONTAINER_FOUND',
  153: 'ERROR_WHILE_CORRECTING_L3_CHECKSUM', 154: 'ERROR_WHILE_CORRECTING_L4_CHECKSUM', 155: 'CT_MAP_INSERTION_FAILED', 156: 'INVALID_IPV6_EXTENSION_HEADER',
  157: 'IP_FRAGMENTATION_NOT_SUPPORTED', 158: 'SERVICE_BACKEND_NOT_FOUND', 160: 'NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT', 161: 'FAILED_TO_INSERT_INTO_PROXYMAP',
  162: 'REACHED_EDT_RATE_LIMITING_DROP_HORIZON', 163: 'UNKNOWN_CONNECTION_TRACKING_STATE', 164: 'LOCAL_HOST_IS_UNREACHABLE',
  165: 'NO_CONFIGURATION_AVAILABLE_TO_PERFORM_POLICY_DECISION', 166: 'UNSUPPORTED_L2_PROTOCOL', 167: 'NO_MAPPING_FOR_NAT_MASQUERADE',
  168: 'UNSUPPORTED_PROTOCOL_FOR_NAT_MASQUERADE', 169: 'FIB_LOOKUP_FAILED', 170: 'ENCAPSULATION_TRAFFIC_IS_PROHIBITED', 171: 'INVALID_IDENTITY',
  172: 'UNKNOWN_SENDER', 173: 'NAT_NOT_NEEDED', 174: 'IS_A_CLUSTERIP', 175: 'FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND', 176: 'FORBIDDEN_ICMPV6_MESSAGE',
  177: 'DENIED_BY_LB_SRC_RANGE_CHECK', 178: 'SOCKET_LOOKUP_FAILED', 179: 'SOCKET_ASSIGN_FAILED', 180: 'PROXY_REDIRECTION_NOT_SUPPORTED_FOR_PROTOCOL',
  181: 'POLICY_DENY', 182: 'VLAN_FILTERED', 183: 'INVALID_VNI', 184: 'INVALID_TC_BUFFER', 185: 'NO_SID', 186: 'MISSING_SRV6_STATE', 187: 'NAT46', 188: 'NAT64',
  189: 'AUTH_REQUIRED', 190: 'CT_NO_MAP_FOUND', 191: 'SNAT_NO_MAP_FOUND', 192: 'INVALID_CLUSTER_ID', 193: 'UNSUPPORTED_PROTOCOL_FOR_DSR_ENCAP',
  194: 'NO_EGRESS_GATEWAY', 195: 'UNENCRYPTED_TRAFFIC', 196: 'TTL_EXCEEDED', 197: 'NO_NODE_ID', 198: 'DROP_RATE_LIMITED', 199: 'IGMP_HANDLED',
  200: 'IGMP_SUBSCRIBED', 201: 'MULTICAST_HANDLED', 202: 'DROP_HOST_NOT_READY', 203: 'DROP_EP_NOT_READY', 204: 'DROP_NO_EGRESS_IP', 205: 'DROP_PUNT_PROXY',
};

const UNREACH = ['Net', 'Host', 'Protocol', 'Port', 'FragmentationNeeded', 'SourceRoutingFailed', 'NetUnknown', 'HostUnknown', 'SourceIsolated',
  'NetAdminProhibited', 'HostAdminProhibited', 'NetTOS', 'HostTOS', 'CommAdminProhibited', 'HostPrecedence', 'PrecedenceCutoff'];

const ICMPV4: Record<number, { name: string; codes?: Record<number, string> }> = {
  0: { name: 'EchoReply' },
  3: { name: 'DestinationUnreachable', codes: Object.fromEntries(UNREACH.map((n, i) => [i, n])) },
  4: { name: 'SourceQuench' },
  5: { name: 'Redirect', codes: { 0: 'Net', 1: 'Host', 2: 'TOS+Net', 3: 'TOS+Host' } },
  8: { name: 'EchoRequest' },
  9: { name: 'RouterAdvertisement' },
  10: { name: 'RouterSolicitation' },
  11: { name: 'TimeExceeded', codes: { 0: 'TTLExceeded', 1: 'FragmentReassemblyTimeExceeded' } },
  12: { name: 'ParameterProblem', codes: { 0: 'PointerIndicatesError', 1: 'MissingOption', 2: 'BadLength' } },
  13: { name: 'TimestampRequest' },
  14: { name: 'TimestampReply' },
  15: { name: 'InfoRequest' },
  16: { name: 'InfoReply' },
  17: { name: 'AddressMaskRequest' },
  18: { name: 'AddressMaskReply' },
};

/** gopacket ICMPv4TypeCode.String(): "EchoRequest", "DestinationUnreachable(Port)", "TimeExceeded(TTLExceeded)". */
export function icmpv4TypeCode(type: number, code: number): string {
  const info = ICMPV4[type];
  if (!info) return `${type}(${code})`;
  if (!info.codes) return code === 0 ? info.name : `${info.name}(Code: ${code})`;
  const c = info.codes[code];
  return c === undefined ? `${info.name}(Code: ${code})` : `${info.name}(${c})`;
}

/** Hubble's DNS rcode names (pkg/hubble/metrics/dns). */
