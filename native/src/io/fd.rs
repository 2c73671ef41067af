//! Reads and writes on packet fds (TUN): a batch read into pool slots, batched writes, one-off reads.

use super::{count_tx_error, errno, BatchTarget, Fill, STATS};
use crate::meta::{M_SLOT, M_SOURCE, META_WORDS};
use crate::napi::*;
use crate::wire;
use std::ffi::c_void;
use std::sync::atomic::Ordering::Relaxed;

/// Reads packets into free slots until the batch is full, the pool is empty or the fd runs dry.
pub unsafe fn fill(fd: i32, vnet: bool, t: &mut BatchTarget) -> Fill {
    let mut n = 0;
    while n < t.slots.len() {
        let Some(slot) = t.pool.take() else { break };
        let off = t.pool.data_offset(slot);
        let buf = &mut t.arena[off..off + t.pool.capacity()];
        let r = libc::read(fd, buf.as_mut_ptr() as *mut c_void, buf.len());
        if r < 0 {
            t.pool.finish_batch(&[slot]);
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            if e == libc::EAGAIN {
                return Fill { count: n, err: 0, dry: true };
            }
            STATS.rx_errors.fetch_add(1, Relaxed);
            return Fill { count: n, err: e, dry: false };
        }
        let len = r as usize;
        let rec = &mut t.meta[n * META_WORDS..(n + 1) * META_WORDS];
        wire::parse(&buf[..len], vnet, off as u32, rec);
        rec[M_SOURCE] = t.source;
        rec[M_SLOT] = slot;
        t.slots[n] = slot;
        STATS.rx_packets.fetch_add(1, Relaxed);
        STATS.rx_bytes.fetch_add(len as u64, Relaxed);
        n += 1;
    }
    Fill { count: n, err: 0, dry: false }
}

/// Writes one packet; returns bytes written or -errno, counting the outcome.
pub fn write_one(fd: i32, data: &[u8]) -> i32 {
    loop {
        let r = unsafe { libc::write(fd, data.as_ptr() as *const c_void, data.len()) };
        if r >= 0 {
            STATS.tx_packets.fetch_add(1, Relaxed);
            STATS.tx_bytes.fetch_add(r as u64, Relaxed);
            return r as i32;
        }
        let e = errno();
        if e == libc::EINTR {
            continue;
        }
        count_tx_error(e);
        return -e;
    }
}

/// writeBatch(buf, desc: Int32Array [fd, off, len, status]×count, count) → packets written.
/// Per-packet status is the byte count or -errno; errors are counted, never thrown.
pub fn write_batch(a: &Args) -> JsResult {
    let buf = a.bytes(0, "buf")?;
    let desc = a.i32s(1, "desc")?;
    let count = a.usize_max(2, "count", desc.len() / 4)?;
    let mut ok = 0;
    for row in desc.chunks_exact_mut(4).take(count) {
        let (fd, off, len) = (row[0], row[1], row[2]);
        if fd < 0 || off < 0 || len <= 0 || off as usize + len as usize > buf.len() {
            STATS.tx_errors.fetch_add(1, Relaxed);
            row[3] = -libc::EINVAL;
            continue;
        }
        row[3] = write_one(fd, &buf[off as usize..(off + len) as usize]);
        if row[3] >= 0 {
            ok += 1;
        }
    }
    number(a.env, ok as f64)
}

/// readOnce(fd, buf) → bytes read, 0 when nothing is pending (EAGAIN); for tests and slow paths.
pub fn read_once(a: &Args) -> JsResult {
    let fd = a.fd(0)?;
    let buf = a.bytes(1, "buf")?;
    let r = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut c_void, buf.len()) };
    if r < 0 {
        let e = errno();
        if e == libc::EAGAIN {
            return number(a.env, 0.0);
        }
        return Err(format!("read fd {fd}: {}", std::io::Error::from_raw_os_error(e)));
    }
    number(a.env, r as f64)
}
