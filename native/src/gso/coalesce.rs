//! Receive coalescing for the tunnel (the kernel's GRO): consecutive datagrams of a batch that carry
//! in-order TCP segments of one flow behind the same prefix (VXLAN + inner Ethernet) and sender are
//! merged into the first one's slot, whose record then describes one TCP super-packet (F_GSO, a
//! partial checksum) that the datapath handles once and writes into the pod with a GSO header.

use crate::meta::*;
use crate::wire::{get8, put16, set_ipv4_header_checksum, set_l4_partial_checksum, IPPROTO_TCP, IP_CHECK, IP_FRAG, IP_TOT_LEN, TCP_CHECK, TCP_CWR, TCP_FLAGS, TCP_PSH, TCP_SEQ};

const TCP_ACK_FLAG: u32 = 0x10;
const TCP_SYN_RST: u32 = 0x02 | 0x04;
const TCP_CSUM_OFFSET: u32 = TCP_CHECK as u32;
const IP_MAX_LEN: usize = 65535;

/// An open run: where the packet it grows lies in the arena.
pub struct Run {
    dgram: usize,
    prefix: usize,
    l3: usize,
    l4: usize,
    end: usize,
    limit: usize,
    hdr_len: usize,
    mss: u32,
    last: u32,
    next_seq: u32,
    segs: u32,
    open: bool,
}

// A whole, unfragmented TCP segment with data whose only flags are ACK (and PSH).
fn mergeable(m: &[u32]) -> bool {
    m[M_FLAGS] & (F_IPV4 | F_L4 | F_FRAGMENT | F_TRUNCATED | F_BAD_TOT_LEN) == F_IPV4 | F_L4
        && m[M_PROTO] == IPPROTO_TCP as u32
        && m[M_TCP_FLAGS] & !(TCP_PSH as u32) == TCP_ACK_FLAG
        && m[M_PAYLOAD_LEN] > 0
}

/// A run starting with the datagram of record `m`, when it can take followers.
pub fn start(m: &[u32], prefix: usize, capacity: usize) -> Option<Run> {
    if !mergeable(m) || m[M_TCP_FLAGS] & TCP_PSH as u32 != 0 {
        return None;
    }
    let (l3, l4, payload) = (m[M_L3_OFF] as usize, m[M_L4_OFF] as usize, m[M_PAYLOAD_OFF] as usize);
    let dgram = m[M_DGRAM_OFF] as usize;
    let len = m[M_PAYLOAD_LEN];
    Some(Run {
        dgram, prefix, l3, l4, end: payload + len as usize, limit: dgram + capacity, hdr_len: payload - l3,
        mss: len, last: len, next_seq: m[M_TCP_SEQ].wrapping_add(len), segs: 1, open: true,
    })
}

/// Appends the segment of record `m` to the run when it continues it; false leaves both untouched.
pub fn append(arena: &mut [u8], run: &mut Run, first: &[u32], m: &[u32]) -> bool {
    let len = m[M_PAYLOAD_LEN];
    let payload = m[M_PAYLOAD_OFF] as usize;
    let fits = run.end + len as usize <= run.limit && run.end + len as usize - run.l3 <= IP_MAX_LEN;
    if !run.open || !mergeable(m) || run.last != run.mss || len > run.mss || !fits || m[M_TCP_SEQ] != run.next_seq {
        return false;
    }
    if m[M_PEER_ADDR] != first[M_PEER_ADDR] || m[M_PEER_PORT] != first[M_PEER_PORT] || payload - m[M_L3_OFF] as usize != run.hdr_len {
        return false;
    }
    let dgram = m[M_DGRAM_OFF] as usize;
    if arena[dgram..dgram + run.prefix] != arena[run.dgram..run.dgram + run.prefix] || !same_headers(arena, run, m[M_L3_OFF] as usize) {
        return false;
    }
    arena.copy_within(payload..payload + len as usize, run.end);
    run.end += len as usize;
    run.last = len;
    run.next_seq = run.next_seq.wrapping_add(len);
    run.segs += 1;
    // PSH ends a run, as in the kernel: the receiver should see the data now.
    if m[M_TCP_FLAGS] & TCP_PSH as u32 != 0 {
        arena[run.l4 + TCP_FLAGS] |= TCP_PSH;
        run.open = false;
    }
    true
}

