// A two-port forwarder over the native batched API: every packet read on one TUN is written to
// the other. It is the smallest JS datapath there is, used to test the addon and to measure what
// handing packets to JS costs (bench/native.ts).
import { native, type ReaderHandle } from './index.ts';
import { META_WORDS, M_OFF, M_LEN, M_SOURCE, M_FLAGS, F_GSO } from './meta.ts';
import { BATCH, SLOT_CAPACITY, SlotPool } from './pool.ts';
const MAX_SEGMENTS = 64;

export interface PairForwarderOptions {
  /** Cut TCP super-packets into MTU-sized segments natively before writing them (as the tunnel must). */
  segment?: boolean;
  mss?: number;
}

export class PairForwarder {
  readonly pool = new SlotPool(BATCH);
  readonly arena = this.pool.arena;
  readonly meta = new Uint32Array(META_WORDS * BATCH);
  private readonly desc = new Int32Array(4 * BATCH);
  private readonly segBuf = new Uint8Array(SLOT_CAPACITY * 2);
  private readonly segOffs = new Uint32Array(MAX_SEGMENTS);
  private readonly segLens = new Uint32Array(MAX_SEGMENTS);
  private readonly segDesc = new Int32Array(4 * MAX_SEGMENTS);
  private readers: ReaderHandle[] = [];
  packets = 0;
  /** TCP super-packets (GSO) seen: the kernel only hands them over with offloads on. */
  superPackets = 0;
  errors = 0;

  constructor(private readonly fdA: number, private readonly fdB: number, private readonly opts: PairForwarderOptions = {}) {}

  start(): void {
    // One callback per forwarder, bound once: nothing is allocated per batch or per packet.
    const onBatch = (count: number): void => this.onBatch(count);
    this.readers.push(native.readerStart(this.fdA, this.pool.handle, this.meta, BATCH, true, 0, onBatch));
    this.readers.push(native.readerStart(this.fdB, this.pool.handle, this.meta, BATCH, true, 1, onBatch));
  }

  stop(): void {
    for (const r of this.readers) native.readerStop(r);
    this.readers = [];
  }

  private onBatch(count: number): void {
    if (count < 0) {
      this.errors++;
      return;
    }
    const { meta, desc } = this;
    let n = 0;
    for (let i = 0; i < count; i++) {
      const m = i * META_WORDS;
      const out = meta[m + M_SOURCE] === 0 ? this.fdB : this.fdA;
      const gso = (meta[m + M_FLAGS] & F_GSO) !== 0;
      if (gso) this.superPackets++;
      if (this.opts.segment && gso) {
        this.writeSegments(out, meta[m + M_OFF], meta[m + M_LEN]);
        continue;
      }
      desc[n * 4] = out;
      desc[n * 4 + 1] = meta[m + M_OFF];
      desc[n * 4 + 2] = meta[m + M_LEN];
      n++;
    }
    this.packets += count;
    if (n > 0) native.writeBatch(this.arena, desc, n);
  }

  private writeSegments(out: number, off: number, len: number): void {
    const segs = native.gsoSegment(this.arena, off, len, true, this.opts.mss ?? 0, this.segBuf, true, this.segOffs, this.segLens);
    for (let s = 0; s < segs; s++) {
      this.segDesc[s * 4] = out;
      this.segDesc[s * 4 + 1] = this.segOffs[s];
      this.segDesc[s * 4 + 2] = this.segLens[s];
    }
    native.writeBatch(this.segBuf, this.segDesc, segs);
  }
}
