//! UDP sockets for the tunnel: bound inside a namespace, read by udp_rx, written by udp_tx.

use crate::napi::*;
use crate::tun::{NetnsGuard, Netns};
use std::mem::{size_of, zeroed};

/// Not in the libc crate's glibc bindings (linux/udp.h).
pub const UDP_SEGMENT: i32 = 103;
pub const UDP_GRO: i32 = 104;

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

/// Asks the kernel to hand over GSO/GRO trains of datagrams as single messages; false where it cannot.
pub fn enable_gro(fd: i32) -> bool {
    unsafe { setsockopt_int(fd, libc::SOL_UDP, UDP_GRO, 1) }
}

/// udpCapabilities() → { gso }: what the kernel offers the UDP writer.
pub fn capabilities(a: &Args) -> JsResult {
    let o = object(a.env)?;
    set(a.env, o, "gso", boolean(a.env, gso_supported())?)?;
    Ok(o)
}
