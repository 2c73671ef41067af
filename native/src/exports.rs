//! The functions the addon exports to JS, and the module entry point Node looks up.

use crate::meta::META_WORDS;
use crate::napi::*;
use crate::{gso, io, mmap, tun, wire};

fn netns_arg(a: &Args, i: usize) -> Result<tun::Netns, String> {
    match a.kind(i) {
        ValueType::Undefined | ValueType::Null => Ok(tun::Netns::Current),
        ValueType::String => Ok(tun::Netns::Path(a.string(i, "netns")?)),
        ValueType::Number => Ok(tun::Netns::Fd(a.fd(i)?)),
        _ => Err("netns must be a path (/var/run/netns/NAME), an fd, or null for the current namespace".into()),
    }
}

/// tunOpen(name, netns, vnetHdr, offloads, persist, create, tunnelGso) → { fd, ifindex, offloads, vnetHdr }
fn tun_open(a: &Args) -> JsResult {
    let name = a.string(0, "name")?;
    let ns = netns_arg(a, 1)?;
    let o = tun::TunOptions {
        vnet_hdr: a.bool_or(2, "vnetHdr", true)?,
        offloads: a.bool_or(3, "offloads", true)?,
        persist: a.bool_or(4, "persist", true)?,
        create: a.bool_or(5, "create", true)?,
        tunnel_gso: a.bool_or(6, "tunnelGso", false)?,
    };
    let t = tun::open(&name, &ns, &o)?;
    let env = a.env;
    let r = object(env)?;
    set_num(env, r, "fd", t.fd as f64)?;
    set_num(env, r, "ifindex", t.ifindex as f64)?;
    set_num(env, r, "offloads", t.offloads as f64)?;
    set(env, r, "vnetHdr", boolean(env, t.vnet_hdr)?)?;
    Ok(r)
}

/// udpOpen(netns, addr, port, bufferBytes) → { fd, port }: a non-blocking UDP socket bound in netns.
fn udp_open(a: &Args) -> JsResult {
    let ns = netns_arg(a, 0)?;
    let (fd, port) = io::udp_bind(&ns, a.u32(1, "addr")?, a.int(2, "port", 0, 65535)? as u16, a.usize_max(3, "bufferBytes", 1 << 30)?)?;
    let r = object(a.env)?;
    set_num(a.env, r, "fd", fd as f64)?;
    set_num(a.env, r, "port", port as f64)?;
    Ok(r)
}

fn tun_delete(a: &Args) -> JsResult {
    let existed = tun::delete(&a.string(0, "name")?, &netns_arg(a, 1)?)?;
    boolean(a.env, existed)
}

fn tun_flags(a: &Args) -> JsResult {
    number(a.env, tun::flags(a.fd(0)?)? as f64)
}

fn set_mtu(a: &Args) -> JsResult {
    tun::set_mtu(&a.string(0, "name")?, &netns_arg(a, 1)?, a.int(2, "mtu", 68, 65535)? as i32)?;
    undefined(a.env)
}

fn get_mtu(a: &Args) -> JsResult {
    number(a.env, tun::mtu(&a.string(0, "name")?, &netns_arg(a, 1)?)? as f64)
}

fn ifindex(a: &Args) -> JsResult {
    number(a.env, tun::ifindex(&a.string(0, "name")?, &netns_arg(a, 1)?)? as f64)
}

fn set_link_up(a: &Args) -> JsResult {
    tun::set_up(&a.string(0, "name")?, &netns_arg(a, 1)?, a.bool_or(2, "up", true)?)?;
    undefined(a.env)
}

fn close_fd(a: &Args) -> JsResult {
    let fd = a.fd(0)?;
    if unsafe { libc::close(fd) } < 0 {
        return Err(format!("close fd {fd}: {}", std::io::Error::last_os_error()));
    }
    undefined(a.env)
}

/// A frame window [off, off+len) inside an argument buffer, bounds-checked.
fn window<'a>(a: &Args, buf: &'a mut [u8], off_i: usize, len_i: usize) -> Result<(usize, usize), String> {
    let off = a.usize_max(off_i, "offset", buf.len())?;
    let len = a.usize_max(len_i, "length", buf.len() - off)?;
    Ok((off, len))
}

