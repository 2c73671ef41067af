// Text forms shared by the catalog's formatters: IPv4 addresses, MACs, protocol names, hex.

export function ipv4String(be: Uint8Array, off: number): string {
  return `${be[off]}.${be[off + 1]}.${be[off + 2]}.${be[off + 3]}`;
}

/** `F2:78:5C:6D:DE:3F`, as `bpf endpoint list` prints MACs. */
export function macString(b: Uint8Array, off: number): string {
  return Array.from(b.subarray(off, off + 6), (x) => x.toString(16).padStart(2, '0').toUpperCase()).join(':');
}

export function writeMac(mac: string, out: Uint8Array, off: number): void {
  const parts = mac.split(':');
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) throw new Error(`invalid MAC address "${mac}"`);
  parts.forEach((p, i) => (out[off + i] = parseInt(p, 16)));
}

export function hexBytes(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
}

/** IP protocol numbers the maps carry, by the names Cilium prints. */
export const IP_PROTO_NAMES: Readonly<Record<number, string>> = { 0: 'ANY', 1: 'ICMP', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6', 132: 'SCTP' };
