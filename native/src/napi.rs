//! Our own small N-API binding: the raw symbols the addon uses, and an argument reader that turns
//! every wrong type, short buffer or bad value into a JS error instead of undefined behaviour.
#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_void, CString};
use std::ptr;

pub type napi_env = *mut c_void;
pub type napi_value = *mut c_void;
pub type napi_callback_info = *mut c_void;
pub type napi_ref = *mut c_void;
pub type napi_handle_scope = *mut c_void;
pub type napi_async_context = *mut c_void;
pub type napi_status = i32;
pub type napi_callback = unsafe extern "C" fn(napi_env, napi_callback_info) -> napi_value;
pub type napi_finalize = unsafe extern "C" fn(napi_env, *mut c_void, *mut c_void);

pub const NAPI_OK: napi_status = 0;

#[repr(i32)]
#[allow(dead_code)] // values come from Node, not from us
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ValueType {
    Undefined = 0,
    Null = 1,
    Boolean = 2,
    Number = 3,
    String = 4,
    Symbol = 5,
    Object = 6,
    Function = 7,
    External = 8,
    BigInt = 9,
}

pub const TA_INT32: i32 = 5;
pub const TA_UINT32: i32 = 6;

extern "C" {
    pub fn napi_create_function(env: napi_env, name: *const c_char, len: usize, cb: napi_callback, data: *mut c_void, result: *mut napi_value) -> napi_status;
    pub fn napi_set_named_property(env: napi_env, obj: napi_value, name: *const c_char, value: napi_value) -> napi_status;
    pub fn napi_get_cb_info(env: napi_env, info: napi_callback_info, argc: *mut usize, argv: *mut napi_value, this: *mut napi_value, data: *mut *mut c_void) -> napi_status;
    pub fn napi_typeof(env: napi_env, value: napi_value, result: *mut ValueType) -> napi_status;
    pub fn napi_get_value_double(env: napi_env, value: napi_value, result: *mut f64) -> napi_status;
    pub fn napi_get_value_bool(env: napi_env, value: napi_value, result: *mut bool) -> napi_status;
    pub fn napi_get_value_string_utf8(env: napi_env, value: napi_value, buf: *mut c_char, bufsize: usize, result: *mut usize) -> napi_status;
    pub fn napi_is_typedarray(env: napi_env, value: napi_value, result: *mut bool) -> napi_status;
    pub fn napi_get_typedarray_info(env: napi_env, value: napi_value, kind: *mut i32, length: *mut usize, data: *mut *mut c_void, arraybuffer: *mut napi_value, byte_offset: *mut usize) -> napi_status;
    pub fn napi_is_arraybuffer(env: napi_env, value: napi_value, result: *mut bool) -> napi_status;
    pub fn napi_get_arraybuffer_info(env: napi_env, value: napi_value, data: *mut *mut c_void, len: *mut usize) -> napi_status;
    pub fn napi_throw_error(env: napi_env, code: *const c_char, msg: *const c_char) -> napi_status;
    pub fn napi_create_double(env: napi_env, value: f64, result: *mut napi_value) -> napi_status;
    pub fn napi_get_boolean(env: napi_env, value: bool, result: *mut napi_value) -> napi_status;
    pub fn napi_create_object(env: napi_env, result: *mut napi_value) -> napi_status;
    pub fn napi_create_string_utf8(env: napi_env, s: *const c_char, len: usize, result: *mut napi_value) -> napi_status;
    pub fn napi_get_undefined(env: napi_env, result: *mut napi_value) -> napi_status;
    pub fn napi_create_reference(env: napi_env, value: napi_value, initial: u32, result: *mut napi_ref) -> napi_status;
    pub fn napi_delete_reference(env: napi_env, r: napi_ref) -> napi_status;
    pub fn napi_get_reference_value(env: napi_env, r: napi_ref, result: *mut napi_value) -> napi_status;
    pub fn napi_create_arraybuffer(env: napi_env, len: usize, data: *mut *mut c_void, result: *mut napi_value) -> napi_status;
    pub fn napi_create_external_arraybuffer(env: napi_env, data: *mut c_void, len: usize, finalize: napi_finalize, hint: *mut c_void, result: *mut napi_value) -> napi_status;
    pub fn napi_create_external(env: napi_env, data: *mut c_void, finalize: napi_finalize, hint: *mut c_void, result: *mut napi_value) -> napi_status;
    pub fn napi_get_value_external(env: napi_env, value: napi_value, result: *mut *mut c_void) -> napi_status;
    pub fn napi_open_handle_scope(env: napi_env, result: *mut napi_handle_scope) -> napi_status;
    pub fn napi_close_handle_scope(env: napi_env, scope: napi_handle_scope) -> napi_status;
    pub fn napi_async_init(env: napi_env, resource: napi_value, name: napi_value, result: *mut napi_async_context) -> napi_status;
    pub fn napi_async_destroy(env: napi_env, ctx: napi_async_context) -> napi_status;
    pub fn napi_make_callback(env: napi_env, ctx: napi_async_context, recv: napi_value, func: napi_value, argc: usize, argv: *const napi_value, result: *mut napi_value) -> napi_status;
    pub fn napi_get_uv_event_loop(env: napi_env, result: *mut *mut c_void) -> napi_status;
    pub fn napi_is_exception_pending(env: napi_env, result: *mut bool) -> napi_status;
    pub fn napi_get_and_clear_last_exception(env: napi_env, result: *mut napi_value) -> napi_status;
    pub fn napi_fatal_exception(env: napi_env, err: napi_value) -> napi_status;
}

