// Layout of the per-packet metadata record the native parser fills (mirror of native/src/meta.rs).
export const META_WORDS = 40;

export const M_OFF = 0;
export const M_LEN = 1;
export const M_VNET_FLAGS = 2;
export const M_GSO_TYPE = 3;
export const M_HDR_LEN = 4;
export const M_GSO_SIZE = 5;
export const M_CSUM_START = 6;
export const M_CSUM_OFFSET = 7;
export const M_L3_OFF = 8;
export const M_IP_VERSION = 9;
export const M_IHL = 10;
export const M_TOT_LEN = 11;
export const M_IP_ID = 12;
export const M_FRAG = 13;
export const M_TTL = 14;
export const M_PROTO = 15;
export const M_SADDR = 16;
export const M_DADDR = 17;
export const M_L4_OFF = 18;
export const M_SPORT = 19;
export const M_DPORT = 20;
export const M_TCP_FLAGS = 21;
export const M_ICMP_TYPE = 22;
export const M_ICMP_CODE = 23;
export const M_ICMP_ID = 24;
export const M_PAYLOAD_OFF = 25;
export const M_PAYLOAD_LEN = 26;
export const M_FLAGS = 27;
export const M_TCP_SEQ = 28;
export const M_TCP_ACK = 29;
export const M_SOURCE = 30;
/** Pool slot holding the frame; NO_SLOT when parsed from a caller's buffer. */
export const M_SLOT = 31;
// UDP reader only (zero for TUN): sender, and where the datagram lies; M_OFF.. describe the packet
// parsed innerOffset bytes into it.
export const M_PEER_ADDR = 32;
export const M_PEER_PORT = 33;
export const M_DGRAM_OFF = 34;
export const M_DGRAM_LEN = 35;
export const NO_SLOT = 0xffffffff;

export const F_IPV4 = 1 << 0;
export const F_L4 = 1 << 1;
export const F_TRUNCATED = 1 << 2;
export const F_BAD_IHL = 1 << 3;
export const F_BAD_TOT_LEN = 1 << 4;
export const F_IPV6 = 1 << 5;
export const F_NON_IP = 1 << 6;
export const F_FRAGMENT = 1 << 7;
export const F_FIRST_FRAGMENT = 1 << 8;
export const F_IP_OPTIONS = 1 << 9;
export const F_BAD_VNET = 1 << 10;
export const F_GSO = 1 << 11;
export const F_NEEDS_CSUM = 1 << 12;
export const F_ICMP_ERROR = 1 << 13;
export const F_L4_UNKNOWN = 1 << 14;

export const VNET_HDR_LEN = 10;
export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
export const VIRTIO_NET_HDR_GSO_NONE = 0;
export const VIRTIO_NET_HDR_GSO_TCPV4 = 1;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