/// parse(buf, off, len, vnet, meta, index) → flags word; fills record `index` of `meta`.
fn parse(a: &Args) -> JsResult {
    let buf = a.bytes(0, "buf")?;
    let (off, len) = window(a, buf, 1, 2)?;
    let vnet = a.bool_or(3, "vnet", true)?;
    let meta = a.u32s(4, "meta")?;
    let idx = a.usize_max(5, "index", usize::MAX >> 8)?;
    let rec = meta.get_mut(idx * META_WORDS..(idx + 1) * META_WORDS).ok_or("parse: meta too short for index")?;
    wire::parse(&buf[off..off + len], vnet, off as u32, rec);
    rec[crate::meta::M_SLOT] = io::NO_SLOT;
    number(a.env, rec[crate::meta::M_FLAGS] as f64)
}

/// The packet slice [0, end) for checksum helpers that address it by absolute l3 offset.
fn pkt<'a>(a: &Args, buf: &'a mut [u8]) -> Result<(&'a mut [u8], usize), String> {
    let l3 = a.usize_max(1, "l3", buf.len())?;
    let end = a.usize_max(2, "end", buf.len())?;
    if end < l3 {
        return Err("end must be >= l3".into());
    }
    Ok((&mut buf[..end], l3))
}

fn ipv4_checksum_ok(a: &Args) -> JsResult {
    let buf = a.bytes(0, "buf")?;
    let (p, l3) = pkt(a, buf)?;
    boolean(a.env, wire::ipv4_header_checksum_ok(p, l3))
}

fn l4_checksum_ok(a: &Args) -> JsResult {
    let buf = a.bytes(0, "buf")?;
    let (p, l3) = pkt(a, buf)?;
    boolean(a.env, wire::l4_checksum_ok(p, l3))
}

/// setChecksums(buf, l3, end) → true when both the IP and the L4 checksums were written.
fn set_checksums(a: &Args) -> JsResult {
    let buf = a.bytes(0, "buf")?;
    let (p, l3) = pkt(a, buf)?;
    let ok = wire::set_ipv4_header_checksum(p, l3) && wire::set_l4_checksum(p, l3);
    boolean(a.env, ok)
}

fn set_partial_checksum(a: &Args) -> JsResult {
    let buf = a.bytes(0, "buf")?;
    let (p, l3) = pkt(a, buf)?;
    boolean(a.env, wire::set_l4_partial_checksum(p, l3))
}

/// completePartialChecksum(buf, csumStart, end, csumOffset): what the kernel does for CHECKSUM_PARTIAL.
fn complete_partial_checksum(a: &Args) -> JsResult {
    let buf = a.bytes(0, "buf")?;
    let (p, start) = pkt(a, buf)?;
    let coff = a.usize_max(3, "csumOffset", 65535)?;
    boolean(a.env, wire::complete_partial_checksum(p, start, coff))
}

/// rewriteAddr(buf, l3, end, dst, addr, partial) → ok
fn rewrite_addr(a: &Args) -> JsResult {
    let buf = a.bytes(0, "buf")?;
    let (p, l3) = pkt(a, buf)?;
    let dst = a.bool_or(3, "dst", false)?;
    let addr = a.u32(4, "addr")?;
    let partial = a.bool_or(5, "partial", false)?;
    boolean(a.env, wire::rewrite_ipv4_addr(p, l3, dst, addr, partial))
}

/// rewritePort(buf, l3, end, dst, port, partial) → ok
fn rewrite_port(a: &Args) -> JsResult {
    let buf = a.bytes(0, "buf")?;
    let (p, l3) = pkt(a, buf)?;
    let dst = a.bool_or(3, "dst", false)?;
    let port = a.int(4, "port", 0, 65535)? as u16;
    let partial = a.bool_or(5, "partial", false)?;
    boolean(a.env, wire::rewrite_l4_port(p, l3, dst, port, partial))
}

/// gsoSegment(buf, off, len, vnet, mss, out, outVnet, segOffs, segLens) → segment count
fn gso_segment(a: &Args) -> JsResult {
    let buf = a.bytes(0, "buf")?;
    let (off, len) = window(a, buf, 1, 2)?;
    let vnet = a.bool_or(3, "vnet", true)?;
    let mss = a.int(4, "mss", 0, 65535)? as u16;
    let out = a.bytes(5, "out")?;
    let out_vnet = a.bool_or(6, "outVnet", true)?;
    let offs = a.u32s(7, "segOffs")?;
    let lens = a.u32s(8, "segLens")?;
    let n = gso::tcp4_segment(&buf[off..off + len], vnet, mss, out, out_vnet, offs, lens).map_err(|e| format!("gsoSegment: {e}"))?;
    number(a.env, n as f64)
}

