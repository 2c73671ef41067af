//! Segmentation against hand-built super-packets, the parser and the checksum reference; fuzzed.
use super::*;
use crate::wire::tests::{
    fuzz_frame, ipv4_addrs, ref_csum, ref_ip_csum, ref_l4_bytes, tcp, vnet_hdr, with_vnet, Rng,
};
use crate::wire::{ipv4_header_checksum_ok, l4_checksum_ok, parse, set_l4_partial_checksum};

const ACK: u8 = 0x10;
const TS_OPTS: [u8; 12] = [1, 1, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0x56, 0x78];

fn rd16(p: &[u8], o: usize) -> u16 {
    u16::from_be_bytes([p[o], p[o + 1]])
}

fn rd32(p: &[u8], o: usize) -> u32 {
    u32::from_be_bytes(p[o..o + 4].try_into().unwrap())
}

// A TCP super-packet as the kernel hands it over: partial checksum, id and seq near wrap-around.
fn super_packet(payload: &[u8], ip_opts: &[u8], tcp_opts: &[u8], flags: u8, tot_len_zero: bool) -> Vec<u8> {
    let t = tcp(40000, 443, 0xffff_f000, 0x0102_0304, flags, tcp_opts, payload);
    let mut p = ipv4_addrs(0x0a00_0001, 0x0a00_0002, 6, ip_opts, &t);
    p[4..6].copy_from_slice(&0xfff0u16.to_be_bytes());
    if tot_len_zero {
        p[2..4].copy_from_slice(&[0, 0]);
    }
    assert!(set_l4_partial_checksum(&mut p, 0));
    crate::wire::set_ipv4_header_checksum(&mut p, 0);
    p
}

struct Out {
    buf: Vec<u8>,
    offs: Vec<u32>,
    lens: Vec<u32>,
    count: usize,
}

fn segment(frame: &[u8], vnet: bool, mss_override: u16, out_vnet: bool) -> Result<Out, GsoError> {
    let n = tcp4_segment_count(frame, vnet, mss_override);
    let mut buf = vec![0xaa; frame.len() + (n + 1) * (VNET_HDR_LEN + 120)];
    let (mut offs, mut lens) = (vec![0; n], vec![0; n]);
    let count = tcp4_segment(frame, vnet, mss_override, &mut buf, out_vnet, &mut offs, &mut lens)?;
    assert_eq!(count, n);
    Ok(Out { buf, offs, lens, count })
}

// Checks every segment on its own against the original packet `orig` (IP header at 0).
fn check_segments(orig: &[u8], o: &Out, mss: usize, out_vnet: bool) {
    let vh = if out_vnet { VNET_HDR_LEN } else { 0 };
    let ihl = (orig[0] & 0x0f) as usize * 4;
    let hdr_len = ihl + (orig[ihl + 12] >> 4) as usize * 4;
    let tot = match rd16(orig, 2) as usize {
        0 => orig.len(),
        t => t,
    };
    let payload = &orig[hdr_len..tot];
    let flags = orig[ihl + 13];
    let mut joined = Vec::new();
    let mut at = 0;
    for i in 0..o.count {
        assert_eq!(o.offs[i] as usize, at, "segments are back to back");
        let seg = &o.buf[at..at + o.lens[i] as usize];
        at += seg.len();
        assert!(seg[..vh].iter().all(|&b| b == 0), "zeroed virtio-net header");
        let ip = &seg[vh..];
        let last = i + 1 == o.count;
        let data = &ip[hdr_len..];
        assert_eq!(data.len(), if last { payload.len() - i * mss } else { mss });
        joined.extend_from_slice(data);
        assert_eq!(rd16(ip, 2) as usize, ip.len());
        assert_eq!(rd16(ip, 4), rd16(orig, 4).wrapping_add(i as u16));
        assert_eq!(rd16(ip, 10), ref_ip_csum(ip, 0));
        assert_eq!(rd32(ip, ihl + 4), rd32(orig, ihl + 4).wrapping_add((i * mss) as u32));
        let mut want = flags;
        if !last {
            want &= !(0x01 | 0x08);
        }
        if i != 0 {
            want &= !0x80;
        }
        assert_eq!(ip[ihl + 13], want, "flags of segment {i}");
        assert_eq!(rd16(ip, ihl + 16), ref_csum(&ref_l4_bytes(ip, 0)));
        // Everything else in the headers is copied as is.
        assert_eq!(&ip[6..10], &orig[6..10]);
        assert_eq!(&ip[12..ihl + 4], &orig[12..ihl + 4]);
        assert_eq!(&ip[ihl + 8..ihl + 13], &orig[ihl + 8..ihl + 13]);
        assert_eq!(&ip[ihl + 14..ihl + 16], &orig[ihl + 14..ihl + 16]);
        assert_eq!(&ip[ihl + 18..hdr_len], &orig[ihl + 18..hdr_len]);
        // And the parser and checksum checks accept it as an ordinary packet.
        let mut m = [0u32; META_WORDS];
        parse(seg, out_vnet, 0, &mut m);
        assert_eq!(m[M_FLAGS] & (F_IPV4 | F_L4 | F_GSO | F_NEEDS_CSUM), F_IPV4 | F_L4);
        assert!(ipv4_header_checksum_ok(ip, 0) && l4_checksum_ok(ip, 0));
    }
    assert_eq!(joined, payload, "payloads concatenate back to the original");
}

