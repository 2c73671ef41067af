// The one place that loads the Rust addon (native/ciliary.node) and gives it types.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

/** A network namespace: a path such as /var/run/netns/NAME, an open fd, or null for the current one. */
export type Netns = string | number | null;

export interface TunDevice {
  fd: number;
  ifindex: number;
  /** TUN_F_* offload bits granted by the kernel (0 when offloads are off). */
  offloads: number;
  vnetHdr: boolean;
}

/** Opaque handle of a running reader. */
export type ReaderHandle = { readonly __reader: unique symbol };
/** Opaque handle of a slot pool (see src/native/pool.ts). */
export type PoolHandle = { readonly __pool: unique symbol };

export interface PoolInfo {
  pool: PoolHandle;
  /** All slots: slot s spans [s*stride, (s+1)*stride), its data starting `headroom` bytes in. */
  arena: ArrayBuffer;
  stride: number;
  headroom: number;
  capacity: number;
}

export interface PoolStats { slots: number; free: number; held: number; stalls: number; resumes: number }

export interface IoStats {
  rxPackets: number; rxBytes: number; rxBatches: number; rxErrors: number;
  txPackets: number; txBytes: number; txEagain: number; txEnobufs: number; txErrors: number;
  /** UDP sends segmented by the kernel (UDP_SEGMENT). */
  txGso: number;
  /** TCP super-packets written to the tunnel TAP for the kernel's UDP-tunnel GSO. */
  txTunnelGso: number;
  /** Tunnel datagrams that arrived as one whole super-packet. */
  rxTunnelGso: number;
}

