//! TUN devices inside network namespaces: create, attach to a persistent one, delete, MTU, link up.

use std::ffi::CString;
use std::io;

const TUNSETIFF: libc::c_ulong = 0x400454ca;
const TUNSETPERSIST: libc::c_ulong = 0x400454cb;
const TUNSETOFFLOAD: libc::c_ulong = 0x400454d0;
const TUNGETIFF: libc::c_ulong = 0x800454d2;
const TUNSETVNETHDRSZ: libc::c_ulong = 0x400454d8;

const IFF_TUN: i16 = 0x0001;
const IFF_TAP: i16 = 0x0002;
const IFF_NO_PI: i16 = 0x1000;
const IFF_VNET_HDR: i16 = 0x4000;
const IFF_TUN_EXCL: i16 = -0x8000; // 0x8000 as i16

pub const TUN_F_CSUM: u32 = 0x01;
pub const TUN_F_TSO4: u32 = 0x02;
pub const TUN_F_TSO_ECN: u32 = 0x08;
pub const TUN_F_USO4: u32 = 0x20;
/// GSO over UDP tunnels in the virtio-net header (Linux 6.17): the kernel segments a VXLAN super-frame.
pub const TUN_F_UDP_TUNNEL_GSO: u32 = 0x80;
/// struct virtio_net_hdr_v1_hash_tunnel: the header size that carries the tunnel offsets.
pub const VNET_TNL_HDR_LEN: i32 = 24;
/// The tunnel TAP's MAC: frames written to it must be addressed to it (locally administered, fixed).
pub const TUNNEL_TAP_MAC: [u8; 6] = [0x02, 0xc1, 0x1a, 0x00, 0x00, 0x02];

#[repr(C)]
struct IfReqFlags {
    name: [u8; libc::IFNAMSIZ],
    flags: i16,
    _pad: [u8; 22],
}

#[repr(C)]
struct IfReqInt {
    name: [u8; libc::IFNAMSIZ],
    value: i32,
    _pad: [u8; 20],
}

fn os_err(what: &str) -> String {
    format!("{what}: {}", io::Error::last_os_error())
}

fn ifname(name: &str) -> Result<[u8; libc::IFNAMSIZ], String> {
    let b = name.as_bytes();
    if b.is_empty() || b.len() >= libc::IFNAMSIZ || b.iter().any(|&c| c == 0 || c == b'/' || c.is_ascii_whitespace()) {
        return Err(format!("invalid interface name {name:?} (1-15 characters, no '/', space or NUL)"));
    }
    let mut out = [0u8; libc::IFNAMSIZ];
    out[..b.len()].copy_from_slice(b);
    Ok(out)
}

/// Where a device lives: the current namespace, a /var/run/netns/NAME style path, or an open fd.
pub enum Netns {
    Current,
    Path(String),
    Fd(i32),
}

/// While alive, the calling thread is in the target namespace; dropping it always switches back.
pub struct NetnsGuard {
    orig: i32,
}

impl NetnsGuard {
    pub fn enter(ns: &Netns) -> Result<Option<NetnsGuard>, String> {
        let target = match ns {
            Netns::Current => return Ok(None),
            Netns::Fd(fd) => *fd,
            Netns::Path(p) => {
                let c = CString::new(p.as_str()).map_err(|_| "netns path contains NUL".to_string())?;
                let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
                if fd < 0 {
                    return Err(os_err(&format!("open netns {p}")));
                }
                fd
            }
        };
        let close_target = || {
            if let Netns::Path(_) = ns {
                unsafe { libc::close(target) };
            }
        };
        let orig = unsafe { libc::open(b"/proc/thread-self/ns/net\0".as_ptr() as *const libc::c_char, libc::O_RDONLY | libc::O_CLOEXEC) };
        if orig < 0 {
            let e = os_err("open /proc/thread-self/ns/net");
            close_target();
            return Err(e);
        }
        let r = unsafe { libc::setns(target, libc::CLONE_NEWNET) };
        let e = if r < 0 { Some(os_err("setns")) } else { None };
        close_target();
        if let Some(e) = e {
            unsafe { libc::close(orig) };
            return Err(e);
        }
        Ok(Some(NetnsGuard { orig }))
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        // Failing to return would leave the agent's main thread in a pod: nothing sane can follow.
        if unsafe { libc::setns(self.orig, libc::CLONE_NEWNET) } < 0 {
            eprintln!("ciliary native: cannot restore network namespace: {}", io::Error::last_os_error());
            std::process::abort();
        }
        unsafe { libc::close(self.orig) };
    }
}

