//! Datagrams for the tunnel: each is a fixed prefix (VXLAN + inner Ethernet) and one complete IPv4
//! packet. A TCP super-packet becomes one datagram per MSS segment, every one of the same size but
//! the last, so a single UDP GSO send (segment size = that datagram size) carries them all: UDP GSO
//! only cuts the payload, so the inner headers must already be in every piece.

use super::*;
use crate::wire::complete_partial_checksum;

/// What encap_datagrams wrote: total bytes, datagram count, and the size every datagram but the
/// last has (0 when there is one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagrams {
    pub bytes: usize,
    pub count: usize,
    pub seg_size: usize,
}

/// Writes `frame` (with a virtio-net header when `vnet`) into `out` as tunnel datagrams, each led by
/// `prefix`. Inner checksums leave complete: segments get full ones, a CHECKSUM_PARTIAL packet is
/// finished as skb_checksum_help would.
pub fn encap_datagrams(frame: &[u8], vnet: bool, prefix: &[u8], out: &mut [u8]) -> Result<Datagrams, GsoError> {
    let gso = vnet && get8(frame, 1).unwrap_or(0) & !VIRTIO_NET_HDR_GSO_ECN != VIRTIO_NET_HDR_GSO_NONE;
    if gso {
        return segments(frame, prefix, out);
    }
    let l3 = if vnet { VNET_HDR_LEN } else { 0 };
    let ip = frame.get(l3..).ok_or(GsoError::Truncated)?;
    let ip_len = ip4_len(ip)?;
    let bytes = prefix.len() + ip_len;
    let dgram = out.get_mut(..bytes).ok_or(GsoError::OutTooSmall)?;
    let (head, packet) = dgram.split_at_mut(prefix.len());
    head.copy_from_slice(prefix);
    packet.copy_from_slice(&ip[..ip_len]);
    if vnet && get8(frame, 0).unwrap_or(0) & VIRTIO_NET_HDR_F_NEEDS_CSUM != 0 {
        let start = frame.get(6..8).map_or(0, |b| u16::from_le_bytes([b[0], b[1]])) as usize;
        let offset = frame.get(8..10).map_or(0, |b| u16::from_le_bytes([b[0], b[1]])) as usize;
        if !complete_partial_checksum(packet, start, offset) {
            return Err(GsoError::Truncated);
        }
    }
    Ok(Datagrams { bytes, count: 1, seg_size: 0 })
}

// A super-packet: prefix + segment, back to back.
fn segments(frame: &[u8], prefix: &[u8], out: &mut [u8]) -> Result<Datagrams, GsoError> {
    let p = plan(frame, true, 0)?;
    let mut at = 0;
    for i in 0..p.count {
        let head = out.get_mut(at..at + prefix.len()).ok_or(GsoError::OutTooSmall)?;
        head.copy_from_slice(prefix);
        at += prefix.len();
        at += write_segment(frame, &p, i, out.get_mut(at..).unwrap_or(&mut []), 0)?;
    }
    let seg_size = if p.count > 1 { prefix.len() + p.hdr_len + p.mss } else { 0 };
    Ok(Datagrams { bytes: at, count: p.count, seg_size })
}

// Length of an IPv4 packet from its header, checked against the bytes there.
fn ip4_len(ip: &[u8]) -> Result<usize, GsoError> {
    if get8(ip, 0).ok_or(GsoError::Truncated)? >> 4 != 4 || ip.len() < IP_MIN_HDR {
        return Err(GsoError::NotTcp4);
    }
    let tot = get16(ip, IP_TOT_LEN).unwrap_or(0) as usize;
    if tot < IP_MIN_HDR || tot > ip.len() {
        return Err(GsoError::Truncated);
    }
    Ok(tot)
}
