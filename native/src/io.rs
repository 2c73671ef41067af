//! Batched packet I/O on non-blocking fds, driven by Node's own libuv loop (uv_poll).
//! A readable fd is drained into a caller-provided arena, each packet parsed into the metadata
//! array, and JS is called once per batch with the count. A native-only forward mode exists
//! for measuring what the JS pipeline costs.

use crate::meta::{META_WORDS, M_SOURCE};
use crate::napi::*;
use crate::wire;
use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

const UV_POLL: i32 = 8;
const UV_READABLE: i32 = 1;
/// Batches read per wake-up before yielding to the loop, so one busy device cannot starve others.
const ROUNDS_PER_WAKEUP: usize = 4;

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
};

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
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
        match e {
            libc::EINTR => continue,
            libc::EAGAIN => STATS.tx_eagain.fetch_add(1, Relaxed),
            libc::ENOBUFS => STATS.tx_enobufs.fetch_add(1, Relaxed),
            _ => STATS.tx_errors.fetch_add(1, Relaxed),
        };
        return -e;
    }
}

struct JsSink {
    env: napi_env,
    callback: napi_ref,
    arena_ref: napi_ref,
    meta_ref: napi_ref,
    resource_ref: napi_ref, // the async resource, also the callback's `this` (make_callback wants an object)
    ctx: napi_async_context,
    arena: &'static mut [u8],
    meta: &'static mut [u32],
    slot: usize,
    batch: usize,
    vnet: bool,
    source: u32,
}

enum Mode {
    Js(JsSink),
    Forward { out: i32, buf: Vec<u8> },
}

pub struct Reader {
    handle: *mut c_void,
    fd: i32,
    mode: Mode,
    polling: bool,
    js_alive: bool,
    uv_alive: bool,
    env: napi_env,
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
        napi_delete_reference(env, s.callback);
        napi_delete_reference(env, s.arena_ref);
        napi_delete_reference(env, s.meta_ref);
        napi_delete_reference(env, s.resource_ref);
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
        uv_poll_stop(r.handle);
        uv_close(r.handle, on_close);
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

/// Reads up to `max` packets into the sink's slots; returns (count, errno of a hard error or 0).
unsafe fn fill_batch(fd: i32, s: &mut JsSink) -> (usize, i32) {
    let mut n = 0;
    while n < s.batch {
        let off = n * s.slot;
        let buf = &mut s.arena[off..off + s.slot];
        let r = libc::read(fd, buf.as_mut_ptr() as *mut c_void, buf.len());
        if r < 0 {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            if e == libc::EAGAIN {
                return (n, 0);
            }
            STATS.rx_errors.fetch_add(1, Relaxed);
            return (n, e);
        }
        let len = r as usize;
        let rec = &mut s.meta[n * META_WORDS..(n + 1) * META_WORDS];
        wire::parse(&buf[..len], s.vnet, off as u32, rec);
        rec[M_SOURCE] = s.source;
        STATS.rx_packets.fetch_add(1, Relaxed);
        STATS.rx_bytes.fetch_add(len as u64, Relaxed);
        n += 1;
    }
    (n, 0)
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

unsafe extern "C" fn on_poll(handle: *mut c_void, status: i32, _events: i32) {
    let r = &mut *(uv_handle_get_data(handle) as *mut Reader);
    let fd = r.fd;
    if status < 0 {
        if let Mode::Js(s) = &r.mode {
            call_js(s, status as f64);
        }
        stop(r);
        return;
    }
    match &mut r.mode {
        Mode::Forward { out, buf } => {
            if forward(fd, *out, buf) != 0 {
                stop(r);
            }
        }
        Mode::Js(_) => {
            for _ in 0..ROUNDS_PER_WAKEUP {
                let Mode::Js(s) = &mut r.mode else { return };
                let (n, err) = fill_batch(fd, s);
                if n > 0 {
                    STATS.rx_batches.fetch_add(1, Relaxed);
                    call_js(s, n as f64);
                }
                if err != 0 {
                    if let Mode::Js(s) = &r.mode {
                        call_js(s, -(err as f64));
                    }
                    stop(r);
                    return;
                }
                // The sink may have stopped this reader, or the device ran dry.
                if !r.polling || n < s_batch(r) {
                    return;
                }
            }
        }
    }
}

fn s_batch(r: &Reader) -> usize {
    match &r.mode {
        Mode::Js(s) => s.batch,
        _ => 0,
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
    let reader = Box::into_raw(Box::new(Reader { handle, fd, mode, polling: true, js_alive: true, uv_alive: true, env }));
    uv_handle_set_data(handle, reader as *mut c_void);
    let rc = uv_poll_start(handle, UV_READABLE, on_poll);
    if rc != 0 {
        (*reader).polling = false;
        uv_close(handle, on_close);
        return Err(format!("uv_poll_start fd {fd}: {}", std::ffi::CStr::from_ptr(uv_strerror(rc)).to_string_lossy()));
    }
    external(env, reader as *mut c_void, on_finalize)
}

/// readerStart(fd, arena, meta: Uint32Array, slotSize, batch, vnet, source, callback(count)) → handle
pub fn reader_start(a: &Args) -> JsResult {
    let fd = a.fd(0)?;
    check_fd(fd)?;
    let arena = a.bytes(1, "arena")?;
    let meta = a.u32s(2, "meta")?;
    let slot = a.usize_max(3, "slotSize", 1 << 20)?;
    let batch = a.usize_max(4, "batch", 4096)?;
    let vnet = a.bool_or(5, "vnet", true)?;
    let source = a.u32(6, "source")?;
    let cb = a.function(7, "callback")?;
    if slot < 64 || batch == 0 {
        return Err("readerStart: slotSize must be >= 64 and batch >= 1".into());
    }
    if arena.len() < slot * batch {
        return Err(format!("readerStart: arena has {} bytes, needs slotSize*batch = {}", arena.len(), slot * batch));
    }
    if meta.len() < META_WORDS * batch {
        return Err(format!("readerStart: meta has {} words, needs {}*batch = {}", meta.len(), META_WORDS, META_WORDS * batch));
    }
    let env = a.env;
    let resource = object(env)?;
    let name = string(env, "ciliary.tun")?;
    let mut ctx = ptr::null_mut();
    if unsafe { napi_async_init(env, resource, name, &mut ctx) } != NAPI_OK {
        return Err("napi_async_init failed".into());
    }
    let sink = JsSink {
        env,
        callback: reference(env, cb)?,
        arena_ref: reference(env, a.raw(1))?,
        meta_ref: reference(env, a.raw(2))?,
        resource_ref: reference(env, resource)?,
        ctx,
        arena,
        meta,
        slot,
        batch,
        vnet,
        source,
    };
    unsafe { start(env, fd, Mode::Js(sink)) }
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
    ] {
        set_num(env, o, k, v.load(Relaxed) as f64)?;
    }
    Ok(o)
}
