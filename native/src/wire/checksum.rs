//! Internet checksums: header and L4 sums, incremental updates, CHECKSUM_PARTIAL seeds.
use super::parse::ip_len;
use super::*;

/// Ones-complement sum of `data` (big-endian 16-bit words, odd tail padded with zero) plus `initial`.
/// The result is not folded to 16 bits; chain calls as long as every chunk but the last is even.
pub fn csum_partial(data: &[u8], initial: u32) -> u32 {
    // Native-order 32-bit words summed into a u64 (the compiler vectorizes this); the sum is
    // byte-order independent up to one swap at the end (RFC 1071, 2.B).
    let mut acc: u64 = 0;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        acc += u32::from_ne_bytes([w[0], w[1], w[2], w[3]]) as u64;
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        // Zero padding at the end keeps each byte in its position.
        let mut tail = [0u8; 4];
        tail[..rest.len()].copy_from_slice(rest);
        acc += u32::from_ne_bytes(tail) as u64;
    }
    let mut s = (acc & 0xffff_ffff) + (acc >> 32);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    let sum = u16::from_be(s as u16) as u64 + initial as u64;
    ((sum & 0xffff_ffff) + (sum >> 32)) as u32
}

// Folds a 32-bit ones-complement sum to 16 bits without complementing it.
#[inline]
pub(super) fn fold16(sum: u32) -> u16 {
    let s = (sum & 0xffff) + (sum >> 16);
    let s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// Folds a ones-complement sum to 16 bits and complements it: the value stored in a checksum field.
#[inline]
pub fn csum_fold(sum: u32) -> u16 {
    !fold16(sum)
}

/// Sum of the TCP/UDP pseudo header (saddr, daddr, zero, proto, L4 length), addresses in host order.
#[inline]
pub fn pseudo_header_sum(saddr: u32, daddr: u32, proto: u8, len: u16) -> u32 {
    pseudo_sum(saddr, daddr, proto, len as u32)
}

// Length as u32 so a >64 KiB GSO packet still sums its true length (as csum_tcpudp_magic does).
#[inline]
fn pseudo_sum(saddr: u32, daddr: u32, proto: u8, len: u32) -> u32 {
    (saddr >> 16) + (saddr & 0xffff) + (daddr >> 16) + (daddr & 0xffff) + proto as u32 + (len >> 16) + (len & 0xffff)
}

/// RFC 1624 incremental update for a 16-bit field change: HC' = ~(~HC + ~m + m').
#[inline]
pub fn csum_replace2(check: u16, old: u16, new: u16) -> u16 {
    !fold16(!check as u32 + !old as u32 + new as u32)
}

/// RFC 1624 incremental update for a 32-bit field change.
#[inline]
pub fn csum_replace4(check: u16, old: u32, new: u32) -> u16 {
    let sum = !check as u32 + (!(old >> 16) & 0xffff) + (!old & 0xffff) + (new >> 16) + (new & 0xffff);
    !fold16(sum)
}

// A CHECKSUM_PARTIAL field holds a plain (un-complemented) sum, so the update adds the delta directly.
#[inline]
pub(super) fn partial_replace4(seed: u16, old: u32, new: u32) -> u16 {
    !csum_replace4(!seed, old, new)
}

// Offsets of a sane IPv4 packet inside `pkt`.
#[derive(Clone, Copy)]
pub(super) struct Ip4 {
    pub(super) l3: usize,
    pub(super) l4: usize,
    pub(super) end: usize,
    pub(super) proto: u8,
    pub(super) frag: u16,
}

impl Ip4 {
    fn is_fragment(&self) -> bool {
        self.frag & (IP_MF | IP_OFFSET_MASK) != 0
    }
    pub(super) fn has_l4(&self) -> bool {
        self.frag & IP_OFFSET_MASK == 0
    }
    fn saddr(&self, pkt: &[u8]) -> u32 {
        get32(pkt, self.l3 + IP_SADDR).unwrap_or(0)
    }
    fn daddr(&self, pkt: &[u8]) -> u32 {
        get32(pkt, self.l3 + IP_DADDR).unwrap_or(0)
    }
}

// Validates the IPv4 header at l3; tot_len 0 means "up to the slice end" (GSO super-packets).
pub(super) fn ip4(pkt: &[u8], l3: usize) -> Option<Ip4> {
    let ip = pkt.get(l3..)?;
    let b0 = get8(ip, 0)?;
    let ihl = (b0 & 0x0f) as usize * 4;
    if b0 >> 4 != 4 || ihl < IP_MIN_HDR || ihl > ip.len() {
        return None;
    }
    let len = ip_len(get16(ip, IP_TOT_LEN)?, ihl, ip.len(), true)?;
    Some(Ip4 { l3, l4: l3 + ihl, end: l3 + len, proto: get8(ip, IP_PROTO)?, frag: get16(ip, IP_FRAG)? })
}

fn l4_check_off(proto: u8) -> Option<usize> {
    match proto {
        IPPROTO_TCP => Some(TCP_CHECK),
        IPPROTO_UDP => Some(UDP_CHECK),
        IPPROTO_ICMP => Some(ICMP_CHECK),
        _ => None,
    }
}

fn l4_min_hdr(proto: u8) -> usize {
    match proto {
        IPPROTO_TCP => TCP_MIN_HDR,
        IPPROTO_UDP => UDP_HDR,
        _ => ICMP_HDR,
    }
}

// Absolute offset of the L4 checksum field when the packet carries a whole TCP/UDP/ICMP header.
pub(super) fn l4_check_field(ip: &Ip4) -> Option<usize> {
    let off = l4_check_off(ip.proto)?;
    (ip.has_l4() && ip.end - ip.l4 >= l4_min_hdr(ip.proto)).then_some(ip.l4 + off)
}

// Checksums over the L4 segment need the whole datagram, so fragments are refused.
fn l4_whole(pkt: &[u8], l3: usize) -> Option<(Ip4, usize)> {
    let ip = ip4(pkt, l3)?;
    if ip.is_fragment() {
        return None;
    }
    Some((ip, l4_check_field(&ip)?))
}

// Pseudo-header sum; ICMP has none.
fn l4_pseudo(pkt: &[u8], ip: &Ip4) -> u32 {
    if ip.proto == IPPROTO_ICMP {
        return 0;
    }
    pseudo_sum(ip.saddr(pkt), ip.daddr(pkt), ip.proto, (ip.end - ip.l4) as u32)
}

/// IPv4 header checksum computed with the checksum field taken as zero.
pub fn ipv4_header_checksum(pkt: &[u8], l3: usize) -> Option<u16> {
    let h = ipv4_header(pkt, l3)?;
    let s = csum_partial(h.get(..IP_CHECK)?, 0);
    Some(csum_fold(csum_partial(h.get(IP_CHECK + 2..)?, s)))
}

// The IPv4 header bytes at l3 (version 4, sane IHL); tot_len is not needed for the header sum.
fn ipv4_header(pkt: &[u8], l3: usize) -> Option<&[u8]> {
    let b0 = get8(pkt, l3)?;
    let ihl = (b0 & 0x0f) as usize * 4;
    if b0 >> 4 != 4 || ihl < IP_MIN_HDR {
        return None;
    }
    pkt.get(l3..l3.checked_add(ihl)?)
}

/// True when the IPv4 header at l3 sums to zero, as a receiver checks it.
pub fn ipv4_header_checksum_ok(pkt: &[u8], l3: usize) -> bool {
    ipv4_header(pkt, l3).is_some_and(|h| csum_fold(csum_partial(h, 0)) == 0)
}

/// Computes and stores the IPv4 header checksum.
pub fn set_ipv4_header_checksum(pkt: &mut [u8], l3: usize) -> bool {
    ipv4_header_checksum(pkt, l3).and_then(|c| put16(pkt, l3 + IP_CHECK, c)).is_some()
}

/// TCP/UDP (with pseudo header) or ICMP checksum computed with the checksum field taken as zero.
/// None for fragments, other protocols and short headers.
pub fn l4_checksum(pkt: &[u8], l3: usize) -> Option<u16> {
    let (ip, field) = l4_whole(pkt, l3)?;
    l4_checksum_skipping(pkt, &ip, field)
}

// Pseudo header plus the L4 segment with the two checksum bytes left out (the field offset is even).
fn l4_checksum_skipping(pkt: &[u8], ip: &Ip4, field: usize) -> Option<u16> {
    let s = csum_partial(pkt.get(ip.l4..field)?, l4_pseudo(pkt, ip));
    Some(csum_fold(csum_partial(pkt.get(field.checked_add(2)?..ip.end)?, s)))
}

/// True when the L4 checksum verifies; a UDP checksum of 0 means "none" and passes.
pub fn l4_checksum_ok(pkt: &[u8], l3: usize) -> bool {
    let Some((ip, field)) = l4_whole(pkt, l3) else { return false };
    if ip.proto == IPPROTO_UDP && get16(pkt, field) == Some(0) {
        return true;
    }
    pkt.get(ip.l4..ip.end).is_some_and(|l4| csum_fold(csum_partial(l4, l4_pseudo(pkt, &ip))) == 0)
}

/// Computes and stores the full L4 checksum (UDP stores a computed 0 as 0xffff).
pub fn set_l4_checksum(pkt: &mut [u8], l3: usize) -> bool {
    let Some((ip, field)) = l4_whole(pkt, l3) else { return false };
    let Some(c) = l4_checksum_skipping(pkt, &ip, field) else { return false };
    put16(pkt, field, udp_mangle(ip.proto, c)).is_some()
}

// UDP reserves 0 for "no checksum", so a computed 0 goes on the wire as 0xffff.
#[inline]
pub(super) fn udp_mangle(proto: u8, check: u16) -> u16 {
    if proto == IPPROTO_UDP && check == 0 {
        0xffff
    } else {
        check
    }
}

/// Stores the folded, un-complemented pseudo-header sum in the L4 checksum field, as Linux does
/// for CHECKSUM_PARTIAL (ICMP has no pseudo header: the seed is 0).
pub fn set_l4_partial_checksum(pkt: &mut [u8], l3: usize) -> bool {
    let Some((ip, field)) = l4_whole(pkt, l3) else { return false };
    put16(pkt, field, fold16(l4_pseudo(pkt, &ip))).is_some()
}

/// Finishes a CHECKSUM_PARTIAL packet like skb_checksum_help: sums from csum_start to the end of
/// `pkt` (which must end where the IP packet ends) with the field's seed included, stores the
/// complement at csum_start + csum_offset (0 as 0xffff, like CSUM_MANGLED_0).
pub fn complete_partial_checksum(pkt: &mut [u8], csum_start: usize, csum_offset: usize) -> bool {
    let Some(field) = csum_start.checked_add(csum_offset) else { return false };
    if field.checked_add(2).is_none_or(|e| e > pkt.len()) {
        return false;
    }
    let Some(data) = pkt.get(csum_start..) else { return false };
    let c = csum_fold(csum_partial(data, 0));
    put16(pkt, field, if c == 0 { 0xffff } else { c }).is_some()
}