#[test]
fn segments_64k_super_packet() {
    let mss = 1448;
    for (ip_opts, tcp_opts) in [(&[][..], &[][..]), (&[][..], &TS_OPTS[..]), (&[1, 1, 1, 0][..], &TS_OPTS[..])] {
        for flags in [ACK, ACK | 0x08 | 0x01 | 0x80] {
            let hdrs = 20 + ip_opts.len() + 20 + tcp_opts.len();
            let payload: Vec<u8> = (0..65535 - hdrs).map(|i| (i * 7 + i / 251) as u8).collect();
            let pkt = super_packet(&payload, ip_opts, tcp_opts, flags, false);
            assert_eq!(pkt.len(), 65535);
            for (vnet, out_vnet) in [(true, true), (true, false), (false, true), (false, false)] {
                let frame =
                    if vnet { with_vnet(&vnet_hdr(1, 1, hdrs as u16, mss, 40, 16), &pkt) } else { pkt.clone() };
                let o = segment(&frame, vnet, if vnet { 0 } else { mss }, out_vnet).unwrap();
                assert_eq!(o.count, payload.len().div_ceil(mss as usize));
                check_segments(&pkt, &o, mss as usize, out_vnet);
            }
        }
    }
}

#[test]
fn mss_override_wins_over_gso_size() {
    let pkt = super_packet(&[5; 10_000], &[], &[], ACK, false);
    let frame = with_vnet(&vnet_hdr(1, 1, 40, 1448, 20, 16), &pkt);
    let o = segment(&frame, true, 1000, true).unwrap();
    assert_eq!(o.count, 10);
    check_segments(&pkt, &o, 1000, true);
}

#[test]
fn big_tcp_tot_len_zero() {
    let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    let pkt = super_packet(&payload, &[], &TS_OPTS, ACK | 0x01, true);
    let frame = with_vnet(&vnet_hdr(1, 0x81, 52, 9000, 20, 16), &pkt);
    let o = segment(&frame, true, 0, false).unwrap();
    assert_eq!(o.count, 12);
    check_segments(&pkt, &o, 9000, false);
}

