//! Packet layer: parse one frame into the metadata record, Internet checksums, NAT rewrites.
//! Everything works on byte slices plus offsets; nothing allocates, panics or reads out of bounds.

use crate::meta::*;

pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;

// IPv4 header fields, relative to the IP header.
pub const IP_TOT_LEN: usize = 2;
pub const IP_ID: usize = 4;
pub const IP_FRAG: usize = 6;
pub const IP_TTL: usize = 8;
pub const IP_PROTO: usize = 9;
pub const IP_CHECK: usize = 10;
pub const IP_SADDR: usize = 12;
pub const IP_DADDR: usize = 16;
pub const IP_MIN_HDR: usize = 20;
pub const IP_MF: u16 = 0x2000;
pub const IP_OFFSET_MASK: u16 = 0x1fff;

// TCP header fields, relative to the TCP header.
pub const TCP_SPORT: usize = 0;
pub const TCP_DPORT: usize = 2;
pub const TCP_SEQ: usize = 4;
pub const TCP_ACK: usize = 8;
pub const TCP_DOFF: usize = 12;
pub const TCP_FLAGS: usize = 13;
pub const TCP_CHECK: usize = 16;
pub const TCP_MIN_HDR: usize = 20;
pub const TCP_FIN: u8 = 0x01;
pub const TCP_PSH: u8 = 0x08;
pub const TCP_CWR: u8 = 0x80;

// UDP and ICMP header fields, relative to the L4 header.
pub const UDP_CHECK: usize = 6;
pub const UDP_HDR: usize = 8;
pub const ICMP_CHECK: usize = 2;
pub const ICMP_ID: usize = 4;
pub const ICMP_HDR: usize = 8;
pub const ICMP_ECHO_REPLY: u8 = 0;
pub const ICMP_ECHO_REQUEST: u8 = 8;

// ---------------------------------------------------------------------------------------------
// Byte accessors: None when the field does not lie entirely inside the slice.

#[inline]
pub fn get8(b: &[u8], off: usize) -> Option<u8> {
    b.get(off).copied()
}

#[inline]
pub fn get16(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(off..off.checked_add(2)?)?.try_into().ok()?))
}

#[inline]
pub fn get32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(off..off.checked_add(4)?)?.try_into().ok()?))
}

// virtio_net_hdr fields are little-endian (TUNSETVNETLE default on x86).
#[inline]
fn get16le(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off.checked_add(2)?)?.try_into().ok()?))
}

#[inline]
pub fn put8(b: &mut [u8], off: usize, v: u8) -> Option<()> {
    *b.get_mut(off)? = v;
    Some(())
}

#[inline]
pub fn put16(b: &mut [u8], off: usize, v: u16) -> Option<()> {
    b.get_mut(off..off.checked_add(2)?)?.copy_from_slice(&v.to_be_bytes());
    Some(())
}

#[inline]
pub fn put32(b: &mut [u8], off: usize, v: u32) -> Option<()> {
    b.get_mut(off..off.checked_add(4)?)?.copy_from_slice(&v.to_be_bytes());
    Some(())
}

// ---------------------------------------------------------------------------------------------
// Parser

/// Parses one frame lying at absolute offset `base` of a larger buffer into `meta`
/// (at least META_WORDS words; a shorter record is left untouched).
/// M_TOT_LEN holds the effective IP length: the whole frame rest for a GSO packet with tot_len 0.
pub fn parse(frame: &[u8], vnet: bool, base: u32, meta: &mut [u32]) {
    let Some(m) = meta.get_mut(..META_WORDS) else { return };
    m.fill(0);
    m[M_OFF] = base;
    m[M_LEN] = frame.len() as u32;
    m[M_FLAGS] = parse_frame(frame, vnet, base, m);
}

// Absolute offset in the caller's buffer; wrapping so a huge base cannot trip overflow checks.
#[inline]
fn abs(base: u32, rel: usize) -> u32 {
    base.wrapping_add(rel as u32)
}

fn parse_frame(frame: &[u8], vnet: bool, base: u32, m: &mut [u32]) -> u32 {
    let mut flags = 0;
    let mut l3 = 0;
    if vnet {
        match parse_vnet(frame, m) {
            Some(f) => flags = f,
            None => return F_BAD_VNET | F_TRUNCATED,
        }
        l3 = VNET_HDR_LEN;
    }
    m[M_L3_OFF] = abs(base, l3);
    let ip = frame.get(l3..).unwrap_or(&[]);
    flags | parse_ip(ip, flags & F_GSO != 0, abs(base, l3), m)
}

// struct virtio_net_hdr: flags u8, gso_type u8, hdr_len, gso_size, csum_start, csum_offset (u16 LE).
fn parse_vnet(frame: &[u8], m: &mut [u32]) -> Option<u32> {
    let h = frame.get(..VNET_HDR_LEN)?;
    let vflags = get8(h, 0)?;
    let gso_type = get8(h, 1)?;
    m[M_VNET_FLAGS] = vflags as u32;
    m[M_GSO_TYPE] = gso_type as u32;
    m[M_HDR_LEN] = get16le(h, 2)? as u32;
    m[M_GSO_SIZE] = get16le(h, 4)? as u32;
    m[M_CSUM_START] = get16le(h, 6)? as u32;
    m[M_CSUM_OFFSET] = get16le(h, 8)? as u32;
    let mut flags = 0;
    // The ECN bit alone does not make a GSO packet.
    if gso_type & !VIRTIO_NET_HDR_GSO_ECN != VIRTIO_NET_HDR_GSO_NONE {
        flags |= F_GSO;
    }
    if vflags & VIRTIO_NET_HDR_F_NEEDS_CSUM != 0 {
        flags |= F_NEEDS_CSUM;
    }
    Some(flags)
}

// `ip` runs from the IP header to the frame end; `l3_abs` is its absolute offset.
fn parse_ip(ip: &[u8], gso: bool, l3_abs: u32, m: &mut [u32]) -> u32 {
    let Some(b0) = get8(ip, 0) else { return F_NON_IP };
    match b0 >> 4 {
        4 => m[M_IP_VERSION] = 4,
        6 => {
            m[M_IP_VERSION] = 6;
            return F_IPV6;
        }
        _ => return F_NON_IP,
    }
    if ip.len() < IP_MIN_HDR {
        return F_TRUNCATED;
    }
    let ihl = (b0 & 0x0f) as usize * 4;
    if ihl < IP_MIN_HDR || ihl > ip.len() {
        return F_BAD_IHL;
    }
    let tot_len = get16(ip, IP_TOT_LEN).unwrap_or(0);
    let frag = get16(ip, IP_FRAG).unwrap_or(0);
    let proto = get8(ip, IP_PROTO).unwrap_or(0);
    m[M_IHL] = ihl as u32;
    m[M_TOT_LEN] = tot_len as u32;
    m[M_IP_ID] = get16(ip, IP_ID).unwrap_or(0) as u32;
    m[M_FRAG] = frag as u32;
    m[M_TTL] = get8(ip, IP_TTL).unwrap_or(0) as u32;
    m[M_PROTO] = proto as u32;
    m[M_SADDR] = get32(ip, IP_SADDR).unwrap_or(0);
    m[M_DADDR] = get32(ip, IP_DADDR).unwrap_or(0);
    let Some(len) = ip_len(tot_len, ihl, ip.len(), gso) else { return F_BAD_TOT_LEN };
    m[M_TOT_LEN] = len as u32;

    let mut flags = F_IPV4;
    if ihl > IP_MIN_HDR {
        flags |= F_IP_OPTIONS;
    }
    let offset = frag & IP_OFFSET_MASK;
    if frag & IP_MF != 0 || offset != 0 {
        flags |= F_FRAGMENT;
        if offset != 0 {
            // Only the first fragment carries the L4 header.
            return flags;
        }
        flags |= F_FIRST_FRAGMENT;
    }
    m[M_L4_OFF] = abs(l3_abs, ihl);
    // The L4 region ends at tot_len: link-layer padding past it is not payload.
    let l4 = ip.get(ihl..len).unwrap_or(&[]);
    flags | parse_l4(l4, proto, abs(l3_abs, ihl), m)
}

