//! Reference implementations, packet builders and helpers shared by the wire (and gso) tests.
use super::checksum::*;
use super::*;
use crate::meta::*;

mod checksum;
mod fuzz;
mod parse;
mod rewrite;

pub use fuzz::fuzz_frame;

// xorshift64* so the randomized tests are reproducible without crates.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    pub fn chance(&mut self, pct: usize) -> bool {
        self.below(100) < pct
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    pub fn bytes_upto(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max);
        self.bytes(n)
    }
}

// Independent reference checksum: one 16-bit word at a time, carry folded after every add.
pub fn ref_sum(data: &[u8]) -> u32 {
    let mut s: u32 = 0;
    let mut i = 0;
    while i < data.len() {
        let hi = data[i] as u32;
        let lo = if i + 1 < data.len() { data[i + 1] as u32 } else { 0 };
        s += (hi << 8) | lo;
        s = (s & 0xffff) + (s >> 16);
        i += 2;
    }
    s
}

pub fn ref_csum(data: &[u8]) -> u16 {
    !(ref_sum(data) as u16)
}

pub fn ref_ip_csum(pkt: &[u8], l3: usize) -> u16 {
    let ihl = (pkt[l3] & 0x0f) as usize * 4;
    let mut h = pkt[l3..l3 + ihl].to_vec();
    h[10] = 0;
    h[11] = 0;
    ref_csum(&h)
}

fn ref_check_off(proto: u8) -> usize {
    match proto {
        6 => 16,
        17 => 6,
        _ => 2,
    }
}

// Pseudo header (except for ICMP) followed by the L4 segment with its checksum zeroed.
pub fn ref_l4_bytes(pkt: &[u8], l3: usize) -> Vec<u8> {
    let ihl = (pkt[l3] & 0x0f) as usize * 4;
    let tot = u16::from_be_bytes([pkt[l3 + 2], pkt[l3 + 3]]) as usize;
    let proto = pkt[l3 + 9];
    let mut l4 = pkt[l3 + ihl..l3 + tot].to_vec();
    let off = ref_check_off(proto);
    l4[off] = 0;
    l4[off + 1] = 0;
    let mut v = Vec::new();
    if proto != 1 {
        v.extend_from_slice(&pkt[l3 + 12..l3 + 20]);
        v.push(0);
        v.push(proto);
        v.extend_from_slice(&((tot - ihl) as u16).to_be_bytes());
    }
    v.extend_from_slice(&l4);
    v
}

pub fn ref_l4_csum(pkt: &[u8], l3: usize) -> u16 {
    ref_csum(&ref_l4_bytes(pkt, l3))
}

fn ref_pseudo_fold(pkt: &[u8], l3: usize) -> u16 {
    let ihl = (pkt[l3] & 0x0f) as usize * 4;
    let tot = u16::from_be_bytes([pkt[l3 + 2], pkt[l3 + 3]]) as usize;
    if pkt[l3 + 9] == 1 {
        return 0;
    }
    let mut v = pkt[l3 + 12..l3 + 20].to_vec();
    v.extend_from_slice(&[0, pkt[l3 + 9]]);
    v.extend_from_slice(&((tot - ihl) as u16).to_be_bytes());
    ref_sum(&v) as u16
}

// Does a stored checksum equal the reference value? 0 and 0xffff are the same ones-complement number.
fn same_csum(a: u16, b: u16) -> bool {
    a == b || (a == 0 && b == 0xffff) || (a == 0xffff && b == 0)
}

fn rd16(p: &[u8], o: usize) -> u16 {
    u16::from_be_bytes([p[o], p[o + 1]])
}

fn wr16(p: &mut [u8], o: usize, v: u16) {
    p[o..o + 2].copy_from_slice(&v.to_be_bytes());
}

pub const SRC: u32 = 0x0a00_0001;
pub const DST: u32 = 0x0a00_0102;

// IPv4 packet with reference checksums (UDP computed 0 stored as 0xffff).
pub fn ipv4_addrs(saddr: u32, daddr: u32, proto: u8, opts: &[u8], l4: &[u8]) -> Vec<u8> {
    assert_eq!(opts.len() % 4, 0);
    let ihl = 20 + opts.len();
    let mut p = vec![0u8; ihl];
    p[0] = 0x40 | (ihl / 4) as u8;
    wr16(&mut p, 2, (ihl + l4.len()) as u16);
    wr16(&mut p, 4, 0x1234);
    wr16(&mut p, 6, 0x4000);
    p[8] = 64;
    p[9] = proto;
    p[12..16].copy_from_slice(&saddr.to_be_bytes());
    p[16..20].copy_from_slice(&daddr.to_be_bytes());
    p[20..].copy_from_slice(opts);
    p.extend_from_slice(l4);
    let c = ref_ip_csum(&p, 0);
    wr16(&mut p, 10, c);
    // Past 64 KiB tot_len cannot describe the packet; the caller fixes such super-packets up.
    if matches!(proto, 1 | 6 | 17) && l4.len() >= if proto == 6 { 20 } else { 8 } && p.len() <= 0xffff {
        let c = ref_l4_csum(&p, 0);
        let c = if proto == 17 && c == 0 { 0xffff } else { c };
        wr16(&mut p, ihl + ref_check_off(proto), c);
    }
    p
}