#[test]
fn small_packet_passes_through_with_full_checksum() {
    for payload_len in [0, 1, 1447, 1448] {
        let pkt = super_packet(&vec![9; payload_len], &[], &TS_OPTS, ACK | 0x08 | 0x01 | 0x80, false);
        let mut padded = with_vnet(&vnet_hdr(1, 0, 0, 1448, 20, 16), &pkt);
        padded.extend_from_slice(&[0; 6]);
        let o = segment(&padded, true, 0, true).unwrap();
        assert_eq!(o.count, 1);
        let seg = &o.buf[..o.lens[0] as usize];
        assert_eq!(seg.len(), VNET_HDR_LEN + pkt.len(), "trailing padding dropped");
        let mut want = pkt.clone();
        assert!(crate::wire::set_l4_checksum(&mut want, 0));
        assert_eq!(&seg[VNET_HDR_LEN..], &want[..]);
        check_segments(&pkt, &o, 1448, true);
    }
}

#[test]
fn random_sizes_and_mss() {
    let mut rng = Rng::new(5);
    for _ in 0..3000 {
        let mss = if rng.chance(10) { 1 + rng.below(64) } else { 64 + rng.below(9000) };
        let max = if mss < 64 { 3000 } else { 70_000 };
        let payload = rng.bytes_upto(max);
        let ip_opts = vec![1u8; 4 * rng.below(11)];
        let tcp_opts = vec![1u8; 4 * rng.below(11)];
        let hdrs = 40 + ip_opts.len() + tcp_opts.len();
        let big = hdrs + payload.len() > 65535;
        let pkt = super_packet(&payload, &ip_opts, &tcp_opts, rng.next() as u8, big);
        let vnet = rng.chance(50);
        let override_mss = !vnet || rng.chance(30);
        let frame = if vnet {
            with_vnet(&vnet_hdr(1, 1, hdrs as u16, if override_mss { 1 } else { mss as u16 }, 0, 0), &pkt)
        } else {
            pkt.clone()
        };
        let out_vnet = rng.chance(50);
        let o = segment(&frame, vnet, if override_mss { mss as u16 } else { 0 }, out_vnet).unwrap();
        assert_eq!(o.count, payload.len().div_ceil(mss).max(1));
        check_segments(&pkt, &o, mss, out_vnet);
    }
}

