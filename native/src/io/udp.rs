//! UDP sockets for the tunnel: bound inside a namespace, read by recvmmsg into pool slots. Each
//! record keeps the sender and where the datagram lies, and parses the packet carried
//! `inner_offset` bytes into it (a VXLAN frame's inner IPv4 after its 8 + 14 header bytes).

use super::{errno, BatchTarget, Fill, STATS};
use crate::meta::*;
use crate::napi::*;
use crate::tun::{NetnsGuard, Netns};
use crate::gso::coalesce;
use crate::wire;
use std::mem::{size_of, zeroed};
use std::sync::atomic::Ordering::Relaxed;

/// Not in the libc crate's glibc bindings (linux/udp.h).
pub const UDP_SEGMENT: i32 = 103;
/// The largest UDP payload over IPv4: a slot must hold it, so recvmmsg never truncates.
const MAX_DATAGRAM: usize = 65507;

fn os_err(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

fn sockaddr(addr: u32, port: u16) -> libc::sockaddr_in {
    let mut sa: libc::sockaddr_in = unsafe { zeroed() };
    sa.sin_family = libc::AF_INET as u16;
    sa.sin_port = port.to_be();
    sa.sin_addr.s_addr = addr.to_be();
    sa
}

unsafe fn setsockopt_int(fd: i32, level: i32, opt: i32, v: i32) -> bool {
    libc::setsockopt(fd, level, opt, &v as *const i32 as *const libc::c_void, size_of::<i32>() as u32) == 0
}

/// A non-blocking UDP socket bound to addr:port (host order; port 0 picks one) inside `ns`;
/// `buffer` > 0 sets the send and receive buffers. Returns (fd, bound port).
pub fn bind(ns: &Netns, addr: u32, port: u16, buffer: usize) -> Result<(i32, u16), String> {
    let _guard = NetnsGuard::enter(ns)?;
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(os_err("socket"));
    }
    let fail = |e: String| {
        unsafe { libc::close(fd) };
        Err(e)
    };
    if buffer > 0 {
        let b = buffer.min(i32::MAX as usize) as i32;
        // The FORCE variants pass net.core.*mem_max (we are root); the plain ones are capped by it.
        for (force, plain) in [(libc::SO_RCVBUFFORCE, libc::SO_RCVBUF), (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF)] {
            if unsafe { !setsockopt_int(fd, libc::SOL_SOCKET, force, b) && !setsockopt_int(fd, libc::SOL_SOCKET, plain, b) } {
                return fail(os_err("setsockopt buffer size"));
            }
        }
    }
    // DF on every datagram, GSO pieces included (a tunnel must not fragment; pod MTUs leave the room).
    if unsafe { !setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, libc::IP_PMTUDISC_DO) } {
        return fail(os_err("setsockopt IP_MTU_DISCOVER"));
    }
    let sa = sockaddr(addr, port);
    if unsafe { libc::bind(fd, &sa as *const _ as *const libc::sockaddr, size_of::<libc::sockaddr_in>() as u32) } < 0 {
        return fail(os_err(&format!("bind {}.{}.{}.{}:{port}", addr >> 24, (addr >> 16) & 255, (addr >> 8) & 255, addr & 255)));
    }
    let mut got: libc::sockaddr_in = unsafe { zeroed() };
    let mut len = size_of::<libc::sockaddr_in>() as u32;
    if unsafe { libc::getsockname(fd, &mut got as *mut _ as *mut libc::sockaddr, &mut len) } < 0 {
        return fail(os_err("getsockname"));
    }
    Ok((fd, u16::from_be(got.sin_port)))
}

/// Whether the kernel segments UDP sends itself (UDP_SEGMENT, Linux 4.18+).
pub fn gso_supported() -> bool {
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return false;
    }
    let ok = unsafe { setsockopt_int(fd, libc::SOL_UDP, UDP_SEGMENT, 1400) };
    unsafe { libc::close(fd) };
    ok
}

/// recvmmsg vectors of one reader, allocated once at start.
pub struct UdpRx {
    hdrs: Vec<libc::mmsghdr>,
    iovs: Vec<libc::iovec>,
    names: Vec<libc::sockaddr_in>,
    inner_offset: usize,
    /// Merge consecutive TCP segments of one flow (gso::coalesce), each behind `inner_offset` bytes of prefix.
    coalesce: bool,
}

