/**
 * Two times (when handed, when published) for each delivery a consumer holds in one shard, by
 * offset, oldest first, with no allocation per entry: a ring of columns in insertion order, and an
 * open-addressing index (linear probing) from offset to ring slot. Bounded: past `bound` entries
 * the oldest goes. This is touched twice per delivered event (handed, acked).
 */
const EMPTY = -1;

export class HeldTimes {
  private readonly ringMask: number;
  private readonly ringOffsets: Float64Array;
  private readonly ringHanded: Float64Array;
  private readonly ringPublished: Float64Array;
  private readonly ringLive: Uint8Array;
  /** Ring positions in use are [head, tail) (counters; the slot is counter & ringMask). */
  private head = 0;
  private tail = 0;
  private live = 0;
  private readonly indexShift: number;
  private readonly indexMask: number;
  private readonly indexKeys: Float64Array;
  private readonly indexSlots: Int32Array;
  /** What `take` found: read right after it. */
  handedAt = 0;
  publishedAt = 0;

  constructor(private readonly bound: number) {
    if (!Number.isInteger(bound) || bound < 1) throw new RangeError(`bound must be a positive integer, got ${bound}`);
    const ringBits = Math.max(3, Math.ceil(Math.log2(2 * bound)));
    const ringSize = 2 ** ringBits;
    this.ringMask = ringSize - 1;
    this.ringOffsets = new Float64Array(ringSize);
    this.ringHanded = new Float64Array(ringSize);
    this.ringPublished = new Float64Array(ringSize);
    this.ringLive = new Uint8Array(ringSize);
    const indexBits = ringBits + 1;
    this.indexShift = 32 - indexBits;
    this.indexMask = 2 ** indexBits - 1;
    this.indexKeys = new Float64Array(2 ** indexBits).fill(EMPTY);
    this.indexSlots = new Int32Array(2 ** indexBits);
  }

  get size(): number {
    return this.live;
  }

  /** Note `offset` as handed now; one already held becomes the newest. */
  set(offset: number, handedAt: number, publishedAt: number): void {
    const held = this.find(offset);
    if (held >= 0) this.kill(offset, this.indexSlots[held]!);
    if (this.tail - this.head > this.ringMask) this.compact();
    const slot = this.tail++ & this.ringMask;
    this.ringOffsets[slot] = offset;
    this.ringHanded[slot] = handedAt;
    this.ringPublished[slot] = publishedAt;
    this.ringLive[slot] = 1;
    this.live++;
    this.insert(offset, slot);
    if (this.live > this.bound) this.evictOldest();
  }

  /** Remove `offset`; true if it was held, its times then in `handedAt` and `publishedAt`. */
  take(offset: number): boolean {
    const at = this.find(offset);
    if (at < 0) return false;
    const slot = this.indexSlots[at]!;
    this.handedAt = this.ringHanded[slot]!;
    this.publishedAt = this.ringPublished[slot]!;
    this.kill(offset, slot);
    return true;
  }

  clear(): void {
    this.indexKeys.fill(EMPTY);
    this.ringLive.fill(0);
    this.head = 0;
    this.tail = 0;
    this.live = 0;
  }

  private kill(offset: number, slot: number): void {
    this.ringLive[slot] = 0;
    this.live--;
    this.remove(offset);
    while (this.head < this.tail && this.ringLive[this.head & this.ringMask] === 0) this.head++;
  }

  private evictOldest(): void {
    while (this.head < this.tail) {
      const slot = this.head & this.ringMask;
      if (this.ringLive[slot] === 1) {
        this.kill(this.ringOffsets[slot]!, slot);
        return;
      }
      this.head++;
    }
  }

  /** The ring is full of positions, most of them dead: move the live ones to its start, in order. */
  private compact(): void {
    const offsets: number[] = [];
    const handed: number[] = [];
    const published: number[] = [];
    for (let at = this.head; at < this.tail; at++) {
      const slot = at & this.ringMask;
      if (this.ringLive[slot] === 0) continue;
      offsets.push(this.ringOffsets[slot]!);
      handed.push(this.ringHanded[slot]!);
      published.push(this.ringPublished[slot]!);
    }
    this.clear();
    for (let i = 0; i < offsets.length; i++) {
      this.ringOffsets[i] = offsets[i]!;
      this.ringHanded[i] = handed[i]!;
      this.ringPublished[i] = published[i]!;
      this.ringLive[i] = 1;
      this.insert(offsets[i]!, i);
    }
    this.tail = offsets.length;
    this.live = offsets.length;
  }

  private home(offset: number): number {
    const mixed = Math.imul((offset | 0) ^ Math.floor(offset / 0x1_0000_0000), 0x9e37_79b1);
    return mixed >>> this.indexShift;
  }

  /** Index position of `offset`, or -1. */
  private find(offset: number): number {
    const keys = this.indexKeys;
    for (let i = this.home(offset); ; i = (i + 1) & this.indexMask) {
      const key = keys[i]!;
      if (key === offset) return i;
      if (key === EMPTY) return -1;
    }
  }

  private insert(offset: number, slot: number): void {
    const keys = this.indexKeys;
    let i = this.home(offset);
    while (keys[i] !== EMPTY) i = (i + 1) & this.indexMask;
    keys[i] = offset;
    this.indexSlots[i] = slot;
  }

  /** Delete with backward shift, so probes never need tombstones. */
  private remove(offset: number): void {
    const keys = this.indexKeys;
    const mask = this.indexMask;
    let hole = this.find(offset);
    if (hole < 0) return;
    for (let j = (hole + 1) & mask; keys[j] !== EMPTY; j = (j + 1) & mask) {
      const home = this.home(keys[j]!);
      // Move the entry at j into the hole unless its home lies cyclically in (hole, j].
      const between = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (between) continue;
      keys[hole] = keys[j]!;
      this.indexSlots[hole] = this.indexSlots[j]!;
      hole = j;
    }
    keys[hole] = EMPTY;
  }
}