/// Result type of every exported function: an Err becomes a thrown JS Error.
pub type JsResult = Result<napi_value, String>;
pub type Exported = fn(&Args) -> JsResult;

pub const MAX_ARGS: usize = 12;

/// The arguments of one call, with checked accessors that name the argument in their errors.
pub struct Args {
    pub env: napi_env,
    argv: [napi_value; MAX_ARGS],
    argc: usize,
    fname: &'static str,
}

fn status(s: napi_status, what: &str) -> Result<(), String> {
    if s == NAPI_OK {
        Ok(())
    } else {
        Err(format!("napi {what} failed ({s})"))
    }
}

impl Args {
    pub fn raw(&self, i: usize) -> napi_value {
        if i < self.argc {
            self.argv[i]
        } else {
            ptr::null_mut()
        }
    }

    fn err(&self, i: usize, name: &str, want: &str) -> String {
        format!("{}: argument {} ({}) must be {}", self.fname, i, name, want)
    }

    pub fn kind(&self, i: usize) -> ValueType {
        if i >= self.argc {
            return ValueType::Undefined;
        }
        let mut t = ValueType::Undefined;
        unsafe { napi_typeof(self.env, self.argv[i], &mut t) };
        t
    }

    pub fn f64(&self, i: usize, name: &str) -> Result<f64, String> {
        if self.kind(i) != ValueType::Number {
            return Err(self.err(i, name, "a number"));
        }
        let mut v = 0f64;
        status(unsafe { napi_get_value_double(self.env, self.argv[i], &mut v) }, "get_value_double")?;
        Ok(v)
    }

    /// An integer in [min, max]; fractions, NaN and out-of-range values are refused.
    pub fn int(&self, i: usize, name: &str, min: i64, max: i64) -> Result<i64, String> {
        let v = self.f64(i, name)?;
        if v.fract() != 0.0 || !v.is_finite() || v < min as f64 || v > max as f64 {
            return Err(self.err(i, name, &format!("an integer in [{min}, {max}]")));
        }
        Ok(v as i64)
    }

    pub fn u32(&self, i: usize, name: &str) -> Result<u32, String> {
        Ok(self.int(i, name, 0, u32::MAX as i64)? as u32)
    }

    pub fn usize_max(&self, i: usize, name: &str, max: usize) -> Result<usize, String> {
        Ok(self.int(i, name, 0, max as i64)? as usize)
    }

    pub fn fd(&self, i: usize) -> Result<i32, String> {
        Ok(self.int(i, "fd", 0, i32::MAX as i64)? as i32)
    }

    pub fn bool_or(&self, i: usize, name: &str, default: bool) -> Result<bool, String> {
        match self.kind(i) {
            ValueType::Undefined | ValueType::Null => Ok(default),
            ValueType::Boolean => {
                let mut v = false;
                status(unsafe { napi_get_value_bool(self.env, self.argv[i], &mut v) }, "get_value_bool")?;
                Ok(v)
            }
            _ => Err(self.err(i, name, "a boolean")),
        }
    }

    pub fn string(&self, i: usize, name: &str) -> Result<String, String> {
        if self.kind(i) != ValueType::String {
            return Err(self.err(i, name, "a string"));
        }
        let mut len = 0usize;
        status(unsafe { napi_get_value_string_utf8(self.env, self.argv[i], ptr::null_mut(), 0, &mut len) }, "get_value_string")?;
        let mut buf = vec![0u8; len + 1];
        status(unsafe { napi_get_value_string_utf8(self.env, self.argv[i], buf.as_mut_ptr() as *mut c_char, len + 1, &mut len) }, "get_value_string")?;
        buf.truncate(len);
        String::from_utf8(buf).map_err(|_| self.err(i, name, "valid UTF-8"))
    }