pub struct TunOptions {
    pub vnet_hdr: bool,
    pub offloads: bool,
    pub persist: bool,
    /// true: fail if the device exists; false: the device must exist (attach)
    pub create: bool,
    /// An Ethernet (TAP) device whose writes may be UDP-tunnel GSO frames (24-byte header, offload
    /// TUN_F_UDP_TUNNEL_GSO): the kernel's offset checks need an outer Ethernet header.
    pub tunnel_gso: bool,
}

pub struct Tun {
    pub fd: i32,
    pub ifindex: i32,
    pub offloads: u32,
    pub vnet_hdr: bool,
}

fn ioctl_sock() -> Result<i32, String> {
    let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if s < 0 {
        Err(os_err("socket"))
    } else {
        Ok(s)
    }
}

/// if_nametoindex in the current namespace; 0 when absent.
fn index_of(name: &[u8; libc::IFNAMSIZ]) -> i32 {
    unsafe { libc::if_nametoindex(name.as_ptr() as *const libc::c_char) as i32 }
}

/// Opens (creating or attaching to) a TUN device in `ns` and returns a non-blocking fd.
pub fn open(name: &str, ns: &Netns, o: &TunOptions) -> Result<Tun, String> {
    let n = ifname(name)?;
    let _guard = NetnsGuard::enter(ns)?;
    if !o.create && index_of(&n) == 0 {
        return Err(format!("attach {name}: no such device"));
    }
    let fd = unsafe { libc::open(b"/dev/net/tun\0".as_ptr() as *const libc::c_char, libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(os_err("open /dev/net/tun"));
    }
    let fail = |e: String| {
        unsafe { libc::close(fd) };
        Err(e)
    };
    let mut flags = if o.tunnel_gso { IFF_TAP | IFF_NO_PI | IFF_VNET_HDR } else { IFF_TUN | IFF_NO_PI };
    if o.vnet_hdr {
        flags |= IFF_VNET_HDR;
    }
    if o.create {
        flags |= IFF_TUN_EXCL;
    }
    let mut req = IfReqFlags { name: n, flags, _pad: [0; 22] };
    if unsafe { libc::ioctl(fd, TUNSETIFF, &mut req) } < 0 {
        return fail(os_err(&format!("TUNSETIFF {name}")));
    }
    if o.tunnel_gso {
        let sz = VNET_TNL_HDR_LEN;
        if unsafe { libc::ioctl(fd, TUNSETVNETHDRSZ, &sz) } < 0 {
            return fail(os_err("TUNSETVNETHDRSZ"));
        }
        let want = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO_ECN | TUN_F_UDP_TUNNEL_GSO;
        if unsafe { libc::ioctl(fd, TUNSETOFFLOAD, want as libc::c_ulong) } < 0 {
            return fail(os_err("TUNSETOFFLOAD (UDP tunnel GSO needs Linux 6.17)"));
        }
        // SIOCSIFHWADDR on a TUN fd sets its device's address: struct ifreq { name, sockaddr { family, data } }.
        let mut hw = IfReqFlags { name: n, flags: 1 /* ARPHRD_ETHER */, _pad: [0; 22] };
        hw._pad[..6].copy_from_slice(&TUNNEL_TAP_MAC);
        if unsafe { libc::ioctl(fd, libc::SIOCSIFHWADDR, &mut hw) } < 0 {
            return fail(os_err("SIOCSIFHWADDR"));
        }
        if unsafe { libc::ioctl(fd, TUNSETPERSIST, o.persist as libc::c_ulong) } < 0 {
            return fail(os_err("TUNSETPERSIST"));
        }
        return Ok(Tun { fd, ifindex: index_of(&n), offloads: want, vnet_hdr: true });
    }
    if o.vnet_hdr {
        let sz: i32 = crate::meta::VNET_HDR_LEN as i32;
        if unsafe { libc::ioctl(fd, TUNSETVNETHDRSZ, &sz) } < 0 {
            return fail(os_err("TUNSETVNETHDRSZ"));
        }
    }
    let mut offloads = 0u32;
    if o.vnet_hdr && o.offloads {
        // UDP segmentation offload is newer (Linux 6.2); fall back to TCP-only offloads without it.
        for want in [TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO_ECN | TUN_F_USO4, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO_ECN] {
            if unsafe { libc::ioctl(fd, TUNSETOFFLOAD, want as libc::c_ulong) } == 0 {
                offloads = want;
                break;
            }
        }
        if offloads == 0 {
            return fail(os_err("TUNSETOFFLOAD"));
        }
    } else if unsafe { libc::ioctl(fd, TUNSETOFFLOAD, 0 as libc::c_ulong) } < 0 {
        return fail(os_err("TUNSETOFFLOAD"));
    }
    if unsafe { libc::ioctl(fd, TUNSETPERSIST, o.persist as libc::c_ulong) } < 0 {
        return fail(os_err("TUNSETPERSIST"));
    }
    let ifindex = index_of(&n);
    Ok(Tun { fd, ifindex, offloads, vnet_hdr: o.vnet_hdr })
}

/// Flags the kernel reports for an attached TUN fd (IFF_*).
pub fn flags(fd: i32) -> Result<i32, String> {
    let mut f: u32 = 0;
    if unsafe { libc::ioctl(fd, TUNGETIFF, &mut f) } < 0 {
        return Err(os_err("TUNGETIFF"));
    }
    Ok(f as i32)
}

/// Removes a persistent TUN device: attach, clear persistence, close. Absent devices are fine.
pub fn delete(name: &str, ns: &Netns) -> Result<bool, String> {
    let n = ifname(name)?;
    let _guard = NetnsGuard::enter(ns)?;
    if index_of(&n) == 0 {
        return Ok(false);
    }
    let fd = unsafe { libc::open(b"/dev/net/tun\0".as_ptr() as *const libc::c_char, libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(os_err("open /dev/net/tun"));
    }
    // The device's own flags must match to attach; try both header settings.
    let mut ok = false;
    for f in [IFF_TUN | IFF_NO_PI | IFF_VNET_HDR, IFF_TUN | IFF_NO_PI, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR] {
        let mut req = IfReqFlags { name: n, flags: f, _pad: [0; 22] };
        if unsafe { libc::ioctl(fd, TUNSETIFF, &mut req) } == 0 {
            ok = true;
            break;
        }
    }
    let r = if !ok {
        Err(os_err(&format!("attach {name} to delete it")))
    } else if unsafe { libc::ioctl(fd, TUNSETPERSIST, 0 as libc::c_ulong) } < 0 {
        Err(os_err("TUNSETPERSIST 0"))
    } else {
        Ok(true)
    };
    unsafe { libc::close(fd) };
    r
}

fn ifreq_int(name: &str, ns: &Netns, req_get: libc::c_ulong, req_set: Option<(libc::c_ulong, i32)>) -> Result<i32, String> {
    let n = ifname(name)?;
    let _guard = NetnsGuard::enter(ns)?;
    let s = ioctl_sock()?;
    let mut req = IfReqInt { name: n, value: 0, _pad: [0; 20] };
    let r = (|| {
        if unsafe { libc::ioctl(s, req_get, &mut req) } < 0 {
            return Err(os_err(&format!("{name}")));
        }
        if let Some((set, v)) = req_set {
            req.value = v;
            if unsafe { libc::ioctl(s, set, &mut req) } < 0 {
                return Err(os_err(&format!("{name}")));
            }
        }
        Ok(req.value)
    })();
    unsafe { libc::close(s) };
    r
}

pub fn set_mtu(name: &str, ns: &Netns, mtu: i32) -> Result<(), String> {
    ifreq_int(name, ns, libc::SIOCGIFMTU, Some((libc::SIOCSIFMTU, mtu))).map(|_| ())
}

pub fn mtu(name: &str, ns: &Netns) -> Result<i32, String> {
    ifreq_int(name, ns, libc::SIOCGIFMTU, None)
}

pub fn ifindex(name: &str, ns: &Netns) -> Result<i32, String> {
    let n = ifname(name)?;
    let _guard = NetnsGuard::enter(ns)?;
    Ok(index_of(&n))
}

/// Sets IFF_UP (and IFF_RUNNING is the kernel's) on a device.
pub fn set_up(name: &str, ns: &Netns, up: bool) -> Result<(), String> {
    let n = ifname(name)?;
    let _guard = NetnsGuard::enter(ns)?;
    let s = ioctl_sock()?;
    let mut req = IfReqFlags { name: n, flags: 0, _pad: [0; 22] };
    let r = (|| {
        if unsafe { libc::ioctl(s, libc::SIOCGIFFLAGS, &mut req) } < 0 {
            return Err(os_err(name));
        }
        if up {
            req.flags |= libc::IFF_UP as i16;
        } else {
            req.flags &= !(libc::IFF_UP as i16);
        }
        if unsafe { libc::ioctl(s, libc::SIOCSIFFLAGS, &mut req) } < 0 {
            return Err(os_err(name));
        }
        Ok(())
    })();
    unsafe { libc::close(s) };
    r
}
