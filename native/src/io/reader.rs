//! Readers: a uv_poll handle per fd on Node's loop. A JS reader drains the fd into pool slots
//! (a TUN fd by read, a UDP socket by recvmmsg) and calls JS once per batch; afterwards the
//! batch's slots JS did not hold return to the pool. An empty pool pauses the reader (no polling)
//! until a slot is released. A native-only forward mode measures what the JS pipeline costs.

use super::pool_handle::JsPool;
use super::udp_rx::{self, UdpRx};
use super::{errno, fd, fd::write_one, udp, BatchTarget, STATS};
use crate::meta::META_WORDS;
use crate::napi::*;
use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::Ordering::Relaxed;

const UV_POLL: i32 = 8;
const UV_READABLE: i32 = 1;
/// Batches read per wake-up before yielding to the loop, so one busy device cannot starve others.
const ROUNDS_PER_WAKEUP: usize = 4;
const MAX_BATCH: usize = 1024;

extern "C" {
    fn uv_handle_size(kind: i32) -> usize;
    fn uv_poll_init(lp: *mut c_void, handle: *mut c_void, fd: i32) -> i32;
    fn uv_poll_start(handle: *mut c_void, events: i32, cb: unsafe extern "C" fn(*mut c_void, i32, i32)) -> i32;
    fn uv_poll_stop(handle: *mut c_void) -> i32;
    fn uv_close(handle: *mut c_void, cb: unsafe extern "C" fn(*mut c_void));
    fn uv_handle_set_data(handle: *mut c_void, data: *mut c_void);
    fn uv_handle_get_data(handle: *const c_void) -> *mut c_void;
    fn uv_strerror(err: i32) -> *const libc::c_char;
}

enum Device {
    Tun { vnet: bool },
    Udp(UdpRx),
}

struct JsSink {
    env: napi_env,
    callback: napi_ref,
    pool_ref: napi_ref,
    meta_ref: napi_ref,
    resource_ref: napi_ref, // the async resource, also the callback's `this` (make_callback wants an object)
    ctx: napi_async_context,
    pool: *mut JsPool,
    meta: &'static mut [u32],
    /// Slot of each record of the batch being processed.
    slots: Vec<u32>,
    source: u32,
    device: Device,
}

enum Mode {
    Js(JsSink),
    Forward { out: i32, buf: Vec<u8> },
}

#[repr(C)]
pub struct Reader {
    tag: u32,
    handle: *mut c_void,
    fd: i32,
    mode: Mode,
    polling: bool,
    /// Polling stopped because the pool was empty; the pool resumes it.
    paused: bool,
    js_alive: bool,
    uv_alive: bool,
    env: napi_env,
}

impl Handle for Reader {
    const TAG: u32 = 0x7265_6164; // "read"
    const KIND: &'static str = "a reader handle (from readerStart)";
}

unsafe fn free_if_unused(r: *mut Reader) {
    if !(*r).js_alive && !(*r).uv_alive {
        drop(Box::from_raw(r));
    }
}

unsafe extern "C" fn on_close(handle: *mut c_void) {
    let r = uv_handle_get_data(handle) as *mut Reader;
    libc::free(handle);
    if r.is_null() {
        return;
    }
    let env = (*r).env;
    if let Mode::Js(s) = &(*r).mode {
        for rf in [s.callback, s.pool_ref, s.meta_ref, s.resource_ref] {
            napi_delete_reference(env, rf);
        }
        napi_async_destroy(env, s.ctx);
    }
    (*r).uv_alive = false;
    free_if_unused(r);
}

unsafe extern "C" fn on_finalize(_env: napi_env, data: *mut c_void, _hint: *mut c_void) {
    let r = data as *mut Reader;
    (*r).js_alive = false;
    free_if_unused(r);
}

unsafe fn stop(r: &mut Reader) {
    if r.polling {
        r.polling = false;
        let rp = r as *mut Reader;
        if let Mode::Js(s) = &mut r.mode {
            if r.paused {
                (*s.pool).forget(rp);
            }
            if let Device::Udp(rx) = &mut s.device {
                rx.abandon(&mut (*s.pool).pool);
            }
        }
        uv_poll_stop(r.handle);
        uv_close(r.handle, on_close);
    }
}

/// Polls a paused reader again (called by the pool when a slot returns).
pub unsafe fn resume(r: *mut Reader) {
    let r = &mut *r;
    if r.polling && r.paused {
        r.paused = false;
        uv_poll_start(r.handle, UV_READABLE, on_poll);
    }
}

