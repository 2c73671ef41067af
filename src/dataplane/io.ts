// The datapath's device I/O: one slot pool and one metadata array shared by every reader (the
// batches run one at a time on the loop), readers keyed by the id their records carry in M_SOURCE.
import { native, type ReaderHandle } from '../native/index.ts';
import { META_WORDS } from '../native/meta.ts';
import { BATCH, SlotPool } from '../native/pool.ts';

export class DeviceIo {
  readonly pool: SlotPool;
  readonly meta = new Uint32Array(META_WORDS * BATCH);
  private readonly readers = new Map<number, ReaderHandle>();

  constructor(poolSlots: number, private readonly onBatch: (count: number) => void) {
    this.pool = new SlotPool(poolSlots);
  }

  /** Reads a TUN fd (with virtio-net headers); its records carry `id` as M_SOURCE. */
  attachTun(id: number, fd: number): void {
    this.detach(id);
    this.readers.set(id, native.readerStart(fd, this.pool.handle, this.meta, BATCH, true, id, this.onBatch));
  }

  /** Reads a UDP socket; records parse the packet `innerOffset` bytes into each datagram (coalesce: GRO of TCP segments;
   *  an inner TCP packet longer than wholeAbove is a whole super-packet). */
  attachUdp(id: number, fd: number, innerOffset: number, coalesce = false, wholeAbove = 0): void {
    this.detach(id);
    this.readers.set(id, native.udpReaderStart(fd, this.pool.handle, this.meta, BATCH, innerOffset, id, this.onBatch, coalesce, wholeAbove));
  }

  detach(id: number): void {
    const r = this.readers.get(id);
    if (r) native.readerStop(r);
    this.readers.delete(id);
  }

  detachAll(): void {
    for (const id of [...this.readers.keys()]) this.detach(id);
  }
}
