// Cilium's drop reasons, one table: each line is the code (bpf/lib/common.h's DROP_* name), the text
// monitor and Hubble print (pkg/monitor/api/drop.go) and flow.proto's DropReason enum name.
interface DropReason {
  text: string;
  /** flow.DropReason's name. */
  hubble: string;
}

const TABLE = new Map<number, DropReason>();

function drop<C extends number>(code: C, text: string, hubble: string): C {
  TABLE.set(code, { text, hubble });
  return code;
}

export const DROP_UNUSED1 = drop(130, 'Invalid source mac', 'INVALID_SOURCE_MAC'); // unused in Cilium
export const DROP_UNUSED2 = drop(131, 'Invalid destination mac', 'INVALID_DESTINATION_MAC'); // unused in Cilium
export const DROP_INVALID_SIP = drop(132, 'Invalid source ip', 'INVALID_SOURCE_IP');
export const DROP_POLICY = drop(133, 'Policy denied', 'POLICY_DENIED');
export const DROP_INVALID = drop(134, 'Invalid packet', 'INVALID_PACKET_DROPPED');
export const DROP_CT_INVALID_HDR = drop(135, 'CT: Truncated or invalid header', 'CT_TRUNCATED_OR_INVALID_HEADER');
export const DROP_FRAG_NEEDED = drop(136, 'Fragmentation needed', 'CT_MISSING_TCP_ACK_FLAG');
export const DROP_CT_UNKNOWN_PROTO = drop(137, 'CT: Unknown L4 protocol', 'CT_UNKNOWN_L4_PROTOCOL');
export const DROP_NO_CONNTRACK = drop(138, 'CT: Can\'t create entry from packet', 'CT_CANNOT_CREATE_ENTRY_FROM_PACKET');
export const DROP_UNKNOWN_L3 = drop(139, 'Unsupported L3 protocol', 'UNSUPPORTED_L3_PROTOCOL');
export const DROP_MISSED_TAIL_CALL = drop(140, 'Missed tail call', 'MISSED_TAIL_CALL');
export const DROP_WRITE_ERROR = drop(141, 'Error writing to packet', 'ERROR_WRITING_TO_PACKET');
export const DROP_UNKNOWN_L4 = drop(142, 'Unknown L4 protocol', 'UNKNOWN_L4_PROTOCOL');
export const DROP_UNKNOWN_ICMP_CODE = drop(143, 'Unknown ICMPv4 code', 'UNKNOWN_ICMPV4_CODE');
export const DROP_UNKNOWN_ICMP_TYPE = drop(144, 'Unknown ICMPv4 type', 'UNKNOWN_ICMPV4_TYPE');
export const DROP_UNKNOWN_ICMP6_CODE = drop(145, 'Unknown ICMPv6 code', 'UNKNOWN_ICMPV6_CODE');
export const DROP_UNKNOWN_ICMP6_TYPE = drop(146, 'Unknown ICMPv6 type', 'UNKNOWN_ICMPV6_TYPE');
export const DROP_NO_TUNNEL_KEY = drop(147, 'Error retrieving tunnel key', 'ERROR_RETRIEVING_TUNNEL_KEY');
export const DROP_NO_TUNNEL_OPT = drop(148, 'Error retrieving tunnel options', 'ERROR_RETRIEVING_TUNNEL_OPTIONS');
export const DROP_INVALID_GENEVE = drop(149, 'Invalid Geneve option', 'INVALID_GENEVE_OPTION');
export const DROP_UNKNOWN_TARGET = drop(150, 'Unknown L3 target address', 'UNKNOWN_L3_TARGET_ADDRESS');
export const DROP_UNROUTABLE = drop(151, 'Stale or unroutable IP', 'STALE_OR_UNROUTABLE_IP');
export const DROP_NO_LXC = drop(152, 'No matching local container found', 'NO_MATCHING_LOCAL_CONTAINER_FOUND');
export const DROP_CSUM_L3 = drop(153, 'Error while correcting L3 checksum', 'ERROR_WHILE_CORRECTING_L3_CHECKSUM');
export const DROP_CSUM_L4 = drop(154, 'Error while correcting L4 checksum', 'ERROR_WHILE_CORRECTING_L4_CHECKSUM');
export const DROP_CT_CREATE_FAILED = drop(155, 'CT: Map insertion failed', 'CT_MAP_INSERTION_FAILED');
export const DROP_INVALID_EXTHDR = drop(156, 'Invalid IPv6 extension header', 'INVALID_IPV6_EXTENSION_HEADER');
export const DROP_FRAG_NOSUPPORT = drop(157, 'IP fragmentation not supported', 'IP_FRAGMENTATION_NOT_SUPPORTED');
export const DROP_NO_SERVICE = drop(158, 'Service backend not found', 'SERVICE_BACKEND_NOT_FOUND');
export const DROP_NO_TUNNEL_ENDPOINT = drop(160, 'No tunnel/encapsulation endpoint (datapath BUG!)', 'NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT');
export const DROP_NAT_46X64_DISABLED = drop(161, 'NAT 46/64 not enabled', 'FAILED_TO_INSERT_INTO_PROXYMAP');
export const DROP_EDT_HORIZON = drop(162, 'Reached EDT rate-limiting drop horizon', 'REACHED_EDT_RATE_LIMITING_DROP_HORIZON');
export const DROP_UNKNOWN_CT = drop(163, 'Unknown connection tracking state', 'UNKNOWN_CONNECTION_TRACKING_STATE');
export const DROP_HOST_UNREACHABLE = drop(164, 'Local host is unreachable', 'LOCAL_HOST_IS_UNREACHABLE');
export const DROP_NO_CONFIG = drop(165, 'No configuration available to perform policy decision', 'NO_CONFIGURATION_AVAILABLE_TO_PERFORM_POLICY_DECISION');
export const DROP_UNSUPPORTED_L2 = drop(166, 'Unsupported L2 protocol', 'UNSUPPORTED_L2_PROTOCOL');
export const DROP_NAT_NO_MAPPING = drop(167, 'No mapping for NAT masquerade', 'NO_MAPPING_FOR_NAT_MASQUERADE');
export const DROP_NAT_UNSUPP_PROTO = drop(168, 'Unsupported protocol for NAT masquerade', 'UNSUPPORTED_PROTOCOL_FOR_NAT_MASQUERADE');
export const DROP_NO_FIB = drop(169, 'FIB lookup failed', 'FIB_LOOKUP_FAILED');
export const DROP_ENCAP_PROHIBITED = drop(170, 'Encapsulation traffic is prohibited', 'ENCAPSULATION_TRAFFIC_IS_PROHIBITED');
export const DROP_INVALID_IDENTITY = drop(171, 'Invalid identity', 'INVALID_IDENTITY');
export const DROP_UNKNOWN_SENDER = drop(172, 'Unknown sender', 'UNKNOWN_SENDER');
export const DROP_NAT_NOT_NEEDED = drop(173, 'NAT not needed', 'NAT_NOT_NEEDED');
export const DROP_IS_CLUSTER_IP = drop(174, 'Is a ClusterIP', 'IS_A_CLUSTERIP');
export const DROP_FRAG_NOT_FOUND = drop(175, 'First logical datagram fragment not found', 'FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND');
export const DROP_FORBIDDEN_ICMP6 = drop(176, 'Forbidden ICMPv6 message', 'FORBIDDEN_ICMPV6_MESSAGE');
export const DROP_NOT_IN_SRC_RANGE = drop(177, 'Denied by LB src range check', 'DENIED_BY_LB_SRC_RANGE_CHECK');
export const DROP_PROXY_LOOKUP_FAILED = drop(178, 'Socket lookup failed', 'SOCKET_LOOKUP_FAILED');
export const DROP_PROXY_SET_FAILED = drop(179, 'Socket assign failed', 'SOCKET_ASSIGN_FAILED');
export const DROP_PROXY_UNKNOWN_PROTO = drop(180, 'Proxy redirection not supported for protocol', 'PROXY_REDIRECTION_NOT_SUPPORTED_FOR_PROTOCOL');
export const DROP_POLICY_DENY = drop(181, 'Policy denied by denylist', 'POLICY_DENY');
export const DROP_VLAN_FILTERED = drop(182, 'VLAN traffic disallowed by VLAN filter', 'VLAN_FILTERED');
export const DROP_INVALID_VNI = drop(183, 'Incorrect VNI from VTEP', 'INVALID_VNI');
export const DROP_INVALID_TC_BUFFER = drop(184, 'Failed to update or lookup TC buffer', 'INVALID_TC_BUFFER');
export const DROP_NO_SID = drop(185, 'No SID was found for the IP address', 'NO_SID');
export const DROP_MISSING_SRV6_STATE = drop(186, 'SRv6 state was removed during tail call', 'MISSING_SRV6_STATE');
export const DROP_NAT46 = drop(187, 'L3 translation from IPv4 to IPv6 failed (NAT46)', 'NAT46');
export const DROP_NAT64 = drop(188, 'L3 translation from IPv6 to IPv4 failed (NAT64)', 'NAT64');
export const DROP_POLICY_AUTH_REQUIRED = drop(189, 'Authentication required', 'AUTH_REQUIRED');
export const DROP_CT_NO_MAP_FOUND = drop(190, 'No conntrack map found', 'CT_NO_MAP_FOUND');
export const DROP_SNAT_NO_MAP_FOUND = drop(191, 'No nat map found', 'SNAT_NO_MAP_FOUND');
export const DROP_INVALID_CLUSTER_ID = drop(192, 'Invalid ClusterID', 'INVALID_CLUSTER_ID');
export const DROP_UNSUPP_SERVICE_PROTO = drop(193, 'Unsupported packet protocol for DSR encapsulation', 'UNSUPPORTED_PROTOCOL_FOR_DSR_ENCAP');
export const DROP_NO_EGRESS_GATEWAY = drop(194, 'No egress gateway found', 'NO_EGRESS_GATEWAY');
export const DROP_UNENCRYPTED_TRAFFIC = drop(195, 'Traffic is unencrypted', 'UNENCRYPTED_TRAFFIC');
export const DROP_TTL_EXCEEDED = drop(196, 'TTL exceeded', 'TTL_EXCEEDED');
export const DROP_NO_NODE_ID = drop(197, 'No node ID found', 'NO_NODE_ID');
export const DROP_RATE_LIMITED = drop(198, 'Rate limited', 'DROP_RATE_LIMITED');
export const DROP_IGMP_HANDLED = drop(199, 'IGMP handled', 'IGMP_HANDLED');
export const DROP_IGMP_SUBSCRIBED = drop(200, 'IGMP subscribed', 'IGMP_SUBSCRIBED');
export const DROP_MULTICAST_HANDLED = drop(201, 'Multicast handled', 'MULTICAST_HANDLED');
export const DROP_HOST_NOT_READY = drop(202, 'Host datapath not ready', 'DROP_HOST_NOT_READY');
export const DROP_EP_NOT_READY = drop(203, 'Endpoint policy program not available', 'DROP_EP_NOT_READY');
export const DROP_NO_EGRESS_IP = drop(204, 'No Egress IP configured', 'DROP_NO_EGRESS_IP');
export const DROP_PUNT_PROXY = drop(205, 'Punt to proxy', 'DROP_PUNT_PROXY');