// IPv4 and TCP headers equal but for what each segment has its own of (length, id, checksums,
// sequence number, PSH), as the kernel's GRO compares them.
fn same_headers(arena: &[u8], run: &Run, l3: usize) -> bool {
    let ihl = run.l4 - run.l3;
    if l3 + run.hdr_len > arena.len() || get8(arena, l3).map_or(0, |b| (b & 0x0f) as usize * 4) != ihl {
        return false;
    }
    let (a, b) = (&arena[run.l3..run.l3 + run.hdr_len], &arena[l3..l3 + run.hdr_len]);
    let (t, u) = (&a[ihl..], &b[ihl..]);
    a[..IP_TOT_LEN] == b[..IP_TOT_LEN]
        && a[IP_FRAG..IP_CHECK] == b[IP_FRAG..IP_CHECK]
        && a[IP_CHECK + 2..ihl] == b[IP_CHECK + 2..ihl]
        && t[..TCP_SEQ] == u[..TCP_SEQ]
        && t[TCP_SEQ + 4..TCP_FLAGS] == u[TCP_SEQ + 4..TCP_FLAGS]
        && (t[TCP_FLAGS] ^ u[TCP_FLAGS]) & !TCP_PSH == 0
        && t[TCP_FLAGS + 1..TCP_CHECK] == u[TCP_FLAGS + 1..TCP_CHECK]
        && t[TCP_CHECK + 2..] == u[TCP_CHECK + 2..]
}

/// Closes a run: a merged one gets its IPv4 length and checksum, a partial TCP checksum, and a
/// record that describes a TCPv4 GSO packet.
pub fn finish(arena: &mut [u8], run: &Run, rec: &mut [u32]) {
    if run.segs < 2 {
        return;
    }
    let total = run.end - run.l3;
    let ip = &mut arena[run.l3..run.end];
    let ok = put16(ip, IP_TOT_LEN, total as u16).is_some() && set_ipv4_header_checksum(ip, 0) && set_l4_partial_checksum(ip, 0);
    debug_assert!(ok, "a run's headers were checked when it started");
    rec[M_TOT_LEN] = total as u32;
    rec[M_LEN] = (run.end - rec[M_OFF] as usize) as u32;
    rec[M_DGRAM_LEN] = (run.end - run.dgram) as u32;
    rec[M_PAYLOAD_LEN] = (run.end - run.l3 - run.hdr_len) as u32;
    rec[M_FLAGS] |= F_GSO | F_NEEDS_CSUM;
    rec[M_TCP_FLAGS] = get8(ip, run.l4 - run.l3 + TCP_FLAGS).unwrap_or(0) as u32;
    rec[M_VNET_FLAGS] = VIRTIO_NET_HDR_F_NEEDS_CSUM as u32;
    rec[M_GSO_TYPE] = VIRTIO_NET_HDR_GSO_TCPV4 as u32;
    rec[M_GSO_SIZE] = run.mss;
    rec[M_HDR_LEN] = run.hdr_len as u32;
    rec[M_CSUM_START] = (run.l4 - run.l3) as u32;
    rec[M_CSUM_OFFSET] = TCP_CSUM_OFFSET;
}

/// A datagram whose inner TCP packet is longer than any the wire carries (`max_ip_len`, the pod
/// MTU) is a super-packet the sender's kernel left whole (UDP-tunnel GSO across a bridge): its TCP
/// checksum is partial. Its record becomes a TCPv4 GSO one cut at what the wire would have carried;
/// FIN and PSH go to its last segment, CWR (the ECN GSO type) to its first, as the kernel cuts.
pub fn mark_whole(rec: &mut [u32], max_ip_len: u32) -> bool {
    let whole_tcp = rec[M_FLAGS] & (F_IPV4 | F_L4 | F_FRAGMENT | F_TRUNCATED | F_BAD_TOT_LEN) == F_IPV4 | F_L4
        && rec[M_PROTO] == IPPROTO_TCP as u32
        && rec[M_TCP_FLAGS] & TCP_SYN_RST == 0
        && rec[M_PAYLOAD_LEN] > 0;
    let hdr_len = rec[M_PAYLOAD_OFF].wrapping_sub(rec[M_L3_OFF]);
    if max_ip_len == 0 || !whole_tcp || rec[M_TOT_LEN] <= max_ip_len || hdr_len >= max_ip_len {
        return false;
    }
    let ecn = if rec[M_TCP_FLAGS] & TCP_CWR as u32 != 0 { VIRTIO_NET_HDR_GSO_ECN } else { 0 };
    rec[M_FLAGS] |= F_GSO | F_NEEDS_CSUM;
    rec[M_VNET_FLAGS] = VIRTIO_NET_HDR_F_NEEDS_CSUM as u32;
    rec[M_GSO_TYPE] = (VIRTIO_NET_HDR_GSO_TCPV4 | ecn) as u32;
    rec[M_GSO_SIZE] = max_ip_len - hdr_len;
    rec[M_HDR_LEN] = hdr_len;
    rec[M_CSUM_START] = rec[M_L4_OFF] - rec[M_L3_OFF];
    rec[M_CSUM_OFFSET] = TCP_CSUM_OFFSET;
    true
}
