//! NAT rewrites keep checksums valid, in full and partial mode.
use super::*;

// ---- rewrites ----

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
