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

export interface IoStats {
  rxPackets: number; rxBytes: number; rxBatches: number; rxErrors: number;
  txPackets: number; txBytes: number; txEagain: number; txEnobufs: number; txErrors: number;
}

export interface Native {
  tunOpen(name: string, netns: Netns, vnetHdr: boolean, offloads: boolean, persist: boolean, create: boolean): TunDevice;
  tunDelete(name: string, netns: Netns): boolean;
  tunFlags(fd: number): number;
  setMtu(name: string, netns: Netns, mtu: number): void;
  getMtu(name: string, netns: Netns): number;
  ifindex(name: string, netns: Netns): number;
  setLinkUp(name: string, netns: Netns, up: boolean): void;
  closeFd(fd: number): void;
  /** Drains fd on readiness into arena slots, parses each packet into meta, calls cb(count) per batch; cb(-errno) on a fatal error. */
  readerStart(fd: number, arena: ArrayBuffer | Uint8Array, meta: Uint32Array, slotSize: number, batch: number,
    vnet: boolean, source: number, cb: (count: number) => void): ReaderHandle;
  forwardStart(fdIn: number, fdOut: number): ReaderHandle;
  readerStop(h: ReaderHandle): void;
  /** desc: [fd, off, len, status] per packet; status gets bytes written or -errno. Returns packets written. */
  writeBatch(buf: ArrayBuffer | Uint8Array, desc: Int32Array, count: number): number;
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
  mapFile(path: string, size: number): ArrayBuffer;
  syncMap(buf: ArrayBuffer): void;
  residentBytes(buf: ArrayBuffer): number;
  constants(): { META_WORDS: number; VNET_HDR_LEN: number; TUN_F_CSUM: number; TUN_F_TSO4: number; TUN_F_USO4: number };
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