#[test]
fn errors() {
    let pkt = super_packet(&[1; 3000], &[], &[], ACK, false);
    let mut buf = vec![0; 8192];
    let (mut offs, mut lens) = ([0u32; 8], [0u32; 8]);
    let mut run =
        |frame: &[u8], vnet: bool, mss: u16| tcp4_segment(frame, vnet, mss, &mut buf, true, &mut offs, &mut lens);
    assert_eq!(run(&pkt, false, 1000), Ok(3));
    assert_eq!(run(&pkt, false, 0), Err(GsoError::BadMss));
    assert_eq!(run(&pkt[..2000], false, 1000), Err(GsoError::Truncated));
    assert_eq!(run(&pkt[..30], false, 1000), Err(GsoError::Truncated));
    assert_eq!(run(&pkt[..10], false, 1000), Err(GsoError::Truncated));
    assert_eq!(run(&[], false, 1000), Err(GsoError::NotTcp4));
    assert_eq!(run(&pkt, true, 1000), Err(GsoError::NotTcp4), "IP header read as a virtio-net header");
    assert_eq!(run(&pkt[..5], true, 1000), Err(GsoError::Truncated));
    let udp_gso = with_vnet(&vnet_hdr(0, 3, 0, 1000, 0, 0), &pkt);
    assert_eq!(run(&udp_gso, true, 0), Err(GsoError::NotTcp4));
    let mut v6 = pkt.clone();
    v6[0] = 0x60;
    assert_eq!(run(&v6, false, 1000), Err(GsoError::NotTcp4));
    let mut udp = pkt.clone();
    udp[9] = 17;
    assert_eq!(run(&udp, false, 1000), Err(GsoError::NotTcp4));
    let mut frag = pkt.clone();
    frag[6] = 0x20;
    assert_eq!(run(&frag, false, 1000), Err(GsoError::NotTcp4));
    let mut bad_doff = pkt.clone();
    bad_doff[32] = 0x40;
    assert_eq!(run(&bad_doff, false, 1000), Err(GsoError::Truncated));
    assert_eq!(run(&pkt, false, 300), Err(GsoError::TooManySegments));
    let mut big = super_packet(&vec![1; 70_000], &[], &[], ACK, true);
    assert_eq!(tcp4_segment_count(&big, false, 65535), 0, "65535-byte segments exceed tot_len");
    big.truncate(30);
    assert_eq!(tcp4_segment_count(&big, false, 1000), 0);
    // The output buffer must hold exactly the headers per segment plus the payload.
    let need = 3 * (VNET_HDR_LEN + 40) + 3000;
    let (mut offs, mut lens) = ([0u32; 3], [0u32; 3]);
    let mut small = vec![0; need - 1];
    assert_eq!(tcp4_segment(&pkt, false, 1000, &mut small, true, &mut offs, &mut lens), Err(GsoError::OutTooSmall));
    let mut exact = vec![0; need];
    assert_eq!(tcp4_segment(&pkt, false, 1000, &mut exact, true, &mut offs, &mut lens), Ok(3));
    for e in
        [GsoError::NotTcp4, GsoError::Truncated, GsoError::BadMss, GsoError::OutTooSmall, GsoError::TooManySegments]
    {
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn garbage_never_panics() {
    let mut rng = Rng::new(6);
    let mut ok = 0;
    for _ in 0..60_000 {
        let vnet = rng.chance(50);
        let mut frame = fuzz_frame(&mut rng, vnet);
        if rng.chance(30) && frame.len() > 40 {
            // Make TCP likelier so segmentation gets past the header checks.
            let l3 = if vnet { VNET_HDR_LEN } else { 0 };
            frame[l3 + 9] = 6;
        }
        let mss = if rng.chance(20) { 0 } else { rng.below(2000) as u16 };
        let mut out = vec![0; rng.below(4096)];
        let n = rng.below(40);
        let (mut offs, mut lens) = (vec![0; n], vec![0; n + rng.below(3)]);
        let out_vnet = rng.chance(50);
        let count = tcp4_segment_count(&frame, vnet, mss);
        if let Ok(c) = tcp4_segment(&frame, vnet, mss, &mut out, out_vnet, &mut offs, &mut lens) {
            assert_eq!(c, count);
            ok += 1;
            for i in 0..c {
                let (o, l) = (offs[i] as usize, lens[i] as usize);
                assert!(o + l <= out.len());
                let ip = &out[o + if out_vnet { VNET_HDR_LEN } else { 0 }..o + l];
                assert!(ipv4_header_checksum_ok(ip, 0) && l4_checksum_ok(ip, 0));
            }
        }
    }
    assert!(ok > 1000, "only {ok} frames segmented");
}

// Tunnel datagrams: every one carries the prefix and a complete, checksummed segment; all but the
// last have the size a UDP GSO send cuts at.
#[test]
fn encap_datagrams_of_a_super_packet() {
    let prefix = [0x08u8, 0, 0, 0, 0, 0x30, 0x39, 0, 2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0];
    let pkt = super_packet(&[7; 5000], &[], &TS_OPTS, ACK | 0x08, false);
    let hdr = 20 + 20 + TS_OPTS.len();
    let frame = with_vnet(&vnet_hdr(1, 1, hdr as u16, 1398, 20, 16), &pkt);
    let mut out = vec![0u8; 16384];
    let d = encap_datagrams(&frame, true, &prefix, &mut out).unwrap();
    assert_eq!((d.count, d.seg_size), (4, 22 + hdr + 1398));
    assert_eq!(d.bytes, 4 * (22 + hdr) + 5000);
    for i in 0..d.count {
        let dgram = &out[i * d.seg_size..(i * d.seg_size + d.seg_size).min(d.bytes)];
        assert_eq!(&dgram[..22], &prefix);
        let ip = &dgram[22..];
        assert_eq!(rd16(ip, 2) as usize, ip.len());
        assert!(ipv4_header_checksum_ok(ip, 0) && l4_checksum_ok(ip, 0));
    }
}

#[test]
fn encap_datagrams_finish_a_partial_checksum() {
    let pkt = super_packet(&[3; 300], &[], &[], ACK, false);
    let frame = with_vnet(&vnet_hdr(1, 0, 0, 0, 20, 16), &pkt);
    let mut out = vec![0u8; 2048];
    let d = encap_datagrams(&frame, true, &[0x08, 0, 0, 0, 0, 0, 1, 0], &mut out).unwrap();
    assert_eq!((d.count, d.seg_size, d.bytes), (1, 0, 8 + pkt.len()));
    assert!(l4_checksum_ok(&out[8..d.bytes], 0));
    assert_eq!(encap_datagrams(&frame, true, &[0; 8], &mut out[..100]), Err(GsoError::OutTooSmall));
}

// GRO undoes the tunnel's segmentation: the datagrams of one super-packet merge back into it.
#[test]
fn coalesce_merges_the_datagrams_of_a_super_packet() {
    let prefix = [0x08u8, 0, 0, 0, 0, 1, 2, 0, 2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0];
    let payload: Vec<u8> = (0..6000).map(|i| (i % 251) as u8).collect();
    let pkt = super_packet(&payload, &[], &TS_OPTS, ACK, false);
    let frame = with_vnet(&vnet_hdr(1, 1, 52, 1398, 20, 16), &pkt);
    let mut dgrams = vec![0u8; 16384];
    let d = encap_datagrams(&frame, true, &prefix, &mut dgrams).unwrap();
    const STRIDE: usize = 70_000;
    let mut arena = vec![0u8; STRIDE * d.count];
    let mut recs = vec![[0u32; META_WORDS]; d.count];
    for i in 0..d.count {
        let (from, to) = (i * d.seg_size, ((i + 1) * d.seg_size).min(d.bytes));
        let at = i * STRIDE;
        arena[at..at + to - from].copy_from_slice(&dgrams[from..to]);
        parse(&arena[at + 22..at + to - from], false, (at + 22) as u32, &mut recs[i]);
        recs[i][M_DGRAM_OFF] = at as u32;
        recs[i][M_DGRAM_LEN] = (to - from) as u32;
    }
    let mut run = coalesce::start(&recs[0], 22, STRIDE).unwrap();
    for i in 1..d.count {
        assert!(coalesce::append(&mut arena, &mut run, &recs[0], &recs[i]), "segment {i} merges");
    }
    let mut first = recs[0];
    coalesce::finish(&mut arena, &run, &mut first);
    let ip = &arena[22..22 + first[M_TOT_LEN] as usize];
    assert_eq!(ip.len(), pkt.len());
    assert!(ip[52..] == payload[..], "payloads concatenate back");
    assert!(ipv4_header_checksum_ok(ip, 0));
    assert_eq!((first[M_GSO_SIZE], first[M_HDR_LEN], first[M_FLAGS] & F_GSO), (1398, 52, F_GSO));
    // A segment out of order, or from another sender, does not merge.
    let mut run = coalesce::start(&recs[0], 22, STRIDE).unwrap();
    assert!(!coalesce::append(&mut arena, &mut run, &recs[0], &recs[2]));
    let mut other = recs[1];
    other[M_PEER_ADDR] = 1;
    assert!(!coalesce::append(&mut arena, &mut run, &recs[0], &other));
    // Nor one whose headers differ beyond its own fields: TTL, TCP window, an option byte.
    let l3 = recs[1][M_L3_OFF] as usize;
    for at in [l3 + 8, l3 + 20 + 14, l3 + 20 + 20 + 11] {
        arena[at] ^= 1;
        assert!(!coalesce::append(&mut arena, &mut run, &recs[0], &recs[1]), "byte {} differs", at - l3);
        arena[at] ^= 1;
    }
    assert!(coalesce::append(&mut arena, &mut run, &recs[0], &recs[1]));
}
