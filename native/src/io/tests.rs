//! The UDP reader and writer over real loopback sockets, with a pool smaller than a batch.

use super::pool::Pool;
use super::udp::{bind, fill, gso_supported, UdpRx};
use super::udp_tx::{send_batch, UDP_TX_WORDS};
use super::{BatchTarget, STATS};
use crate::meta::*;
use crate::tun::Netns;
use crate::wire::tests::{ipv4, SRC};
use std::sync::atomic::Ordering::Relaxed;

const LO: u32 = 0x7f00_0001;

struct Rx {
    fd: i32,
    port: u16,
    pool: Pool,
    arena: Vec<u8>,
    meta: Vec<u32>,
    slots: Vec<u32>,
    rx: UdpRx,
}

impl Rx {
    fn new(slots: usize, batch: usize, inner: usize) -> Rx {
        let (fd, port) = bind(&Netns::Current, LO, 0, 1 << 20).unwrap();
        let pool = Pool::new(slots, 64, 65600).unwrap();
        let arena = vec![0u8; pool.bytes()];
        Rx { fd, port, pool, arena, meta: vec![0; META_WORDS * batch], slots: vec![0; batch], rx: UdpRx::new(batch, inner, 65600, false).unwrap() }
    }

    fn fill(&mut self) -> (usize, bool) {
        let mut t = BatchTarget { pool: &mut self.pool, arena: &mut self.arena, meta: &mut self.meta, slots: &mut self.slots, source: 9 };
        let f = unsafe { fill(self.fd, &mut self.rx, &mut t) };
        assert_eq!(f.err, 0);
        (f.count, f.dry)
    }

    fn rec(&self, i: usize) -> &[u32] {
        &self.meta[i * META_WORDS..(i + 1) * META_WORDS]
    }

    fn datagram(&self, i: usize) -> &[u8] {
        let r = self.rec(i);
        &self.arena[r[M_DGRAM_OFF] as usize..(r[M_DGRAM_OFF] + r[M_DGRAM_LEN]) as usize]
    }
}

/// Rows [off, len, addr, port, segSize, status] for consecutive pieces of `buf`.
fn rows(pieces: &[(usize, usize, usize)], port: u16) -> Vec<i32> {
    pieces.iter().flat_map(|&(off, len, seg)| [off as i32, len as i32, LO as i32, port as i32, seg as i32, 0]).collect()
}

#[test]
fn datagrams_arrive_with_sender_and_segments() {
    let mut rx = Rx::new(64, 32, 0);
    let (tx, tx_port) = bind(&Netns::Current, LO, 0, 0).unwrap();
    let buf: Vec<u8> = (0..8000u32).map(|i| (i * 7) as u8).collect();
    for gso in [false, gso_supported()] {
        // Three plain datagrams, then 3500 bytes cut into 1000-byte datagrams.
        let mut desc = rows(&[(0, 10, 0), (10, 1, 0), (11, 1400, 0), (2000, 3500, 1000)], rx.port);
        let gso_sends = STATS.tx_gso.load(Relaxed);
        assert_eq!(send_batch(tx, &buf, &mut desc, 4, gso), 4);
        // With GSO the kernel cut the 3500 bytes from one message; without, four messages went out.
        assert_eq!(STATS.tx_gso.load(Relaxed) - gso_sends, gso as u64);
        assert_eq!(desc[3 * UDP_TX_WORDS + 5], 3500);
        let (n, _) = rx.fill();
        assert_eq!(n, 7);
        let want: [(usize, usize); 7] = [(0, 10), (10, 1), (11, 1400), (2000, 1000), (3000, 1000), (4000, 1000), (5000, 500)];
        for (i, &(off, len)) in want.iter().enumerate() {
            let r = rx.rec(i);
            assert_eq!((r[M_PEER_ADDR], r[M_PEER_PORT], r[M_SOURCE]), (LO, tx_port as u32, 9));
            assert_eq!(rx.datagram(i), &buf[off..off + len]);
            assert_eq!(r[M_DGRAM_OFF] as usize, rx.pool.data_offset(r[M_SLOT]));
        }
        rx.pool.finish_batch(&rx.slots[..n].to_vec());
        assert_eq!(rx.pool.free_count(), 64);
    }
    // Bad rows fail alone with -EINVAL; the good one is sent.
    let mut desc = rows(&[(0, 10, 0), (7990, 20, 0), (0, 0, 0)], rx.port);
    desc[3] = 0; // port 0
    assert_eq!(send_batch(tx, &buf, &mut desc, 3, false), 0);
    assert_eq!([desc[5], desc[11], desc[17]], [-libc::EINVAL; 3]);
    unsafe { libc::close(tx) };
}

#[test]
fn records_parse_the_inner_packet_and_respect_an_empty_pool() {
    let mut rx = Rx::new(3, 8, 22);
    let (tx, _) = bind(&Netns::Current, LO, 0, 0).unwrap();
    let mut frame = vec![0xee; 22];
    frame.extend_from_slice(&ipv4(17, &[], &[0, 1, 0, 2, 0, 12, 0, 0, 1, 2, 3, 4]));
    let mut desc: Vec<i32> = (0..5).flat_map(|_| [0, frame.len() as i32, LO as i32, rx.port as i32, 0, 0]).collect();
    assert_eq!(send_batch(tx, &frame, &mut desc, 5, false), 5);
    // Three slots: a full batch of three, not dry; the rest once the slots are back.
    assert_eq!(rx.fill(), (3, false));
    let r = rx.rec(0);
    assert_eq!((r[M_SADDR], r[M_PROTO], r[M_DPORT]), (SRC, 17, 2));
    assert_eq!(r[M_OFF], r[M_DGRAM_OFF] + 22);
    assert_eq!(r[M_FLAGS] & (F_IPV4 | F_L4), F_IPV4 | F_L4);
    assert_eq!(rx.pool.free_count(), 0);
    let slots = rx.slots[..3].to_vec();
    rx.pool.finish_batch(&slots);
    assert_eq!(rx.fill(), (2, true));
    assert_eq!(rx.pool.free_count(), 1);
    unsafe { libc::close(tx) };
    unsafe { libc::close(rx.fd) };
}
