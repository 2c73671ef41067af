//! Pinned maps: a file under the state directory, mapped shared, handed to JS as an ArrayBuffer.
//! Writes land in the page cache at once, so they survive the agent being killed (SIGKILL).

use crate::napi::*;
use std::ffi::{c_void, CString};
use std::ptr;

struct Mapping {
    addr: *mut c_void,
    len: usize,
}

unsafe extern "C" fn unmap(_env: napi_env, data: *mut c_void, hint: *mut c_void) {
    let m = Box::from_raw(hint as *mut Mapping);
    debug_assert_eq!(m.addr, data);
    libc::munmap(m.addr, m.len);
}

fn os_err(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

/// mapFile(path, size) → ArrayBuffer over the file, created zero-filled if new. An existing file
/// must have exactly `size` bytes (a different size means a different map layout).
pub fn map_file(a: &Args) -> JsResult {
    let path = a.string(0, "path")?;
    let size = a.usize_max(1, "size", 1 << 40)?;
    if size == 0 {
        return Err("mapFile: size must be > 0".into());
    }
    let c = CString::new(path.as_str()).map_err(|_| "mapFile: path contains NUL".to_string())?;
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDWR | libc::O_CREAT | libc::O_CLOEXEC, 0o600) };
    if fd < 0 {
        return Err(os_err(&format!("open {path}")));
    }
    let r = (|| {
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(fd, &mut st) } < 0 {
            return Err(os_err(&format!("stat {path}")));
        }
        let cur = st.st_size as usize;
        if cur == 0 {
            if unsafe { libc::ftruncate(fd, size as libc::off_t) } < 0 {
                return Err(os_err(&format!("truncate {path}")));
            }
        } else if cur != size {
            return Err(format!("mapFile: {path} has {cur} bytes, expected {size}"));
        }
        let addr = unsafe { libc::mmap(ptr::null_mut(), size, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0) };
        if addr == libc::MAP_FAILED {
            return Err(os_err(&format!("mmap {path}")));
        }
        // Maps are touched at hashed, scattered slots: without MADV_RANDOM each fault reads ahead and
        // maps ~64 KiB of the sparse file around it (one write per 64 KiB slot made a 64 MiB map 51 MiB
        // resident); with it, only the pages really touched. Advice only: a failure changes nothing.
        unsafe { libc::madvise(addr, size, libc::MADV_RANDOM) };
        Ok(addr)
    })();
    unsafe { libc::close(fd) };
    let addr = r?;
    let hint = Box::into_raw(Box::new(Mapping { addr, len: size })) as *mut c_void;
    let mut ab = ptr::null_mut();
    let st = unsafe { napi_create_external_arraybuffer(a.env, addr, size, unmap, hint, &mut ab) };
    if st != NAPI_OK {
        unsafe {
            drop(Box::from_raw(hint as *mut Mapping));
            libc::munmap(addr, size);
        }
        return Err("mapFile: cannot create an external ArrayBuffer".into());
    }
    Ok(ab)
}

/// syncMap(arrayBuffer): msync the mapping so the bytes are on disk, not only in the page cache.
pub fn sync_map(a: &Args) -> JsResult {
    let b = a.bytes(0, "buffer")?;
    if !b.is_empty() {
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let start = (b.as_ptr() as usize) & !(page - 1);
        let len = b.as_ptr() as usize + b.len() - start;
        if unsafe { libc::msync(start as *mut c_void, len, libc::MS_SYNC) } < 0 {
            return Err(os_err("msync"));
        }
    }
    undefined(a.env)
}

/// residentBytes(arrayBuffer) → bytes of the mapping resident in memory (mincore).
pub fn resident_bytes(a: &Args) -> JsResult {
    let b = a.bytes(0, "buffer")?;
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    if b.is_empty() || (b.as_ptr() as usize) % page != 0 {
        return number(a.env, 0.0);
    }
    let pages = (b.len() + page - 1) / page;
    let mut vec = vec![0u8; pages];
    if unsafe { libc::mincore(b.as_mut_ptr() as *mut c_void, b.len(), vec.as_mut_ptr()) } < 0 {
        return Err(os_err("mincore"));
    }
    let resident = vec.iter().filter(|&&v| v & 1 != 0).count();
    number(a.env, (resident * page) as f64)
}
