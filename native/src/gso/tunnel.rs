//! Headers for the kernel's GSO over UDP tunnels (Linux 6.17, TUN_F_UDP_TUNNEL_GSO): a TCP
//! super-packet leaves through a TAP device as one frame — tunnel virtio-net header, outer Ethernet,
//! IPv4, UDP and VXLAN, inner Ethernet — followed by the super-packet's own IP packet, untouched. The
//! kernel forwards it and cuts it into VXLAN datagrams (a receiver across a bridge may get it whole).

use super::*;
use crate::wire::{IPPROTO_UDP, UDP_HDR};

/// struct virtio_net_hdr_v1_hash_tunnel: virtio_net_hdr_v1 (12), hash (8), outer_th_offset, inner_nh_offset.
pub const TNL_VNET_LEN: usize = 24;
const ETH_LEN: usize = 14;
pub const OUTER_IP: usize = TNL_VNET_LEN + ETH_LEN;
pub const OUTER_UDP: usize = OUTER_IP + IP_MIN_HDR;
/// VXLAN header then inner Ethernet (22 bytes), as the caller's template holds them.
pub const VXLAN: usize = OUTER_UDP + UDP_HDR;
/// The whole header in front of the inner IP packet.
pub const TUNNEL_HEAD_LEN: usize = VXLAN + 8 + ETH_LEN;
const VIRTIO_NET_HDR_GSO_UDP_TUNNEL_IPV4: u8 = 0x20;
const TCP_CSUM_OFFSET: u16 = 16;
const IP_DF: u16 = 0x4000;
const IP_MAX_LEN: usize = 65535;

/// Completes `head` (TUNNEL_HEAD_LEN bytes) for `frame`, a pod's TCPv4 GSO frame behind its 10-byte
/// virtio-net header, to `daddr`. The caller's template already holds the outer Ethernet header
/// (to the TAP's own MAC: the kernel drops frames for other hosts), the outer source address, the
/// UDP ports and the VXLAN + inner Ethernet prefix. Returns where the IP packet starts and its
/// length. NotTcp4 for what the kernel would not segment as TCP, BadMss when it would not fit.
pub fn tunnel_head(frame: &[u8], head: &mut [u8], daddr: u32) -> Result<(usize, usize), GsoError> {
    let vh = frame.get(..VNET_HDR_LEN).ok_or(GsoError::Truncated)?;
    let (flags, gso_type) = (vh[0], vh[1]);
    if gso_type & !VIRTIO_NET_HDR_GSO_ECN != VIRTIO_NET_HDR_GSO_TCPV4 || flags & VIRTIO_NET_HDR_F_NEEDS_CSUM == 0 {
        return Err(GsoError::NotTcp4);
    }
    let p = plan(frame, true, 0)?;
    let ip_len = p.hdr_len + p.payload_len;
    let ihl = get8(frame, p.l3).map_or(0, |b| (b & 0x0f) as usize * 4);
    // The kernel finishes the checksum at csum_start: it must be the inner TCP header we parsed.
    if u16::from_le_bytes([vh[6], vh[7]]) as usize != ihl || u16::from_le_bytes([vh[8], vh[9]]) != TCP_CSUM_OFFSET {
        return Err(GsoError::NotTcp4);
    }
    let outer_len = TUNNEL_HEAD_LEN - OUTER_IP + ip_len;
    if outer_len > IP_MAX_LEN {
        return Err(GsoError::BadMss);
    }
    let h = head.get_mut(..TUNNEL_HEAD_LEN).ok_or(GsoError::OutTooSmall)?;
    let inner_nh = TUNNEL_HEAD_LEN - TNL_VNET_LEN;
    h[..TNL_VNET_LEN].fill(0);
    h[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    h[1] = gso_type | VIRTIO_NET_HDR_GSO_UDP_TUNNEL_IPV4;
    h[2..4].copy_from_slice(&((inner_nh + p.hdr_len) as u16).to_le_bytes());
    h[4..6].copy_from_slice(&(p.mss as u16).to_le_bytes());
    h[6..8].copy_from_slice(&((inner_nh + ihl) as u16).to_le_bytes());
    h[8..10].copy_from_slice(&TCP_CSUM_OFFSET.to_le_bytes());
    h[20..22].copy_from_slice(&((OUTER_UDP - TNL_VNET_LEN) as u16).to_le_bytes());
    h[22..24].copy_from_slice(&(inner_nh as u16).to_le_bytes());
    let ip = &mut h[OUTER_IP..OUTER_UDP];
    ip[..IP_SADDR].copy_from_slice(&[0x45, 0, 0, 0, 0, 0, 0, 0, 64, IPPROTO_UDP, 0, 0]);
    put16(ip, IP_TOT_LEN, outer_len as u16);
    put16(ip, IP_FRAG, IP_DF);
    put32(ip, IP_DADDR, daddr);
    set_ipv4_header_checksum(ip, 0);
    let udp = &mut h[OUTER_UDP..VXLAN];
    udp[4..6].copy_from_slice(&((outer_len - IP_MIN_HDR) as u16).to_be_bytes());
    udp[6..8].fill(0); // no outer checksum, as the socket path sends
    Ok((p.l3, ip_len))
}