pub fn ipv4(proto: u8, opts: &[u8], l4: &[u8]) -> Vec<u8> {
    ipv4_addrs(SRC, DST, proto, opts, l4)
}

pub fn tcp(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, opts: &[u8], payload: &[u8]) -> Vec<u8> {
    assert_eq!(opts.len() % 4, 0);
    let mut t = vec![0u8; 20];
    wr16(&mut t, 0, sport);
    wr16(&mut t, 2, dport);
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12] = (((20 + opts.len()) / 4) as u8) << 4;
    t[13] = flags;
    wr16(&mut t, 14, 65535);
    t.extend_from_slice(opts);
    t.extend_from_slice(payload);
    t
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = vec![0u8; 8];
    wr16(&mut u, 0, sport);
    wr16(&mut u, 2, dport);
    wr16(&mut u, 4, (8 + payload.len()) as u16);
    u.extend_from_slice(payload);
    u
}

fn icmp(ty: u8, code: u8, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut i = vec![ty, code, 0, 0, 0, 0, 0, 0];
    wr16(&mut i, 4, id);
    wr16(&mut i, 6, seq);
    i.extend_from_slice(payload);
    i
}

pub fn vnet_hdr(flags: u8, gso_type: u8, hdr_len: u16, gso_size: u16, start: u16, off: u16) -> Vec<u8> {
    let mut h = vec![flags, gso_type];
    for v in [hdr_len, gso_size, start, off] {
        h.extend_from_slice(&v.to_le_bytes());
    }
    h
}

pub fn with_vnet(h: &[u8], pkt: &[u8]) -> Vec<u8> {
    let mut f = h.to_vec();
    f.extend_from_slice(pkt);
    f
}

fn parsed(frame: &[u8], vnet: bool, base: u32) -> [u32; META_WORDS] {
    let mut m = [0xdead_beef; META_WORDS];
    parse(frame, vnet, base, &mut m);
    check_meta(&m, frame.len(), base);
    m
}

const ALL_FLAGS: u32 = (1 << 15) - 1;

// Every offset+length written must lie inside the frame, and words not meaningful must be zero.
fn check_meta(m: &[u32], frame_len: usize, base: u32) {
    let end = base as u64 + frame_len as u64;
    let inside = |off: u32, len: u32| off as u64 >= base as u64 && off as u64 + len as u64 <= end;
    assert_eq!(m[M_OFF], base);
    assert_eq!(m[M_LEN] as usize, frame_len);
    let f = m[M_FLAGS];
    assert_eq!(f & !ALL_FLAGS, 0, "unknown flag bits {f:#x}");
    if f & F_BAD_VNET != 0 {
        assert_eq!(f, F_BAD_VNET | F_TRUNCATED);
        assert_eq!(m[M_L3_OFF], 0);
        return;
    }
    assert!(inside(m[M_L3_OFF], 0));
    if f & F_L4 != 0 {
        assert!(f & F_IPV4 != 0);
    }
    if f & F_FIRST_FRAGMENT != 0 {
        assert!(f & F_FRAGMENT != 0);
    }
    if f & F_IPV4 != 0 {
        assert!(m[M_IHL] >= 20 && m[M_IHL] <= m[M_TOT_LEN]);
        assert!(inside(m[M_L3_OFF], m[M_TOT_LEN]));
    }
    let has_l4 = f & F_IPV4 != 0 && (f & F_FRAGMENT == 0 || f & F_FIRST_FRAGMENT != 0);
    if has_l4 {
        assert_eq!(m[M_L4_OFF], m[M_L3_OFF] + m[M_IHL]);
        assert!(inside(m[M_L4_OFF], 0));
    } else {
        assert_eq!(m[M_L4_OFF], 0);
    }
    if f & F_L4 != 0 {
        assert!(inside(m[M_PAYLOAD_OFF], m[M_PAYLOAD_LEN]));
        assert!(m[M_PAYLOAD_OFF] >= m[M_L4_OFF] + 8);
        assert_eq!(m[M_PAYLOAD_OFF] + m[M_PAYLOAD_LEN], m[M_L3_OFF] + m[M_TOT_LEN]);
    } else {
        assert_eq!((m[M_PAYLOAD_OFF], m[M_PAYLOAD_LEN]), (0, 0));
    }
}

// A random valid TCP/UDP/ICMP-echo packet with random addresses, options and payload.
pub fn random_packet(rng: &mut Rng) -> Vec<u8> {
    let opts = vec![1u8; 4 * rng.below(11)];
    let payload = rng.bytes_upto(300);
    let (s, d) = (rng.next() as u32, rng.next() as u32);
    match rng.below(3) {
        0 => {
            let topts = vec![1u8; 4 * rng.below(11)];
            let t = tcp(
                rng.next() as u16,
                rng.next() as u16,
                rng.next() as u32,
                rng.next() as u32,
                rng.next() as u8,
                &topts,
                &payload,
            );
            ipv4_addrs(s, d, 6, &opts, &t)
        }
        1 => ipv4_addrs(s, d, 17, &opts, &udp(rng.next() as u16, rng.next() as u16, &payload)),
        _ => {
            ipv4_addrs(s, d, 1, &opts, &icmp(if rng.chance(50) { 8 } else { 0 }, 0, rng.next() as u16, 1, &payload))
        }
    }
}