    /// Raw bytes of an ArrayBuffer, or of any TypedArray/Buffer view (its own window only).
    pub fn bytes(&self, i: usize, name: &str) -> Result<&'static mut [u8], String> {
        let (p, len) = self.buffer_ptr(i, name, None)?;
        Ok(unsafe { slice_mut(p as *mut u8, len) })
    }

    /// A Uint32Array or Int32Array viewed as u32 words.
    pub fn u32s(&self, i: usize, name: &str) -> Result<&'static mut [u32], String> {
        let (p, len) = self.buffer_ptr(i, name, Some(&[TA_UINT32, TA_INT32]))?;
        if (p as usize) % 4 != 0 {
            return Err(self.err(i, name, "4-byte aligned"));
        }
        Ok(unsafe { slice_mut(p as *mut u32, len / 4) })
    }

    pub fn i32s(&self, i: usize, name: &str) -> Result<&'static mut [i32], String> {
        let w = self.u32s(i, name)?;
        Ok(unsafe { slice_mut(w.as_mut_ptr() as *mut i32, w.len()) })
    }

    /// (pointer, byte length) of a buffer argument; `kinds` limits which typed arrays are accepted.
    fn buffer_ptr(&self, i: usize, name: &str, kinds: Option<&[i32]>) -> Result<(*mut c_void, usize), String> {
        let want = if kinds.is_some() { "an Int32Array or Uint32Array" } else { "an ArrayBuffer or a typed array" };
        if self.kind(i) != ValueType::Object {
            return Err(self.err(i, name, want));
        }
        let v = self.argv[i];
        let mut is = false;
        unsafe { napi_is_typedarray(self.env, v, &mut is) };
        if is {
            let (mut kind, mut length, mut data, mut off) = (0i32, 0usize, ptr::null_mut(), 0usize);
            let mut ab = ptr::null_mut();
            status(unsafe { napi_get_typedarray_info(self.env, v, &mut kind, &mut length, &mut data, &mut ab, &mut off) }, "get_typedarray_info")?;
            if let Some(k) = kinds {
                if !k.contains(&kind) {
                    return Err(self.err(i, name, want));
                }
            }
            let elem = match kind {
                0 | 1 | 2 => 1,
                3 | 4 => 2,
                5 | 6 | 7 => 4,
                _ => 8,
            };
            return Ok((data, length * elem));
        }
        if kinds.is_none() {
            unsafe { napi_is_arraybuffer(self.env, v, &mut is) };
            if is {
                let (mut data, mut len) = (ptr::null_mut(), 0usize);
                status(unsafe { napi_get_arraybuffer_info(self.env, v, &mut data, &mut len) }, "get_arraybuffer_info")?;
                return Ok((data, len));
            }
        }
        Err(self.err(i, name, want))
    }

    pub fn function(&self, i: usize, name: &str) -> Result<napi_value, String> {
        if self.kind(i) != ValueType::Function {
            return Err(self.err(i, name, "a function"));
        }
        Ok(self.argv[i])
    }

    /// A handle this addon returned, of kind T (checked by its tag, so a reader is never taken for a pool).
    pub fn external<T: Handle>(&self, i: usize, name: &str) -> Result<&'static mut T, String> {
        if self.kind(i) != ValueType::External {
            return Err(self.err(i, name, "a handle returned by this addon"));
        }
        let mut p = ptr::null_mut();
        status(unsafe { napi_get_value_external(self.env, self.argv[i], &mut p) }, "get_value_external")?;
        if p.is_null() || unsafe { *(p as *const u32) } != T::TAG {
            return Err(self.err(i, name, T::KIND));
        }
        Ok(unsafe { &mut *(p as *mut T) })
    }
}

/// An object handed to JS as an external: #[repr(C)] with a u32 tag (T::TAG) as its first field.
pub trait Handle {
    const TAG: u32;
    const KIND: &'static str;
}

/// A zero-length slice for a null pointer, so callers never see a dangling one.
unsafe fn slice_mut<T>(p: *mut T, len: usize) -> &'static mut [T] {
    if p.is_null() || len == 0 {
        &mut []
    } else {
        std::slice::from_raw_parts_mut(p, len)
    }
}

// ---- value constructors -------------------------------------------------------------------------

