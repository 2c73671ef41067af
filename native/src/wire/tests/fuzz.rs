//! Random and damaged frames through the parser, checksums and rewrites: no panic, consistent results.
use super::*;

// ---- fuzz ----

// Random bytes, or a valid packet put through random damage, optionally behind a vnet header.
pub fn fuzz_frame(rng: &mut Rng, vnet: bool) -> Vec<u8> {
    let mut p = if rng.chance(20) {
        let mut b = rng.bytes_upto(120);
        if !b.is_empty() && rng.chance(70) {
            b[0] = 0x40 | (b[0] & 0x0f);
        }
        b
    } else {
        random_packet(rng)
    };
    for _ in 0..rng.below(4) {
        let n = p.len();
        match rng.below(7) {
            0 => p.truncate(rng.below(n + 1)),
            1 if n >= 4 => wr16(&mut p, 2, if rng.chance(30) { 0 } else { rng.below(n + 40) as u16 }),
            2 if n >= 1 => p[0] = (p[0] & 0xf0) | rng.below(16) as u8,
            3 if n >= 8 => {
                let mf = if rng.chance(50) { 0x2000 } else { 0 };
                let off = if rng.chance(50) { 0 } else { rng.below(0x2000) as u16 };
                wr16(&mut p, 6, mf | off | (rng.next() as u16 & 0xc000));
            }
            4 if n >= 1 => {
                let i = rng.below(n);
                p[i] ^= 1 << rng.below(8);
            }
            5 => p.extend(rng.bytes_upto(16)),
            6 if n >= 34 => p[32] = rng.next() as u8, // TCP data offset / UDP/ICMP bytes
            _ => {}
        }
    }
    if !vnet {
        return p;
    }
    let mut h = rng.bytes(VNET_HDR_LEN);
    if rng.chance(50) {
        h[1] = [0, 1, 0x81, 3, 4, 5][rng.below(6)];
        h[0] &= 3;
    }
    if rng.chance(5) {
        h.truncate(rng.below(VNET_HDR_LEN));
        return h;
    }
    with_vnet(&h, &p)
}

// Whatever the parser accepted, the checksum code can set, verify and complete.
fn check_parse_agrees_with_checksums(frame: &[u8], l3: usize, m: &[u32]) {
    let f = m[M_FLAGS];
    let mut q = frame.to_vec();
    if f & F_IPV4 != 0 {
        assert!(set_ipv4_header_checksum(&mut q, l3) && ipv4_header_checksum_ok(&q, l3));
    }
    if f & F_L4 == 0 || f & F_FRAGMENT != 0 {
        return;
    }
    assert!(set_l4_checksum(&mut q, l3) && l4_checksum_ok(&q, l3));
    let (ihl, end) = (m[M_IHL] as usize, l3 + m[M_TOT_LEN] as usize);
    assert!(set_l4_partial_checksum(&mut q, l3));
    let off = match m[M_PROTO] as u8 {
        IPPROTO_TCP => TCP_CHECK,
        IPPROTO_UDP => UDP_CHECK,
        _ => ICMP_CHECK,
    };
    assert!(complete_partial_checksum(&mut q[l3..end], ihl, off));
    assert!(l4_checksum_ok(&q, l3));
}

#[test]
fn fuzz_parse_and_rewrite_never_panic() {
    let mut rng = Rng::new(0x00c1_1a7e);
    let mut seen = 0u32;
    for _ in 0..150_000 {
        let vnet = rng.chance(50);
        let frame = fuzz_frame(&mut rng, vnet);
        let base = if rng.chance(10) { u32::MAX - rng.below(64) as u32 } else { rng.below(1 << 24) as u32 };
        let mut m = [0u32; META_WORDS];
        parse(&frame, vnet, base, &mut m);
        if base.checked_add(frame.len() as u32).is_some() {
            check_meta(&m, frame.len(), base);
        }
        seen |= m[M_FLAGS];

        let l3 = if vnet { VNET_HDR_LEN.min(frame.len()) } else { 0 };
        check_parse_agrees_with_checksums(&frame, l3, &m);
        let mut p = frame.clone();
        let at = if rng.chance(80) { l3 } else { rng.below(p.len() + 3) };
        let partial = rng.chance(50);
        let _ = csum_partial(&p, rng.next() as u32);
        let _ = ipv4_header_checksum(&p, at);
        let _ = ipv4_header_checksum_ok(&p, at);
        let _ = l4_checksum(&p, at);
        let _ = l4_checksum_ok(&p, at);
        let _ = rewrite_ipv4_addr(&mut p, at, rng.chance(50), rng.next() as u32, partial);
        let _ = rewrite_l4_port(&mut p, at, rng.chance(50), rng.next() as u16, partial);
        let _ = set_l4_partial_checksum(&mut p, at);
        let start = rng.below(p.len() + 4);
        let _ = complete_partial_checksum(&mut p, start, rng.below(64));
        let _ = complete_partial_checksum(&mut p, rng.next() as usize, rng.next() as usize);
        let _ = set_ipv4_header_checksum(&mut p, at);
        let _ = set_l4_checksum(&mut p, at);
        assert_eq!(p.len(), frame.len());
    }
    // The generator reached every flag.
    assert_eq!(seen, ALL_FLAGS, "missing flags {:#x}", ALL_FLAGS & !seen);
}