/** Codes below 130 are not drops but other notify reasons drop.go names as well. */
const NON_DROP: Record<number, string> = {
  0: 'Success', 2: 'Invalid packet', 3: 'Interface', 4: 'Interface Decrypted', 5: 'LB, sock cgroup: No backend slot entry found',
  6: 'LB, sock cgroup: No backend entry found', 7: 'LB, sock cgroup: Reverse entry update failed', 8: 'LB, sock cgroup: Reverse entry stale',
  9: 'Fragmented packet', 10: 'Fragmented packet entry update failed', 11: 'Missed tail call to custom program', 12: 'Interface Decrypting',
  13: 'Interface Encrypting', 14: 'LB: sock cgroup: Reverse entry delete succeeded', 15: 'MTU error message',
};

/** The text monitor and Hubble print ("Policy denied"). */
export function dropReasonText(code: number): string {
  return TABLE.get(code)?.text ?? NON_DROP[code] ?? `Unknown drop reason (${code})`;
}

/** flow.DropReason's name ("POLICY_DENIED"); undefined for a code flow.proto does not have. */
export const dropReasonEnum = (code: number): string | undefined => (code === 0 ? 'DROP_REASON_UNKNOWN' : TABLE.get(code)?.hubble);

/** Every flow.DropReason name (`--drop-reason-desc` values). */
export const DROP_REASON_ENUM_NAMES: readonly string[] = ['DROP_REASON_UNKNOWN', ...[...TABLE.values()].map((r) => r.hubble)];