/// Calls the JS sink with `arg`; an exception is raised as an uncaught one, never swallowed.
unsafe fn call_js(s: &JsSink, arg: f64) {
    let env = s.env;
    let mut scope = ptr::null_mut();
    if napi_open_handle_scope(env, &mut scope) != NAPI_OK {
        return;
    }
    let mut f = ptr::null_mut();
    napi_get_reference_value(env, s.callback, &mut f);
    let mut recv = ptr::null_mut();
    napi_get_reference_value(env, s.resource_ref, &mut recv);
    if let Ok(a) = number(env, arg) {
        let mut result = ptr::null_mut();
        if napi_make_callback(env, s.ctx, recv, f, 1, &a, &mut result) != NAPI_OK {
            let mut pending = false;
            napi_is_exception_pending(env, &mut pending);
            if pending {
                let mut err = ptr::null_mut();
                napi_get_and_clear_last_exception(env, &mut err);
                napi_fatal_exception(env, err);
            }
        }
    }
    napi_close_handle_scope(env, scope);
}

unsafe fn forward(fd: i32, out: i32, buf: &mut [u8]) -> i32 {
    for _ in 0..ROUNDS_PER_WAKEUP * 64 {
        let r = libc::read(fd, buf.as_mut_ptr() as *mut c_void, buf.len());
        if r < 0 {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            return if e == libc::EAGAIN { 0 } else { e };
        }
        STATS.rx_packets.fetch_add(1, Relaxed);
        STATS.rx_bytes.fetch_add(r as u64, Relaxed);
        write_one(out, &buf[..r as usize]);
    }
    0
}

/// What a JS reader does after one round.
enum Next {
    Again,
    Yield,
    Pause,
    Fail(i32),
}

/// Datagrams a UDP reader received but had no room for in its last batch.
fn pending(s: &JsSink) -> bool {
    matches!(&s.device, Device::Udp(rx) if rx.pending())
}

unsafe fn js_round(fd: i32, s: &mut JsSink) -> Next {
    let p = &mut *s.pool;
    if p.pool.free_count() == 0 && !pending(s) {
        return Next::Pause;
    }
    let mut t = BatchTarget { pool: &mut p.pool, arena: &mut *p.arena, meta: &mut *s.meta, slots: &mut s.slots, source: s.source };
    let f = match &mut s.device {
        Device::Tun { vnet } => fd::fill(fd, *vnet, &mut t),
        Device::Udp(rx) => udp_rx::fill(fd, rx, &mut t),
    };
    if f.count > 0 {
        STATS.rx_batches.fetch_add(1, Relaxed);
        call_js(s, f.count as f64);
        (*s.pool).pool.finish_batch(&s.slots[..f.count]);
    }
    if f.err != 0 {
        Next::Fail(f.err)
    } else if f.dry {
        Next::Yield
    } else {
        Next::Again
    }
}

unsafe extern "C" fn on_poll(handle: *mut c_void, status: i32, _events: i32) {
    let rp = uv_handle_get_data(handle) as *mut Reader;
    let r = &mut *rp;
    let fd = r.fd;
    if status < 0 {
        if let Mode::Js(s) = &r.mode {
            call_js(s, status as f64);
        }
        stop(r);
        return;
    }
    let s = match &mut r.mode {
        Mode::Forward { out, buf } => {
            if forward(fd, *out, buf) != 0 {
                stop(r);
            }
            return;
        }
        Mode::Js(s) => s as *mut JsSink,
    };
    // Received datagrams waiting for a batch are handed out now: the socket may not wake us again.
    let mut round = 0;
    while round < ROUNDS_PER_WAKEUP || pending(&*s) {
        round += 1;
        match js_round(fd, &mut *s) {
            Next::Again if r.polling => {}
            Next::Again | Next::Yield => return,
            Next::Pause => {
                r.paused = true;
                uv_poll_stop(r.handle);
                (*(*s).pool).wait(rp);
                return;
            }
            Next::Fail(e) => {
                call_js(&*s, -(e as f64));
                stop(r);
                return;
            }
        }
    }
}

