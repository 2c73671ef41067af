//! Batched packet I/O on non-blocking fds, driven by Node's own libuv loop (uv_poll). Readers (TUN
//! fds, UDP sockets) fill free slots of a pool, parse each packet into the metadata array and call
//! JS once per batch; writers send (offset, length) rows of the pool's arena.

mod fd;
mod pool;
mod pool_handle;
mod reader;
mod tunnel_tx;
mod udp;
mod udp_rx;
mod udp_tx;

pub use fd::{read_once, write_batch};
pub use pool::NO_SLOT;
pub use pool_handle::{pool_create, pool_hold, pool_release, pool_stats};
pub use reader::{forward_start, reader_start, reader_stop, udp_reader_start};
pub use udp::{bind as udp_bind, capabilities as udp_capabilities};
pub use tunnel_tx::tunnel_gso_write;
pub use udp_tx::udp_write_batch;

use crate::napi::*;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

pub struct Stats {
    pub rx_packets: AtomicU64,
    pub rx_bytes: AtomicU64,
    pub rx_batches: AtomicU64,
    pub rx_errors: AtomicU64,
    pub tx_packets: AtomicU64,
    pub tx_bytes: AtomicU64,
    pub tx_eagain: AtomicU64,
    pub tx_enobufs: AtomicU64,
    pub tx_errors: AtomicU64,
    /// UDP sends the kernel segmented (UDP_SEGMENT).
    pub tx_gso: AtomicU64,
    /// TCP super-packets written to the tunnel TAP for the kernel's UDP-tunnel GSO.
    pub tx_tunnel_gso: AtomicU64,
    /// Tunnel datagrams that arrived whole as one TCP super-packet (a UDP-tunnel GSO sender across a bridge).
    pub rx_tunnel_gso: AtomicU64,
}

pub static STATS: Stats = Stats {
    rx_packets: AtomicU64::new(0),
    rx_bytes: AtomicU64::new(0),
    rx_batches: AtomicU64::new(0),
    rx_errors: AtomicU64::new(0),
    tx_packets: AtomicU64::new(0),
    tx_bytes: AtomicU64::new(0),
    tx_eagain: AtomicU64::new(0),
    tx_enobufs: AtomicU64::new(0),
    tx_errors: AtomicU64::new(0),
    tx_gso: AtomicU64::new(0),
    tx_tunnel_gso: AtomicU64::new(0),
    rx_tunnel_gso: AtomicU64::new(0),
};

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

/// Counts a failed send by its errno.
fn count_tx_error(e: i32) {
    match e {
        libc::EAGAIN => STATS.tx_eagain.fetch_add(1, Relaxed),
        libc::ENOBUFS => STATS.tx_enobufs.fetch_add(1, Relaxed),
        _ => STATS.tx_errors.fetch_add(1, Relaxed),
    };
}

/// How a reader's fill ended: packets read, errno of a hard error (or 0), whether the fd ran dry.
pub struct Fill {
    pub count: usize,
    pub err: i32,
    pub dry: bool,
}

/// Where one batch goes: slots come from `pool`, bytes land in `arena`, record i in `meta`,
/// and `slots[i]` remembers record i's slot so the batch can be returned afterwards.
pub struct BatchTarget<'a> {
    pub pool: &'a mut pool::Pool,
    pub arena: &'a mut [u8],
    pub meta: &'a mut [u32],
    pub slots: &'a mut [u32],
    pub source: u32,
}

pub fn io_stats(a: &Args) -> JsResult {
    let env = a.env;
    let o = object(env)?;
    for (k, v) in [
        ("rxPackets", &STATS.rx_packets),
        ("rxBytes", &STATS.rx_bytes),
        ("rxBatches", &STATS.rx_batches),
        ("rxErrors", &STATS.rx_errors),
        ("txPackets", &STATS.tx_packets),
        ("txBytes", &STATS.tx_bytes),
        ("txEagain", &STATS.tx_eagain),
        ("txEnobufs", &STATS.tx_enobufs),
        ("txErrors", &STATS.tx_errors),
        ("txGso", &STATS.tx_gso),
        ("txTunnelGso", &STATS.tx_tunnel_gso),
        ("rxTunnelGso", &STATS.rx_tunnel_gso),
    ] {
        set_num(env, o, k, v.load(Relaxed) as f64)?;
    }
    Ok(o)
}

#[cfg(test)]
mod tests;
