//! The UDP reader: recvmmsg into pool slots, one message per slot. With UDP_GRO the kernel hands a
//! message of several datagrams of one size (the last shorter), as a GSO send or a NIC's GRO made
//! them; each datagram becomes a record or, when it continues the TCP segment before it (coalesce),
//! grows that record's packet. A record lies at the start of a slot, so one that does not begin its
//! message moves to the front of its message's slot, or to a fresh slot when that one has a record.
//! When a batch's records run out, the rest of the messages wait for the next batch.

use super::udp::UDP_GRO;
use super::{errno, BatchTarget, Fill, STATS};
use crate::gso::coalesce;
use crate::meta::*;
use crate::wire;
use std::mem::{size_of, zeroed};
use std::sync::atomic::Ordering::Relaxed;

/// The largest UDP payload over IPv4: a slot must hold it, so recvmmsg never truncates.
const MAX_DATAGRAM: usize = 65507;
/// CMSG_SPACE(sizeof(int)): the UDP_GRO segment size of one message.
const CMSG_BYTES: usize = 24;

/// recvmmsg vectors of one reader, allocated once at start, and the messages not yet turned into records.
pub struct UdpRx {
    hdrs: Vec<libc::mmsghdr>,
    iovs: Vec<libc::iovec>,
    names: Vec<libc::sockaddr_in>,
    cmsgs: Vec<[u64; CMSG_BYTES / 8]>,
    /// The slot message i was received into.
    msg_slots: Vec<u32>,
    /// Messages [next, received) of the last recvmmsg wait for a batch.
    next: usize,
    received: usize,
    inner_offset: usize,
    /// Merge consecutive TCP segments of one flow (gso::coalesce), each behind `inner_offset` bytes of prefix.
    coalesce: bool,
    /// The socket has UDP_GRO on: a message may hold several datagrams.
    gro: bool,
    /// Inner IP packets longer than this (the pod MTU) are whole super-packets (coalesce::mark_whole); 0: none.
    whole_above: u32,
}

impl UdpRx {
    pub fn new(batch: usize, inner_offset: usize, capacity: usize, coalesce: bool, gro: bool, whole_above: u32) -> Result<UdpRx, String> {
        if capacity < MAX_DATAGRAM {
            return Err(format!("udpReaderStart: pool slots hold {capacity} bytes, a datagram needs up to {MAX_DATAGRAM}"));
        }
        fn zeroed_vec<T>(n: usize) -> Vec<T> {
            (0..n).map(|_| unsafe { zeroed() }).collect()
        }
        Ok(UdpRx {
            hdrs: zeroed_vec(batch), iovs: zeroed_vec(batch), names: zeroed_vec(batch), cmsgs: zeroed_vec(batch),
            msg_slots: vec![0; batch], next: 0, received: 0, inner_offset, coalesce, gro, whole_above,
        })
    }

    /// Messages received but not yet handed out wait for the next batch.
    pub fn pending(&self) -> bool {
        self.next < self.received
    }

    /// Returns the slots of waiting messages (the reader stops).
    pub fn abandon(&mut self, pool: &mut super::pool::Pool) {
        pool.finish_batch(&self.msg_slots[self.next..self.received]);
        self.next = self.received;
    }

    /// Bytes of each datagram of message i but the last: its UDP_GRO size, or the whole message.
    unsafe fn segment_size(&self, i: usize, len: usize) -> usize {
        let h = &self.hdrs[i].msg_hdr;
        let mut c = if self.gro { libc::CMSG_FIRSTHDR(h) } else { std::ptr::null_mut() };
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_UDP && (*c).cmsg_type == UDP_GRO {
                let seg = *(libc::CMSG_DATA(c) as *const i32);
                return if seg > 0 { (seg as usize).min(len) } else { len };
            }
            c = libc::CMSG_NXTHDR(h, c);
        }
        len
    }
}

/// Receives into free slots, or first hands out messages an earlier batch had no room for.
pub unsafe fn fill(fd: i32, rx: &mut UdpRx, t: &mut BatchTarget) -> Fill {
    let mut dry = false;
    if !rx.pending() {
        let want = t.slots.len().min(t.pool.free_count()).min(rx.hdrs.len());
        let base = t.arena.as_mut_ptr();
        for i in 0..want {
            let slot = t.pool.take().unwrap_or(0);
            rx.msg_slots[i] = slot;
            rx.iovs[i] = libc::iovec { iov_base: base.add(t.pool.data_offset(slot)) as *mut libc::c_void, iov_len: t.pool.capacity() };
            let h = &mut rx.hdrs[i].msg_hdr;
            h.msg_name = &mut rx.names[i] as *mut _ as *mut libc::c_void;
            h.msg_namelen = size_of::<libc::sockaddr_in>() as u32;
            h.msg_iov = &mut rx.iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = if rx.gro { rx.cmsgs[i].as_mut_ptr() as *mut libc::c_void } else { std::ptr::null_mut() };
            h.msg_controllen = if rx.gro { CMSG_BYTES } else { 0 };
            h.msg_flags = 0;
        }
        let r = loop {
            let r = libc::recvmmsg(fd, rx.hdrs.as_mut_ptr(), want as u32, libc::MSG_DONTWAIT, std::ptr::null_mut());
            if r >= 0 || errno() != libc::EINTR {
                break r;
            }
        };
        let n = r.max(0) as usize;
        t.pool.finish_batch(&rx.msg_slots[n..want]);
        if r < 0 {
            let e = errno();
            if e == libc::EAGAIN {
                return Fill { count: 0, err: 0, dry: true };
            }
            STATS.rx_errors.fetch_add(1, Relaxed);
            return Fill { count: 0, err: e, dry: false };
        }
        (rx.next, rx.received, dry) = (0, n, n < want);
    }
    let count = records(rx, t);
    Fill { count, err: 0, dry: dry && !rx.pending() }
}

