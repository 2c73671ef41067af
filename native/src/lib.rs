//! ciliary's native addon: TUN devices, batched packet I/O, parsing, checksums, pinned maps.
pub mod gso;
pub mod meta;
pub mod wire;

mod exports;
mod io;
mod mmap;
mod napi;
mod tun;