// Effective IP packet length, or None when tot_len is inconsistent with the bytes present.
fn ip_len(tot_len: u16, ihl: usize, avail: usize, gso: bool) -> Option<usize> {
    let tot = tot_len as usize;
    if gso && tot == 0 {
        // Kernel GSO (BIG TCP) leaves tot_len 0 when the super-packet exceeds 64 KiB.
        return Some(avail);
    }
    (tot >= ihl && tot <= avail).then_some(tot)
}

// `l4` is the L4 region up to the IP packet end; `l4_abs` its absolute offset.
fn parse_l4(l4: &[u8], proto: u8, l4_abs: u32, m: &mut [u32]) -> u32 {
    let hdr = match proto {
        IPPROTO_TCP => parse_tcp(l4, m),
        IPPROTO_UDP => parse_udp(l4, m),
        IPPROTO_ICMP => parse_icmp(l4, m),
        _ => return F_L4_UNKNOWN,
    };
    let Some((hdr_len, extra)) = hdr else { return F_TRUNCATED };
    m[M_PAYLOAD_OFF] = abs(l4_abs, hdr_len);
    m[M_PAYLOAD_LEN] = (l4.len() - hdr_len) as u32;
    F_L4 | extra
}

// Returns (header length, extra flags) once the whole header is inside the region.
fn parse_tcp(l4: &[u8], m: &mut [u32]) -> Option<(usize, u32)> {
    if l4.len() < TCP_MIN_HDR {
        return None;
    }
    m[M_SPORT] = get16(l4, TCP_SPORT)? as u32;
    m[M_DPORT] = get16(l4, TCP_DPORT)? as u32;
    m[M_TCP_SEQ] = get32(l4, TCP_SEQ)?;
    m[M_TCP_ACK] = get32(l4, TCP_ACK)?;
    m[M_TCP_FLAGS] = get8(l4, TCP_FLAGS)? as u32;
    let doff = (get8(l4, TCP_DOFF)? >> 4) as usize * 4;
    (doff >= TCP_MIN_HDR && doff <= l4.len()).then_some((doff, 0))
}

fn parse_udp(l4: &[u8], m: &mut [u32]) -> Option<(usize, u32)> {
    if l4.len() < UDP_HDR {
        return None;
    }
    m[M_SPORT] = get16(l4, 0)? as u32;
    m[M_DPORT] = get16(l4, 2)? as u32;
    Some((UDP_HDR, 0))
}

fn parse_icmp(l4: &[u8], m: &mut [u32]) -> Option<(usize, u32)> {
    if l4.len() < ICMP_HDR {
        return None;
    }
    let ty = get8(l4, 0)?;
    m[M_ICMP_TYPE] = ty as u32;
    m[M_ICMP_CODE] = get8(l4, 1)? as u32;
    let extra = match ty {
        ICMP_ECHO_REQUEST | ICMP_ECHO_REPLY => {
            // The echo id plays the source port so conntrack/NAT can treat echo like a flow.
            let id = get16(l4, ICMP_ID)? as u32;
            m[M_ICMP_ID] = id;
            m[M_SPORT] = id;
            0
        }
        // Destination unreachable, time exceeded, parameter problem: an inner IP header follows.
        3 | 11 | 12 => F_ICMP_ERROR,
        _ => 0,
    };
    Some((ICMP_HDR, extra))
}

// ---------------------------------------------------------------------------------------------
// Checksums

/// Ones-complement sum of `data` (big-endian 16-bit words, odd tail padded with zero) plus `initial`.
/// The result is not folded to 16 bits; chain calls as long as every chunk but the last is even.
pub fn csum_partial(data: &[u8], initial: u32) -> u32 {
    // 32-bit halves of each 8-byte word pile up in a u64; carries are folded back at the end.
    let mut acc = initial as u64;
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let v = u64::from_be_bytes(w.try_into().unwrap_or_default());
        acc += (v >> 32) + (v & 0xffff_ffff);
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        // Zero padding at the end keeps each byte in its big-endian position.
        let mut tail = [0u8; 8];
        tail[..rest.len()].copy_from_slice(rest);
        let v = u64::from_be_bytes(tail);
        acc += (v >> 32) + (v & 0xffff_ffff);
    }
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc as u32
}

