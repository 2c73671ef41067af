// Driving a Datapath without devices: endpoint entries and crafted packets fed as one-packet batches.
import { native } from '../../src/native/index.ts';
import { M_SOURCE } from '../../src/native/meta.ts';
import type { Datapath } from '../../src/dataplane/datapath.ts';
import * as D from '../../src/dataplane/map-defs.ts';

/** A cilium_lxc entry: `ip` (host order) belongs to endpoint `id`. Returns the map's result code. */
export function putLxc(dp: Datapath, ip: number, id: number): number {
  const k = new Uint8Array(4);
  new DataView(k.buffer).setUint32(0, ip);
  const v = new Uint8Array(D.LXC_VALUE);
  new DataView(v.buffer).setUint16(D.LXC_ID, id, true);
  return dp.lxc.update(k, 0, v, 0, 0);
}

/** Runs one frame (virtio-net header + IPv4) through the datapath as if endpoint `from` sent it. */
export function injectPacket(dp: Datapath, pkt: Uint8Array, from: number): void {
  dp.arena.set(pkt, 0);
  native.parse(dp.arena, 0, pkt.length, true, dp.meta, 0);
  dp.meta[M_SOURCE] = from;
  dp.processBatch(1);
}
