//! UDP-tunnel GSO frames (gso::tunnel) and whole super-packets on receive (coalesce::mark_whole).
use super::*;
use crate::wire::tests::{ipv4_addrs, tcp, vnet_hdr, with_vnet};
use crate::wire::{ipv4_header_checksum_ok, parse, set_l4_partial_checksum};

const ACK: u8 = 0x10;

fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}

fn be16(b: &[u8], o: usize) -> u16 {
    u16::from_be_bytes([b[o], b[o + 1]])
}

fn pod_super_packet(payload: usize) -> Vec<u8> {
    let t = tcp(40000, 80, 1, 2, ACK, &[], &vec![5u8; payload]);
    let mut p = ipv4_addrs(0x0a00_0001, 0x0a00_0002, 6, &[], &t);
    assert!(set_l4_partial_checksum(&mut p, 0));
    crate::wire::set_ipv4_header_checksum(&mut p, 0);
    p
}

// The kernel's virtio_net_hdr_tnl_to_skb checks: outer_th >= ETH + IPv4, inner_nh >= outer_th + UDP,
// csum_start >= inner_nh + IPv4; and the outer lengths cover the whole frame.
#[test]
fn tunnel_head_describes_the_frame_for_the_kernel() {
    let pkt = pod_super_packet(60_000);
    let frame = with_vnet(&vnet_hdr(1, 1 | 0x80, 40, 1398, 20, 16), &pkt);
    let mut head = [0u8; TUNNEL_HEAD_LEN];
    head[tunnel::VXLAN] = 0x08;
    let (l3, len) = tunnel_head(&frame, &mut head, 0xc0a8_4d02).unwrap();
    assert_eq!((l3, len), (VNET_HDR_LEN, pkt.len()));
    assert_eq!((head[0], head[1]), (1, 1 | 0x80 | 0x20), "NEEDS_CSUM, TCPv4 + ECN + UDP tunnel IPv4");
    let (hdr_len, gso_size, csum_start, csum_off) = (le16(&head, 2), le16(&head, 4), le16(&head, 6), le16(&head, 8));
    let (outer_th, inner_nh) = (le16(&head, 20), le16(&head, 22));
    assert_eq!((outer_th, inner_nh), (34, 64));
    assert_eq!((csum_start, csum_off, hdr_len, gso_size), (84, 16, 104, 1398));
    let ip = &head[tunnel::OUTER_IP..tunnel::OUTER_UDP];
    assert!(ipv4_header_checksum_ok(ip, 0));
    assert_eq!(be16(ip, 2) as usize, 20 + 8 + 22 + pkt.len());
    assert_eq!(&ip[16..20], &[192, 168, 77, 2]);
    assert_eq!(be16(ip, 6), 0x4000, "DF");
    let udp = &head[tunnel::OUTER_UDP..tunnel::VXLAN];
    assert_eq!(be16(udp, 4) as usize, 8 + 22 + pkt.len());
    assert_eq!(head[tunnel::VXLAN], 0x08, "the caller's VXLAN prefix stays");
}

#[test]
fn tunnel_head_refuses_what_the_kernel_would_not_segment() {
    let mut head = [0u8; TUNNEL_HEAD_LEN];
    let pkt = pod_super_packet(3000);
    // No GSO, no partial checksum, a UDP GSO type, csum_start not at the TCP header.
    for h in [vnet_hdr(1, 0, 0, 0, 20, 16), vnet_hdr(0, 1, 40, 1398, 20, 16), vnet_hdr(1, 5, 40, 1398, 20, 6), vnet_hdr(1, 1, 40, 1398, 24, 16)] {
        assert_eq!(tunnel_head(&with_vnet(&h, &pkt), &mut head, 1), Err(GsoError::NotTcp4));
    }
    // An outer IPv4 packet over 65,535 bytes.
    let big = pod_super_packet(65_535 - 40 - 40);
    assert_eq!(tunnel_head(&with_vnet(&vnet_hdr(1, 1, 40, 1398, 20, 16), &big), &mut head, 1), Err(GsoError::BadMss));
    assert_eq!(tunnel_head(&pkt, &mut head[..10], 1), Err(GsoError::NotTcp4));
    assert!(tunnel_head(&with_vnet(&vnet_hdr(1, 1, 40, 1398, 20, 16), &pkt), &mut head[..50], 1).is_err());
}

#[test]
fn a_whole_super_packet_becomes_a_gso_record_cut_at_the_pod_mtu() {
    let pkt = pod_super_packet(20_000);
    let mut rec = [0u32; META_WORDS];
    parse(&pkt, false, 0, &mut rec);
    assert!(coalesce::mark_whole(&mut rec, 1450));
    assert_eq!(rec[M_FLAGS] & (F_GSO | F_NEEDS_CSUM), F_GSO | F_NEEDS_CSUM);
    assert_eq!((rec[M_GSO_TYPE], rec[M_GSO_SIZE], rec[M_HDR_LEN], rec[M_CSUM_START], rec[M_CSUM_OFFSET]), (1, 1410, 40, 20, 16));
    // A packet the wire carries, a disabled limit, a SYN: untouched.
    let small = pod_super_packet(1410);
    let mut rec = [0u32; META_WORDS];
    parse(&small, false, 0, &mut rec);
    assert!(!coalesce::mark_whole(&mut rec, 1450));
    parse(&pkt, false, 0, &mut rec);
    assert!(!coalesce::mark_whole(&mut rec, 0));
    let syn = ipv4_addrs(1, 2, 6, &[], &tcp(1, 2, 3, 4, 0x02, &[], &vec![0u8; 3000]));
    parse(&syn, false, 0, &mut rec);
    assert!(!coalesce::mark_whole(&mut rec, 1450));
    // The end of a stream (FIN, PSH) and a congestion-window reduction (CWR) stay super-packets.
    let fin = ipv4_addrs(1, 2, 6, &[], &tcp(1, 2, 3, 4, ACK | 0x01 | 0x08, &[], &vec![0u8; 3000]));
    parse(&fin, false, 0, &mut rec);
    assert!(coalesce::mark_whole(&mut rec, 1450));
    assert_eq!(rec[M_GSO_TYPE], 1);
    let cwr = ipv4_addrs(1, 2, 6, &[], &tcp(1, 2, 3, 4, ACK | 0x80, &[], &vec![0u8; 3000]));
    parse(&cwr, false, 0, &mut rec);
    assert!(coalesce::mark_whole(&mut rec, 1450));
    assert_eq!(rec[M_GSO_TYPE], 1 | 0x80);
}
