//! TCP segmentation in software: split an IPv4/TCP super-packet into MSS-sized segments,
//! as the kernel's GSO does when a TSO packet arrives where no device will segment it.

use std::fmt;

pub mod coalesce;
mod encap;
mod tunnel;
pub use encap::{encap_datagrams, Datagrams};
pub use tunnel::{tunnel_head, TUNNEL_HEAD_LEN};

use crate::meta::*;
use crate::wire::{
    csum_fold, csum_partial, get16, get32, get8, pseudo_header_sum, put16, put32, put8, set_ipv4_header_checksum,
    IPPROTO_TCP, IP_DADDR, IP_FRAG, IP_ID, IP_MF, IP_MIN_HDR, IP_OFFSET_MASK, IP_PROTO, IP_SADDR, IP_TOT_LEN, TCP_CHECK,
    TCP_CWR, TCP_DOFF, TCP_FIN, TCP_FLAGS, TCP_MIN_HDR, TCP_PSH, TCP_SEQ,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GsoError {
    /// Not an unfragmented IPv4/TCP packet (or a GSO type other than TCPv4).
    NotTcp4,
    /// A header or the announced length runs past the frame.
    Truncated,
    /// MSS is 0, or a segment would not fit in an IPv4 total length.
    BadMss,
    /// The output buffer cannot hold all segments.
    OutTooSmall,
    /// More segments than seg_offs/seg_lens can record.
    TooManySegments,
}

impl fmt::Display for GsoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GsoError::NotTcp4 => "not an unfragmented IPv4/TCP packet",
            GsoError::Truncated => "packet truncated",
            GsoError::BadMss => "bad MSS",
            GsoError::OutTooSmall => "output buffer too small",
            GsoError::TooManySegments => "too many segments",
        })
    }
}

impl std::error::Error for GsoError {}

// Where the pieces of the super-packet are, resolved before any output is written.
struct Plan {
    l3: usize,
    hdr_len: usize, // IP + TCP headers with options, copied into every segment
    payload: usize, // offset of the TCP payload in the frame
    payload_len: usize,
    mss: usize,
    count: usize,
}

impl Plan {
    // Bytes of segment i's payload.
    fn chunk(&self, i: usize) -> usize {
        self.payload_len.saturating_sub(i * self.mss).min(self.mss)
    }
}

fn plan(frame: &[u8], vnet: bool, mss_override: u16) -> Result<Plan, GsoError> {
    let (l3, gso_size) = if vnet { vnet_gso(frame)? } else { (0, 0) };
    let mss = if mss_override != 0 { mss_override } else { gso_size } as usize;
    let ip = frame.get(l3..).unwrap_or(&[]);
    let (ihl, ip_len) = ip4_tcp(ip)?;
    let doff = (get8(ip, ihl + TCP_DOFF).ok_or(GsoError::Truncated)? >> 4) as usize * 4;
    let hdr_len = ihl + doff;
    if doff < TCP_MIN_HDR || hdr_len > ip_len {
        return Err(GsoError::Truncated);
    }
    let payload_len = ip_len - hdr_len;
    if mss == 0 || hdr_len + payload_len.min(mss) > u16::MAX as usize {
        return Err(GsoError::BadMss);
    }
    let count = payload_len.div_ceil(mss).max(1);
    Ok(Plan { l3, hdr_len, payload: l3 + hdr_len, payload_len, mss, count })
}

// (IP offset, gso_size) from the virtio-net header; only TCPv4 (or no) GSO is ours to do.
fn vnet_gso(frame: &[u8]) -> Result<(usize, u16), GsoError> {
    let h = frame.get(..VNET_HDR_LEN).ok_or(GsoError::Truncated)?;
    let gso_type = get8(h, 1).unwrap_or(0) & !VIRTIO_NET_HDR_GSO_ECN;
    if gso_type != VIRTIO_NET_HDR_GSO_NONE && gso_type != VIRTIO_NET_HDR_GSO_TCPV4 {
        return Err(GsoError::NotTcp4);
    }
    let gso_size = h.get(4..6).map_or(0, |b| u16::from_le_bytes([b[0], b[1]]));
    Ok((VNET_HDR_LEN, gso_size))
}

// (IHL, IP packet length) of an unfragmented IPv4/TCP packet; tot_len 0 means the whole frame (BIG TCP).
fn ip4_tcp(ip: &[u8]) -> Result<(usize, usize), GsoError> {
    let b0 = get8(ip, 0).ok_or(GsoError::NotTcp4)?;
    if b0 >> 4 != 4 {
        return Err(GsoError::NotTcp4);
    }
    if ip.len() < IP_MIN_HDR {
        return Err(GsoError::Truncated);
    }
    let ihl = (b0 & 0x0f) as usize * 4;
    if ihl < IP_MIN_HDR || ihl > ip.len() {
        return Err(GsoError::Truncated);
    }
    let frag = get16(ip, IP_FRAG).unwrap_or(0);
    if get8(ip, IP_PROTO) != Some(IPPROTO_TCP) || frag & (IP_MF | IP_OFFSET_MASK) != 0 {
        return Err(GsoError::NotTcp4);
    }
    let tot = get16(ip, IP_TOT_LEN).unwrap_or(0) as usize;
    let len = if tot == 0 { ip.len() } else { tot };
    if len < ihl || len > ip.len() {
        return Err(GsoError::Truncated);
    }
    Ok((ihl, len))
}

