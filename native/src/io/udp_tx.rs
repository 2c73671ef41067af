//! The UDP writer: rows of [off, len, addr, port, segSize, status] sent with sendmmsg, each to its
//! own address. A row with segSize > 0 is cut into datagrams of segSize bytes: by the kernel
//! (UDP_SEGMENT, one message) when `gso` is asked for, otherwise here, one message per datagram.

use super::udp::UDP_SEGMENT;
use super::{count_tx_error, errno, STATS};
use crate::napi::*;
use std::mem::{size_of, zeroed};
use std::sync::atomic::Ordering::Relaxed;

pub const UDP_TX_WORDS: usize = 6;
const CHUNK: usize = 64;
/// The kernel's UDP_MAX_SEGMENTS (64 before Linux 6.9); larger rows are cut here instead.
const MAX_GSO_SEGMENTS: usize = 64;

/// Messages queued for one sendmmsg, on the stack: the per-packet path allocates nothing.
struct Chunk {
    hdrs: [libc::mmsghdr; CHUNK],
    iovs: [libc::iovec; CHUNK],
    names: [libc::sockaddr_in; CHUNK],
    cmsgs: [[u64; 3]; CHUNK], // CMSG_SPACE(sizeof u16) = 24 bytes, 8-aligned
    rows: [usize; CHUNK],
    segs: [u32; CHUNK],
    n: usize,
}

impl Chunk {
    unsafe fn push(&mut self, row: usize, data: &[u8], addr: u32, port: u16, gso_size: u16, segs: u32) {
        let k = self.n;
        self.iovs[k] = libc::iovec { iov_base: data.as_ptr() as *mut libc::c_void, iov_len: data.len() };
        self.names[k] = zeroed();
        self.names[k].sin_family = libc::AF_INET as u16;
        self.names[k].sin_port = port.to_be();
        self.names[k].sin_addr.s_addr = addr.to_be();
        let h = &mut self.hdrs[k].msg_hdr;
        *h = zeroed();
        h.msg_name = &mut self.names[k] as *mut _ as *mut libc::c_void;
        h.msg_namelen = size_of::<libc::sockaddr_in>() as u32;
        h.msg_iov = &mut self.iovs[k];
        h.msg_iovlen = 1;
        if gso_size > 0 {
            let c = self.cmsgs[k].as_mut_ptr() as *mut libc::cmsghdr;
            (*c).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as usize;
            (*c).cmsg_level = libc::SOL_UDP;
            (*c).cmsg_type = UDP_SEGMENT;
            *(libc::CMSG_DATA(c) as *mut u16) = gso_size;
            h.msg_control = c as *mut libc::c_void;
            h.msg_controllen = libc::CMSG_SPACE(size_of::<u16>() as u32) as usize;
        }
        self.rows[k] = row;
        self.segs[k] = segs;
        self.n += 1;
    }

    /// Sends the queued messages; a row's status gains the bytes sent or becomes -errno.
    unsafe fn flush(&mut self, fd: i32, desc: &mut [i32]) {
        let mut i = 0;
        while i < self.n {
            let r = libc::sendmmsg(fd, self.hdrs.as_mut_ptr().add(i), (self.n - i) as u32, libc::MSG_DONTWAIT);
            if r > 0 {
                for k in i..i + r as usize {
                    let st = &mut desc[self.rows[k] * UDP_TX_WORDS + 5];
                    if *st >= 0 {
                        *st += self.hdrs[k].msg_len as i32;
                    }
                    STATS.tx_packets.fetch_add(self.segs[k] as u64, Relaxed);
                    STATS.tx_bytes.fetch_add(self.hdrs[k].msg_len as u64, Relaxed);
                    if self.hdrs[k].msg_hdr.msg_controllen > 0 {
                        STATS.tx_gso.fetch_add(1, Relaxed);
                    }
                }
                i += r as usize;
                continue;
            }
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            // A full socket buffer fails the rest of the chunk; any other error only this message.
            let last = if e == libc::EAGAIN || e == libc::ENOBUFS { self.n } else { i + 1 };
            for k in i..last {
                count_tx_error(e);
                desc[self.rows[k] * UDP_TX_WORDS + 5] = -e;
            }
            i = last;
        }
        self.n = 0;
    }
}

/// Sends `count` rows of `desc` from `buf` on socket `fd`; returns the rows sent in full.
pub fn send_batch(fd: i32, buf: &[u8], desc: &mut [i32], count: usize, gso: bool) -> usize {
    let mut c: Chunk = unsafe { zeroed() };
    unsafe { send_rows(fd, buf, desc, count, gso, &mut c) }
}

unsafe fn send_rows(fd: i32, buf: &[u8], desc: &mut [i32], count: usize, gso: bool, c: &mut Chunk) -> usize {
    for row in 0..count {
        let w = &mut desc[row * UDP_TX_WORDS..(row + 1) * UDP_TX_WORDS];
        let (off, len, addr, port, seg) = (w[0], w[1], w[2] as u32, w[3], w[4]);
        w[5] = 0;
        if off < 0 || len <= 0 || off as usize + len as usize > buf.len() || !(1..=65535).contains(&port) || !(0..=65507).contains(&seg) {
            STATS.tx_errors.fetch_add(1, Relaxed);
            w[5] = -libc::EINVAL;
            continue;
        }
        let data = &buf[off as usize..(off + len) as usize];
        let (seg, port) = (seg as usize, port as u16);
        let segs = if seg == 0 { 1 } else { data.len().div_ceil(seg) };
        if segs == 1 || (gso && segs <= MAX_GSO_SEGMENTS) {
            if c.n == CHUNK {
                c.flush(fd, desc);
            }
            c.push(row, data, addr, port, if segs > 1 { seg as u16 } else { 0 }, segs as u32);
            continue;
        }
        for piece in data.chunks(seg) {
            if c.n == CHUNK {
                c.flush(fd, desc);
            }
            c.push(row, piece, addr, port, 0, 1);
        }
    }
    c.flush(fd, desc);
    (0..count).filter(|&r| desc[r * UDP_TX_WORDS + 5] >= 0).count()
}

/// udpWriteBatch(fd, buf, desc: Int32Array [off, len, addr, port, segSize, status]×count, count, gso)
/// → rows sent. Per-row status is the bytes sent or -errno; errors are counted, never thrown.
pub fn udp_write_batch(a: &Args) -> JsResult {
    let fd = a.fd(0)?;
    let buf = a.bytes(1, "buf")?;
    let desc = a.i32s(2, "desc")?;
    let count = a.usize_max(3, "count", desc.len() / UDP_TX_WORDS)?;
    let gso = a.bool_or(4, "gso", false)?;
    number(a.env, send_batch(fd, buf, desc, count, gso) as f64)
}