impl UdpRx {
    pub fn new(batch: usize, inner_offset: usize, capacity: usize, coalesce: bool) -> Result<UdpRx, String> {
        if capacity < MAX_DATAGRAM {
            return Err(format!("udpReaderStart: pool slots hold {capacity} bytes, a datagram needs up to {MAX_DATAGRAM}"));
        }
        fn zeroed_vec<T>(n: usize) -> Vec<T> {
            (0..n).map(|_| unsafe { zeroed() }).collect()
        }
        Ok(UdpRx { hdrs: zeroed_vec(batch), iovs: zeroed_vec(batch), names: zeroed_vec(batch), inner_offset, coalesce })
    }
}

/// Receives up to a batch of datagrams into free slots; slots left unfilled go straight back.
pub unsafe fn fill(fd: i32, rx: &mut UdpRx, t: &mut BatchTarget) -> Fill {
    let want = t.slots.len().min(t.pool.free_count()).min(rx.hdrs.len());
    let base = t.arena.as_mut_ptr();
    for i in 0..want {
        let slot = t.pool.take().unwrap_or(0);
        t.slots[i] = slot;
        rx.iovs[i] = libc::iovec { iov_base: base.add(t.pool.data_offset(slot)) as *mut libc::c_void, iov_len: t.pool.capacity() };
        let h = &mut rx.hdrs[i].msg_hdr;
        h.msg_name = &mut rx.names[i] as *mut _ as *mut libc::c_void;
        h.msg_namelen = size_of::<libc::sockaddr_in>() as u32;
        h.msg_iov = &mut rx.iovs[i];
        h.msg_iovlen = 1;
        h.msg_flags = 0;
    }
    let r = loop {
        let r = libc::recvmmsg(fd, rx.hdrs.as_mut_ptr(), want as u32, libc::MSG_DONTWAIT, std::ptr::null_mut());
        if r >= 0 || errno() != libc::EINTR {
            break r;
        }
    };
    let n = r.max(0) as usize;
    t.pool.finish_batch(&t.slots[n..want]);
    if r < 0 {
        let e = errno();
        if e == libc::EAGAIN {
            return Fill { count: 0, err: 0, dry: true };
        }
        STATS.rx_errors.fetch_add(1, Relaxed);
        return Fill { count: 0, err: e, dry: false };
    }
    // Records (and their slots) are compacted as datagrams merge into the run before them.
    let mut count = 0;
    let mut run: Option<coalesce::Run> = None;
    for i in 0..n {
        let slot = t.slots[i];
        let (dgram, len) = (t.pool.data_offset(slot), rx.hdrs[i].msg_len as usize);
        let inner = dgram + rx.inner_offset.min(len);
        let mut rec = [0u32; META_WORDS];
        wire::parse(&t.arena[inner..dgram + len], false, inner as u32, &mut rec);
        rec[M_SOURCE] = t.source;
        rec[M_SLOT] = slot;
        rec[M_PEER_ADDR] = u32::from_be(rx.names[i].sin_addr.s_addr);
        rec[M_PEER_PORT] = u16::from_be(rx.names[i].sin_port) as u32;
        rec[M_DGRAM_OFF] = dgram as u32;
        rec[M_DGRAM_LEN] = len as u32;
        STATS.rx_packets.fetch_add(1, Relaxed);
        STATS.rx_bytes.fetch_add(len as u64, Relaxed);
        if rx.coalesce {
            if let Some(r) = run.as_mut() {
                let first = &t.meta[(count - 1) * META_WORDS..count * META_WORDS];
                if coalesce::append(t.arena, r, first, &rec) {
                    t.pool.finish_batch(&[slot]);
                    continue;
                }
            }
            if let Some(r) = run.take() {
                coalesce::finish(t.arena, &r, &mut t.meta[(count - 1) * META_WORDS..count * META_WORDS]);
            }
            run = coalesce::start(&rec, rx.inner_offset, t.pool.capacity());
        }
        t.meta[count * META_WORDS..(count + 1) * META_WORDS].copy_from_slice(&rec);
        t.slots[count] = slot;
        count += 1;
    }
    if let Some(r) = run {
        coalesce::finish(t.arena, &r, &mut t.meta[(count - 1) * META_WORDS..count * META_WORDS]);
    }
    Fill { count, err: 0, dry: n < want }
}

/// udpCapabilities() → { gso }: what the kernel offers the UDP writer.
pub fn capabilities(a: &Args) -> JsResult {
    let o = object(a.env)?;
    set(a.env, o, "gso", boolean(a.env, gso_supported())?)?;
    Ok(o)
}
