//! The parser: one frame (optionally behind a virtio-net header) into the metadata record.
use super::*;
use crate::meta::*;

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
pub(super) fn ip_len(tot_len: u16, ihl: usize, avail: usize, gso: bool) -> Option<usize> {
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
