//! Packet layer: parse one frame into the metadata record, Internet checksums, NAT rewrites.
//! Everything works on byte slices plus offsets; nothing allocates, panics or reads out of bounds.
//! Protocol numbers, header field offsets and byte accessors live here; the rest in submodules.

mod checksum;
mod parse;
mod rewrite;
#[cfg(test)]
pub(crate) mod tests;

pub use checksum::*;
pub use parse::parse;
pub use rewrite::*;


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