// Folds a 32-bit ones-complement sum to 16 bits without complementing it.
#[inline]
fn fold16(sum: u32) -> u16 {
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
fn partial_replace4(seed: u16, old: u32, new: u32) -> u16 {
    !csum_replace4(!seed, old, new)
}

// Offsets of a sane IPv4 packet inside `pkt`.
#[derive(Clone, Copy)]
struct Ip4 {
    l3: usize,
    l4: usize,
    end: usize,
    proto: u8,
    frag: u16,
}

impl Ip4 {
    fn is_fragment(&self) -> bool {
        self.frag & (IP_MF | IP_OFFSET_MASK) != 0
    }
    fn has_l4(&self) -> bool {
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
fn ip4(pkt: &[u8], l3: usize) -> Option<Ip4> {
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
fn l4_check_field(ip: &Ip4) -> Option<usize> {
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
fn udp_mangle(proto: u8, check: u16) -> u16 {
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

// ---------------------------------------------------------------------------------------------
// NAT rewrites

/// Replaces the source (or destination) address, updating the IP header checksum and the TCP/UDP
/// checksum incrementally (ICMP has no pseudo header; non-first fragments have no L4 header).
/// `partial`: the L4 field holds a CHECKSUM_PARTIAL seed, which takes the delta un-complemented.
/// Returns false, leaving the packet untouched, when the headers needed are not there.
pub fn rewrite_ipv4_addr(pkt: &mut [u8], l3: usize, which_dst: bool, new_addr: u32, partial: bool) -> bool {
    rewrite_addr(pkt, l3, which_dst, new_addr, partial).is_some()
}

fn rewrite_addr(pkt: &mut [u8], l3: usize, which_dst: bool, new: u32, partial: bool) -> Option<()> {
    let ip = ip4(pkt, l3)?;
    let at = l3 + if which_dst { IP_DADDR } else { IP_SADDR };
    let old = get32(pkt, at)?;
    // Only TCP/UDP cover the addresses (via the pseudo header); resolve that before any write.
    let l4_field = match ip.proto {
        IPPROTO_TCP | IPPROTO_UDP if ip.has_l4() => Some(l4_check_field(&ip)?),
        _ => None,
    };
    put32(pkt, at, new)?;
    let hc = get16(pkt, l3 + IP_CHECK)?;
    put16(pkt, l3 + IP_CHECK, csum_replace4(hc, old, new))?;
    let Some(field) = l4_field else { return Some(()) };
    let check = get16(pkt, field)?;
    let updated = if partial {
        partial_replace4(check, old, new)
    } else if ip.proto == IPPROTO_UDP && check == 0 {
        // UDP without a checksum stays without one.
        0
    } else {
        udp_mangle(ip.proto, csum_replace4(check, old, new))
    };
    put16(pkt, field, updated)
}

/// Replaces the TCP/UDP source (or destination) port; for ICMP echo the echo id (the flow's only
/// identifier, whichever side is asked) is rewritten. Ports are not in the pseudo header, so in
/// partial mode the seed stays as is; otherwise the checksum is updated incrementally.
pub fn rewrite_l4_port(pkt: &mut [u8], l3: usize, which_dst: bool, new_port: u16, partial: bool) -> bool {
    rewrite_port(pkt, l3, which_dst, new_port, partial).is_some()
}

fn rewrite_port(pkt: &mut [u8], l3: usize, which_dst: bool, new: u16, partial: bool) -> Option<()> {
    let ip = ip4(pkt, l3)?;
    let field = l4_check_field(&ip)?;
    let at = match ip.proto {
        IPPROTO_TCP | IPPROTO_UDP => ip.l4 + if which_dst { 2 } else { 0 },
        IPPROTO_ICMP => match get8(pkt, ip.l4)? {
            ICMP_ECHO_REQUEST | ICMP_ECHO_REPLY => ip.l4 + ICMP_ID,
            _ => return None,
        },
        _ => return None,
    };
    let old = get16(pkt, at)?;
    put16(pkt, at, new)?;
    let check = get16(pkt, field)?;
    if partial || (ip.proto == IPPROTO_UDP && check == 0) {
        return Some(());
    }
    put16(pkt, field, udp_mangle(ip.proto, csum_replace2(check, old, new)))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    // xorshift64* so the randomized tests are reproducible without crates.
    pub struct Rng(u64);

    impl Rng {
        pub fn new(seed: u64) -> Self {
            Rng(seed | 1)
        }
        pub fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        pub fn below(&mut self, n: usize) -> usize {
            if n == 0 {
                0
            } else {
                (self.next() % n as u64) as usize
            }
        }
        pub fn chance(&mut self, pct: usize) -> bool {
            self.below(100) < pct
        }
        pub fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
        pub fn bytes_upto(&mut self, max: usize) -> Vec<u8> {
            let n = self.below(max);
            self.bytes(n)
        }
    }

    // Independent reference checksum: one 16-bit word at a time, carry folded after every add.
    pub fn ref_sum(data: &[u8]) -> u32 {
        let mut s: u32 = 0;
        let mut i = 0;
        while i < data.len() {
            let hi = data[i] as u32;
            let lo = if i + 1 < data.len() { data[i + 1] as u32 } else { 0 };
            s += (hi << 8) | lo;
            s = (s & 0xffff) + (s >> 16);
            i += 2;
        }
        s
    }

    pub fn ref_csum(data: &[u8]) -> u16 {
        !(ref_sum(data) as u16)
    }

    pub fn ref_ip_csum(pkt: &[u8], l3: usize) -> u16 {
        let ihl = (pkt[l3] & 0x0f) as usize * 4;
        let mut h = pkt[l3..l3 + ihl].to_vec();
        h[10] = 0;
        h[11] = 0;
        ref_csum(&h)
    }

    fn ref_check_off(proto: u8) -> usize {
        match proto {
            6 => 16,
            17 => 6,
            _ => 2,
        }
    }

    // Pseudo header (except for ICMP) followed by the L4 segment with its checksum zeroed.
    pub fn ref_l4_bytes(pkt: &[u8], l3: usize) -> Vec<u8> {
        let ihl = (pkt[l3] & 0x0f) as usize * 4;
        let tot = u16::from_be_bytes([pkt[l3 + 2], pkt[l3 + 3]]) as usize;
        let proto = pkt[l3 + 9];
        let mut l4 = pkt[l3 + ihl..l3 + tot].to_vec();
        let off = ref_check_off(proto);
        l4[off] = 0;
        l4[off + 1] = 0;
        let mut v = Vec::new();
        if proto != 1 {
            v.extend_from_slice(&pkt[l3 + 12..l3 + 20]);
            v.push(0);
            v.push(proto);
            v.extend_from_slice(&((tot - ihl) as u16).to_be_bytes());
        }
        v.extend_from_slice(&l4);
        v
    }

    pub fn ref_l4_csum(pkt: &[u8], l3: usize) -> u16 {
        ref_csum(&ref_l4_bytes(pkt, l3))
    }

    fn ref_pseudo_fold(pkt: &[u8], l3: usize) -> u16 {
        let ihl = (pkt[l3] & 0x0f) as usize * 4;
        let tot = u16::from_be_bytes([pkt[l3 + 2], pkt[l3 + 3]]) as usize;
        if pkt[l3 + 9] == 1 {
            return 0;
        }
        let mut v = pkt[l3 + 12..l3 + 20].to_vec();
        v.extend_from_slice(&[0, pkt[l3 + 9]]);
        v.extend_from_slice(&((tot - ihl) as u16).to_be_bytes());
        ref_sum(&v) as u16
    }

    // Does a stored checksum equal the reference value? 0 and 0xffff are the same ones-complement number.
    fn same_csum(a: u16, b: u16) -> bool {
        a == b || (a == 0 && b == 0xffff) || (a == 0xffff && b == 0)
    }

    fn rd16(p: &[u8], o: usize) -> u16 {
        u16::from_be_bytes([p[o], p[o + 1]])
    }

    fn wr16(p: &mut [u8], o: usize, v: u16) {
        p[o..o + 2].copy_from_slice(&v.to_be_bytes());
    }

    pub const SRC: u32 = 0x0a00_0001;
    pub const DST: u32 = 0x0a00_0102;

    // IPv4 packet with reference checksums (UDP computed 0 stored as 0xffff).
    pub fn ipv4_addrs(saddr: u32, daddr: u32, proto: u8, opts: &[u8], l4: &[u8]) -> Vec<u8> {
        assert_eq!(opts.len() % 4, 0);
        let ihl = 20 + opts.len();
        let mut p = vec![0u8; ihl];
        p[0] = 0x40 | (ihl / 4) as u8;
        wr16(&mut p, 2, (ihl + l4.len()) as u16);
        wr16(&mut p, 4, 0x1234);
        wr16(&mut p, 6, 0x4000);
        p[8] = 64;
        p[9] = proto;
        p[12..16].copy_from_slice(&saddr.to_be_bytes());
        p[16..20].copy_from_slice(&daddr.to_be_bytes());
        p[20..].copy_from_slice(opts);
        p.extend_from_slice(l4);
        let c = ref_ip_csum(&p, 0);
        wr16(&mut p, 10, c);
        // Past 64 KiB tot_len cannot describe the packet; the caller fixes such super-packets up.
        if matches!(proto, 1 | 6 | 17) && l4.len() >= if proto == 6 { 20 } else { 8 } && p.len() <= 0xffff {
            let c = ref_l4_csum(&p, 0);
            let c = if proto == 17 && c == 0 { 0xffff } else { c };
            wr16(&mut p, ihl + ref_check_off(proto), c);
        }
        p
    }

    pub fn ipv4(proto: u8, opts: &[u8], l4: &[u8]) -> Vec<u8> {
        ipv4_addrs(SRC, DST, proto, opts, l4)
    }

    pub fn tcp(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, opts: &[u8], payload: &[u8]) -> Vec<u8> {
        assert_eq!(opts.len() % 4, 0);
        let mut t = vec![0u8; 20];
        wr16(&mut t, 0, sport);
        wr16(&mut t, 2, dport);
        t[4..8].copy_from_slice(&seq.to_be_bytes());
        t[8..12].copy_from_slice(&ack.to_be_bytes());
        t[12] = (((20 + opts.len()) / 4) as u8) << 4;
        t[13] = flags;
        wr16(&mut t, 14, 65535);
        t.extend_from_slice(opts);
        t.extend_from_slice(payload);
        t
    }

    fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut u = vec![0u8; 8];
        wr16(&mut u, 0, sport);
        wr16(&mut u, 2, dport);
        wr16(&mut u, 4, (8 + payload.len()) as u16);
        u.extend_from_slice(payload);
        u
    }

    fn icmp(ty: u8, code: u8, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
        let mut i = vec![ty, code, 0, 0, 0, 0, 0, 0];
        wr16(&mut i, 4, id);
        wr16(&mut i, 6, seq);
        i.extend_from_slice(payload);
        i
    }

    pub fn vnet_hdr(flags: u8, gso_type: u8, hdr_len: u16, gso_size: u16, start: u16, off: u16) -> Vec<u8> {
        let mut h = vec![flags, gso_type];
        for v in [hdr_len, gso_size, start, off] {
            h.extend_from_slice(&v.to_le_bytes());
        }
        h
    }

    pub fn with_vnet(h: &[u8], pkt: &[u8]) -> Vec<u8> {
        let mut f = h.to_vec();
        f.extend_from_slice(pkt);
        f
    }

    fn parsed(frame: &[u8], vnet: bool, base: u32) -> [u32; META_WORDS] {
        let mut m = [0xdead_beef; META_WORDS];
        parse(frame, vnet, base, &mut m);
        check_meta(&m, frame.len(), base);
        m
    }

    const ALL_FLAGS: u32 = (1 << 15) - 1;

    // Every offset+length written must lie inside the frame, and words not meaningful must be zero.
    fn check_meta(m: &[u32], frame_len: usize, base: u32) {
        let end = base as u64 + frame_len as u64;
        let inside = |off: u32, len: u32| off as u64 >= base as u64 && off as u64 + len as u64 <= end;
        assert_eq!(m[M_OFF], base);
        assert_eq!(m[M_LEN] as usize, frame_len);
        let f = m[M_FLAGS];
        assert_eq!(f & !ALL_FLAGS, 0, "unknown flag bits {f:#x}");
        if f & F_BAD_VNET != 0 {
            assert_eq!(f, F_BAD_VNET | F_TRUNCATED);
            assert_eq!(m[M_L3_OFF], 0);
            return;
        }
        assert!(inside(m[M_L3_OFF], 0));
        if f & F_L4 != 0 {
            assert!(f & F_IPV4 != 0);
        }
        if f & F_FIRST_FRAGMENT != 0 {
            assert!(f & F_FRAGMENT != 0);
        }
        if f & F_IPV4 != 0 {
            assert!(m[M_IHL] >= 20 && m[M_IHL] <= m[M_TOT_LEN]);
            assert!(inside(m[M_L3_OFF], m[M_TOT_LEN]));
        }
        let has_l4 = f & F_IPV4 != 0 && (f & F_FRAGMENT == 0 || f & F_FIRST_FRAGMENT != 0);
        if has_l4 {
            assert_eq!(m[M_L4_OFF], m[M_L3_OFF] + m[M_IHL]);
            assert!(inside(m[M_L4_OFF], 0));
        } else {
            assert_eq!(m[M_L4_OFF], 0);
        }
        if f & F_L4 != 0 {
            assert!(inside(m[M_PAYLOAD_OFF], m[M_PAYLOAD_LEN]));
            assert!(m[M_PAYLOAD_OFF] >= m[M_L4_OFF] + 8);
            assert_eq!(m[M_PAYLOAD_OFF] + m[M_PAYLOAD_LEN], m[M_L3_OFF] + m[M_TOT_LEN]);
        } else {
            assert_eq!((m[M_PAYLOAD_OFF], m[M_PAYLOAD_LEN]), (0, 0));
        }
    }

    // ---- checksum primitives ----

    #[test]
    fn rfc1071_example() {
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold16(csum_partial(&d, 0)), 0xddf2);
        assert_eq!(csum_fold(csum_partial(&d, 0)), 0x220d);
        assert_eq!(csum_fold(csum_partial(&[], 0)), 0xffff);
        // Odd tail byte is the high half of a word.
        assert_eq!(fold16(csum_partial(&[0xab], 0)), 0xab00);
    }

    #[test]
    fn ipv4_header_known_vector() {
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8,
            0x00, 0xc7,
        ];
        assert_eq!(ipv4_header_checksum(&h, 0), Some(0xb861));
        assert!(ipv4_header_checksum_ok(&h, 0));
        h[10] = 0;
        h[11] = 0;
        assert!(!ipv4_header_checksum_ok(&h, 0));
        assert!(set_ipv4_header_checksum(&mut h, 0));
        assert_eq!(rd16(&h, 10), 0xb861);
        assert_eq!(ipv4_header_checksum(&h[..19], 0), None);
        assert_eq!(ipv4_header_checksum(&h, 1), None);
    }

    #[test]
    fn csum_partial_matches_reference() {
        let mut rng = Rng::new(1);
        for _ in 0..20_000 {
            let d = rng.bytes_upto(300);
            let init = rng.next() as u32;
            let (a, b) = (ref_sum(&d) as u16, ref_sum(&init.to_be_bytes()) as u16);
            let want = ref_csum(&[a.to_be_bytes(), b.to_be_bytes()].concat());
            assert_eq!(csum_fold(csum_partial(&d, init)), want);
            // Chaining over an even split gives the same sum.
            let cut = rng.below(d.len() + 1) & !1;
            let chained = csum_partial(&d[cut..], csum_partial(&d[..cut], 0));
            assert_eq!(csum_fold(chained), ref_csum(&d));
        }
        // All-ones data exercises every carry.
        let ones = vec![0xff; 4096];
        assert_eq!(csum_fold(csum_partial(&ones, 0xffff_ffff)), ref_csum(&ones));
    }

    #[test]
    fn pseudo_header_sum_matches_reference() {
        let p = ipv4(17, &[], &udp(1, 2, b"hello"));
        assert_eq!(fold16(pseudo_header_sum(SRC, DST, 17, 13)), ref_pseudo_fold(&p, 0));
    }

    #[test]
    fn incremental_updates_match_recompute() {
        let mut rng = Rng::new(2);
        for _ in 0..20_000 {
            let mut d = {
                let n = 2 * (4 + rng.below(30));
                rng.bytes(n)
            };
            let check = ref_csum(&d);
            let at = 2 * rng.below(d.len() / 2 - 1);
            if rng.chance(50) {
                let old = rd16(&d, at);
                let new = rng.next() as u16;
                wr16(&mut d, at, new);
                assert!(same_csum(csum_replace2(check, old, new), ref_csum(&d)));
            } else {
                let old = u32::from_be_bytes(d[at..at + 4].try_into().unwrap());
                let new = rng.next() as u32;
                d[at..at + 4].copy_from_slice(&new.to_be_bytes());
                assert!(same_csum(csum_replace4(check, old, new), ref_csum(&d)));
            }
        }
    }

    // ---- parser ----

    #[test]
    fn parse_tcp_with_vnet_and_options() {
        let payload: Vec<u8> = (0..100).collect();
        let opts = [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2];
        let pkt = ipv4(6, &[], &tcp(40000, 443, 0x1122_3344, 0x5566_7788, 0x18, &opts, &payload));
        let frame = with_vnet(&vnet_hdr(1, 0, 66, 0, 20, 16), &pkt);
        let base = 4096;
        let m = parsed(&frame, true, base);
        assert_eq!(m[M_FLAGS], F_IPV4 | F_L4 | F_NEEDS_CSUM);
        assert_eq!(m[M_VNET_FLAGS], 1);
        assert_eq!(m[M_HDR_LEN], 66);
        assert_eq!((m[M_CSUM_START], m[M_CSUM_OFFSET]), (20, 16));
        assert_eq!(m[M_L3_OFF], base + 10);
        assert_eq!(m[M_IP_VERSION], 4);
        assert_eq!(m[M_IHL], 20);
        assert_eq!(m[M_TOT_LEN], pkt.len() as u32);
        assert_eq!(m[M_IP_ID], 0x1234);
        assert_eq!(m[M_FRAG], 0x4000);
        assert_eq!(m[M_TTL], 64);
        assert_eq!(m[M_PROTO], 6);
        assert_eq!((m[M_SADDR], m[M_DADDR]), (SRC, DST));
        assert_eq!(m[M_L4_OFF], base + 30);
        assert_eq!((m[M_SPORT], m[M_DPORT]), (40000, 443));
        assert_eq!(m[M_TCP_FLAGS], 0x18);
        assert_eq!((m[M_TCP_SEQ], m[M_TCP_ACK]), (0x1122_3344, 0x5566_7788));
        assert_eq!(m[M_PAYLOAD_OFF], base + 30 + 32);
        assert_eq!(m[M_PAYLOAD_LEN], 100);
        let p0 = (m[M_PAYLOAD_OFF] - base) as usize;
        assert_eq!(&frame[p0..p0 + 100], &payload[..]);
    }

    #[test]
    fn parse_udp_ignores_trailing_padding() {
        let mut pkt = ipv4(17, &[], &udp(53, 5353, b"abcdef"));
        let tot = pkt.len() as u32;
        pkt.extend_from_slice(&[0; 6]);
        let m = parsed(&pkt, false, 0);
        assert_eq!(m[M_FLAGS], F_IPV4 | F_L4);
        assert_eq!((m[M_SPORT], m[M_DPORT]), (53, 5353));
        assert_eq!((m[M_PAYLOAD_OFF], m[M_PAYLOAD_LEN]), (28, 6));
        assert_eq!(m[M_TOT_LEN], tot);
    }

    #[test]
    fn parse_icmp_variants() {
        for ty in [ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY] {
            let m = parsed(&ipv4(1, &[], &icmp(ty, 0, 0xbeef, 7, b"ping")), false, 100);
            assert_eq!(m[M_FLAGS], F_IPV4 | F_L4);
            assert_eq!((m[M_ICMP_TYPE], m[M_ICMP_CODE]), (ty as u32, 0));
            assert_eq!((m[M_ICMP_ID], m[M_SPORT], m[M_DPORT]), (0xbeef, 0xbeef, 0));
            assert_eq!((m[M_PAYLOAD_OFF], m[M_PAYLOAD_LEN]), (128, 4));
        }
        for ty in [3, 11, 12] {
            let inner = ipv4(17, &[], &udp(1, 2, b""));
            let m = parsed(&ipv4(1, &[], &icmp(ty, 1, 0, 0, &inner)), false, 0);
            assert_eq!(m[M_FLAGS], F_IPV4 | F_L4 | F_ICMP_ERROR);
            assert_eq!((m[M_ICMP_TYPE], m[M_ICMP_CODE], m[M_SPORT]), (ty as u32, 1, 0));
            assert_eq!(m[M_PAYLOAD_OFF], 28);
        }
        let m = parsed(&ipv4(1, &[], &icmp(13, 0, 5, 0, &[0; 12])), false, 0);
        assert_eq!(m[M_FLAGS], F_IPV4 | F_L4);
        assert_eq!((m[M_ICMP_ID], m[M_SPORT]), (0, 0));
    }

    #[test]
    fn parse_unknown_protocol() {
        let m = parsed(&ipv4(47, &[], &[0; 16]), false, 8);
        assert_eq!(m[M_FLAGS], F_IPV4 | F_L4_UNKNOWN);
        assert_eq!(m[M_L4_OFF], 28);
        assert_eq!(m[M_PROTO], 47);
    }

    #[test]
    fn parse_non_ipv4() {
        assert_eq!(parsed(&[], false, 0)[M_FLAGS], F_NON_IP);
        assert_eq!(parsed(&[0x50, 0, 0, 0], false, 0)[M_FLAGS], F_NON_IP);
        assert_eq!(parsed(&[0x00; 40], false, 0)[M_FLAGS], F_NON_IP);
        let mut v6 = vec![0u8; 40];
        v6[0] = 0x60;
        let m = parsed(&v6, false, 0);
        assert_eq!((m[M_FLAGS], m[M_IP_VERSION]), (F_IPV6, 6));
        let m = parsed(&with_vnet(&vnet_hdr(0, 4, 0, 1440, 0, 0), &v6), true, 0);
        assert_eq!((m[M_FLAGS], m[M_L3_OFF], m[M_GSO_SIZE]), (F_IPV6 | F_GSO, 10, 1440));
        // A virtio-net header with nothing after it.
        assert_eq!(parsed(&[0; 10], true, 0)[M_FLAGS], F_NON_IP);
    }

    #[test]
    fn parse_short_vnet_header() {
        for n in 0..VNET_HDR_LEN {
            let m = parsed(&vec![1; n], true, 77);
            assert_eq!(m[M_FLAGS], F_BAD_VNET | F_TRUNCATED);
            assert_eq!(m[M_VNET_FLAGS], 0);
        }
        // A record shorter than META_WORDS is left alone rather than indexed out of bounds.
        let mut short = [5u32; META_WORDS - 1];
        parse(&[0x45; 40], false, 0, &mut short);
        assert!(short.iter().all(|&w| w == 5));
    }

    #[test]
    fn parse_vnet_flags() {
        let pkt = ipv4(6, &[], &tcp(1, 2, 3, 4, 0x10, &[], &[0; 50]));
        let gso = with_vnet(&vnet_hdr(1, 1, 40, 1448, 20, 16), &pkt);
        let m = parsed(&gso, true, 0);
        assert_eq!(m[M_FLAGS], F_IPV4 | F_L4 | F_GSO | F_NEEDS_CSUM);
        assert_eq!((m[M_GSO_TYPE], m[M_GSO_SIZE], m[M_HDR_LEN]), (1, 1448, 40));
        let ecn_only = with_vnet(&vnet_hdr(2, 0x80, 0, 0, 0, 0), &pkt);
        assert_eq!(parsed(&ecn_only, true, 0)[M_FLAGS], F_IPV4 | F_L4);
        // Little-endian fields.
        let le = with_vnet(&[0, 0x81, 0x34, 0x12, 0x78, 0x56, 0xbc, 0x9a, 0xf0, 0xde], &pkt);
        let m = parsed(&le, true, 0);
        assert_eq!((m[M_HDR_LEN], m[M_GSO_SIZE], m[M_CSUM_START], m[M_CSUM_OFFSET]), (0x1234, 0x5678, 0x9abc, 0xdef0));
        assert!(m[M_FLAGS] & F_GSO != 0);
    }

    #[test]
    fn parse_ip_options() {
        let opts = [0x94, 0x04, 0, 0, 1, 1, 1, 0]; // router alert, NOPs, EOL
        let pkt = ipv4(17, &opts, &udp(10, 20, b"x"));
        let m = parsed(&pkt, false, 0);
        assert_eq!(m[M_FLAGS], F_IPV4 | F_L4 | F_IP_OPTIONS);
        assert_eq!((m[M_IHL], m[M_L4_OFF], m[M_PAYLOAD_OFF]), (28, 28, 36));
        assert!(ipv4_header_checksum_ok(&pkt, 0) && l4_checksum_ok(&pkt, 0));
    }

    #[test]
    fn parse_bad_ihl() {
        let pkt = ipv4(17, &[], &udp(10, 20, b"xyz"));
        for ihl in 0..5u8 {
            let mut p = pkt.clone();
            p[0] = 0x40 | ihl;
            let m = parsed(&p, false, 0);
            assert_eq!(m[M_FLAGS], F_BAD_IHL);
            assert_eq!(m[M_IP_VERSION], 4);
        }
        let mut p = pkt[..24].to_vec();
        p[0] = 0x46;
        wr16(&mut p, 2, 24);
        assert_eq!(parsed(&p, false, 0)[M_FLAGS], F_IPV4 | F_IP_OPTIONS | F_TRUNCATED);
        p[0] = 0x47;
        assert_eq!(parsed(&p, false, 0)[M_FLAGS], F_BAD_IHL);
        assert_eq!(parsed(&pkt[..19], false, 0)[M_FLAGS], F_TRUNCATED);
    }

    #[test]
    fn parse_bad_tot_len() {
        let pkt = ipv4(17, &[], &udp(10, 20, b"xyz"));
        for tot in [0u16, 1, 19, pkt.len() as u16 + 1, 0xffff] {
            let mut p = pkt.clone();
            wr16(&mut p, 2, tot);
            let m = parsed(&p, false, 0);
            assert_eq!(m[M_FLAGS], F_BAD_TOT_LEN, "tot_len {tot}");
            assert_eq!(m[M_TOT_LEN], tot as u32);
            assert_eq!(m[M_SADDR], SRC);
        }
        // tot_len == ihl: an IP header with an empty (hence truncated) UDP header.
        let mut p = pkt.clone();
        wr16(&mut p, 2, 20);
        assert_eq!(parsed(&p, false, 0)[M_FLAGS], F_IPV4 | F_TRUNCATED);
    }

    #[test]
    fn parse_gso_tot_len_zero_means_whole_frame() {
        let mut pkt = ipv4(6, &[], &tcp(1, 2, 3, 4, 0x10, &[], &[7; 3000]));
        wr16(&mut pkt, 2, 0);
        let frame = with_vnet(&vnet_hdr(1, 1, 40, 1448, 20, 16), &pkt);
        let m = parsed(&frame, true, 0);
        assert_eq!(m[M_FLAGS], F_IPV4 | F_L4 | F_GSO | F_NEEDS_CSUM);
        assert_eq!((m[M_TOT_LEN], m[M_PAYLOAD_LEN]), (3040, 3000));
        let plain = with_vnet(&vnet_hdr(0, 0, 0, 0, 0, 0), &pkt);
        assert_eq!(parsed(&plain, true, 0)[M_FLAGS], F_BAD_TOT_LEN);
    }

    #[test]
    fn parse_fragments() {
        let pkt = ipv4(6, &[], &tcp(1000, 80, 1, 2, 0x10, &[], &[1; 64]));
        let frag = |word: u16| {
            let mut p = pkt.clone();
            wr16(&mut p, 6, word);
            p
        };
        let m = parsed(&frag(0x2000), false, 0);
        assert_eq!(m[M_FLAGS], F_IPV4 | F_FRAGMENT | F_FIRST_FRAGMENT | F_L4);
        assert_eq!((m[M_SPORT], m[M_DPORT], m[M_FRAG]), (1000, 80, 0x2000));
        for word in [0x0001, 0x2001, 0x3fff, 0x1fff] {
            let m = parsed(&frag(word), false, 0);
            assert_eq!(m[M_FLAGS], F_IPV4 | F_FRAGMENT, "frag {word:#x}");
            assert_eq!((m[M_L4_OFF], m[M_SPORT], m[M_FRAG]), (0, 0, word as u32));
        }
        // DF alone is not a fragment.
        assert_eq!(parsed(&frag(0x4000), false, 0)[M_FLAGS], F_IPV4 | F_L4);
    }

    // Truncating a valid packet at every length: raw (tot_len now lies) and with tot_len following.
    #[test]
    fn truncated_at_every_length() {
        let packets = [
            (ipv4(6, &[], &tcp(1, 2, 3, 4, 0x02, &[2, 4, 5, 0xb4], b"data")), 24),
            (ipv4(17, &[1, 1, 1, 1], &udp(1, 2, b"data")), 8),
            (ipv4(1, &[], &icmp(8, 0, 9, 1, b"data")), 8),
        ];
        for (pkt, l4_hdr) in packets {
            let ihl = (pkt[0] & 0x0f) as usize * 4;
            for vnet in [false, true] {
                let pre = if vnet { vnet_hdr(0, 0, 0, 0, 0, 0) } else { vec![] };
                for n in 0..=pkt.len() {
                    let raw = with_vnet(&pre, &pkt[..n]);
                    let f = parsed(&raw, vnet, 3)[M_FLAGS];
                    let want = match n {
                        0 => F_NON_IP,
                        n if n < 20 => F_TRUNCATED,
                        n if n < ihl => F_BAD_IHL,
                        n if n < pkt.len() => F_BAD_TOT_LEN,
                        _ => F_IPV4 | F_L4 | if ihl > 20 { F_IP_OPTIONS } else { 0 },
                    };
                    assert_eq!(f, want, "raw n={n} vnet={vnet}");
                    if n < ihl {
                        continue;
                    }
                    let mut cut = pkt[..n].to_vec();
                    wr16(&mut cut, 2, n as u16);
                    let m = parsed(&with_vnet(&pre, &cut), vnet, 3);
                    let opt = if ihl > 20 { F_IP_OPTIONS } else { 0 };
                    let want = if n - ihl < l4_hdr { F_IPV4 | opt | F_TRUNCATED } else { F_IPV4 | opt | F_L4 };
                    assert_eq!(m[M_FLAGS], want, "cut n={n} vnet={vnet}");
                    let csum_hdr = if pkt[9] == IPPROTO_TCP { TCP_MIN_HDR } else { 8 };
                    let want = (n - ihl >= csum_hdr).then(|| ref_l4_csum(&cut, 0));
                    assert_eq!(l4_checksum(&cut, 0), want, "checksum n={n}");
                }
            }
        }
    }

    // ---- packet checksums ----

    #[test]
    fn l4_checksums_match_reference() {
        let pkts = [
            ipv4(6, &[], &tcp(1, 2, 3, 4, 0x10, &[], b"odd length payload!")),
            ipv4(6, &[1, 1, 1, 0], &tcp(1, 2, 3, 4, 0x10, &[1, 1, 1, 1], b"")),
            ipv4(17, &[], &udp(53, 53, b"dns?")),
            ipv4(1, &[], &icmp(8, 0, 1, 2, b"abc")),
        ];
        for pkt in pkts {
            let ihl = (pkt[0] & 0x0f) as usize * 4;
            let field = ihl + ref_check_off(pkt[9]);
            assert_eq!(l4_checksum(&pkt, 0), Some(ref_l4_csum(&pkt, 0)));
            assert!(l4_checksum_ok(&pkt, 0));
            assert!(ipv4_header_checksum_ok(&pkt, 0));
            let mut bad = pkt.clone();
            *bad.last_mut().unwrap() ^= 0x40;
            assert!(!l4_checksum_ok(&bad, 0));
            assert!(set_l4_checksum(&mut bad, 0));
            assert!(l4_checksum_ok(&bad, 0));
            let mut zero = pkt.clone();
            wr16(&mut zero, field, 0);
            assert_eq!(l4_checksum_ok(&zero, 0), pkt[9] == 17, "UDP 0 means no checksum");
            // l3 not at the slice start.
            let shifted = [vec![0xee; 10], pkt.clone()].concat();
            assert_eq!(l4_checksum(&shifted, 10), Some(ref_l4_csum(&pkt, 0)));
            assert!(l4_checksum_ok(&shifted, 10));
        }
    }

    #[test]
    fn udp_computed_zero_is_sent_as_ffff() {
        // Put the would-be checksum into a payload word: the sum becomes 0xffff, the checksum 0.
        let mut pkt = ipv4(17, &[], &udp(1, 2, &[0; 4]));
        wr16(&mut pkt, 6, 0);
        let c = l4_checksum(&pkt, 0).unwrap();
        wr16(&mut pkt, 28, c);
        assert_eq!(l4_checksum(&pkt, 0), Some(0));
        assert!(set_l4_checksum(&mut pkt, 0));
        assert_eq!(rd16(&pkt, 26), 0xffff);
        assert!(l4_checksum_ok(&pkt, 0));
    }

    #[test]
    fn checksums_refuse_what_they_cannot_cover() {
        let mut pkt = ipv4(6, &[], &tcp(1, 2, 3, 4, 0x10, &[], b"x"));
        wr16(&mut pkt, 6, 0x2000);
        assert_eq!(l4_checksum(&pkt, 0), None);
        assert!(!l4_checksum_ok(&pkt, 0) && !set_l4_checksum(&mut pkt, 0) && !set_l4_partial_checksum(&mut pkt, 0));
        assert_eq!(l4_checksum(&ipv4(47, &[], &[0; 8]), 0), None);
        assert_eq!(l4_checksum(&ipv4(6, &[], &[0; 19]), 0), None);
        assert_eq!(l4_checksum(&ipv4(17, &[], &[0; 7]), 0), None);
        assert!(!complete_partial_checksum(&mut [0; 10], 8, 1));
        assert!(!complete_partial_checksum(&mut [0; 10], usize::MAX, 1));
        assert!(!complete_partial_checksum(&mut [0; 10], 20, 0));
    }

    #[test]
    fn partial_checksum_round_trip() {
        for pkt in [
            ipv4(6, &[], &tcp(1, 2, 3, 4, 0x18, &[], b"hello world")),
            ipv4(17, &[], &udp(5, 6, b"12345")),
            ipv4(1, &[], &icmp(0, 0, 3, 4, b"pong")),
        ] {
            let ihl = (pkt[0] & 0x0f) as usize * 4;
            let off = ref_check_off(pkt[9]);
            let mut p = pkt.clone();
            assert!(set_l4_partial_checksum(&mut p, 0));
            assert_eq!(rd16(&p, ihl + off), ref_pseudo_fold(&pkt, 0));
            assert!(complete_partial_checksum(&mut p, ihl, off));
            assert!(same_csum(rd16(&p, ihl + off), rd16(&pkt, ihl + off)));
            assert!(l4_checksum_ok(&p, 0));
        }
    }

    // ---- rewrites ----

    // A random valid TCP/UDP/ICMP-echo packet with random addresses, options and payload.
    pub fn random_packet(rng: &mut Rng) -> Vec<u8> {
        let opts = vec![1u8; 4 * rng.below(11)];
        let payload = rng.bytes_upto(300);
        let (s, d) = (rng.next() as u32, rng.next() as u32);
        match rng.below(3) {
            0 => {
                let topts = vec![1u8; 4 * rng.below(11)];
                let t = tcp(
                    rng.next() as u16,
                    rng.next() as u16,
                    rng.next() as u32,
                    rng.next() as u32,
                    rng.next() as u8,
                    &topts,
                    &payload,
                );
                ipv4_addrs(s, d, 6, &opts, &t)
            }
            1 => ipv4_addrs(s, d, 17, &opts, &udp(rng.next() as u16, rng.next() as u16, &payload)),
            _ => {
                ipv4_addrs(s, d, 1, &opts, &icmp(if rng.chance(50) { 8 } else { 0 }, 0, rng.next() as u16, 1, &payload))
            }
        }
    }

    // One random NAT rewrite of an address or port, checking the new value landed.
    fn random_rewrite(rng: &mut Rng, p: &mut [u8], partial: bool) {
        let ihl = (p[0] & 0x0f) as usize * 4;
        let dst = rng.chance(50);
        if rng.chance(50) {
            let a = rng.next() as u32;
            assert!(rewrite_ipv4_addr(p, 0, dst, a, partial));
            assert_eq!(get32(p, if dst { 16 } else { 12 }), Some(a));
        } else {
            let port = rng.next() as u16;
            assert!(rewrite_l4_port(p, 0, dst, port, partial));
            let at = if p[9] == 1 { ihl + 4 } else { ihl + if dst { 2 } else { 0 } };
            assert_eq!(get16(p, at), Some(port));
        }
    }

    #[test]
    fn rewrites_keep_checksums_valid() {
        let mut rng = Rng::new(3);
        for _ in 0..20_000 {
            let mut p = random_packet(&mut rng);
            let ihl = (p[0] & 0x0f) as usize * 4;
            let udp_none = p[9] == 17 && rng.chance(20);
            if udp_none {
                wr16(&mut p, ihl + 6, 0);
            }
            for _ in 0..1 + rng.below(4) {
                random_rewrite(&mut rng, &mut p, false);
                assert!(ipv4_header_checksum_ok(&p, 0));
                assert!(l4_checksum_ok(&p, 0));
                assert_eq!(rd16(&p, 10), ref_ip_csum(&p, 0));
                let stored = rd16(&p, ihl + ref_check_off(p[9]));
                if udp_none {
                    assert_eq!(stored, 0);
                } else {
                    assert!(same_csum(stored, ref_l4_csum(&p, 0)));
                    assert!(p[9] != 17 || stored != 0);
                }
            }
        }
    }

    #[test]
    fn partial_rewrites_then_completion_verify() {
        let mut rng = Rng::new(4);
        for _ in 0..20_000 {
            let mut p = random_packet(&mut rng);
            let ihl = (p[0] & 0x0f) as usize * 4;
            let field = ihl + ref_check_off(p[9]);
            assert!(set_l4_partial_checksum(&mut p, 0));
            for _ in 0..1 + rng.below(4) {
                random_rewrite(&mut rng, &mut p, true);
                assert!(ipv4_header_checksum_ok(&p, 0));
                // The seed must be exactly what a fresh CHECKSUM_PARTIAL setup would store.
                assert_eq!(rd16(&p, field), ref_pseudo_fold(&p, 0));
            }
            assert!(complete_partial_checksum(&mut p, ihl, field - ihl));
            assert!(l4_checksum_ok(&p, 0));
            assert!(same_csum(rd16(&p, field), ref_l4_csum(&p, 0)));
        }
    }

    #[test]
    fn rewrite_edge_cases() {
        // UDP without checksum stays without.
        let mut p = ipv4(17, &[], &udp(1, 2, b"abc"));
        wr16(&mut p, 26, 0);
        assert!(rewrite_ipv4_addr(&mut p, 0, false, 0xc0a8_0001, false));
        assert!(rewrite_l4_port(&mut p, 0, true, 999, false));
        assert_eq!(rd16(&p, 26), 0);
        assert!(ipv4_header_checksum_ok(&p, 0));

        // Port rewrite in partial mode leaves the seed alone.
        let mut p = ipv4(6, &[], &tcp(1, 2, 3, 4, 0x10, &[], b"abc"));
        assert!(set_l4_partial_checksum(&mut p, 0));
        let seed = rd16(&p, 36);
        assert!(rewrite_l4_port(&mut p, 0, false, 4444, true));
        assert_eq!((rd16(&p, 36), rd16(&p, 20)), (seed, 4444));

        // Non-first fragment: only the IP header changes, and there is no port.
        let mut p = ipv4(6, &[], &tcp(1, 2, 3, 4, 0x10, &[], b"abcdefgh"));
        wr16(&mut p, 6, 0x0003);
        set_ipv4_header_checksum(&mut p, 0);
        let before = p.clone();
        assert!(rewrite_ipv4_addr(&mut p, 0, true, 0x0101_0101, false));
        assert!(ipv4_header_checksum_ok(&p, 0));
        assert_eq!(&p[20..], &before[20..]);
        assert!(!rewrite_l4_port(&mut p, 0, true, 1, false));

        // First fragment: the L4 checksum (over the whole datagram) is updated incrementally.
        let orig = ipv4(17, &[], &udp(1, 2, b"abcdefgh"));
        let mut p = orig.clone();
        wr16(&mut p, 6, 0x2000);
        assert!(rewrite_ipv4_addr(&mut p, 0, false, 0x0202_0202, false));
        assert!(rewrite_l4_port(&mut p, 0, false, 7, false));
        wr16(&mut p, 6, 0x4000);
        assert!(set_ipv4_header_checksum(&mut p, 0) && l4_checksum_ok(&p, 0));

        // Truncated L4 header: refused and untouched.
        let mut p = ipv4(6, &[], &[0; 12]);
        let before = p.clone();
        assert!(!rewrite_ipv4_addr(&mut p, 0, false, 1, false));
        assert!(!rewrite_l4_port(&mut p, 0, false, 1, false));
        assert_eq!(p, before);

        // ICMP: addresses are not covered; echo id is the port, for either side; errors have none.
        let mut p = ipv4(1, &[], &icmp(8, 0, 77, 1, b"x"));
        let check = rd16(&p, 22);
        assert!(rewrite_ipv4_addr(&mut p, 0, false, 0x0303_0303, false));
        assert_eq!(rd16(&p, 22), check);
        assert!(rewrite_l4_port(&mut p, 0, true, 0x4242, false));
        assert_eq!(rd16(&p, 24), 0x4242);
        assert!(l4_checksum_ok(&p, 0));
        let mut p = ipv4(1, &[], &icmp(3, 1, 0, 0, &[0; 28]));
        assert!(!rewrite_l4_port(&mut p, 0, false, 1, false));

        // Other protocols: address rewrite fixes the IP header only; no ports.
        let mut p = ipv4(47, &[], &[9; 8]);
        assert!(rewrite_ipv4_addr(&mut p, 0, true, 5, false));
        assert!(ipv4_header_checksum_ok(&p, 0));
        assert!(!rewrite_l4_port(&mut p, 0, true, 5, false));
        assert!(!rewrite_ipv4_addr(&mut [0x60; 40], 0, true, 5, false));
    }

    // ---- fuzz ----

    // Random bytes, or a valid packet put through random damage, optionally behind a vnet header.
    pub fn fuzz_frame(rng: &mut Rng, vnet: bool) -> Vec<u8> {
        let mut p = if rng.chance(20) {
            let mut b = rng.bytes_upto(120);
            if !b.is_empty() && rng.chance(70) {
                b[0] = 0x40 | (b[0] & 0x0f);
            }
            b
        } else {
            random_packet(rng)
        };
        for _ in 0..rng.below(4) {
            let n = p.len();
            match rng.below(7) {
                0 => p.truncate(rng.below(n + 1)),
                1 if n >= 4 => wr16(&mut p, 2, if rng.chance(30) { 0 } else { rng.below(n + 40) as u16 }),
                2 if n >= 1 => p[0] = (p[0] & 0xf0) | rng.below(16) as u8,
                3 if n >= 8 => {
                    let mf = if rng.chance(50) { 0x2000 } else { 0 };
                    let off = if rng.chance(50) { 0 } else { rng.below(0x2000) as u16 };
                    wr16(&mut p, 6, mf | off | (rng.next() as u16 & 0xc000));
                }
                4 if n >= 1 => {
                    let i = rng.below(n);
                    p[i] ^= 1 << rng.below(8);
                }
                5 => p.extend(rng.bytes_upto(16)),
                6 if n >= 34 => p[32] = rng.next() as u8, // TCP data offset / UDP/ICMP bytes
                _ => {}
            }
        }
        if !vnet {
            return p;
        }
        let mut h = rng.bytes(VNET_HDR_LEN);
        if rng.chance(50) {
            h[1] = [0, 1, 0x81, 3, 4, 5][rng.below(6)];
            h[0] &= 3;
        }
        if rng.chance(5) {
            h.truncate(rng.below(VNET_HDR_LEN));
            return h;
        }
        with_vnet(&h, &p)
    }

    // Whatever the parser accepted, the checksum code can set, verify and complete.
    fn check_parse_agrees_with_checksums(frame: &[u8], l3: usize, m: &[u32]) {
        let f = m[M_FLAGS];
        let mut q = frame.to_vec();
        if f & F_IPV4 != 0 {
            assert!(set_ipv4_header_checksum(&mut q, l3) && ipv4_header_checksum_ok(&q, l3));
        }
        if f & F_L4 == 0 || f & F_FRAGMENT != 0 {
            return;
        }
        assert!(set_l4_checksum(&mut q, l3) && l4_checksum_ok(&q, l3));
        let (ihl, end) = (m[M_IHL] as usize, l3 + m[M_TOT_LEN] as usize);
        assert!(set_l4_partial_checksum(&mut q, l3));
        let off = match m[M_PROTO] as u8 {
            IPPROTO_TCP => TCP_CHECK,
            IPPROTO_UDP => UDP_CHECK,
            _ => ICMP_CHECK,
        };
        assert!(complete_partial_checksum(&mut q[l3..end], ihl, off));
        assert!(l4_checksum_ok(&q, l3));
    }

    #[test]
    fn fuzz_parse_and_rewrite_never_panic() {
        let mut rng = Rng::new(0x00c1_1a7e);
        let mut seen = 0u32;
        for _ in 0..150_000 {
            let vnet = rng.chance(50);
            let frame = fuzz_frame(&mut rng, vnet);
            let base = if rng.chance(10) { u32::MAX - rng.below(64) as u32 } else { rng.below(1 << 24) as u32 };
            let mut m = [0u32; META_WORDS];
            parse(&frame, vnet, base, &mut m);
            if base.checked_add(frame.len() as u32).is_some() {
                check_meta(&m, frame.len(), base);
            }
            seen |= m[M_FLAGS];

            let l3 = if vnet { VNET_HDR_LEN.min(frame.len()) } else { 0 };
            check_parse_agrees_with_checksums(&frame, l3, &m);
            let mut p = frame.clone();
            let at = if rng.chance(80) { l3 } else { rng.below(p.len() + 3) };
            let partial = rng.chance(50);
            let _ = csum_partial(&p, rng.next() as u32);
            let _ = ipv4_header_checksum(&p, at);
            let _ = ipv4_header_checksum_ok(&p, at);
            let _ = l4_checksum(&p, at);
            let _ = l4_checksum_ok(&p, at);
            let _ = rewrite_ipv4_addr(&mut p, at, rng.chance(50), rng.next() as u32, partial);
            let _ = rewrite_l4_port(&mut p, at, rng.chance(50), rng.next() as u16, partial);
            let _ = set_l4_partial_checksum(&mut p, at);
            let start = rng.below(p.len() + 4);
            let _ = complete_partial_checksum(&mut p, start, rng.below(64));
            let _ = complete_partial_checksum(&mut p, rng.next() as usize, rng.next() as usize);
            let _ = set_ipv4_header_checksum(&mut p, at);
            let _ = set_l4_checksum(&mut p, at);
            assert_eq!(p.len(), frame.len());
        }
        // The generator reached every flag.
        assert_eq!(seen, ALL_FLAGS, "missing flags {:#x}", ALL_FLAGS & !seen);
    }
}
