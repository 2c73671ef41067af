//! The pool as JS sees it: a handle plus the arena (a V8 ArrayBuffer the pool keeps alive), hold
//! and release by slot index, and the readers paused on an empty pool, resumed by a release.

use super::pool::Pool;
use super::reader::{resume, Reader};
use crate::napi::*;
use std::ffi::c_void;

#[repr(C)]
pub struct JsPool {
    tag: u32,
    pub pool: Pool,
    pub arena: &'static mut [u8],
    arena_ref: napi_ref,
    /// Readers that found no free slot; they poll again once a slot is released.
    waiting: Vec<*mut Reader>,
    pub resumes: u64,
}

impl Handle for JsPool {
    const TAG: u32 = 0x706f_6f6c; // "pool"
    const KIND: &'static str = "a pool handle (from poolCreate)";
}

impl JsPool {
    pub fn wait(&mut self, r: *mut Reader) {
        self.pool.stalls += 1;
        self.waiting.push(r);
    }

    pub fn forget(&mut self, r: *mut Reader) {
        self.waiting.retain(|&w| w != r);
    }
}

unsafe extern "C" fn on_finalize(env: napi_env, data: *mut c_void, _hint: *mut c_void) {
    let p = Box::from_raw(data as *mut JsPool);
    napi_delete_reference(env, p.arena_ref);
}

/// poolCreate(slots, headroom, capacity) → { pool, arena: ArrayBuffer, stride, headroom, capacity }
pub fn pool_create(a: &Args) -> JsResult {
    let pool = Pool::new(a.usize_max(0, "slots", usize::MAX >> 1)?, a.usize_max(1, "headroom", 1 << 20)?, a.usize_max(2, "capacity", 1 << 30)?)?;
    let env = a.env;
    let (ab, arena) = arraybuffer(env, pool.bytes())?;
    let (stride, headroom, capacity) = (pool.stride(), pool.headroom(), pool.capacity());
    let p = Box::new(JsPool { tag: JsPool::TAG, pool, arena, arena_ref: reference(env, ab)?, waiting: Vec::new(), resumes: 0 });
    let o = object(env)?;
    set(env, o, "pool", external(env, Box::into_raw(p) as *mut c_void, on_finalize)?)?;
    set(env, o, "arena", ab)?;
    set_num(env, o, "stride", stride as f64)?;
    set_num(env, o, "headroom", headroom as f64)?;
    set_num(env, o, "capacity", capacity as f64)?;
    Ok(o)
}

fn slot_arg(a: &Args) -> Result<(&'static mut JsPool, u32), String> {
    Ok((a.external::<JsPool>(0, "pool")?, a.u32(1, "slot")?))
}

/// poolHold(pool, slot): keeps a slot of the batch being processed past the batch.
pub fn pool_hold(a: &Args) -> JsResult {
    let (p, slot) = slot_arg(a)?;
    p.pool.hold(slot).map_err(|e| format!("poolHold: {e}"))?;
    undefined(a.env)
}

/// poolRelease(pool, slot): returns a held slot; readers paused on the empty pool poll again.
pub fn pool_release(a: &Args) -> JsResult {
    let (p, slot) = slot_arg(a)?;
    p.pool.release(slot).map_err(|e| format!("poolRelease: {e}"))?;
    if !p.waiting.is_empty() {
        p.resumes += 1;
        for r in p.waiting.drain(..) {
            unsafe { resume(r) };
        }
    }
    undefined(a.env)
}

/// poolStats(pool) → { slots, free, held, stalls, resumes }
pub fn pool_stats(a: &Args) -> JsResult {
    let p = a.external::<JsPool>(0, "pool")?;
    let env = a.env;
    let o = object(env)?;
    set_num(env, o, "slots", p.pool.slots() as f64)?;
    set_num(env, o, "free", p.pool.free_count() as f64)?;
    set_num(env, o, "held", p.pool.held_count() as f64)?;
    set_num(env, o, "stalls", p.pool.stalls as f64)?;
    set_num(env, o, "resumes", p.resumes as f64)?;
    Ok(o)
}
