//! The parser on hand-built frames: every flag, every truncation.
use super::*;

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
