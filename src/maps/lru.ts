import { H_DIRTY, H_EVICTIONS, H_LRU_HEAD, H_LRU_TAIL } from './header.ts';
import { HashMap } from './hash.ts';
import type { EntryVisitor, MapSpec, MapStorage, MapType, OpenOptions } from './types.ts';

/**
 * HashMap plus an intrusive doubly-linked recency list (head = most recent) in two int32 slot
 * arrays. lookup/update hits move an entry to the head; inserting into a full map evicts the tail.
 * The list is derived state: repair() keeps the surviving order and puts stragglers at the head.
 */
export class LruHashMap extends HashMap {
  protected readonly prev: Int32Array;
  protected readonly next: Int32Array;
  /** Called with the victim's offsets just before it is evicted; must not modify this map. */
  onEvict: EntryVisitor | null = null;

  constructor(storage: MapStorage, spec: MapSpec, opts: OpenOptions = {}) {
    super(storage, spec, opts);
    const slots = this.maxEntries + 1;
    this.prev = new Int32Array(this.buffer, this.layout.lruPrevOff, slots);
    this.next = new Int32Array(this.buffer, this.layout.lruNextOff, slots);
    if (new.target === LruHashMap) this.attach(opts);
  }

  protected override kind(): MapType {
    return 'lru_hash';
  }

  /** Lookup that marks the entry most recently used. */
  override lookup(key: Uint8Array, keyOff = 0): number {
    const h = this.lookupHandle(key, keyOff);
    if (h === 0) return -1;
    if (this.hdr[H_LRU_HEAD] !== h && !this.readOnly) {
      this.hdr[H_DIRTY] = 1;
      this.unlinkLru(h);
      this.pushHead(h);
      this.hdr[H_DIRTY] = 0;
    }
    return this.valueOffset(h);
  }

  /** Lookup that leaves the recency order alone (dumps, CLI). */
  lookupNoTouch(key: Uint8Array, keyOff = 0): number {
    return super.lookup(key, keyOff);
  }

  get evictions(): number {
    return this.hdr[H_EVICTIONS] >>> 0;
  }

  /** Recency-order cursor: most recent first, 0 at the end. */
  lruFirst(): number {
    return this.hdr[H_LRU_HEAD];
  }

  lruNext(h: number): number {
    return this.next[h];
  }

  /** The entry that would be evicted next, 0 if empty. */
  lruLast(): number {
    return this.hdr[H_LRU_TAIL];
  }

  private pushHead(h: number): void {
    const head = this.hdr[H_LRU_HEAD];
    this.prev[h] = 0;
    this.next[h] = head;
    if (head !== 0) this.prev[head] = h;
    else this.hdr[H_LRU_TAIL] = h;
    this.hdr[H_LRU_HEAD] = h;
  }

  private unlinkLru(h: number): void {
    const p = this.prev[h];
    const n = this.next[h];
    if (p !== 0) this.next[p] = n;
    else this.hdr[H_LRU_HEAD] = n;
    if (n !== 0) this.prev[n] = p;
    else this.hdr[H_LRU_TAIL] = p;
  }

  protected override onLink(h: number): void {
    this.pushHead(h);
  }

  protected override onUnlink(h: number): void {
    this.unlinkLru(h);
  }

  protected override onHit(h: number): void {
    if (this.hdr[H_LRU_HEAD] === h) return;
    this.unlinkLru(h);
    this.pushHead(h);
  }

  protected override makeRoom(): boolean {
    const t = this.hdr[H_LRU_TAIL];
    if (t <= 0) return false;
    if (this.onEvict !== null) this.onEvict(this.keyOffset(t), this.valueOffset(t));
    this.removeHandle(t);
    this.hdr[H_EVICTIONS]++;
    return true;
  }

  protected override onClear(): void {
    this.hdr[H_LRU_HEAD] = 0;
    this.hdr[H_LRU_TAIL] = 0;
  }

  /** Live entries in list order, as far as the list can be followed from the head. */
  private walk(live: Uint8Array): { order: number[]; seen: Uint8Array; broken: boolean } {
    const seen = new Uint8Array(this.maxEntries + 1);
    const order: number[] = [];
    let broken = false;
    let p = 0;
    for (let h = this.hdr[H_LRU_HEAD]; h !== 0; p = h, h = this.next[h]) {
      if (!(h > 0 && h <= this.maxEntries) || seen[h]) {
        broken = true;
        break;
      }
      if (this.prev[h] !== p) broken = true;
      seen[h] = 1;
      if (live[h]) order.push(h);
      else broken = true;
    }
    if (!broken && p !== this.hdr[H_LRU_TAIL]) broken = true;
    return { order, seen, broken };
  }

  protected override repairExtra(live: Uint8Array): void {
    const { order, seen } = this.walk(live);
    // Live but unreachable: caught mid-insert or mid-move to the head, so most recent.
    const stragglers: number[] = [];
    for (let h = 1; h < live.length; h++) if (live[h] && !seen[h]) stragglers.push(h);
    const all = stragglers.concat(order);
    this.hdr[H_LRU_HEAD] = 0;
    this.hdr[H_LRU_TAIL] = 0;
    for (let i = all.length - 1; i >= 0; i--) this.pushHead(all[i]);
  }

  protected override validateExtra(live: Uint8Array, problems: string[]): void {
    const { order, broken } = this.walk(live);
    if (broken) problems.push('LRU list broken');
    let count = 0;
    for (let h = 1; h < live.length; h++) count += live[h];
    if (order.length !== count) problems.push(`LRU list holds ${order.length} of ${count} entries`);
  }
}