/// Number of segments tcp4_segment would produce, 0 when it would fail on the input.
pub fn tcp4_segment_count(frame: &[u8], vnet: bool, mss_override: u16) -> usize {
    plan(frame, vnet, mss_override).map_or(0, |p| p.count)
}

/// Segments one IPv4/TCP frame (with a virtio-net header when `vnet`) at gso_size, or at
/// `mss_override` when non-zero. Segments go into `out` back to back, each with a zeroed
/// virtio-net header when `out_vnet`, fully checksummed; their offsets and lengths (header
/// included) go into seg_offs/seg_lens. Returns the segment count.
pub fn tcp4_segment(
    frame: &[u8],
    vnet: bool,
    mss_override: u16,
    out: &mut [u8],
    out_vnet: bool,
    seg_offs: &mut [u32],
    seg_lens: &mut [u32],
) -> Result<usize, GsoError> {
    let p = plan(frame, vnet, mss_override)?;
    if p.count > seg_offs.len() || p.count > seg_lens.len() {
        return Err(GsoError::TooManySegments);
    }
    let vh = if out_vnet { VNET_HDR_LEN } else { 0 };
    let need = p.count.checked_mul(vh + p.hdr_len).and_then(|h| h.checked_add(p.payload_len));
    if need.is_none_or(|n| n > out.len()) {
        return Err(GsoError::OutTooSmall);
    }
    let mut at = 0;
    for i in 0..p.count {
        let len = write_segment(frame, &p, i, out.get_mut(at..).unwrap_or(&mut []), vh)?;
        seg_offs[i] = at as u32;
        seg_lens[i] = len as u32;
        at += len;
    }
    Ok(p.count)
}

/// IPv4 (60) and TCP (60) headers at their longest.
const MAX_HDRS: usize = 120;

// Writes segment i at the start of `out`; returns its length including the virtio-net header.
// Headers are fixed in a local copy and the payload summed from the frame, so nothing just
// written is read back (that read stalls behind the copy's stores).
fn write_segment(frame: &[u8], p: &Plan, i: usize, out: &mut [u8], vh: usize) -> Result<usize, GsoError> {
    let chunk = p.chunk(i);
    let ip_len = p.hdr_len + chunk;
    let seg = out.get_mut(..vh + ip_len).ok_or(GsoError::OutTooSmall)?;
    let (vnet_hdr, ip) = seg.split_at_mut(vh);
    // flags 0, GSO_NONE: every segment leaves with a complete checksum.
    vnet_hdr.fill(0);
    let from = p.payload + i * p.mss;
    let data = frame.get(from..from + chunk).ok_or(GsoError::Truncated)?;
    let mut hdrs = [0u8; MAX_HDRS];
    let h = hdrs.get_mut(..p.hdr_len).ok_or(GsoError::Truncated)?;
    h.copy_from_slice(frame.get(p.l3..p.l3 + p.hdr_len).ok_or(GsoError::Truncated)?);
    fix_headers(h, p, i, ip_len, csum_partial(data, 0)).ok_or(GsoError::Truncated)?;
    let (seg_hdrs, seg_data) = ip.split_at_mut(p.hdr_len);
    seg_hdrs.copy_from_slice(h);
    seg_data.copy_from_slice(data);
    Ok(vh + ip_len)
}

// Per-segment header fields of `h` (IPv4 + TCP headers of a segment `ip_len` bytes long whose
// payload sums to `payload_sum`): length, id, sequence number, flags, then both checksums.
fn fix_headers(h: &mut [u8], p: &Plan, i: usize, ip_len: usize, payload_sum: u32) -> Option<()> {
    let ihl = (get8(h, 0)? & 0x0f) as usize * 4;
    let last = i + 1 == p.count;
    put16(h, IP_TOT_LEN, ip_len as u16)?;
    put16(h, IP_ID, get16(h, IP_ID)?.wrapping_add(i as u16))?;
    let seq = get32(h, ihl + TCP_SEQ)?.wrapping_add((i * p.mss) as u32);
    put32(h, ihl + TCP_SEQ, seq)?;
    let mut flags = get8(h, ihl + TCP_FLAGS)?;
    // FIN/PSH belong to the end of the data, CWR to its start.
    if !last {
        flags &= !(TCP_FIN | TCP_PSH);
    }
    if i != 0 {
        flags &= !TCP_CWR;
    }
    put8(h, ihl + TCP_FLAGS, flags)?;
    if !set_ipv4_header_checksum(h, 0) {
        return None;
    }
    put16(h, ihl + TCP_CHECK, 0)?;
    let pseudo = pseudo_header_sum(get32(h, IP_SADDR)?, get32(h, IP_DADDR)?, IPPROTO_TCP, (ip_len - ihl) as u16);
    let sum = csum_partial(h.get(ihl..)?, pseudo);
    put16(h, ihl + TCP_CHECK, csum_fold(fold_add(sum, payload_sum)))
}

// Adds two ones-complement partial sums without losing a carry.
fn fold_add(a: u32, b: u32) -> u32 {
    let s = a as u64 + b as u64;
    ((s & 0xffff_ffff) + (s >> 32)) as u32
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tunnel_tests;