pub fn number(env: napi_env, v: f64) -> JsResult {
    let mut r = ptr::null_mut();
    status(unsafe { napi_create_double(env, v, &mut r) }, "create_double")?;
    Ok(r)
}

pub fn boolean(env: napi_env, v: bool) -> JsResult {
    let mut r = ptr::null_mut();
    status(unsafe { napi_get_boolean(env, v, &mut r) }, "get_boolean")?;
    Ok(r)
}

pub fn string(env: napi_env, s: &str) -> JsResult {
    let mut r = ptr::null_mut();
    status(unsafe { napi_create_string_utf8(env, s.as_ptr() as *const c_char, s.len(), &mut r) }, "create_string")?;
    Ok(r)
}

pub fn undefined(env: napi_env) -> JsResult {
    let mut r = ptr::null_mut();
    status(unsafe { napi_get_undefined(env, &mut r) }, "get_undefined")?;
    Ok(r)
}

pub fn object(env: napi_env) -> JsResult {
    let mut r = ptr::null_mut();
    status(unsafe { napi_create_object(env, &mut r) }, "create_object")?;
    Ok(r)
}

pub fn set(env: napi_env, obj: napi_value, key: &str, value: napi_value) -> Result<(), String> {
    let k = CString::new(key).map_err(|e| e.to_string())?;
    status(unsafe { napi_set_named_property(env, obj, k.as_ptr(), value) }, "set_named_property")
}

pub fn set_num(env: napi_env, obj: napi_value, key: &str, v: f64) -> Result<(), String> {
    set(env, obj, key, number(env, v)?)
}

/// Hands `data` to JS as an opaque handle; `finalize` runs when JS drops it.
pub fn external(env: napi_env, data: *mut c_void, finalize: napi_finalize) -> JsResult {
    let mut r = ptr::null_mut();
    status(unsafe { napi_create_external(env, data, finalize, ptr::null_mut(), &mut r) }, "create_external")?;
    Ok(r)
}

/// A new zero-filled ArrayBuffer of `len` bytes, owned by V8, and its data pointer.
pub fn arraybuffer(env: napi_env, len: usize) -> Result<(napi_value, &'static mut [u8]), String> {
    let (mut r, mut data) = (ptr::null_mut(), ptr::null_mut());
    status(unsafe { napi_create_arraybuffer(env, len, &mut data, &mut r) }, "create_arraybuffer")?;
    Ok((r, unsafe { slice_mut(data as *mut u8, len) }))
}

pub fn reference(env: napi_env, v: napi_value) -> Result<napi_ref, String> {
    let mut r = ptr::null_mut();
    status(unsafe { napi_create_reference(env, v, 1, &mut r) }, "create_reference")?;
    Ok(r)
}

pub fn throw(env: napi_env, msg: &str) {
    let m = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    unsafe { napi_throw_error(env, ptr::null(), m.as_ptr()) };
}

// ---- registration -------------------------------------------------------------------------------

struct Entry {
    name: &'static str,
    f: Exported,
}

unsafe extern "C" fn trampoline(env: napi_env, info: napi_callback_info) -> napi_value {
    let mut argv = [ptr::null_mut(); MAX_ARGS];
    let mut argc = MAX_ARGS;
    let mut data: *mut c_void = ptr::null_mut();
    if napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), ptr::null_mut(), &mut data) != NAPI_OK || data.is_null() {
        throw(env, "ciliary native: bad call");
        return ptr::null_mut();
    }
    let entry = &*(data as *const Entry);
    let args = Args { env, argv, argc: argc.min(MAX_ARGS), fname: entry.name };
    // A panic must never cross into Node: it becomes a JS error like any other failure.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (entry.f)(&args))) {
        Ok(Ok(v)) => v,
        Ok(Err(msg)) => {
            throw(env, &msg);
            ptr::null_mut()
        }
        Err(_) => {
            throw(env, &format!("{}: internal error (panic)", entry.name));
            ptr::null_mut()
        }
    }
}

/// Adds `name` to `exports` as a JS function that calls `f` with checked arguments.
pub fn export(env: napi_env, exports: napi_value, name: &'static str, f: Exported) -> Result<(), String> {
    let entry = Box::into_raw(Box::new(Entry { name, f })) as *mut c_void; // lives as long as the module
    let mut func = ptr::null_mut();
    status(unsafe { napi_create_function(env, name.as_ptr() as *const c_char, name.len(), trampoline, entry, &mut func) }, "create_function")?;
    set(env, exports, name, func)
}