export interface Native {
  /** tunnelGso: a TAP (Ethernet) device with 24-byte virtio-net headers and TUN_F_UDP_TUNNEL_GSO (Linux 6.17); throws without it. */
  tunOpen(name: string, netns: Netns, vnetHdr: boolean, offloads: boolean, persist: boolean, create: boolean, tunnelGso?: boolean): TunDevice;
  tunDelete(name: string, netns: Netns): boolean;
  tunFlags(fd: number): number;
  setMtu(name: string, netns: Netns, mtu: number): void;
  getMtu(name: string, netns: Netns): number;
  ifindex(name: string, netns: Netns): number;
  setLinkUp(name: string, netns: Netns, up: boolean): void;
  closeFd(fd: number): void;
  /** A non-blocking UDP socket bound to addr:port (host order; port 0 picks one) in netns; bufferBytes > 0 sizes its buffers. */
  udpOpen(netns: Netns, addr: number, port: number, bufferBytes: number): { fd: number; port: number };
  /** gso: the kernel segments UDP sends (UDP_SEGMENT). */
  udpCapabilities(): { gso: boolean };
  poolCreate(slots: number, headroom: number, capacity: number): PoolInfo;
  /** Keeps a slot of the batch being processed past the batch; throws unless the slot is in it. */
  poolHold(pool: PoolHandle, slot: number): void;
  /** Returns a held slot; throws when it is not held (a double release). */
  poolRelease(pool: PoolHandle, slot: number): void;
  poolStats(pool: PoolHandle): PoolStats;
  /** Drains a TUN fd on readiness into free pool slots, parses each packet into meta, calls cb(count) per batch
   *  (cb(-errno) on a fatal error); afterwards the batch's slots not held return to the pool. */
  readerStart(fd: number, pool: PoolHandle, meta: Uint32Array, batch: number, vnet: boolean, source: number,
    cb: (count: number) => void): ReaderHandle;
  /** The same for a UDP socket (recvmmsg): records keep the sender and the datagram, and parse the packet innerOffset bytes in.
   *  coalesce: consecutive in-order TCP segments of one flow behind the same prefix merge into one GSO record (GRO).
   *  wholeAbove: an inner TCP packet longer than this (the pod MTU) is a whole super-packet, recorded as GSO (0: none). */
  udpReaderStart(fd: number, pool: PoolHandle, meta: Uint32Array, batch: number, innerOffset: number, source: number,
    cb: (count: number) => void, coalesce?: boolean, wholeAbove?: number): ReaderHandle;
  forwardStart(fdIn: number, fdOut: number): ReaderHandle;
  readerStop(h: ReaderHandle): void;
  /** desc: [fd, off, len, status] per packet; status gets bytes written or -errno. Returns packets written. */
  writeBatch(buf: ArrayBuffer | Uint8Array, desc: Int32Array, count: number): number;
  /** desc: [off, len, addr, port, segSize, status] per row (UDP_TX_WORDS); segSize > 0 cuts the row into datagrams of
   *  that size, by the kernel when gso. status gets bytes sent or -errno. Returns rows sent. */
  udpWriteBatch(fd: number, buf: ArrayBuffer | Uint8Array, desc: Int32Array, count: number, gso: boolean): number;
  /** Writes a TCPv4 super-packet frame (behind its virtio-net header) into a tunnelGso TAP as one UDP-tunnel GSO frame: `head`
   *  (TUNNEL_HEAD_LEN bytes: outer Ethernet to the TAP's MAC, source address, UDP ports, VXLAN + inner Ethernet already in
   *  it) is completed for `daddr`, then written with the packet in place. Bytes written; 0 when the frame is not one the
   *  kernel can segment (send it the other way); -errno when the write failed. */
  tunnelGsoWrite(fd: number, buf: ArrayBuffer | Uint8Array, off: number, len: number, head: Uint8Array, daddr: number): number;
  readOnce(fd: number, buf: ArrayBuffer | Uint8Array): number;
  ioStats(): IoStats;
  parse(buf: ArrayBuffer | Uint8Array, off: number, len: number, vnet: boolean, meta: Uint32Array, index: number): number;
  ipv4ChecksumOk(buf: ArrayBuffer | Uint8Array, l3: number, end: number): boolean;
  l4ChecksumOk(buf: ArrayBuffer | Uint8Array, l3: number, end: number): boolean;
  setChecksums(buf: ArrayBuffer | Uint8Array, l3: number, end: number): boolean;
  setPartialChecksum(buf: ArrayBuffer | Uint8Array, l3: number, end: number): boolean;
  completePartialChecksum(buf: ArrayBuffer | Uint8Array, csumStart: number, end: number, csumOffset: number): boolean;
  rewriteAddr(buf: ArrayBuffer | Uint8Array, l3: number, end: number, dst: boolean, addr: number, partial: boolean): boolean;
  rewritePort(buf: ArrayBuffer | Uint8Array, l3: number, end: number, dst: boolean, port: number, partial: boolean): boolean;
  gsoSegment(buf: ArrayBuffer | Uint8Array, off: number, len: number, vnet: boolean, mss: number,
    out: ArrayBuffer | Uint8Array, outVnet: boolean, segOffs: Uint32Array, segLens: Uint32Array): number;
  /** Writes a frame into `out` at outOff as tunnel datagrams, each `prefix` + one IPv4 packet (a TCP super-packet cut into
   *  MSS segments, all of one size but the last); inner checksums complete. result gets [bytes, segment size or 0].
   *  Returns the datagram count, 0 when the frame cannot be encapsulated or does not fit. */
  encapDatagrams(buf: ArrayBuffer | Uint8Array, off: number, len: number, vnet: boolean, prefix: Uint8Array,
    out: ArrayBuffer | Uint8Array, outOff: number, result: Uint32Array): number;
  mapFile(path: string, size: number): ArrayBuffer;
  syncMap(buf: ArrayBuffer): void;
  residentBytes(buf: ArrayBuffer): number;
  constants(): { META_WORDS: number; VNET_HDR_LEN: number; TUN_F_CSUM: number; TUN_F_TSO4: number; TUN_F_USO4: number; TUNNEL_HEAD_LEN: number; TUNNEL_TAP_MAC: number };
}

const here = dirname(fileURLToPath(import.meta.url));
export const addonPath = join(here, '..', '..', 'native', 'ciliary.node');

function load(): Native {
  if (!existsSync(addonPath)) {
    throw new Error(`native addon not built: ${addonPath} is missing (run: npm run build:native)`);
  }
  return createRequire(import.meta.url)(addonPath) as Native;
}

export const native: Native = load();
