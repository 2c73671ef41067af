//! The UDP reader and writer over real loopback sockets, with a pool smaller than a batch.

use super::pool::Pool;
use super::udp::{bind, enable_gro, gso_supported};
use super::udp_rx::{fill, UdpRx};
use super::udp_tx::{send_batch, UDP_TX_WORDS};
use super::{BatchTarget, STATS};
use crate::meta::*;
use crate::tun::Netns;
use crate::wire::tests::{ipv4, tcp, vnet_hdr, with_vnet, SRC};
use std::sync::atomic::Ordering::Relaxed;

const LO: u32 = 0x7f00_0001;
/// Tests that send with GSO or read the global counters take turns: the counters are shared.
static STATS_TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn stats_turn() -> std::sync::MutexGuard<'static, ()> {
    STATS_TURN.lock().unwrap_or_else(|e| e.into_inner())
}

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
        Rx::with(slots, batch, inner, false, false)
    }

    /// A reader that coalesces TCP segments and/or takes datagram trains as one message (UDP_GRO).
    fn with(slots: usize, batch: usize, inner: usize, coalesce: bool, gro: bool) -> Rx {
        let (fd, port) = bind(&Netns::Current, LO, 0, 1 << 20).unwrap();
        assert!(!gro || enable_gro(fd));
        let pool = Pool::new(slots, 64, 65600).unwrap();
        let arena = vec![0u8; pool.bytes()];
        Rx { fd, port, pool, arena, meta: vec![0; META_WORDS * batch], slots: vec![0; batch], rx: UdpRx::new(batch, inner, 65600, coalesce, gro, 0).unwrap() }
    }

    fn finish(&mut self, n: usize) {
        let slots = self.slots[..n].to_vec();
        self.pool.finish_batch(&slots);
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
    let _turn = stats_turn();
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

#[test]
fn gro_trains_become_one_record_per_datagram_each_at_a_slot_start() {
    let _turn = stats_turn();
    if !gso_supported() {
        return;
    }
    let mut rx = Rx::with(16, 4, 0, false, true);
    let (tx, _) = bind(&Netns::Current, LO, 0, 0).unwrap();
    let buf: Vec<u8> = (0..8000u32).map(|i| (i * 7) as u8).collect();
    // A plain datagram, then a train of four in one message: the batch of four takes three of them,
    // the last waits for the next batch (from a slot of its own: the train's slot has a record).
    let mut desc = rows(&[(0, 10, 0), (2000, 3500, 1000)], rx.port);
    assert_eq!(send_batch(tx, &buf, &mut desc, 2, true), 2);
    assert_eq!(rx.fill(), (4, false));
    assert!(rx.rx.pending());
    let mut slots = rx.slots[..4].to_vec();
    for (i, &(off, len)) in [(0, 10), (2000, 1000), (3000, 1000), (4000, 1000)].iter().enumerate() {
        assert_eq!(rx.datagram(i), &buf[off..off + len]);
        assert_eq!(rx.rec(i)[M_DGRAM_OFF] as usize, rx.pool.data_offset(rx.rec(i)[M_SLOT]));
    }
    slots.sort();
    slots.dedup();
    assert_eq!(slots.len(), 4, "every record has a slot of its own");
    rx.finish(4);
    assert_eq!(rx.fill(), (1, false));
    assert_eq!(rx.datagram(0), &buf[5000..5500]);
    rx.finish(1);
    assert_eq!((rx.fill(), rx.pool.free_count()), ((0, true), 16));
    unsafe { libc::close(tx) };
    unsafe { libc::close(rx.fd) };
}

#[test]
fn gro_train_beyond_the_free_slots_is_a_counted_drop() {
    let _turn = stats_turn();
    if !gso_supported() {
        return;
    }
    let mut rx = Rx::with(3, 8, 0, false, true);
    let (tx, _) = bind(&Netns::Current, LO, 0, 0).unwrap();
    let buf = vec![5u8; 5000];
    let errors = STATS.rx_errors.load(Relaxed);
    let mut desc = rows(&[(0, 5000, 1000)], rx.port);
    assert_eq!(send_batch(tx, &buf, &mut desc, 1, true), 1);
    // Five datagrams, three slots: three records, two drops; every slot comes back.
    assert_eq!(rx.fill(), (3, true));
    assert_eq!(STATS.rx_errors.load(Relaxed) - errors, 2);
    rx.finish(3);
    assert_eq!(rx.pool.free_count(), 3);
    unsafe { libc::close(tx) };
    unsafe { libc::close(rx.fd) };
}

#[test]
fn gro_trains_of_tunnel_datagrams_coalesce_into_super_packets() {
    let _turn = stats_turn();
    if !gso_supported() {
        return;
    }
    let mut rx = Rx::with(16, 8, 22, true, true);
    let (tx, _) = bind(&Netns::Current, LO, 0, 0).unwrap();
    let prefix = [0x08u8, 0, 0, 0, 0, 1, 2, 0, 2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0];
    let payload: Vec<u8> = (0..20000).map(|i| (i % 251) as u8).collect();
    // Two flows' super-packets (sports 1000, 2000), each cut into datagrams and sent as one train.
    let mut out = vec![0u8; 65536];
    let mut pieces = Vec::new();
    let mut used = 0;
    for sport in [1000u16, 2000] {
        let mut pkt = ipv4(6, &[], &tcp(sport, 80, 7, 9, 0x10, &[], &payload));
        assert!(crate::wire::set_l4_partial_checksum(&mut pkt, 0));
        let frame = with_vnet(&vnet_hdr(1, 1, 40, 1400, 20, 16), &pkt);
        let d = crate::gso::encap_datagrams(&frame, true, &prefix, &mut out[used..]).unwrap();
        pieces.push((used, d.bytes, d.seg_size));
        used += d.bytes;
    }
    let mut desc = rows(&pieces, rx.port);
    assert_eq!(send_batch(tx, &out, &mut desc, 2, true), 2);
    assert_eq!(rx.fill(), (2, true));
    for (i, sport) in [1000, 2000].into_iter().enumerate() {
        let r = rx.rec(i);
        assert_eq!((r[M_SPORT], r[M_FLAGS] & F_GSO, r[M_GSO_SIZE], r[M_PAYLOAD_LEN]), (sport, F_GSO, 1400, 20000));
        let p = r[M_PAYLOAD_OFF] as usize;
        assert!(rx.arena[p..p + 20000] == payload[..], "flow {sport}: the payload is whole again");
    }
    rx.finish(2);
    assert_eq!(rx.pool.free_count(), 16);
    unsafe { libc::close(tx) };
    unsafe { libc::close(rx.fd) };
}