/// encapDatagrams(buf, off, len, vnet, prefix, out, outOff, result) → datagram count, 0 when the
/// frame cannot be encapsulated (bad packet, no room): result gets [bytes written, segment size].
fn encap_datagrams(a: &Args) -> JsResult {
    let buf = a.bytes(0, "buf")?;
    let (off, len) = window(a, buf, 1, 2)?;
    let vnet = a.bool_or(3, "vnet", true)?;
    let prefix = a.bytes(4, "prefix")?;
    let out = a.bytes(5, "out")?;
    let out_off = a.usize_max(6, "outOff", out.len())?;
    let result = a.u32s(7, "result")?;
    if result.len() < 2 {
        return Err("encapDatagrams: result needs 2 words".into());
    }
    let n = match gso::encap_datagrams(&buf[off..off + len], vnet, prefix, &mut out[out_off..]) {
        Ok(d) => {
            result[0] = d.bytes as u32;
            result[1] = d.seg_size as u32;
            d.count
        }
        Err(_) => 0,
    };
    number(a.env, n as f64)
}

fn constants(a: &Args) -> JsResult {
    let env = a.env;
    let o = object(env)?;
    set_num(env, o, "META_WORDS", META_WORDS as f64)?;
    set_num(env, o, "VNET_HDR_LEN", crate::meta::VNET_HDR_LEN as f64)?;
    set_num(env, o, "TUN_F_CSUM", tun::TUN_F_CSUM as f64)?;
    set_num(env, o, "TUN_F_TSO4", tun::TUN_F_TSO4 as f64)?;
    set_num(env, o, "TUN_F_USO4", tun::TUN_F_USO4 as f64)?;
    set_num(env, o, "TUNNEL_HEAD_LEN", gso::TUNNEL_HEAD_LEN as f64)?;
    // The tunnel TAP's MAC as one 48-bit number: the frames the agent writes there must be addressed to it.
    set_num(env, o, "TUNNEL_TAP_MAC", tun::TUNNEL_TAP_MAC.iter().fold(0u64, |m, b| m << 8 | *b as u64) as f64)?;
    Ok(o)
}

const EXPORTS: &[(&str, Exported)] = &[
    ("tunOpen", tun_open),
    ("tunDelete", tun_delete),
    ("tunFlags", tun_flags),
    ("setMtu", set_mtu),
    ("getMtu", get_mtu),
    ("ifindex", ifindex),
    ("setLinkUp", set_link_up),
    ("closeFd", close_fd),
    ("udpOpen", udp_open),
    ("udpCapabilities", io::udp_capabilities),
    ("poolCreate", io::pool_create),
    ("poolHold", io::pool_hold),
    ("poolRelease", io::pool_release),
    ("poolStats", io::pool_stats),
    ("readerStart", io::reader_start),
    ("udpReaderStart", io::udp_reader_start),
    ("forwardStart", io::forward_start),
    ("readerStop", io::reader_stop),
    ("writeBatch", io::write_batch),
    ("udpWriteBatch", io::udp_write_batch),
    ("tunnelGsoWrite", io::tunnel_gso_write),
    ("readOnce", io::read_once),
    ("ioStats", io::io_stats),
    ("parse", parse),
    ("ipv4ChecksumOk", ipv4_checksum_ok),
    ("l4ChecksumOk", l4_checksum_ok),
    ("setChecksums", set_checksums),
    ("setPartialChecksum", set_partial_checksum),
    ("completePartialChecksum", complete_partial_checksum),
    ("rewriteAddr", rewrite_addr),
    ("rewritePort", rewrite_port),
    ("gsoSegment", gso_segment),
    ("encapDatagrams", encap_datagrams),
    ("mapFile", mmap::map_file),
    ("syncMap", mmap::sync_map),
    ("residentBytes", mmap::resident_bytes),
    ("constants", constants),
];

/// Node looks this symbol up when it loads the .node file.
#[no_mangle]
pub unsafe extern "C" fn napi_register_module_v1(env: napi_env, exports: napi_value) -> napi_value {
    for (name, f) in EXPORTS {
        if let Err(e) = export(env, exports, name, *f) {
            throw(env, &e);
            return std::ptr::null_mut();
        }
    }
    exports
}
