// IP protocol numbers (IANA, as Linux's IPPROTO_*) and the fixed header sizes of the wire views.
export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_SCTP = 132;

/** An IPv4 header without options. */
export const IPV4_MIN_HLEN = 20;
/** A TCP header without options. */
export const TCP_MIN_HLEN = 20;
export const UDP_HLEN = 8;
/** The ICMP header in front of an error's quoted packet (type, code, checksum, 4 unused bytes). */
export const ICMP_HLEN = 8;
/** TCP, UDP and SCTP all start with the two ports: the bytes an ICMP error must quote at least. */
export const L4_PORTS_LEN = 4;

/** Whether the protocol has ports in its first four bytes (TCP, UDP, SCTP). */
export function hasPorts(proto: number): boolean {
  return proto === IPPROTO_TCP || proto === IPPROTO_UDP || proto === IPPROTO_SCTP;
}
