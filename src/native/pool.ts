// The slot pool over the native addon: packet buffers with headroom in one arena, owned by a
// reader's batch, by JS (held), or free. Readers return a batch's slots JS did not hold when the
// batch callback returns; a program that keeps a packet (a pacing queue, a tunnel) holds its slot
// and releases it once the packet is written or dropped.
import { native, type PoolHandle, type PoolStats } from './index.ts';

/** Data bytes per slot: a 64 KiB super-packet plus its virtio-net header (and any UDP datagram). */
export const SLOT_CAPACITY = 65600;
/** Room in front of every packet for an encapsulation header (outer Ethernet+IPv4+UDP+VXLAN is 50). */
export const HEADROOM = 64;
/** Packets a reader hands to JS per call. */
export const BATCH = 64;
export const DEFAULT_POOL_SLOTS = 4 * BATCH;
/** Words per row of native.udpWriteBatch's descriptor: [off, len, addr, port, segSize, status]. */
export const UDP_TX_WORDS = 6;

export class SlotPool {
  readonly handle: PoolHandle;
  readonly arena: Uint8Array;
  readonly view: DataView;
  readonly slots: number;
  /** Bytes from one slot's start to the next. */
  readonly stride: number;
  readonly headroom: number;
  readonly capacity: number;

  constructor(slots = DEFAULT_POOL_SLOTS, headroom = HEADROOM, capacity = SLOT_CAPACITY) {
    const p = native.poolCreate(slots, headroom, capacity);
    this.handle = p.pool;
    this.arena = new Uint8Array(p.arena);
    this.view = new DataView(p.arena);
    this.slots = slots;
    this.stride = p.stride;
    this.headroom = p.headroom;
    this.capacity = p.capacity;
  }

  /** Absolute arena offset of the first byte of a slot (its headroom): a frame may start this far back. */
  slotStart(slot: number): number {
    return slot * this.stride;
  }

  /** Keeps `slot` (a record's M_SLOT) past the batch being processed; throws unless it is in that batch. */
  hold(slot: number): void {
    native.poolHold(this.handle, slot);
  }

  /** Returns a held slot; throws on a slot not held (released twice). Paused readers resume. */
  release(slot: number): void {
    native.poolRelease(this.handle, slot);
  }

  stats(): PoolStats {
    return native.poolStats(this.handle);
  }
}
