//! The tunnel's super-packet writer: one writev per TCP super-packet into the TAP device that
//! takes UDP-tunnel GSO frames (cilium_vxlan) — the prepared outer headers, then the packet where
//! it lies in its slot, so nothing is copied or checksummed here.

use super::{count_tx_error, errno, STATS};
use crate::gso;
use crate::napi::*;
use std::sync::atomic::Ordering::Relaxed;

/// tunnelGsoWrite(fd, buf, off, len, head, daddr) → bytes written; 0 when the frame is not a TCPv4
/// super-packet the kernel can segment (the caller sends it the other way); -errno when the write failed.
pub fn tunnel_gso_write(a: &Args) -> JsResult {
    let fd = a.fd(0)?;
    let buf = a.bytes(1, "buf")?;
    let off = a.usize_max(2, "offset", buf.len())?;
    let len = a.usize_max(3, "length", buf.len() - off)?;
    let head = a.bytes(4, "head")?;
    let daddr = a.u32(5, "daddr")?;
    let frame = &buf[off..off + len];
    let Ok((l3, ip_len)) = gso::tunnel_head(frame, head, daddr) else {
        return number(a.env, 0.0);
    };
    let iov = [
        libc::iovec { iov_base: head.as_mut_ptr() as *mut libc::c_void, iov_len: gso::TUNNEL_HEAD_LEN },
        libc::iovec { iov_base: frame[l3..].as_ptr() as *mut libc::c_void, iov_len: ip_len },
    ];
    let r = loop {
        let r = unsafe { libc::writev(fd, iov.as_ptr(), 2) };
        if r >= 0 || errno() != libc::EINTR {
            break r;
        }
    };
    if r < 0 {
        let e = errno();
        count_tx_error(e);
        return number(a.env, -e as f64);
    }
    STATS.tx_packets.fetch_add(1, Relaxed);
    STATS.tx_bytes.fetch_add(r as u64, Relaxed);
    STATS.tx_tunnel_gso.fetch_add(1, Relaxed);
    number(a.env, r as f64)
}