/// The batch being built: records so far, the run the last one grows, whether the message being
/// split already has a record at the front of its slot.
struct Batch {
    count: usize,
    run: Option<coalesce::Run>,
    home_taken: bool,
}

/// Turns waiting messages into records until the batch is full; the rest of a message then moves
/// to the front of a slot no record uses and waits with the messages after it.
unsafe fn records(rx: &mut UdpRx, t: &mut BatchTarget) -> usize {
    let mut b = Batch { count: 0, run: None, home_taken: false };
    'messages: while rx.pending() {
        let i = rx.next;
        let len = rx.hdrs[i].msg_len as usize;
        let seg = rx.segment_size(i, len.max(1));
        let start = t.pool.data_offset(rx.msg_slots[i]);
        b.home_taken = false;
        if rx.hdrs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
            STATS.rx_errors.fetch_add(1, Relaxed);
        } else {
            let mut at = 0;
            while at < len.max(1) {
                let n = seg.min(len - at);
                if !datagram(rx, t, &mut b, i, start + at, n) {
                    defer(rx, t, &b, i, at);
                    break 'messages;
                }
                at += seg;
            }
        }
        if !b.home_taken {
            t.pool.finish_batch(&[rx.msg_slots[i]]);
        }
        rx.next += 1;
    }
    if let Some(r) = b.run.take() {
        coalesce::finish(t.arena, &r, &mut t.meta[(b.count - 1) * META_WORDS..b.count * META_WORDS]);
    }
    b.count
}

/// Keeps message i from byte `at` on for the next batch, at the front of a slot of its own.
unsafe fn defer(rx: &mut UdpRx, t: &mut BatchTarget, b: &Batch, i: usize, at: usize) {
    let len = rx.hdrs[i].msg_len as usize;
    let slot = if b.home_taken { t.pool.take() } else { Some(rx.msg_slots[i]) };
    rx.next = i;
    let Some(slot) = slot else {
        // No slot to keep them in: the rest of this message is lost, counted.
        STATS.rx_errors.fetch_add(1, Relaxed);
        rx.next = i + 1;
        return;
    };
    let (from, to) = (t.pool.data_offset(rx.msg_slots[i]) + at, t.pool.data_offset(slot));
    t.arena.copy_within(from..from + len - at, to);
    rx.msg_slots[i] = slot;
    rx.hdrs[i].msg_len = (len - at) as u32;
}

/// One datagram of message i, at `at` for `len` bytes: into the open run, or a record of its own;
/// false (nothing done) when it needs a record and the batch is full.
unsafe fn datagram(rx: &UdpRx, t: &mut BatchTarget, b: &mut Batch, i: usize, at: usize, len: usize) -> bool {
    let mut rec = parse(rx, t, i, at, len, rx.msg_slots[i]);
    if let Some(r) = b.run.as_mut() {
        let first = &t.meta[(b.count - 1) * META_WORDS..b.count * META_WORDS];
        if coalesce::append(t.arena, r, first, &rec) {
            count_rx(len);
            return true;
        }
    }
    if b.count == t.slots.len() {
        return false;
    }
    count_rx(len);
    if let Some(r) = b.run.take() {
        coalesce::finish(t.arena, &r, &mut t.meta[(b.count - 1) * META_WORDS..b.count * META_WORDS]);
    }
    let home = rx.msg_slots[i];
    let Some(slot) = (if b.home_taken { t.pool.take() } else { Some(home) }) else {
        // The pool ran out mid-message: this datagram is lost, counted.
        STATS.rx_errors.fetch_add(1, Relaxed);
        return true;
    };
    b.home_taken |= slot == home;
    let to = t.pool.data_offset(slot);
    if to != at {
        t.arena.copy_within(at..at + len, to);
        rec = parse(rx, t, i, to, len, slot);
    }
    let whole = coalesce::mark_whole(&mut rec, rx.whole_above);
    if whole {
        STATS.rx_tunnel_gso.fetch_add(1, Relaxed);
    }
    t.meta[b.count * META_WORDS..(b.count + 1) * META_WORDS].copy_from_slice(&rec);
    t.slots[b.count] = slot;
    b.count += 1;
    b.run = if rx.coalesce && !whole { coalesce::start(&rec, rx.inner_offset, t.pool.capacity()) } else { None };
    true
}

fn count_rx(len: usize) {
    STATS.rx_packets.fetch_add(1, Relaxed);
    STATS.rx_bytes.fetch_add(len as u64, Relaxed);
}

/// The record of the datagram at `at`: the packet `inner_offset` bytes into it, the sender, the slot.
fn parse(rx: &UdpRx, t: &BatchTarget, i: usize, at: usize, len: usize, slot: u32) -> [u32; META_WORDS] {
    let inner = at + rx.inner_offset.min(len);
    let mut rec = [0u32; META_WORDS];
    wire::parse(&t.arena[inner..at + len], false, inner as u32, &mut rec);
    rec[M_SOURCE] = t.source;
    rec[M_SLOT] = slot;
    rec[M_PEER_ADDR] = u32::from_be(rx.names[i].sin_addr.s_addr);
    rec[M_PEER_PORT] = u16::from_be(rx.names[i].sin_port) as u32;
    rec[M_DGRAM_OFF] = at as u32;
    rec[M_DGRAM_LEN] = len as u32;
    rec
}
