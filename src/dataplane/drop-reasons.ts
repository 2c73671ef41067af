// Cilium's drop reasons (pkg/monitor/api/drop.go): code → the text monitor and hubble print.
export const DROP_UNUSED1 = 130;
export const DROP_INVALID_SMAC = 131;
export const DROP_INVALID_SIP = 132;
export const DROP_POLICY = 133;
export const DROP_INVALID = 134;
export const DROP_CT_INVALID_HDR = 135;
export const DROP_FRAG_NEEDED = 136;
export const DROP_CT_UNKNOWN_PROTO = 137;
export const DROP_NO_CONNTRACK = 138;
export const DROP_UNKNOWN_L3 = 139;
export const DROP_MISSED_TAIL_CALL = 140;
export const DROP_WRITE_ERROR = 141;
export const DROP_UNKNOWN_L4 = 142;
export const DROP_UNKNOWN_ICMP_CODE = 143;
export const DROP_UNKNOWN_ICMP_TYPE = 144;
export const DROP_UNKNOWN_ICMP6_CODE = 145;
export const DROP_UNKNOWN_ICMP6_TYPE = 146;
export const DROP_NO_TUNNEL_KEY = 147;
export const DROP_UNKNOWN_TARGET = 150;
export const DROP_UNROUTABLE = 151;
export const DROP_CSUM_L3 = 153;
export const DROP_CSUM_L4 = 154;
export const DROP_CT_CREATE_FAILED = 155;
export const DROP_INVALID_EXTHDR = 156;
export const DROP_FRAG_NOSUPPORT = 157;
export const DROP_NO_SERVICE = 158;
export const DROP_NO_TUNNEL_ENDPOINT = 160;
export const DROP_EDT_HORIZON = 162;
export const DROP_UNKNOWN_CT = 163;
export const DROP_HOST_UNREACHABLE = 164;
export const DROP_NO_CONFIG = 165;
export const DROP_UNSUPPORTED_L2 = 166;
export const DROP_NAT_NO_MAPPING = 167;
export const DROP_NAT_UNSUPP_PROTO = 168;
export const DROP_NO_FIB = 169;
export const DROP_ENCAP_PROHIBITED = 170;
export const DROP_INVALID_IDENTITY = 171;
export const DROP_UNKNOWN_SENDER = 172;
export const DROP_NAT_NOT_NEEDED = 173;
export const DROP_IS_CLUSTER_IP = 174;
export const DROP_FRAG_NOT_FOUND = 175;
export const DROP_FORBIDDEN_ICMP6 = 176;
export const DROP_NOT_IN_SRC_RANGE = 177;
export const DROP_PROXY_LOOKUP_FAILED = 178;
export const DROP_PROXY_SET_FAILED = 179;
export const DROP_PROXY_UNKNOWN_PROTO = 180;
export const DROP_POLICY_DENY = 181;
export const DROP_VLAN_FILTERED = 182;
export const DROP_INVALID_VNI = 183;
export const DROP_INVALID_TC_BUFFER = 184;
export const DROP_NO_SID = 185;
export const DROP_MISSING_SRV6_STATE = 186;
export const DROP_NAT46 = 187;
export const DROP_NAT64 = 188;
export const DROP_POLICY_AUTH_REQUIRED = 189;
export const DROP_CT_NO_MAP_FOUND = 190;
export const DROP_SNAT_NO_MAP_FOUND = 191;
export const DROP_INVALID_CLUSTER_ID = 192;
export const DROP_UNSUPP_SERVICE_PROTO = 193;
export const DROP_NO_EGRESS_GATEWAY = 194;
export const DROP_UNENCRYPTED_TRAFFIC = 195;
export const DROP_TTL_EXCEEDED = 196;
export const DROP_NO_NODE_ID = 197;
export const DROP_RATE_LIMITED = 198;
export const DROP_IGMP_HANDLED = 199;
export const DROP_IGMP_SUBSCRIBED = 200;
export const DROP_MULTICAST_HANDLED = 201;
export const DROP_HOST_NOT_READY = 202;
export const DROP_EP_NOT_READY = 203;
export const DROP_NO_EGRESS_IP = 204;
export const DROP_PUNT_PROXY = 205;

export const DROP_REASONS: Record<number, string> = {
  0: 'Success',
  2: 'Invalid packet',
  3: 'Interface',
  4: 'Interface Decrypted',
  5: 'LB, sock cgroup: No backend slot entry found',
  6: 'LB, sock cgroup: No backend entry found',
  130: 'Invalid source mac',
  131: 'Invalid destination mac',
  132: 'Invalid source ip',
  133: 'Policy denied',
  134: 'Invalid packet',
  135: 'CT: Truncated or invalid header',
  136: 'Fragmentation needed',
  137: 'CT: Unknown L4 protocol',
  138: 'CT: Can\'t create entry from packet',
  139: 'Unknown L3 target address',
  140: 'Missed tail call',
  141: 'Error writing to packet',
  142: 'Unknown L4 protocol',
  143: 'Unknown ICMPv4 code',
  144: 'Unknown ICMPv4 type',
  145: 'Unknown ICMPv6 code',
  146: 'Unknown ICMPv6 type',
  147: 'Error retrieving tunnel key',
  150: 'Unknown connection tracking state',
  151: 'Unroutable',
  153: 'Invalid L3 checksum',
  154: 'Invalid L4 checksum',
  155: 'CT: Map insertion failed',
  156: 'Invalid IPv6 extension header',
  157: 'Fragmentation not supported',
  158: 'No service backend',
  160: 'No tunnel/encapsulation endpoint (datapath BUG!)',
  162: 'EDT horizon drop',
  163: 'Unknown CT',
  164: 'Host unreachable',
  165: 'No configuration available to perform policy decision',
  166: 'Unsupported L2 protocol',
  167: 'No mapping for NAT masquerade',
  168: 'Unsupported protocol for NAT masquerade',
  169: 'FIB lookup failed',
  170: 'Encapsulation traffic is prohibited',
  171: 'Invalid identity',
  172: 'Unknown sender',
  173: 'NAT not needed',
  174: 'Is a ClusterIP',
  175: 'First logical datagram fragment not found',
  176: 'Forbidden ICMPv6 message',
  177: 'Denied by LB src range check',
  178: 'Socket lookup failed',
  179: 'Socket assign failed',
  180: 'Proxy redirection not supported for protocol',
  181: 'Policy denied by denylist',
  182: 'VLAN traffic disallowed by VLAN filter',
  183: 'Incorrect VNI from VTEP',
  184: 'Failed to update or lookup TC buffer',
  185: 'No SID was found for the IP address',
  186: 'SRv6 state was removed during tail call',
  187: 'L3 translation from IPv4 to IPv6 failed (NAT46)',
  188: 'L3 translation from IPv6 to IPv4 failed (NAT64)',
  189: 'Authentication required',
  190: 'No conntrack map found',
  191: 'No nat map found',
  192: 'Invalid ClusterID',
  193: 'Unsupported packet protocol for DSR encapsulation',
  194: 'No egress gateway found',
  195: 'Traffic is unencrypted',
  196: 'TTL exceeded',
  197: 'No node ID found',
  198: 'Rate limited',
  199: 'IGMP handled',
  200: 'IGMP subscribed',
  201: 'Multicast handled',
  202: 'Host datapath not ready',
  203: 'Endpoint policy program not available',
  204: 'No Egress IP configured',
  205: 'Punt to proxy',
};

export function dropReasonText(code: number): string {
  return DROP_REASONS[code] ?? `Unknown drop reason (${code})`;
}
