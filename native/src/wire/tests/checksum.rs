//! Checksum primitives and packet checksums against the reference implementation.
use super::*;

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