fn check_fd(fd: i32) -> Result<(), String> {
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(format!("fd {fd}: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

unsafe fn start(env: napi_env, fd: i32, mode: Mode) -> JsResult {
    let mut lp = ptr::null_mut();
    if napi_get_uv_event_loop(env, &mut lp) != NAPI_OK {
        return Err("no event loop".into());
    }
    let handle = libc::calloc(1, uv_handle_size(UV_POLL));
    if handle.is_null() {
        return Err("out of memory".into());
    }
    let rc = uv_poll_init(lp, handle, fd);
    if rc != 0 {
        libc::free(handle);
        return Err(format!("uv_poll_init fd {fd}: {}", std::ffi::CStr::from_ptr(uv_strerror(rc)).to_string_lossy()));
    }
    let reader = Box::into_raw(Box::new(Reader { tag: Reader::TAG, handle, fd, mode, polling: true, paused: false, js_alive: true, uv_alive: true, env }));
    uv_handle_set_data(handle, reader as *mut c_void);
    let rc = uv_poll_start(handle, UV_READABLE, on_poll);
    if rc != 0 {
        (*reader).polling = false;
        uv_close(handle, on_close);
        return Err(format!("uv_poll_start fd {fd}: {}", std::ffi::CStr::from_ptr(uv_strerror(rc)).to_string_lossy()));
    }
    external(env, reader as *mut c_void, on_finalize)
}

/// The JS sink of a reader whose arguments are (fd, pool, meta, batch, <device arg>, source, callback).
fn sink(a: &Args, name: &str, device: impl FnOnce(&JsPool, usize) -> Result<Device, String>) -> Result<(i32, JsSink), String> {
    let fd = a.fd(0)?;
    check_fd(fd)?;
    let pool = a.external::<JsPool>(1, "pool")?;
    let meta = a.u32s(2, "meta")?;
    let batch = a.usize_max(3, "batch", MAX_BATCH)?;
    let source = a.u32(5, "source")?;
    let cb = a.function(6, "callback")?;
    if batch == 0 {
        return Err(format!("{name}: batch must be >= 1"));
    }
    if meta.len() < META_WORDS * batch {
        return Err(format!("{name}: meta has {} words, needs {}*batch = {}", meta.len(), META_WORDS, META_WORDS * batch));
    }
    let device = device(pool, batch)?;
    let env = a.env;
    let resource = object(env)?;
    let mut ctx = ptr::null_mut();
    if unsafe { napi_async_init(env, resource, string(env, name)?, &mut ctx) } != NAPI_OK {
        return Err("napi_async_init failed".into());
    }
    let s = JsSink {
        env,
        callback: reference(env, cb)?,
        pool_ref: reference(env, a.raw(1))?,
        meta_ref: reference(env, a.raw(2))?,
        resource_ref: reference(env, resource)?,
        ctx,
        pool,
        meta,
        slots: vec![0; batch],
        source,
        device,
    };
    Ok((fd, s))
}

/// readerStart(fd, pool, meta: Uint32Array, batch, vnet, source, callback(count)) → handle
pub fn reader_start(a: &Args) -> JsResult {
    let vnet = a.bool_or(4, "vnet", true)?;
    let (fd, s) = sink(a, "ciliary.tun", |_, _| Ok(Device::Tun { vnet }))?;
    unsafe { start(a.env, fd, Mode::Js(s)) }
}

/// udpReaderStart(fd, pool, meta, batch, innerOffset, source, callback(count), coalesce?) → handle:
/// datagrams by recvmmsg; each record parses the packet `innerOffset` bytes into the datagram and
/// keeps the sender; with coalesce, consecutive TCP segments of one flow become one GSO record.
pub fn udp_reader_start(a: &Args) -> JsResult {
    let inner = a.usize_max(4, "innerOffset", 256)?;
    let coalesce = a.bool_or(7, "coalesce", false)?;
    let whole_above = if a.kind(8) == ValueType::Undefined { 0 } else { a.int(8, "wholeAbove", 0, 65535)? as u32 };
    // Coalescing readers take trains of datagrams in one message (UDP_GRO) where the kernel can.
    let gro = coalesce && udp::enable_gro(a.fd(0)?);
    let (fd, s) = sink(a, "ciliary.udp", |p, batch| UdpRx::new(batch, inner, p.pool.capacity(), coalesce, gro, whole_above).map(Device::Udp))?;
    unsafe { start(a.env, fd, Mode::Js(s)) }
}

/// forwardStart(fdIn, fdOut) → handle: every packet read from fdIn is written to fdOut, natively.
pub fn forward_start(a: &Args) -> JsResult {
    let (i, o) = (a.fd(0)?, a.fd(1)?);
    check_fd(i)?;
    check_fd(o)?;
    unsafe { start(a.env, i, Mode::Forward { out: o, buf: vec![0u8; 65600] }) }
}

/// readerStop(handle): stops polling; idempotent.
pub fn reader_stop(a: &Args) -> JsResult {
    let r: &mut Reader = a.external(0, "handle")?;
    unsafe { stop(r) };
    undefined(a.env)
}
