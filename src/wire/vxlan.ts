// VXLAN header (RFC 7348 §5) and the inner Ethernet header after it, over packet bytes at `off`.
export const VXLAN_HDR_LEN = 8;
/** The I flag: the VNI is valid (the only flag RFC 7348 defines). */
export const VXLAN_FLAG_I = 0x08;
export const ETH_HLEN = 14;
export const ETH_P_IP = 0x0800;
export const ETH_P_IPV6 = 0x86dd;
/** VXLAN + inner Ethernet: where the inner IPv4 starts in a datagram. */
export const VXLAN_INNER_OFFSET = VXLAN_HDR_LEN + ETH_HLEN;
/** VNIs are 24 bits. */
export const VNI_MAX = 0xffffff;

export function flags(b: Uint8Array, off: number): number {
  return b[off];
}

export function vni(b: Uint8Array, off: number): number {
  return (b[off + 4] << 16) | (b[off + 5] << 8) | b[off + 6];
}

/** Flags I, reserved bits zero, the VNI. */
export function setHeader(b: Uint8Array, off: number, id: number): void {
  b[off] = VXLAN_FLAG_I;
  b[off + 1] = 0;
  b[off + 2] = 0;
  b[off + 3] = 0;
  b[off + 4] = (id >>> 16) & 0xff;
  b[off + 5] = (id >>> 8) & 0xff;
  b[off + 6] = id & 0xff;
  b[off + 7] = 0;
}

/** The inner Ethernet header's ethertype. */
export function innerEthertype(b: Uint8Array, off: number): number {
  return (b[off + VXLAN_HDR_LEN + 12] << 8) | b[off + VXLAN_HDR_LEN + 13];
}

/** Inner Ethernet destination, source and ethertype. */
export function setInnerEthernet(b: Uint8Array, off: number, dst: readonly number[], src: readonly number[], type: number): void {
  const e = off + VXLAN_HDR_LEN;
  for (let i = 0; i < 6; i++) {
    b[e + i] = dst[i];
    b[e + 6 + i] = src[i];
  }
  b[e + 12] = type >> 8;
  b[e + 13] = type & 0xff;
}
