// Driving a Datapath without devices: endpoint entries and crafted packets fed as one-packet batches.
import { native } from '../../src/native/index.ts';
import { M_SOURCE } from '../../src/native/meta.ts';
import type { Datapath } from '../../src/dataplane/datapath.ts';
import { LXC_ID, LXC_VALUE } from '../../src/maps/cilium/lxc.ts';
import { cil_from_container, ENDPOINT_CALLS } from '../../src/dataplane/programs/index.ts';

/** A cilium_lxc entry: `ip` (host order) belongs to endpoint `id`. Returns the map's result code. */
export function putLxc(dp: Datapath, ip: number, id: number): number {
  const k = new Uint8Array(4);
  new DataView(k.buffer).setUint32(0, ip);
  const v = new Uint8Array(LXC_VALUE);
  new DataView(v.buffer).setUint16(LXC_ID, id, true);
  return dp.lxc.update(k, 0, v, 0, 0);
}

/**
 * A pod endpoint as the endpoint manager plumbs one, with `fd` as its device and no reader:
 * address, identity 300 + id, program array, cilium_lxc entry, and bpf_lxc's hook.
 */
export function plumbPod(dp: Datapath, id: number, ip: number, fd: number): number {
  dp.epIp[id] = ip;
  dp.epIdentity[id] = 300 + id;
  dp.epFd[id] = fd;
  dp.hooks[id] = cil_from_container;
  dp.installPrograms(id, ENDPOINT_CALLS);
  return putLxc(dp, ip, id);
}

/** A frame (zeroed virtio-net header + IPv4 TCP, flags SYN by default) with valid checksums. */
export function tcpPacket(src: number, dst: number, sport: number, dport: number, flags = 0x02, ttl = 64): Uint8Array {
  const b = new Uint8Array(10 + 40);
  const v = new DataView(b.buffer);
  b[10] = 0x45;
  v.setUint16(12, 40);
  b[18] = ttl;
  b[19] = 6;
  v.setUint32(22, src);
  v.setUint32(26, dst);
  v.setUint16(30, sport);
  v.setUint16(32, dport);
  b[30 + 12] = 0x50;
  b[30 + 13] = flags;
  v.setUint16(30 + 14, 64240);
  native.setChecksums(b, 10, b.length);
  return b;
}

/** Runs one frame (virtio-net header + IPv4) through the datapath as if endpoint `from` sent it. */
export function injectPacket(dp: Datapath, pkt: Uint8Array, from: number): void {
  dp.arena.set(pkt, 0);
  native.parse(dp.arena, 0, pkt.length, true, dp.meta, 0);
  dp.meta[M_SOURCE] = from;
  dp.processBatch(1);
}
