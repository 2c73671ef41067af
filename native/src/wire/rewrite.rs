//! NAT rewrites of addresses and ports with incremental checksum updates.
use super::checksum::{csum_replace2, csum_replace4, ip4, l4_check_field, partial_replace4, udp_mangle};
use super::*;

/// Replaces the source (or destination) address, updating the IP header checksum and the TCP/UDP
/// checksum incrementally (ICMP has no pseudo header; non-first fragments have no L4 header).
/// `partial`: the L4 field holds a CHECKSUM_PARTIAL seed, which takes the delta un-complemented.
/// Returns false, leaving the packet untouched, when the headers needed are not there.
pub fn rewrite_ipv4_addr(pkt: &mut [u8], l3: usize, which_dst: bool, new_addr: u32, partial: bool) -> bool {
    rewrite_addr(pkt, l3, which_dst, new_addr, partial).is_some()
}

fn rewrite_addr(pkt: &mut [u8], l3: usize, which_dst: bool, new: u32, partial: bool) -> Option<()> {
    let ip = ip4(pkt, l3)?;
    let at = l3 + if which_dst { IP_DADDR } else { IP_SADDR };
    let old = get32(pkt, at)?;
    // Only TCP/UDP cover the addresses (via the pseudo header); resolve that before any write.
    let l4_field = match ip.proto {
        IPPROTO_TCP | IPPROTO_UDP if ip.has_l4() => Some(l4_check_field(&ip)?),
        _ => None,
    };
    put32(pkt, at, new)?;
    let hc = get16(pkt, l3 + IP_CHECK)?;
    put16(pkt, l3 + IP_CHECK, csum_replace4(hc, old, new))?;
    let Some(field) = l4_field else { return Some(()) };
    let check = get16(pkt, field)?;
    let updated = if partial {
        partial_replace4(check, old, new)
    } else if ip.proto == IPPROTO_UDP && check == 0 {
        // UDP without a checksum stays without one.
        0
    } else {
        udp_mangle(ip.proto, csum_replace4(check, old, new))
    };
    put16(pkt, field, updated)
}

/// Replaces the TCP/UDP source (or destination) port; for ICMP echo the echo id (the flow's only
/// identifier, whichever side is asked) is rewritten. Ports are not in the pseudo header, so in
/// partial mode the seed stays as is; otherwise the checksum is updated incrementally.
pub fn rewrite_l4_port(pkt: &mut [u8], l3: usize, which_dst: bool, new_port: u16, partial: bool) -> bool {
    rewrite_port(pkt, l3, which_dst, new_port, partial).is_some()
}

fn rewrite_port(pkt: &mut [u8], l3: usize, which_dst: bool, new: u16, partial: bool) -> Option<()> {
    let ip = ip4(pkt, l3)?;
    let field = l4_check_field(&ip)?;
    let at = match ip.proto {
        IPPROTO_TCP | IPPROTO_UDP => ip.l4 + if which_dst { 2 } else { 0 },
        IPPROTO_ICMP => match get8(pkt, ip.l4)? {
            ICMP_ECHO_REQUEST | ICMP_ECHO_REPLY => ip.l4 + ICMP_ID,
            _ => return None,
        },
        _ => return None,
    };
    let old = get16(pkt, at)?;
    put16(pkt, at, new)?;
    let check = get16(pkt, field)?;
    if partial || (ip.proto == IPPROTO_UDP && check == 0) {
        return Some(());
    }
    put16(pkt, field, udp_mangle(ip.proto, csum_replace2(check, old, new)))
}
