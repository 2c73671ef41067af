//! Layout of the per-packet metadata record the parser fills: META_WORDS u32 words per packet.
//! The TypeScript mirror is src/native/meta.ts; keep the two in step.

pub const META_WORDS: usize = 40;

// Where the packet lies in the buffer it was read into (absolute byte offsets).
pub const M_OFF: usize = 0; // start of the frame (the virtio-net header when present)
pub const M_LEN: usize = 1; // frame length including the virtio-net header
// virtio-net header (zero when the device has none)
pub const M_VNET_FLAGS: usize = 2;
pub const M_GSO_TYPE: usize = 3;
pub const M_HDR_LEN: usize = 4;
pub const M_GSO_SIZE: usize = 5;
pub const M_CSUM_START: usize = 6;
pub const M_CSUM_OFFSET: usize = 7;
// IPv4
pub const M_L3_OFF: usize = 8; // absolute offset of the IP header
pub const M_IP_VERSION: usize = 9;
pub const M_IHL: usize = 10; // header length in bytes
pub const M_TOT_LEN: usize = 11;
pub const M_IP_ID: usize = 12;
pub const M_FRAG: usize = 13; // flags (3 bits) << 13 | fragment offset in 8-byte units, as on the wire
pub const M_TTL: usize = 14;
pub const M_PROTO: usize = 15;
pub const M_SADDR: usize = 16; // host byte order: 10.0.0.1 == 0x0a000001
pub const M_DADDR: usize = 17;
// L4
pub const M_L4_OFF: usize = 18; // absolute offset of the L4 header
pub const M_SPORT: usize = 19;
pub const M_DPORT: usize = 20;
pub const M_TCP_FLAGS: usize = 21; // FIN 0x01 SYN 0x02 RST 0x04 PSH 0x08 ACK 0x10 URG 0x20 ECE 0x40 CWR 0x80
pub const M_ICMP_TYPE: usize = 22;
pub const M_ICMP_CODE: usize = 23;
pub const M_ICMP_ID: usize = 24; // echo identifier (also copied into SPORT for echo request/reply)
pub const M_PAYLOAD_OFF: usize = 25; // absolute offset of the L4 payload
pub const M_PAYLOAD_LEN: usize = 26;
pub const M_FLAGS: usize = 27; // F_* bits below
pub const M_TCP_SEQ: usize = 28;
pub const M_TCP_ACK: usize = 29;
pub const M_SOURCE: usize = 30; // caller-defined: the device the packet came from
pub const M_SLOT: usize = 31; // pool slot holding the frame (NO_SLOT when parsed from a caller's buffer)
// UDP reader only (zero for TUN): the sender and where the datagram lies; M_OFF.. describe the
// packet parsed innerOffset bytes into it.
pub const M_PEER_ADDR: usize = 32; // host byte order
pub const M_PEER_PORT: usize = 33;
pub const M_DGRAM_OFF: usize = 34; // absolute offset of the UDP payload
pub const M_DGRAM_LEN: usize = 35;
// Words 36..39 are free for the next fields.

// M_FLAGS bits
pub const F_IPV4: u32 = 1 << 0; // an IPv4 header was parsed
pub const F_L4: u32 = 1 << 1; // an L4 header (TCP/UDP/ICMP) was parsed in full
pub const F_TRUNCATED: u32 = 1 << 2; // frame shorter than a header it announces
pub const F_BAD_IHL: u32 = 1 << 3; // IHL < 5 or header beyond the frame
pub const F_BAD_TOT_LEN: u32 = 1 << 4; // total length < IHL or larger than the frame
pub const F_IPV6: u32 = 1 << 5;
pub const F_NON_IP: u32 = 1 << 6; // version neither 4 nor 6, or empty frame
pub const F_FRAGMENT: u32 = 1 << 7; // MF set or fragment offset != 0
pub const F_FIRST_FRAGMENT: u32 = 1 << 8; // fragment with offset 0 (L4 header present)
pub const F_IP_OPTIONS: u32 = 1 << 9; // IHL > 5
pub const F_BAD_VNET: u32 = 1 << 10; // frame shorter than the virtio-net header
pub const F_GSO: u32 = 1 << 11; // gso_type != NONE
pub const F_NEEDS_CSUM: u32 = 1 << 12; // VIRTIO_NET_HDR_F_NEEDS_CSUM: L4 checksum holds only the pseudo-header sum
pub const F_ICMP_ERROR: u32 = 1 << 13; // ICMP dest-unreachable/time-exceeded/param-problem with an inner header
pub const F_L4_UNKNOWN: u32 = 1 << 14; // protocol other than TCP/UDP/ICMP

// virtio-net header (struct virtio_net_hdr, 10 bytes, little-endian on x86 with TUNSETVNETLE default)
pub const VNET_HDR_LEN: usize = 10;
pub const VIRTIO_NET_HDR_F_NEEDS_CSUM: u8 = 1;
pub const VIRTIO_NET_HDR_F_DATA_VALID: u8 = 2;
pub const VIRTIO_NET_HDR_GSO_NONE: u8 = 0;
pub const VIRTIO_NET_HDR_GSO_TCPV4: u8 = 1;
pub const VIRTIO_NET_HDR_GSO_UDP: u8 = 3;
pub const VIRTIO_NET_HDR_GSO_TCPV6: u8 = 4;
pub const VIRTIO_NET_HDR_GSO_UDP_L4: u8 = 5;
pub const VIRTIO_NET_HDR_GSO_ECN: u8 = 0x80;
